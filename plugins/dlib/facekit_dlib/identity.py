"""dlib's face recognition ResNet (29 layers, trained on about 3 million faces; 99.38% on LFW as
dlib reports): a 128-d vector per face, compared by euclidean distance."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import dlib
import numpy as np

from facekit_dlib.config import ResNetConfig

EMBEDDING_SIZE = 128


def full_object_detection(landmarks: np.ndarray) -> "dlib.full_object_detection":
    """68 landmarks from any facekit aligner as the dlib shape the encoder takes. The encoder
    aligns its 150x150 chip from the points alone; the rectangle is only their bounding box."""
    points = np.rint(np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)).astype(int)
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    return dlib.full_object_detection(dlib.rectangle(int(x1), int(y1), int(x2), int(y2)),
                                      [dlib.point(int(x), int(y)) for x, y in points])


class ResNetEncoder:
    """Implements facekit.plugin.spec.IdentityModel with ``dlib.face_recognition_model_v1``."""

    def __init__(self, config: ResNetConfig, model_path: str | Path) -> None:
        self.config = config
        self._model = dlib.face_recognition_model_v1(str(model_path))

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 vectors, not normalised: dlib's threshold is on their raw distance."""
        if len(landmarks) == 0:
            return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        shapes = dlib.full_object_detections()
        for points in landmarks:
            shapes.append(full_object_detection(points))
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        vectors = self._model.compute_face_descriptor(rgb, shapes, self.config.num_jitters, self.config.padding)
        return np.array([np.asarray(v) for v in vectors], dtype=np.float32).reshape(len(landmarks), EMBEDDING_SIZE)
