"""S3FD: the single-shot scale-invariant face detector (Zhang et al. 2017), faceswap's Keras weights.

The network is VGG-16 (conv1_1 .. conv5_3, fc6 and fc7 as convolutions) with two extra blocks
(conv6, conv7) and six detection heads at strides 4 to 128, each predicting one square anchor of
side 4 x stride per cell: a face score (the stride-4 head maxes out three background scores) and
four box offsets, decoded SSD-style with variances 0.1 and 0.2. conv3_3, conv4_3 and conv5_3 pass
through learned L2 normalisations first. Input: 640 x 640 BGR minus the mean (104, 117, 123).

The published file (``s3fd_keras_v2.h5``) holds weights by layer name; Keras 3 cannot rebuild
faceswap's custom layers from it, so this module builds the same graph with the same layer names
and copies the weights in by name with h5py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facekit.plugin import Detection, ModelError, ModelFile, ModelSpec, PluginSpec, hookimpl
from facekit_plugins._keras_h5 import read_weights
from facekit_plugins._tensorflow import tensorflow, tf_device
from facekit_plugins._points import clipped_detection
from facekit.plugin.options import at_least, fractions

MODEL_ID = "s3fd-keras-v2"
MODEL_FILE = "s3fd_keras_v2.h5"
MODEL_URL = "https://github.com/deepfakes-models/faceswap-models/releases/download/v11.2/s3fd_keras_v2.zip"
INPUT_SIZE = 640
MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)
STRIDES = (4, 8, 16, 32, 64, 128)
VARIANCES = (0.1, 0.2)
HEADS = ("conv3_3_norm", "conv4_3_norm", "conv5_3_norm", "fc7", "conv6_2", "conv7_2")


@dataclass
class S3FDConfig:
    score_threshold: float = 0.7  # faceswap's default confidence, 70%
    nms_threshold: float = 0.5
    batch_size: int = 4
    device: str = "auto"  # "auto" uses the GPU when TensorFlow sees one

    def __post_init__(self) -> None:
        fractions(self, "score_threshold", "nms_threshold")
        at_least(self, 1, "batch_size")


# -- decoding: plain NumPy, tested on synthetic network outputs -------------------------------------

def anchors(stride: int, height: int, width: int) -> np.ndarray:
    """(height * width, 4) anchors (cx, cy, w, h) of one head: one square of side 4 x stride
    centred in each cell."""
    ys, xs = np.mgrid[0:height, 0:width]
    centres = np.stack([xs.ravel(), ys.ravel()], axis=1) * stride + stride / 2
    sides = np.full((height * width, 2), 4.0 * stride)
    return np.hstack([centres, sides]).astype(np.float64)


def decode_boxes(offsets: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """SSD box decoding: (n, 4) offsets against (n, 4) anchors (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    centre = priors[:, :2] + offsets[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(offsets[:, 2:] * VARIANCES[1])
    return np.hstack([centre - size / 2, centre + size / 2])


def softmax_face(logits: np.ndarray) -> np.ndarray:
    """Face probability from (..., 2) background/face logits."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp[..., 1] / exp.sum(axis=-1)


def decode_heads(outputs: Sequence[np.ndarray], score_threshold: float) -> np.ndarray:
    """One image's (n, 5) candidate boxes (x1, y1, x2, y2, score) in network-input pixels from the
    six heads' outputs, ordered [conf, loc] per head, each (H, W, C)."""
    found = []
    for index, stride in enumerate(STRIDES):
        conf, loc = outputs[2 * index], outputs[2 * index + 1]
        height, width = conf.shape[:2]
        scores = softmax_face(conf.reshape(-1, 2))
        keep = scores >= score_threshold
        if keep.any():
            boxes = decode_boxes(loc.reshape(-1, 4)[keep], anchors(stride, height, width)[keep])
            found.append(np.hstack([boxes, scores[keep, None]]))
    return np.vstack(found) if found else np.zeros((0, 5))


def nms(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: the best-scoring box of each overlapping group (IoU above
    ``threshold``) survives."""
    order = np.argsort(-boxes[:, 4], kind="stable")
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:4], boxes[rest, 2:4])
        overlap = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        area = np.prod(boxes[:, 2:4] - boxes[:, :2], axis=1)
        iou = overlap / np.maximum(area[best] + area[rest] - overlap, 1e-9)
        order = rest[iou <= threshold]
    return boxes[kept]


def letterbox(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The image scaled so its longer side is 640, padded with zeros (the mean, once subtracted)
    to 640 x 640 at the bottom and right, as float32 BGR minus the mean; and the scale."""
    import cv2

    height, width = image.shape[:2]
    scale = INPUT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, size, interpolation=interpolation).astype(np.float32) - MEAN_BGR
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    canvas[:size[1], :size[0]] = resized
    return canvas, scale


# -- the network ---------------------------------------------------------------------------------------

def build_network() -> Any:
    """The S3FD graph in Keras 3 with the published file's layer names."""
    import keras
    from keras import layers

    class L2Norm(layers.Layer):
        """Per-position L2 normalisation with a learned scale per channel (weight ``l2norm``)."""

        def __init__(self, channels: int, scale: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.l2norm = self.add_weight(name="l2norm", shape=(channels,),
                                          initializer=keras.initializers.Constant(scale))

        def call(self, inputs: Any) -> Any:
            norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(inputs), axis=-1, keepdims=True)) + 1e-10
            return inputs / norm * self.l2norm

    def conv(x: Any, filters: int, name: str, kernel: int = 3, strides: int = 1, relu: bool = True) -> Any:
        if kernel == 3:
            x = layers.ZeroPadding2D(1)(x)
        return layers.Conv2D(filters, kernel, strides=strides, activation="relu" if relu else None, name=name)(x)

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3))
    x, taps = inputs, {}
    for block, (filters, repeats) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(1, repeats + 1):
            x = conv(x, filters, f"conv{block}_{i}")
        taps[f"conv{block}_{repeats}"] = x
        x = layers.MaxPooling2D(2, 2)(x)
    x = layers.Conv2D(1024, 3, activation="relu", name="fc6")(layers.ZeroPadding2D(3)(x))
    taps["fc7"] = x = layers.Conv2D(1024, 1, activation="relu", name="fc7")(x)
    for block, filters in ((6, 256), (7, 128)):
        x = conv(x, filters, f"conv{block}_1", kernel=1)
        taps[f"conv{block}_2"] = x = conv(x, filters * 2, f"conv{block}_2", strides=2)
    for name, channels, scale in (("conv3_3", 256, 10.0), ("conv4_3", 512, 8.0), ("conv5_3", 512, 5.0)):
        taps[f"{name}_norm"] = L2Norm(channels, scale, name=f"{name}_norm")(taps[name])
    outputs = []
    for head in HEADS:
        confidence = conv(taps[head], 4 if head == "conv3_3_norm" else 2, f"{head}_mbox_conf", relu=False)
        if head == "conv3_3_norm":  # max-out background: the best of three background scores
            background = keras.ops.max(confidence[..., :3], axis=-1, keepdims=True)
            confidence = keras.ops.concatenate([background, confidence[..., 3:]], axis=-1)
        outputs += [confidence, conv(taps[head], 4, f"{head}_mbox_loc", relu=False)]
    return keras.Model(inputs, outputs, name="s3fd")


def load_weights(model: Any, path: Path) -> None:
    """Copy the file's weights into ``model`` by layer name, every shape checked."""
    stored, _ = read_weights(str(path))
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in stored:
            raise ModelError(f"{path.name} has no layer {layer.name!r}: not the S3FD weights file")
        values = [stored[layer.name].get(v.name) for v in layer.weights]
        expected = [tuple(w.shape) for w in layer.weights]
        if [None if v is None else v.shape for v in values] != expected:
            raise ModelError(f"{path.name}: layer {layer.name!r} holds {list(stored[layer.name])}, "
                             f"S3FD needs {expected}")
        layer.set_weights(values)


class S3FDDetector:
    def __init__(self, config: S3FDConfig, weights: Path) -> None:
        tf = tensorflow()

        self.config = config
        with tf.device(tf_device(config.device)):
            self._net = build_network()
            load_weights(self._net, weights)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        found = []
        for start in range(0, len(images), max(1, self.config.batch_size)):
            chunk = images[start:start + self.config.batch_size]
            batch, scales = zip(*(letterbox(image) for image in chunk))
            outputs = [np.asarray(o) for o in self._net.predict_on_batch(np.stack(batch))]
            for index, (image, scale) in enumerate(zip(chunk, scales)):
                found.append(self._detections([o[index] for o in outputs], image, scale))
        return found

    def _detections(self, outputs: list[np.ndarray], image: np.ndarray, scale: float) -> list[Detection]:
        boxes = nms(decode_heads(outputs, self.config.score_threshold), self.config.nms_threshold)
        height, width = image.shape[:2]
        detections = []
        for x1, y1, x2, y2, score in boxes:
            det = clipped_detection(x1 / scale, y1 / scale, x2 / scale, y2 / scale, score, None, width, height)
            if det is not None:
                detections.append(det)
        return detections


def _build(config: S3FDConfig, store) -> S3FDDetector:
    return S3FDDetector(config, store.path(MODEL_ID, MODEL_FILE))


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [PluginSpec(
        name="s3fd", kind="detector", factory=_build, config_class=S3FDConfig, model_ids=(MODEL_ID,),
        # faceswap publishes 1088 MB plus 960 MB per image in a batch at 640 px: 4928 MB at 4
        gpu_memory_mb=4928, batch_size=4, gpu_memory_per_item_mb=960,
        description="S3FD 640 px (Keras 3 on TensorFlow), boxes only, no points",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, version="v11.2",
        files=(ModelFile(MODEL_FILE, sha256=None, size=None, url=MODEL_URL, archive=True),),
        description="faceswap's S3FD Keras weights (checksum recorded on first download)",
    )]
