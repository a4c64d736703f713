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


def test_the_debug_and_rejected_folders_come_with_their_first_file(tmp_path):
    from facekit.output.face_files import FaceWriter
    from facekit.records import Frame, FrameRecord

    writer = FaceWriter(tmp_path / "faces", debug=True, save_rejected=True)
    assert [p.name for p in (tmp_path / "faces").iterdir()] == []  # a rerun with nothing to do leaves no empty folder
    image = np.full((120, 160, 3), 90, np.uint8)
    face = Face(Detection((40, 30, 100, 100), 0.9), landmarks=MEAN_FACE_68 * 60 + (40, 30))
    face.keep, face.crop = False, np.zeros((64, 64, 3), np.uint8)
    record = FrameRecord(Frame("f1", "clip.mp4", 1, image=image), faces=[face])
    writer.encode(record)
    writer.write(record)
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == ["debug", "rejected"]
    assert (tmp_path / "faces" / "rejected" / "f1_0.png").is_file() and (tmp_path / "faces" / "debug" / "f1.jpg").is_file()
