"""The debug drawing: marks the faces on a copy, leaves the input alone."""
from __future__ import annotations

import numpy as np

from facekit.output.debug_frames import draw_debug
from facekit.imaging.geometry import MEAN_FACE_68
from facekit.records import Detection, Face


def make_face(keep: bool = True) -> Face:
    landmarks = MEAN_FACE_68 * 100 + [50, 40]
    points5 = landmarks[[36, 45, 30, 48, 54]]
    return Face(Detection((50, 40, 150, 140), 0.97, points5), landmarks=landmarks, keep=keep,
                reason=None if keep else "distance 0.71")


def test_draws_on_a_copy_where_the_face_is():
    image = np.full((240, 320, 3), 60, np.uint8)
    original = image.copy()
    out = draw_debug(image, [make_face(), make_face(keep=False)])
    np.testing.assert_array_equal(image, original)
    assert out.shape == image.shape and out.dtype == np.uint8
    changed = (out != image).any(axis=2)
    assert changed[40, 50:150].any() and changed[40:140, 50].any()  # the box
    assert changed[60:130, 60:140].mean() > 0.05  # the landmark lines
    assert not changed[200:, 200:].any()  # nothing far from the face


def test_gray_images_and_faces_without_landmarks():
    image = np.zeros((100, 100), np.uint8)
    out = draw_debug(image, [Face(Detection((10, 10, 60, 60), 0.5))])
    assert out.shape == (100, 100, 3) and out[10, 10:60].any() and not image.any()


def test_lines_grow_with_the_image():
    def box_edge_width(side: int) -> int:
        box = (side / 4, side / 4, side * 3 / 4, side * 3 / 4)
        out = draw_debug(np.zeros((side, side, 3), np.uint8), [Face(Detection(box, 0.9))])
        return int(out[side // 2, : side // 2].any(axis=1).sum())  # the box's left edge, across

    assert box_edge_width(200) <= 3 and box_edge_width(3000) >= 6
