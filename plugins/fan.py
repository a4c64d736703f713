"""fan: the Face Alignment Network 2D-FAN-4 (Bulat and Tzimiropoulos, "How far are we from solving
the 2D & 3D face alignment problem?", ICCV 2017), run by Keras 3 on TensorFlow, as faceswap's
``fan`` aligner ran it: 68 iBUG-300W points from 64x64 heatmaps.

Weights: faceswap publishes its Keras port as ``face-alignment-network_2d4_keras_v3`` (faceswap
model id 13, release v13.3): a zip holding ``face-alignment-network_2d4_keras_v3.h5``. No
checksum is published: the model store records the file's sha256 on first download and checks it
from then on. faceswap 3 (Keras 3.13) loaded it with ``keras.saving.load_model(path,
compile=False)`` and no custom objects, so it is a whole model that Keras 3 loads, most likely
(the file itself could not be inspected) Keras' legacy ``.h5`` layout as Keras 3 writes it: root
attributes ``model_config`` (JSON), ``keras_version``, ``backend``; a ``model_weights`` group
with ``layer_names`` and one group per layer whose ``weight_names`` (``conv1/kernel``; Keras 2
spelled them ``conv1/kernel:0``, also read here) name its datasets. Its input is
(n, 256, 256, 3) RGB in [0, 1]; its outputs are the four stacks' heatmaps, each (n, 64, 64, 68),
channels last; the last stack's are used. Earlier releases: ``_keras_v1`` (channels first, a custom
``TorchBatchNorm2D`` layer) and ``_keras_v2`` (Keras 2, standard layers).

Network (the published PyTorch 2D-FAN-4, 1adrianb/face-alignment; about 24 M parameters):
``conv1`` (7x7, stride 2, padding 3, bias) + ``bn1`` + ReLU, ``conv2`` (a conv block 64->128),
2x2 average pool, ``conv3`` (128->128), ``conv4`` (128->256); then four stacks, each an hourglass
``m{i}`` of depth 4, a conv block ``top_m_{i}``, ``conv_last{i}`` (1x1) + ``bn_end{i}`` + ReLU and
``l{i}`` (1x1 -> 68 heatmaps); between stacks the features feed forward through ``bl{i}`` and the
heatmaps through ``al{i}`` (both 1x1), added to the stack's input. A conv block is BN-ReLU-conv 3x3
three times (out/2, out/4, out/4 channels, no bias), the three outputs concatenated, plus the input
(through BN-ReLU-1x1 ``downsample`` when the widths differ). An hourglass level adds a full-size
branch ``b1_{level}`` to the upsampled (nearest, 2x) result of pool 2x2 -> ``b2_{level}`` -> the
next level (``b2_plus_1`` at the bottom) -> ``b3_{level}``. BN epsilon 1e-5 (PyTorch's; a file's
own ``model_config`` value is used when it gives one).

Layer names: the Keras layers here carry the PyTorch module paths (``conv2.bn1``,
``m0.b1_4.conv1``, ``top_m_0.downsample.2``). The names inside faceswap's file could not be
checked (no machine here can reach it), so a file whose layers are named otherwise is loaded as
the whole model it is (``keras.saving.load_model``, as faceswap does) and checked for the input
and output shapes above; only a file that is neither fails, naming what it holds.

Crop (FAN's, kept by faceswap): from a detector box of width w and height h, centre
``((x1 + x2) / 2, (y1 + y2) / 2 - 0.12 h)`` and a square side ``200 (w + h) / 195`` (FAN's "scale"
(w + h) / 195 in units of 200 px). The network sees that square at 256 px, taken as FAN takes it:
source pixels ``[floor(c - side/2 + side/256), floor(c + side/2))`` on each axis (FAN's one-based
top-left corner), zeros outside the image, resized with cubic interpolation when enlarging and
area averaging when shrinking. (faceswap's later PyTorch port drops the 0.12 shift and tightens
the square to 0.8 (w + h), i.e. ``reference_scale`` 250, finding FAN's landmarks unsatisfying
with its detectors' boxes; both are config values here.)

Decoding (FAN's): each heatmap's arg-max cell (col, row), moved a quarter cell toward its larger
horizontal and vertical neighbour when the peak is not on the heatmap's border, plus half a cell:
``p = (col + 0.5 +- 0.25, row + 0.5 +- 0.25)``; in source pixels ``c - side/2 + p * side/64``.

GPU memory: faceswap's figures for this model on TensorFlow (tf.keras, faceswap 2.x): 2240 MB for
the model plus 64 MB a face in a batch; at the default 12 faces a pass (faceswap's default),
3008 MB, declared here. (faceswap's Keras 3 release states 896 MB plus 768 MB a face on PyTorch.)
Not measured here: no GPU was available.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from facekit.plugin import Detection, ModelError, ModelFile, ModelSpec, PluginSpec, hookimpl
from facekit_plugins._keras_h5 import read_weights
from facekit_plugins._tensorflow import tensorflow, tf_device

MODEL_ID = "face-alignment-network-2d4-keras-v3"
URL = ("https://github.com/deepfakes-models/faceswap-models/releases/download/v13.3/"
       "face-alignment-network_2d4_keras_v3.zip")
WEIGHTS = "face-alignment-network_2d4_keras_v3.h5"

INPUT_SIZE = 256
HEATMAP_SIZE = 64
NUM_POINTS = 68
NUM_STACKS = 4
HOURGLASS_DEPTH = 4
NUM_FEATURES = 256
BN_EPSILON = 1e-5  # PyTorch's BatchNorm2d default, which FAN was trained with
FAN_SQUARE = 200.0  # FAN measures scale in units of 200 px: side = 200 * (w + h) / reference_scale

#: Layers whose presence shows a file names its layers as ``build_network`` does (checked before
#: building the network, which takes seconds).
MARKER_LAYERS = ("conv1", "bn1", "conv2.conv1", f"m{NUM_STACKS - 1}.b2_plus_1.conv3", f"l{NUM_STACKS - 1}")

DEFAULT_BATCH = 12  # faceswap's default
GPU_MEMORY_MB = 2240 + 64 * DEFAULT_BATCH  # faceswap's TensorFlow figures, see the docstring


@dataclass
class FanConfig:
    # Faces per forward pass; a frame's faces go through together, in chunks of this many. On a
    # GPU each face adds about 64 MB (faceswap's figure).
    batch_size: int = DEFAULT_BATCH
    # FAN's square around a face is 200 * (w + h) / reference_scale pixels. 195 is FAN's (tuned
    # to its training boxes); larger values crop tighter.
    reference_scale: float = 195.0
    # FAN moves the box centre up by this fraction of the box height, toward the forehead.
    centre_shift: float = 0.12
    device: str = "auto"  # "auto" picks GPU:0 when TensorFlow sees one, else "CPU:0"


# -- crop and decoding ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FanRoi:
    """FAN's square around a face: centre and side in source pixels (pixel centres at integers)."""

    cx: float
    cy: float
    side: float

    def region(self, size: int = INPUT_SIZE) -> tuple[int, int, int, int]:
        """The source pixels FAN crops, ``(x0, y0, x1, y1)`` with x1, y1 exclusive: FAN maps its
        one-based crop pixel 1 and ``size`` through the square, so the top-left corner lies one
        crop pixel inside the square."""
        half, step = self.side / 2, self.side / size
        x0, y0 = math.floor(self.cx - half + step), math.floor(self.cy - half + step)
        x1, y1 = math.floor(self.cx + half), math.floor(self.cy + half)
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)

    def to_image(self, points: np.ndarray, resolution: int = HEATMAP_SIZE) -> np.ndarray:
        """Points in the square's coordinates at ``resolution`` (0 at its left or top edge,
        ``resolution`` at the other) -> source pixels."""
        scale = self.side / resolution
        origin = np.array([self.cx - self.side / 2, self.cy - self.side / 2])
        return np.asarray(points, dtype=np.float64) * scale + origin


def roi_from_box(box: Sequence[float], reference_scale: float = 195.0,
                 centre_shift: float = 0.12) -> FanRoi:
    """FAN's centre and square from a detector box ``(x1, y1, x2, y2)``."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = x2 - x1, y2 - y1
    return FanRoi((x1 + x2) / 2, (y1 + y2) / 2 - centre_shift * height,
                  max(FAN_SQUARE * (width + height) / reference_scale, 1.0))


def crop(image: np.ndarray, roi: FanRoi, size: int = INPUT_SIZE) -> np.ndarray:
    """The network's view of the face: FAN's region of ``image`` (zeros beyond its edges) at
    ``size`` x ``size``, 3 channels in the image's own order."""
    import cv2

    if image.ndim == 2:
        image = image[:, :, None].repeat(3, axis=2)
    x0, y0, x1, y1 = roi.region(size)
    height, width = image.shape[:2]
    patch = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx1 > sx0 and sy1 > sy0:
        patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1, :3]
    shrink = patch.shape[0] >= size
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def heatmap_peaks(heatmaps: np.ndarray) -> np.ndarray:
    """FAN's decoding: heatmaps ``(..., H, W)`` -> peaks ``(..., 2)`` as (x, y) in heatmap
    coordinates (cell ``i`` spans ``[i, i + 1]``): the arg-max cell's centre, moved a quarter
    cell toward the larger neighbour on each axis unless the peak is on the border."""
    maps = np.asarray(heatmaps, dtype=np.float32)
    *lead, height, width = maps.shape
    planes = maps.reshape(-1, height, width)
    flat = planes.reshape(len(planes), -1).argmax(axis=1)
    rows, cols = np.divmod(flat, width)
    x, y = cols + 0.5, rows + 0.5
    inner = (cols > 0) & (cols < width - 1) & (rows > 0) & (rows < height - 1)
    k, r, c = np.nonzero(inner)[0], rows[inner], cols[inner]
    x[inner] += 0.25 * np.sign(planes[k, r, c + 1] - planes[k, r, c - 1])
    y[inner] += 0.25 * np.sign(planes[k, r + 1, c] - planes[k, r - 1, c])
    return np.stack([x, y], axis=-1).reshape(*lead, 2)


def preprocess(crops: np.ndarray) -> np.ndarray:
    """BGR uint8 crops (n, 256, 256, 3) -> the network's input: RGB float32 in [0, 1]."""
    return np.ascontiguousarray(np.asarray(crops)[..., 2::-1], dtype=np.float32) * np.float32(1 / 255)


# -- the network ---------------------------------------------------------------------------------

def build_network(epsilons: dict[str, float] | None = None) -> Any:
    """2D-FAN-4 as a Keras 3 functional model: RGB (n, 256, 256, 3) in [0, 1] in, the four
    stacks' heatmaps (n, 64, 64, 68) out. ``epsilons`` overrides BN epsilon by layer name."""
    import keras
    from keras import layers

    epsilons = epsilons or {}

    def bn(x: Any, name: str) -> Any:
        return layers.BatchNormalization(axis=-1, epsilon=epsilons.get(name, BN_EPSILON), name=name)(x)

    def relu(x: Any) -> Any:
        return layers.Activation("relu")(x)

    def conv(x: Any, name: str, filters: int, kernel: int, bias: bool) -> Any:
        return layers.Conv2D(filters, kernel, padding="same" if kernel > 1 else "valid",
                             use_bias=bias, name=name)(x)

    def conv_block(x: Any, name: str, filters: int) -> Any:
        a = conv(relu(bn(x, f"{name}.bn1")), f"{name}.conv1", filters // 2, 3, False)
        b = conv(relu(bn(a, f"{name}.bn2")), f"{name}.conv2", filters // 4, 3, False)
        c = conv(relu(bn(b, f"{name}.bn3")), f"{name}.conv3", filters // 4, 3, False)
        residual = x
        if x.shape[-1] != filters:
            residual = conv(relu(bn(x, f"{name}.downsample.0")), f"{name}.downsample.2", filters, 1, False)
        return layers.Add()([layers.Concatenate(axis=-1)([a, b, c]), residual])

    def hourglass(x: Any, name: str, level: int) -> Any:
        upper = conv_block(x, f"{name}.b1_{level}", NUM_FEATURES)
        low = conv_block(layers.AveragePooling2D(2)(x), f"{name}.b2_{level}", NUM_FEATURES)
        if level > 1:
            low = hourglass(low, name, level - 1)
        else:
            low = conv_block(low, f"{name}.b2_plus_{level}", NUM_FEATURES)
        low = conv_block(low, f"{name}.b3_{level}", NUM_FEATURES)
        return layers.Add()([upper, layers.UpSampling2D(2, interpolation="nearest")(low)])

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="input")
    x = layers.ZeroPadding2D(3)(inputs)  # PyTorch's symmetric padding 3; "same" would pad 2 and 3
    x = relu(bn(layers.Conv2D(64, 7, strides=2, padding="valid", name="conv1")(x), "bn1"))
    x = layers.AveragePooling2D(2)(conv_block(x, "conv2", 128))
    features = conv_block(conv_block(x, "conv3", 128), "conv4", NUM_FEATURES)
    outputs = []
    for i in range(NUM_STACKS):
        x = conv_block(hourglass(features, f"m{i}", HOURGLASS_DEPTH), f"top_m_{i}", NUM_FEATURES)
        x = relu(bn(conv(x, f"conv_last{i}", NUM_FEATURES, 1, True), f"bn_end{i}"))
        heatmaps = conv(x, f"l{i}", NUM_POINTS, 1, True)
        outputs.append(heatmaps)
        if i < NUM_STACKS - 1:
            features = layers.Add()([features, conv(x, f"bl{i}", NUM_FEATURES, 1, True),
                                     conv(heatmaps, f"al{i}", NUM_FEATURES, 1, True)])
    return keras.Model(inputs, outputs, name="fan_2d4")


# -- loading -------------------------------------------------------------------------------------

def _layer_configs(raw: Any) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    try:
        config = json.loads(raw.decode("utf8") if isinstance(raw, bytes) else raw)
        found = {}
        for layer in config.get("config", {}).get("layers", []):
            layer_config = layer.get("config", {})
            name = layer.get("name") or layer_config.get("name")
            if name:
                found[name] = {"class_name": layer.get("class_name"), **layer_config}
        return found
    except (ValueError, AttributeError, TypeError):
        return {}


def load_network(path: str) -> Any:
    """The 2D-FAN-4 network with the weights in ``path``: built here and filled by layer name
    when the file names its layers as this module does; otherwise the file's own model, when it
    is a whole Keras model with FAN's input and output shapes. Anything else is a ModelError."""
    stored, raw_config = read_weights(path)
    configs = _layer_configs(raw_config)
    missing: list[str] = [name for name in MARKER_LAYERS if name not in stored]
    total = "the"
    if len(missing) < len(MARKER_LAYERS):  # named as here: build the network and check every layer
        epsilons = {name: float(c["epsilon"]) for name, c in configs.items()
                    if c.get("class_name") == "BatchNormalization" and "epsilon" in c}
        network = build_network(epsilons)
        weighted = [layer for layer in network.layers if layer.weights]
        missing = [layer.name for layer in weighted if layer.name not in stored]
        if not missing:
            for layer in weighted:
                _set_weights(layer, stored[layer.name], path)
            return network
        total = f"{len(missing)} of the {len(weighted)}"
    try:
        return _whole_model(path)
    except ModelError as exc:
        raise ModelError(f"{path} lacks {total} 2D-FAN-4 layers by name ({', '.join(missing[:3])}...; "
                         f"it holds {', '.join(list(stored)[:3]) or 'none'}...) and {exc}; "
                         f"this is not the published {WEIGHTS}") from None


def _set_weights(layer: Any, values: dict[str, np.ndarray], path: str) -> None:
    ordered = [values.get(v.name) for v in layer.weights]
    if any(v is None for v in ordered) and len(values) == len(layer.weights):
        ordered = list(values.values())  # variables named otherwise: Keras keeps one order
    for variable, value in zip(layer.weights, ordered):
        if value is None or tuple(value.shape) != tuple(variable.shape):
            raise ModelError(f"{path}: layer {layer.name} weight {variable.name} has shape "
                             f"{None if value is None else tuple(value.shape)}, 2D-FAN-4 needs "
                             f"{tuple(variable.shape)}; this is not the published {WEIGHTS}")
    layer.set_weights(ordered)


def _whole_model(path: str) -> Any:
    """The file's own model (as faceswap loads it), checked for FAN's input and output shapes."""
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; all mean "not loadable"
        raise ModelError(f"does not load as a whole Keras model ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    inputs, outputs = model.inputs, model.outputs
    want_in, want_out = (INPUT_SIZE, INPUT_SIZE, 3), (HEATMAP_SIZE, HEATMAP_SIZE, NUM_POINTS)
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != want_in or tuple(outputs[-1].shape[1:]) != want_out:
        raise ModelError(f"loads as a Keras model taking {[tuple(t.shape) for t in inputs]} and giving "
                         f"{[tuple(t.shape) for t in outputs]}, not {(None, *want_in)} -> {(None, *want_out)}")
    return model


# -- the aligner ---------------------------------------------------------------------------------

class FanAligner:
    """Crops every face of a frame FAN's way, runs them through the network in batches, decodes
    the last stack's heatmaps to source pixels."""

    def __init__(self, config: FanConfig, weights_path: str) -> None:
        tf = tensorflow()
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ModelError(f"fan runs on Keras' TensorFlow backend, not {keras.backend.backend()!r}; "
                             "unset KERAS_BACKEND")
        self.config = config
        self._tf = tf
        self.device = tf_device(config.device)
        with tf.device(self.device):
            network = load_network(weights_path)
            self.network = keras.Model(network.inputs, network.outputs[-1])
        spec = tf.TensorSpec((None, INPUT_SIZE, INPUT_SIZE, 3), tf.float32)
        self._forward = tf.function(self._call, input_signature=[spec], autograph=False)

    def _call(self, batch: Any) -> Any:
        return self.network(batch, training=False)

    def roi(self, detection: Detection) -> FanRoi:
        return roi_from_box(detection.box, self.config.reference_scale, self.config.centre_shift)

    def align(self, image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        """One (68, 2) float64 array per detection, in source pixels."""
        if not detections:
            return []
        rois = [self.roi(d) for d in detections]
        heatmaps = self.heatmaps(np.stack([crop(image, roi) for roi in rois]))
        peaks = heatmap_peaks(heatmaps.transpose(0, 3, 1, 2))  # (n, 68, 2)
        return [roi.to_image(points) for roi, points in zip(rois, peaks)]

    def heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """BGR uint8 crops (n, 256, 256, 3) -> the last stack's heatmaps (n, 64, 64, 68)."""
        step = max(1, int(self.config.batch_size))
        with self._tf.device(self.device):
            chunks = [np.asarray(self._forward(preprocess(crops[i:i + step])), dtype=np.float32)
                      for i in range(0, len(crops), step)]
        return np.concatenate(chunks)


def _build(config: FanConfig, store: Any) -> FanAligner:
    return FanAligner(config, str(store.path(MODEL_ID, WEIGHTS)))


@hookimpl
def facekit_aligners() -> list[PluginSpec]:
    return [PluginSpec(
        name="fan", kind="aligner", factory=_build, config_class=FanConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=GPU_MEMORY_MB, batch_size=DEFAULT_BATCH, gpu_memory_per_item_mb=64,
        description="FAN 2D-FAN-4 (4-stack hourglass, 68 points from heatmaps; Keras 3 on TensorFlow)",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, version="v13.3",
        files=(ModelFile(WEIGHTS, sha256=None, size=None, url=URL, archive=True),),
        description="Face Alignment Network 2D-FAN-4 (Bulat & Tzimiropoulos, 2017), Keras model "
                    "file as published by faceswap (face-alignment-network_2d4_keras_v3); 23.9 M "
                    "parameters, about 98 MB as float32",
    )]
