"""A picture of what was found, so a person can check boxes and landmarks by eye."""
from __future__ import annotations

import cv2
import numpy as np

from facekit.records import Face

#: iBUG-300W landmark groups: (name, point indices, closed outline?, BGR colour); left and right
#: as seen in the image.
LANDMARK_GROUPS: tuple[tuple[str, range, bool, tuple[int, int, int]], ...] = (
    ("jaw", range(0, 17), False, (255, 255, 0)),
    ("left brow", range(17, 22), False, (0, 165, 255)),
    ("right brow", range(22, 27), False, (0, 165, 255)),
    ("nose bridge", range(27, 31), False, (255, 0, 255)),
    ("nostrils", range(30, 36), True, (255, 0, 255)),  # from the tip, round the nostrils
    ("left eye", range(36, 42), True, (0, 255, 255)),
    ("right eye", range(42, 48), True, (0, 255, 255)),
    ("outer lips", range(48, 60), True, (0, 0, 255)),
    ("inner lips", range(60, 68), True, (203, 192, 255)),
)
KEPT_COLOUR = (0, 255, 0)
REJECTED_COLOUR = (0, 0, 255)
POINTS5_COLOUR = (255, 128, 0)


def draw_debug(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A BGR copy of ``image`` with each face's box and score (green kept, red rejected, with the
    reason), its 68 points joined group by group in distinct colours, and its 5 detector points.

    Lines grow with the image so they stay visible on 4K frames and do not swamp thumbnails.
    """
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3].copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    for face in faces:
        _draw_box(canvas, face, thickness)
        if face.landmarks is not None:
            _draw_landmarks(canvas, np.asarray(face.landmarks), thickness)
        if face.detection.points5 is not None:
            for x, y in np.asarray(face.detection.points5):
                cv2.circle(canvas, (round(x), round(y)), thickness + 1, POINTS5_COLOUR, -1, cv2.LINE_AA)
    return canvas


def _draw_box(canvas: np.ndarray, face: Face, thickness: int) -> None:
    """The box, and the score (and any rejection reason) above it, or inside at the top edge."""
    x1, y1, x2, y2 = (round(v) for v in face.detection.box)
    colour = KEPT_COLOUR if face.keep else REJECTED_COLOUR
    cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
    label = f"{face.detection.score:.2f}" + ("" if face.keep else f" {face.reason or 'rejected'}")
    scale = 0.4 * thickness
    (_, text_height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    gap = 3 * thickness
    baseline_y = y1 - gap if y1 - gap > text_height else y1 + text_height + gap
    cv2.putText(canvas, label, (x1, baseline_y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness,
                cv2.LINE_AA)


def _draw_landmarks(canvas: np.ndarray, landmarks: np.ndarray, thickness: int) -> None:
    """Small white dots under the coloured group lines: each point stays findable, the lines
    stay readable."""
    fixed = np.round(landmarks * 16).astype(np.int32)  # 4 fractional bits keep sub-pixel places
    for x, y in fixed:
        cv2.circle(canvas, (int(x), int(y)), 10 * thickness, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
    for _, indices, closed, colour in LANDMARK_GROUPS:
        cv2.polylines(canvas, [fixed[list(indices)]], closed, colour, thickness, cv2.LINE_AA, shift=4)
