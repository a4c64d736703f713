"""dlib's two face detectors: the HOG + linear SVM sliding window (``get_frontal_face_detector``)
and the MMOD CNN (``cnn_face_detection_model_v1``). Neither gives facial points, so their
detections carry no ``points5``."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import dlib
import numpy as np

from facekit.plugin import Detection
from facekit_dlib._image import clipped, rect_to_box, resize, shrink, to_rgb
from facekit_dlib.config import CnnConfig, HogConfig


class HogDetector:
    """Frontal faces (and up to about 30 degrees of turn); fast on the CPU, no weights file."""

    def __init__(self, config: HogConfig) -> None:
        self.config = config
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        work, scale = shrink(image, self.config.max_size)
        rects, scores, _ = self._detector.run(to_rgb(work), self.config.upsample, self.config.adjust_threshold)
        height, width = image.shape[:2]
        found = (clipped(rect_to_box(r, scale), s, width, height) for r, s in zip(rects, scores))
        return [d for d in found if d is not None]


class CnnDetector:
    """dlib's MMOD CNN: finds turned and partly hidden faces HOG misses; slow on the CPU, so
    every image is resized to ``config.longest_side`` first."""

    def __init__(self, config: CnnConfig, model_path: str | Path) -> None:
        self.config = config
        self._net = dlib.cnn_face_detection_model_v1(str(model_path))

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        work, scale = resize(image, self.config.longest_side)
        height, width = image.shape[:2]
        found = []
        for hit in self._net(to_rgb(work), self.config.upsample):
            if hit.confidence < self.config.score_threshold:
                continue
            detection = clipped(rect_to_box(hit.rect, scale), hit.confidence, width, height)
            if detection is not None:
                found.append(detection)
        return found
