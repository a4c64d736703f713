"""cv2-dnn: OpenCV's ResNet-10 SSD face detector (Caffe, 300x300) run by OpenCV DNN on the CPU.

The weights are the ones faceswap publishes as ``resnet_ssd_v1`` (a zip holding
``resnet_ssd_v1.caffemodel`` and ``resnet_ssd_v1.prototxt``): OpenCV's
``res10_300x300_ssd_iter_140000`` face detector, renamed. The model store downloads the zip once,
extracts both files, and records their sha256 on first download (none is published).

The whole image is resized (not cropped, so its aspect ratio is not kept) to 300x300 and the
training mean (B, G, R) = (104, 177, 123) is subtracted, as in OpenCV's face-detector sample and
its training prototxt. (faceswap's plugin subtracts (104, 117, 123), ImageNet's mean; the model
was not trained with it.) The net's DetectionOutput layer does the prior-box decoding and NMS
itself and gives [1, 1, N, 7] rows: image index, label, confidence, then x1, y1, x2, y2 as
fractions of the image's width and height. Boxes may reach past the image: they are clipped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facekit.plugin import Detection, ModelFile, ModelSpec, PluginSpec, hookimpl
from facekit_plugins._points import clipped_detection
from facekit.plugin.options import fractions

MODEL_ID = "resnet-ssd-v1"
URL = "https://github.com/deepfakes-models/faceswap-models/releases/download/v4.1/resnet_ssd_v1.zip"
CAFFEMODEL = "resnet_ssd_v1.caffemodel"
PROTOTXT = "resnet_ssd_v1.prototxt"

INPUT_SIZE = 300
MEAN_BGR = (104.0, 177.0, 123.0)


@dataclass
class Cv2DnnConfig:
    # Detections below this confidence are dropped (faceswap's default is 0.5 as well).
    score_threshold: float = 0.5

    def __post_init__(self) -> None:
        fractions(self, "score_threshold")


def decode_detections(output: np.ndarray, sizes: Sequence[tuple[int, int]],
                      score_threshold: float) -> list[list[Detection]]:
    """DetectionOutput rows -> one list of detections per image, in that image's pixels.

    ``output`` is the net's [1, 1, N, 7] blob (image index, label, confidence, x1, y1, x2, y2
    normalised); ``sizes`` holds each image's (width, height). Rows under the threshold, with an
    index outside the batch (OpenCV writes index -1 when nothing was found), or non-finite
    coordinates are dropped; boxes are clipped to the image, and those with nothing left inside
    are dropped too. Each image's detections come most confident first.
    """
    rows = np.asarray(output, dtype=np.float32).reshape(-1, 7)
    found: list[list[Detection]] = [[] for _ in sizes]
    for row in rows[np.argsort(-rows[:, 2], kind="stable")]:
        index, score = int(row[0]), float(row[2])
        if not 0 <= index < len(sizes) or not score >= score_threshold or not np.isfinite(row[3:]).all():
            continue
        width, height = sizes[index]
        x1, y1, x2, y2 = row[3:] * np.array([width, height, width, height], dtype=np.float32)
        detection = clipped_detection(x1, y1, x2, y2, score, None, width, height)
        if detection is not None:
            found[index].append(detection)
    return found


class Cv2DnnDetector:
    def __init__(self, config: Cv2DnnConfig, prototxt: str, caffemodel: str) -> None:
        import cv2

        self.config = config
        self._cv2 = cv2
        self._net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        if not images:
            return []
        blob = self._cv2.dnn.blobFromImages([_bgr(image) for image in images], 1.0, (INPUT_SIZE, INPUT_SIZE),
                                            MEAN_BGR, swapRB=False, crop=False)
        self._net.setInput(blob)
        output = self._net.forward()
        return decode_detections(output, [(im.shape[1], im.shape[0]) for im in images], self.config.score_threshold)


def _bgr(image: np.ndarray) -> np.ndarray:
    """The image as 3-channel BGR (gray and BGRA frames are converted; the net takes 3 channels)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image[:, :, :3] if image.shape[2] > 3 else image


def _build(config: Cv2DnnConfig, store) -> Cv2DnnDetector:
    caffemodel = store.path(MODEL_ID, CAFFEMODEL)  # first: the one download extracts both
    prototxt = store.path(MODEL_ID, PROTOTXT)
    return Cv2DnnDetector(config, str(prototxt), str(caffemodel))


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [PluginSpec(
        name="cv2-dnn", kind="detector", factory=_build, config_class=Cv2DnnConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=0, batch_size=1,
        description="ResNet-10 SSD 300x300 (Caffe, OpenCV DNN, CPU); boxes only, no points",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, version="v4.1",
        files=(ModelFile(CAFFEMODEL, sha256=None, size=None, url=URL, archive=True),
               ModelFile(PROTOTXT, sha256=None, size=None, url=URL, archive=True)),
        description="OpenCV's res10_300x300_ssd face detector, as published by faceswap (resnet_ssd_v1)",
    )]
