"""Crop centerings: legacy is today's crop, a head crop holds the face crop, and every crop maps
to the frame and back through the matrix its alignments entry stores."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from cli_helpers import run_facekit
from conftest import DATA, require_data
from facekit.app.schema import CropCentering
from facekit.imaging.centering import CENTERINGS, SPAN, centering_centre, centering_matrix
from facekit.imaging.geometry import MEAN_FACE_68, alignment_matrix, transform_points

PEOPLE = DATA / "images" / "people"
SIZE = 256


def test_the_schema_offers_every_centering() -> None:
    assert [c.value for c in CropCentering] == list(CENTERINGS)


def test_legacy_is_todays_crop_to_the_last_bit() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        points = MEAN_FACE_68 * rng.uniform(50, 400) + rng.uniform(0, 1000, 2) + rng.normal(0, 2, (68, 2))
        assert np.array_equal(centering_matrix(points, 256, 0.15, "legacy"), alignment_matrix(points, 256, 0.15))


def test_an_upright_face_is_centred_between_hairline_and_chin_and_a_head_at_eye_level() -> None:
    face, head = centering_centre(MEAN_FACE_68, "face"), centering_centre(MEAN_FACE_68, "head")
    assert face[0] == pytest.approx(0.5, abs=1e-6) and head[0] == pytest.approx(0.5, abs=1e-6)
    assert face[1] == pytest.approx(0.40, abs=0.01) and head[1] == pytest.approx(0.35, abs=0.01)
    for centering in CENTERINGS:  # the unit square's side in the crop shrinks by the span
        matrix = centering_matrix(MEAN_FACE_68 * 200, SIZE, 0.15, centering)
        assert np.sqrt(abs(np.linalg.det(matrix[:, :2]))) * 200 == pytest.approx(SIZE * 0.7 * SPAN[centering])


def test_an_unknown_centering_is_refused() -> None:
    with pytest.raises(ValueError, match="legacy, face, head"):
        centering_matrix(MEAN_FACE_68, SIZE, 0.15, "chin")


@pytest.fixture(scope="module")
def portraits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every shared portrait (the people set, a collection of 7 folders) extracted at each
    centering: the output folder of each."""
    require_data()
    work = tmp_path_factory.mktemp("centerings")
    runs = {}
    for centering in CENTERINGS:
        runs[centering] = work / centering
        result = run_facekit(f"input={PEOPLE}", f"output={runs[centering]}", f"output.size={SIZE}",
                             f"output.centering={centering}", "runner.progress=false", cwd=work,
                             env={"FACEKIT_HOME": str(work / "home")})
        assert result.returncode == 0, result.stderr
    return runs


def _faces(out: Path) -> Iterator[tuple[str, int, dict]]:
    """(source folder / frame, face index, its entry) of every face below ``out``."""
    for path in sorted(out.rglob("alignments.json")):
        for name, frame in json.loads(path.read_text())["frames"].items():
            for index, face in enumerate(frame["faces"]):
                yield f"{path.parent.name}/{name}", index, face


def _with_row(matrix: list) -> np.ndarray:
    return np.vstack([np.asarray(matrix, dtype=np.float64), [0, 0, 1]])


CORNERS = np.array([[0, 0], [SIZE, 0], [0, SIZE], [SIZE, SIZE], [SIZE / 2, SIZE / 2]], dtype=np.float64)


def test_each_face_records_its_centering_and_matrix_and_the_fingerprint_names_only_new_ones(
        portraits: dict[str, Path]) -> None:
    for centering, run in portraits.items():
        faces = list(_faces(run))
        assert len(faces) >= 27
        assert {face["centering"] for _, _, face in faces} == {centering}
        for path in run.rglob("alignments.json"):
            meta = json.loads(path.read_text())["meta"]
            assert meta["output"].get("centering") == meta["fingerprint"].get("centering")
            assert meta["fingerprint"].get("centering") == (None if centering == "legacy" else centering)


def test_every_centering_round_trips_crop_to_frame_to_crop_within_a_pixel(portraits: dict[str, Path]) -> None:
    """The stored matrix takes crop pixels to the frame; the matrix a re-crop computes from the
    stored landmarks takes them back to the same crop pixels."""
    worst = 0.0
    for centering, run in portraits.items():
        for where, index, face in _faces(run):
            to_frame = np.linalg.inv(_with_row(face["matrix"]))
            in_frame = transform_points(CORNERS, to_frame)
            again = transform_points(in_frame, centering_matrix(np.asarray(face["landmarks"]), SIZE, 0.15, centering))
            worst = max(worst, float(np.abs(again - CORNERS).max()))
            assert np.abs(again - CORNERS).max() <= 1.0, (centering, where, index)
    assert worst <= 1.0


def test_a_head_crop_holds_the_face_crop_on_every_shared_portrait(portraits: dict[str, Path]) -> None:
    heads = {(where, index): face for where, index, face in _faces(portraits["head"])}
    checked = 0
    for where, index, face in _faces(portraits["face"]):
        head = heads[(where, index)]
        assert head["landmarks"] == face["landmarks"]
        face_to_head = _with_row(head["matrix"]) @ np.linalg.inv(_with_row(face["matrix"]))
        corners = transform_points(CORNERS[:4], face_to_head)
        assert (corners >= 0).all() and (corners <= SIZE).all(), (where, index, corners)
        checked += 1
    assert checked >= 27



def test_the_library_crops_at_a_centering_with_the_matrix_it_reports() -> None:
    require_data()
    import cv2

    from facekit import Extractor

    image = cv2.imread(str(DATA / "images" / "scenes" / "obama.jpg"))
    legacy, = Extractor(size=SIZE).extract(image)
    head, = Extractor(size=SIZE, centering="head").extract(image)
    assert head.centering == "head" and legacy.centering == "legacy"
    assert np.array_equal(head.matrix, centering_matrix(head.landmarks, SIZE, 0.15, "head"))
    assert head.crop.shape == legacy.crop.shape == (SIZE, SIZE, 3) and not np.array_equal(head.crop, legacy.crop)
