"""Head pose on every shared portrait (the people set and the single-face scene portraits), with
the default detector and aligner: a mirror image reads the yaw negated and the same pitch, a
copy turned 20 degrees in the image plane reads 20 degrees more roll, and a frontal portrait
reads a small yaw. No angle is labelled by hand: each check compares the photo with itself."""
from __future__ import annotations

import pytest

import facekit
from conftest import require_data
from facekit.faces.pose_check import TURNED, PortraitPoses, portrait_poses, shared_portraits

@pytest.fixture(scope="module")
def poses() -> list[PortraitPoses]:
    extractor = facekit.Extractor(detector="yunet", aligner="facemesh")
    found = [portrait_poses(path, extractor, name) for name, path in shared_portraits(require_data() / "images")]
    assert len(found) == 34 and all(found)
    return found  # type: ignore[return-value]


def _misses(poses: list[PortraitPoses], error: str, bound: float) -> list[str]:
    return [f"{pose.name}: {getattr(pose, error):.2f}" for pose in poses if not getattr(pose, error) <= bound]


def test_a_mirrored_portrait_reads_its_yaw_negated_within_3_degrees(poses: list[PortraitPoses]) -> None:
    assert _misses(poses, "mirrored_yaw_error", 3.0) == []


def test_a_mirrored_portrait_reads_its_pitch_within_3_degrees(poses: list[PortraitPoses]) -> None:
    assert _misses(poses, "mirrored_pitch_error", 3.0) == []


def test_a_portrait_turned_20_degrees_in_plane_reads_20_degrees_more_roll_within_3(poses: list[PortraitPoses]) -> None:
    assert _misses(poses, "roll_error", 3.0) == []


def test_frontal_portraits_read_a_yaw_under_15_degrees(poses: list[PortraitPoses]) -> None:
    frontal = [pose for pose in poses if pose.name not in TURNED]
    assert len(frontal) == 31
    assert [f"{pose.name}: {pose.photo[0]:.1f}" for pose in frontal if not abs(pose.photo[0]) < 15] == []
