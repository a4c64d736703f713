"""A 10,000-frame video: peak memory is set by the queues, not by the length of the input."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from cli_helpers import load_json, peak_rss_mb
from conftest import DATA, require_data

pytestmark = pytest.mark.slow  # a 10,000-frame video

CLIP = DATA / "video" / "faceswap_test.mp4"
LONG_FRAMES = 10_000
SHORT_FRAMES = 500
#: What 9,500 more frames may add to the peak: the journal's frame names and the allocator's
#: slack. Frames in flight are bounded by runner.queue_size per stage in both runs alike.
GROWTH_BOUND_MB = 64


def looped(source: Path, frames: int, dest: Path) -> Path:
    """``frames`` frames made by playing ``source`` again and again."""
    capture = cv2.VideoCapture(str(source))
    clip = []
    while (frame := capture.read()[1]) is not None:
        clip.append(frame)
    height, width = clip[0].shape[:2]
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for index in range(frames):
        writer.write(clip[index % len(clip)])
    writer.release()
    return dest


def run_peak_mb(video: Path, out: Path) -> float:
    return peak_rss_mb(f"input={video}", f"output={out}", "runner.progress=false", "runner.mode=parallel",
                       "output.size=64",  # small crops: the test is about memory, not PNG time
                       cwd=out.parent)


def test_peak_memory_does_not_grow_with_the_length_of_the_video(tmp_path: Path) -> None:
    require_data()
    short = looped(CLIP, SHORT_FRAMES, tmp_path / "short.mp4")
    long = looped(CLIP, LONG_FRAMES, tmp_path / "long.mp4")
    short_mb = run_peak_mb(short, tmp_path / "short_faces")
    long_mb = run_peak_mb(long, tmp_path / "long_faces")
    print(f"peak RSS: {short_mb:.0f} MB for {SHORT_FRAMES} frames, {long_mb:.0f} MB for {LONG_FRAMES}")
    frames = load_json(tmp_path / "long_faces" / "alignments.json")["frames"]
    assert len(frames) == LONG_FRAMES
    assert long_mb - short_mb < GROWTH_BOUND_MB, (
        f"peak {short_mb:.0f} MB for {SHORT_FRAMES} frames, {long_mb:.0f} MB for {LONG_FRAMES}")
