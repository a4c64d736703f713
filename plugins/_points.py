"""Shared helpers for built-in detectors: box clipping, 5-point ordering, shrinking big images."""
from __future__ import annotations

import numpy as np

from facekit.plugin import Detection, resize


def order_points5(points: np.ndarray) -> np.ndarray:
    """Put 5 points in facekit's order: eyes then nose then mouth corners, each pair image-left first.

    Detectors disagree on whether "left eye" means the subject's or the viewer's; sorting by x
    within each pair makes the order independent of that convention.
    """
    p = np.asarray(points, dtype=np.float32).reshape(5, 2)
    eyes = p[[0, 1]][np.argsort(p[[0, 1], 0])]
    mouth = p[[3, 4]][np.argsort(p[[3, 4], 0])]
    return np.vstack([eyes, p[2:3], mouth])


def clipped_detection(x1: float, y1: float, x2: float, y2: float, score: float,
                      points5: np.ndarray | None, width: int, height: int) -> Detection | None:
    """A detection with its box clipped to the image, or None when nothing is left of it."""
    cx1, cy1 = max(0.0, float(x1)), max(0.0, float(y1))
    cx2, cy2 = min(float(width), float(x2)), min(float(height), float(y2))
    if cx2 - cx1 < 2 or cy2 - cy1 < 2:
        return None
    return Detection((cx1, cy1, cx2, cy2), float(score), None if points5 is None else order_points5(points5))


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk so its longest side is at most ``max_side`` (memory stays bounded by the
    detector's input size), and the factor to map results back."""
    if max_side <= 0 or max(image.shape[:2]) <= max_side:
        return image, 1.0
    return resize.shrunk(image, max_side)
