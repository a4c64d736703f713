"""MTCNN: the classic three-stage cascade (P/R/O-Net), TensorFlow weights from the mtcnn package."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facekit.plugin import Detection, ModelFile, ModelSpec, PluginSpec, hookimpl, resize
from facekit_plugins._points import clipped_detection, downscale
from facekit_plugins._tensorflow import tf_device
from facekit.plugin.options import at_least, fractions

MODEL_ID = "mtcnn-1.0.0"
_WEIGHTS = {
    "pnet.lz4": ("ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5", 27119),
    "rnet.lz4": ("cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee", 401659),
    "onet.lz4": ("94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3", 1557637),
}
_KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: mtcnn 1.0.0 counts its pyramid's levels from the image alone, as if ``min_face_size`` were 20
#: (``build_scale_pyramid``): a larger one shrinks the last levels below P-Net's 12 px, and the
#: TensorFlow error that raises reads to it as "no faces" (min_face_size=40 found none on any
#: shared portrait). So the image is shrunk by 20 / min_face_size and searched for faces of 20
#: px: the same scales of the image, in a pyramid that ends where P-Net can still run.
PYRAMID_FACE = 20


@dataclass
class MTCNNConfig:
    min_face_size: int = 20
    threshold_pnet: float = 0.6
    threshold_rnet: float = 0.7
    threshold_onet: float = 0.7
    score_threshold: float = 0.9
    # The image pyramid costs about 0.4 s a megapixel on one core: shrink big photos first.
    max_size: int = 1280
    device: str = "auto"  # "auto" picks GPU:0 when TensorFlow sees one

    def __post_init__(self) -> None:
        fractions(self, "threshold_pnet", "threshold_rnet", "threshold_onet", "score_threshold")
        at_least(self, 1, "min_face_size", "max_size")


class MTCNNDetector:
    def __init__(self, config: MTCNNConfig, weights: dict[str, str]) -> None:
        device = tf_device(config.device)  # starts TensorFlow quietly before mtcnn imports it
        from mtcnn import MTCNN
        from mtcnn.stages import StageONet, StagePNet, StageRNet

        self.config = config
        stages = [StagePNet(weights=weights["pnet.lz4"]), StageRNet(weights=weights["rnet.lz4"]),
                  StageONet(weights=weights["onet.lz4"])]
        self._net = MTCNN(stages=stages, device=device)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        import cv2

        c = self.config
        work, scale = downscale(image, c.max_size)
        min_face = c.min_face_size
        if min_face > PYRAMID_FACE:
            longest = max(1, round(max(work.shape[:2]) * PYRAMID_FACE / min_face))
            if longest < max(work.shape[:2]):
                work, shrink = resize.shrunk(work, longest)
                scale, min_face = scale * shrink, PYRAMID_FACE
        rgb = cv2.cvtColor(work, cv2.COLOR_BGR2RGB)
        found = self._net.detect_faces(
            rgb, min_face_size=min_face, threshold_pnet=c.threshold_pnet,
            threshold_rnet=c.threshold_rnet, threshold_onet=c.threshold_onet,
        )
        height, width = image.shape[:2]
        detections = []
        for face in found or []:
            if face["confidence"] < c.score_threshold:
                continue
            x, y, w, h = (v / scale for v in face["box"])
            points = np.array([face["keypoints"][k] for k in _KEYPOINTS], dtype=np.float32) / scale
            det = clipped_detection(x, y, x + w, y + h, face["confidence"], points, width, height)
            if det is not None:
                detections.append(det)
        return detections


def _build(config: MTCNNConfig, store) -> MTCNNDetector:
    return MTCNNDetector(config, {name: str(store.path(MODEL_ID, name)) for name in _WEIGHTS})


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [PluginSpec(
        name="mtcnn", kind="detector", factory=_build, config_class=MTCNNConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=512, batch_size=1,
        description="MTCNN cascade (TensorFlow)",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, package="mtcnn", package_dir="assets/weights", version="1.0.0",
        files=tuple(ModelFile(name, sha, size) for name, (sha, size) in _WEIGHTS.items()),
        description="MTCNN P/R/O-Net weights (lz4-compressed Keras arrays)",
    )]
