"""dlib's 68-point shape predictor (Kazemi and Sullivan's ensemble of regression trees, trained
on iBUG 300-W), which places the points in iBUG-300W order: facekit's own order."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import dlib
import numpy as np

from facekit.plugin import Detection
from facekit_dlib._image import box_to_rect, to_rgb
from facekit_dlib.config import ShapeConfig

NUM_POINTS = 68


def shape_points(shape: "dlib.full_object_detection") -> np.ndarray:
    """A dlib shape's parts as a (68, 2) float array of pixel coordinates."""
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


class ShapeAligner:
    """Implements facekit.plugin.spec.Aligner with ``dlib.shape_predictor``."""

    def __init__(self, config: ShapeConfig, model_path: str | Path) -> None:
        self.config = config
        self._predictor = dlib.shape_predictor(str(model_path))

    def align(self, image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        if not detections:
            return []
        rgb = to_rgb(image)
        return [self.points(rgb, d.box) for d in detections]

    def points(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 points from a box, refined over ``config.passes`` passes (see ShapeConfig)."""
        points = shape_points(self._predictor(rgb, box_to_rect(box)))
        for _ in range(self.config.passes - 1):
            points = shape_points(self._predictor(rgb, box_to_rect(hog_box(points))))
        return points


#: Where dlib's HOG detector puts its (square) box around a face, in units of the face's size
#: (the RMS distance of the 68 points to their centroid): the box's centre sits this far above the
#: centroid, and its side is this many units. Medians over the 55 faces HOG finds in the shared
#: portraits and scenes (images/people, images/scenes), not the landmark set the bench scores on.
HOG_CENTRE_ABOVE = 0.098
HOG_SIDE = 2.79


def hog_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """The box dlib's HOG detector would draw around a face with these 68 points: the kind of
    box the predictor was trained on."""
    centre = points.mean(axis=0)
    size = float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean()))
    cx, cy = float(centre[0]), float(centre[1]) - HOG_CENTRE_ABOVE * size
    half = HOG_SIDE * size / 2
    # the points are in pixel-centre coordinates, the box in pixel-edge ones (x1 = first column,
    # x2 = last column + 1): half a pixel apart
    return (cx - half + 0.5, cy - half + 0.5, cx + half + 0.5, cy + half + 0.5)
