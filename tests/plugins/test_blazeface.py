"""BlazeFace: anchor layout and decoding on synthetic outputs, then detection on real photos."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facekit.errors import ConfigError
from facekit.models.store import ModelStore
from facekit.plugin.spec import Detector
from facekit_plugins import blazeface
from facekit_plugins.blazeface import (VARIANTS, BlazeFaceConfig, decode, letterbox, ssd_anchors,
                                       weighted_nms)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SCENES = DATA / "images" / "scenes"
PORTRAITS = ["obama.jpg", "obama2.jpg", "obama3.jpg", "obama_small.jpg", "obama-240p.jpg",
             "biden.jpg"]


def _store() -> ModelStore:
    return ModelStore({m.id: m for m in blazeface.facekit_models()})


def _build(**options: object) -> Detector:
    spec = blazeface.facekit_detectors()[0]
    return spec.factory(spec.config_class(**options), _store())


def _read(name: str) -> np.ndarray:
    import cv2

    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA}")
    image = cv2.imread(str(SCENES / name))
    assert image is not None, name
    return image


@pytest.fixture(scope="module")
def detector() -> Detector:
    return _build()


# -- anchors and decoding -------------------------------------------------------------------------

@pytest.mark.parametrize(("variant", "count"), [("short", 896), ("full", 2304), ("back", 896)])
def test_anchor_count_matches_the_model_output(variant: str, count: int) -> None:
    # short: 16x16 cells x 2 + 8x8 cells x 6; full: 48x48 x 1; back: 16x16 x 2 + 8x8 x 6
    assert len(ssd_anchors(VARIANTS[variant])) == count


def test_anchors_are_cell_centres_in_model_order() -> None:
    short = ssd_anchors(VARIANTS["short"])
    np.testing.assert_allclose(short[0], short[1])  # two anchors per cell on the stride-8 layer
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])  # x runs fastest
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)  # 3 layers share stride 16
    full = ssd_anchors(VARIANTS["full"])
    np.testing.assert_allclose(full[[0, 1, 48, -1]],
                               [[0.5 / 48, 0.5 / 48], [1.5 / 48, 0.5 / 48], [0.5 / 48, 1.5 / 48],
                                [47.5 / 48, 47.5 / 48]])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_zero_offsets_decode_to_the_anchor_box(variant: str) -> None:
    v = VARIANTS[variant]
    anchors = ssd_anchors(v)
    raw = np.zeros((1, len(anchors), 16), np.float32)
    scores = np.full((1, len(anchors), 1), -50.0, np.float32)
    k = len(anchors) // 3
    raw[0, k, 2:4] = 0.25 * v.input_size  # a box a quarter of the input wide and high
    scores[0, k] = 3.0
    boxes, keypoints, probs = decode(raw, scores, anchors, v.input_size, 0.5)
    cx, cy = anchors[k]
    np.testing.assert_allclose(boxes, [[cx - 0.125, cy - 0.125, cx + 0.125, cy + 0.125]], atol=1e-6)
    np.testing.assert_allclose(keypoints[0], np.tile(anchors[k], (6, 1)), atol=1e-6)
    assert probs[0] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_decode_survives_extreme_logits() -> None:
    anchors = ssd_anchors(VARIANTS["short"])
    raw = np.ones((1, len(anchors), 16), np.float32)
    scores = np.full((1, len(anchors), 1), -1e4, np.float32)
    scores[0, 0] = 1e4
    with np.errstate(all="raise"):
        _, _, probs = decode(raw, scores, anchors, 128, 0.5)
    assert probs.tolist() == [1.0]


def test_weighted_nms_blends_a_cluster_and_keeps_a_distant_box() -> None:
    boxes = np.array([[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]],
                     np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    keypoints[1] += 0.1
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    merged = weighted_nms(boxes, keypoints, scores, 0.3)
    assert [round(score, 2) for _, _, score in merged] == [0.9, 0.7]
    np.testing.assert_allclose(merged[0][0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5, atol=1e-6)
    np.testing.assert_allclose(merged[0][1], np.full((6, 2), 0.1 * 0.6 / 1.5), atol=1e-6)
    np.testing.assert_allclose(merged[1][0], boxes[2])


def test_letterbox_maps_input_coordinates_back_to_the_image() -> None:
    tensor, box = letterbox(np.zeros((100, 300, 3), np.uint8), 128)
    assert tensor.shape == (1, 128, 128, 3) and tensor.min() == -1.0
    # 300 px -> 128, 100 px -> 43 rows from row 42: the band's edges are the image's outer pixel
    # edges, half a pixel outside the first and last pixel centres
    assert (box.pad_x, box.pad_y) == (0, 42)
    np.testing.assert_allclose(box.to_image(np.array([[0.0, 42 / 128], [1.0, 85 / 128]])),
                               [[-0.5, -0.5], [299.5, 99.5]], atol=1e-6)


# -- the plugin ------------------------------------------------------------------------------------

def test_spec_and_models_declare_every_variant() -> None:
    spec = blazeface.facekit_detectors()[0]
    assert (spec.name, spec.kind, spec.config_class, spec.gpu_memory_mb) == (
        "blazeface", "detector", BlazeFaceConfig, 0)
    models = {m.id: m for m in blazeface.facekit_models()}
    assert set(spec.model_ids) == set(models) == {v.model_id for v in VARIANTS.values()}
    for v in VARIANTS.values():
        assert _store().path(v.model_id, v.file).stat().st_size == v.size


def test_unknown_variant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="short, full, back"):
        _build(model="huge")


def test_import_is_cheap() -> None:
    code = ("import sys, facekit_plugins.blazeface, facekit_plugins.facemesh; "
            "print(sorted(m for m in ('ai_edge_litert', 'tensorflow', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- real photos -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PORTRAITS)
def test_one_face_in_each_portrait(detector: Detector, name: str) -> None:
    image = _read(name)
    (face,) = detector.detect([image])[0]
    height, width = image.shape[:2]
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert face.score > 0.7
    _check_points5(face.points5, face.box)


def test_two_faces_in_two_people(detector: Detector) -> None:
    faces = detector.detect([_read("two_people.jpg")])[0]
    assert len(faces) == 2
    for face in faces:
        _check_points5(face.points5, face.box)


def test_batch_gives_one_list_per_image(detector: Detector) -> None:
    found = detector.detect([_read("two_people.jpg"), _read("obama.jpg")])
    assert [len(faces) for faces in found] == [2, 1]


def test_boxes_follow_the_image_through_the_letterbox(detector: Detector) -> None:
    """Padding the photo on the left and top moves the face by exactly the padding."""
    image = _read("obama_small.jpg")
    padded = np.zeros((image.shape[0] + 40, image.shape[1] + 100, 3), np.uint8)
    padded[40:, 100:] = image
    (plain,), (moved,) = detector.detect([image, padded])
    shift = np.array(moved.box) - np.array(plain.box) - (100, 40, 100, 40)
    assert np.abs(shift).max() < 0.05 * plain.width


def _check_points5(points5: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Inside the box, in facekit's order: eyes left to right above the nose above the mouth."""
    eye_l, eye_r, nose, mouth_l, mouth_r = points5
    x1, y1, x2, y2 = box
    assert ((points5 >= (x1, y1)) & (points5 <= (x2, y2))).all()
    assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
