"""Image and box conversions between facekit (BGR numpy, float boxes x1, y1, x2, y2) and dlib
(RGB arrays, integer rectangles with inclusive right and bottom edges)."""
from __future__ import annotations

from typing import Any

import numpy as np

from facekit.plugin import Detection


def to_rgb(image: np.ndarray) -> np.ndarray:
    """The contiguous RGB uint8 array dlib's functions take, from facekit's BGR frame."""
    return np.ascontiguousarray(image[:, :, ::-1])


def shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image with its longest side at most ``max_side`` (0: unchanged) and the scale used."""
    if max_side <= 0 or max(image.shape[:2]) <= max_side:
        return image, 1.0
    return resize(image, max_side)


def resize(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The image with its longest side exactly ``side`` (0: unchanged) and the scale used."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if side <= 0 or longest == side:
        return image, 1.0
    import cv2

    scale = side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation), scale


def rect_to_box(rect: Any, scale: float = 1.0) -> tuple[float, float, float, float]:
    """A dlib rectangle (pixels left..right inclusive) as facekit's box, whose edges lie on pixel
    boundaries (x2 = right + 1), mapped back from an image shrunk by ``scale``."""
    return (rect.left() / scale, rect.top() / scale, (rect.right() + 1) / scale, (rect.bottom() + 1) / scale)


def box_to_rect(box: tuple[float, float, float, float]) -> Any:
    """facekit's box as the dlib rectangle covering the same pixels."""
    import dlib

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return dlib.rectangle(x1, y1, max(x1, x2 - 1), max(y1, y2 - 1))


def clipped(box: tuple[float, float, float, float], score: float, width: int,
            height: int) -> Detection | None:
    """A detection with its box clipped to the image; None when less than 2 px is left (dlib's
    detectors report faces that run off the image edge)."""
    x1, y1 = max(0.0, box[0]), max(0.0, box[1])
    x2, y2 = min(float(width), box[2]), min(float(height), box[3])
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return Detection((x1, y1, x2, y2), float(score), None)
