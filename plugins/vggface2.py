"""vggface2: the VGGFace2 ResNet-50 face descriptor (Cao, Shen, Xie, Parkhi, Zisserman, "VGGFace2:
A dataset for recognising faces across pose and age", FG 2018), run by Keras 3 on TensorFlow, as
faceswap's identity filter and "sort by face" used it.

Weights: faceswap publishes the Keras port (github.com/WeidiXie/Keras-VGGFace2-ResNet50) as
``vggface2_resnet50_v2`` (faceswap model id 10, release v10.2): a zip holding
``vggface2_resnet50_v2.h5``. No checksum is published: the model store records the file's sha256
on first download and checks it from then on. It is a whole Keras 2 model file (faceswap loaded it
with ``keras.models.load_model`` and a custom ``L2_normalize`` layer; later with ``load_weights``
into a rebuilt graph), about 99 MB: 24.6 M parameters (ResNet-50 without its 1000-way head, plus
``dim_proj``), no classifier.

The h5 layout that matters here (Keras 2 ``save_model``): ``/model_weights`` with the attribute
``layer_names``; one group per layer, whose attribute ``weight_names`` lists its datasets by
TensorFlow variable name (``conv1/7x7_s2/kernel:0``). The Keras model faceswap exported names its
layers with ``/`` (``conv1/7x7_s2``, ``conv2_1_1x1_reduce/bn``), so in HDF5 they are nested
groups and a BN layer's group sits inside its convolution's group; faceswap's own Keras 3 port
spells them with ``_``. Keras 3 forbids ``/`` in layer names and its own ``.h5`` loader pairs
layers by position, so this module builds the network with ``_`` for ``/`` and loads each layer
by name with h5py (either spelling in the file), checking every shape. A weights-only file (no
``model_weights`` group) loads the same way.

Network (ResNet-50, "v1" bottlenecks with the stride on the 1x1 reduce): ``conv1/7x7_s2`` (64,
7x7, stride 2, same) + BN + ReLU, max-pool 3x3 stride 2 (valid), then stages 2-5 of 3, 4, 6, 3
bottleneck blocks of widths 64, 128, 256, 512 (outputs 4x): ``conv{s}_{b}_1x1_reduce``,
``_3x3``, ``_1x1_increase``, each with ``/bn``, and ``conv{s}_1_1x1_proj`` (+``/bn``) on the
first block's shortcut; convolutions have no bias; BN epsilon 1e-3 (the Keras default the model
was built with). Then ``avg_pool`` (7x7), flatten, ``dim_proj`` (Dense 512, ReLU): the 512-d
embedding, L2-normalised.

Embedding, per face:

- crop: facekit's similarity alignment of the 68 landmarks at 224 px. faceswap fed this net its
  "legacy" aligned face at 224 px (Umeyama fit of points 17-67 to its 51-point mean face, 42 px
  = 18.75% padding per side); fitting faceswap's mean face to facekit's gives the same framing
  as facekit's crop at padding 0.023 (scale equal) with the face 4.24 px higher (faceswap's
  legacy crop centres the nose, not the inner points' box), so the crop is shifted by that.
- input: BGR float, minus the VGGFace2 training set's mean (B, G, R) = (91.4953, 103.8827,
  131.0912) (github.com/ox-vgg/vgg_face2; faceswap subtracts exactly this from its BGR crops); no
  scaling.
- output: ``dim_proj`` (512-d, after its ReLU), L2-normalised, so cosine distance is ``1 - a.b``.

Threshold: faceswap's identity filter keeps a face whose cosine *similarity* to a reference is at
least 0.60 (its default since Nov 2022; 0.65 in the week after VGGFace2 replaced VGG-Face in the
filter), i.e. cosine distance at most 0.40: the default here. Not fitted on any data. faceswap
accepts a face matching any one reference; facekit's filter compares the mean distance to the
references, so with several varied references the same number is somewhat stricter.

GPU memory: faceswap's figures for this Keras model on TensorFlow (tf.keras, 2022): 2468 MB to
load, plus 32 MB a face in a batch; at the default 16 faces a pass, 2980 MB, declared here.
(faceswap's later Keras 3 port states 384 MB plus 192 MB a face, "334" and "~155 in testing".)
Not measured here: no GPU was available. On the CPU (2 cores) a face takes about 0.09 s alone and
0.06 s in a pass of 16.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from facekit.plugin import ModelError, ModelFile, ModelSpec, PluginSpec, geometry, hookimpl
from facekit_plugins._keras_h5 import read_weights
from facekit_plugins._tensorflow import tensorflow, tf_device

MODEL_ID = "vggface2-resnet50-v2"
URL = "https://github.com/deepfakes-models/faceswap-models/releases/download/v10.2/vggface2_resnet50_v2.zip"
WEIGHTS = "vggface2_resnet50_v2.h5"

INPUT_SIZE = 224
MEAN_BGR = np.array([91.4953, 103.8827, 131.0912], dtype=np.float32)
EMBEDDING_LAYER = "dim_proj"
EMBEDDING_SIZE = 512
BN_EPSILON = 1e-3
#: faceswap's legacy 224 px framing in facekit's terms (see the module docstring).
CROP_PADDING = 0.023
CROP_SHIFT_Y = -4.24  # pixels at 224: faceswap's legacy crop shows the face this much higher

#: ResNet-50: (stage, bottleneck width, blocks); a block's output is 4x its width.
STAGES = ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3))

GPU_MEMORY_MB = 2468 + 32 * 16  # faceswap's TensorFlow figures at 16 faces a pass
DEFAULT_THRESHOLD = 0.40  # cosine distance: faceswap's similarity threshold 0.60


@dataclass
class VggFace2Config:
    # Faces per forward pass (faceswap's default). On a GPU each face adds about 32 MB
    # (faceswap's figure); a frame with more faces is embedded in chunks of this many.
    batch_size: int = 16
    device: str = "auto"  # "auto" picks GPU:0 when TensorFlow sees one, else "CPU:0"


def layer_names() -> list[tuple[str, str]]:
    """(convolution, its batch norm) names of the network in Keras 3 spelling (``_`` for ``/``),
    in the order the original model creates them."""
    names = [("conv1_7x7_s2", "conv1_7x7_s2_bn")]
    for stage, _, blocks in STAGES:
        for block in range(1, blocks + 1):
            parts = ["1x1_reduce", "3x3", "1x1_increase"] + (["1x1_proj"] if block == 1 else [])
            names += [(f"conv{stage}_{block}_{part}", f"conv{stage}_{block}_{part}_bn") for part in parts]
    return names


def build_network() -> Any:
    """The VGGFace2 ResNet-50 as a Keras 3 functional model: BGR mean-subtracted (n, 224, 224, 3)
    in, the 512-d ``dim_proj`` activations (before L2 normalisation) out."""
    import keras
    from keras import layers

    def conv_bn(x: Any, name: str, filters: int, kernel: int, strides: int = 1, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same" if kernel > 1 else "valid",
                          use_bias=False, data_format="channels_last", name=name)(x)
        x = layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
        return layers.Activation("relu")(x) if relu else x

    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="base_input")
    x = conv_bn(inputs, "conv1_7x7_s2", 64, 7, strides=2)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", data_format="channels_last")(x)
    for stage, width, blocks in STAGES:
        for block in range(1, blocks + 1):
            prefix = f"conv{stage}_{block}"
            strides = 2 if block == 1 and stage > 2 else 1
            branch = conv_bn(x, f"{prefix}_1x1_reduce", width, 1, strides=strides)
            branch = conv_bn(branch, f"{prefix}_3x3", width, 3)
            branch = conv_bn(branch, f"{prefix}_1x1_increase", 4 * width, 1, relu=False)
            shortcut = conv_bn(x, f"{prefix}_1x1_proj", 4 * width, 1, strides=strides, relu=False) if block == 1 else x
            x = layers.Activation("relu")(layers.Add()([branch, shortcut]))
    x = layers.AveragePooling2D(7, data_format="channels_last", name="avg_pool")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(EMBEDDING_SIZE, activation="relu", name=EMBEDDING_LAYER)(x)
    return keras.Model(inputs, x, name="vggface2_resnet50")


def load_weights(model: Any, path: str) -> None:
    """Set every weighted layer of ``model`` from the Keras 2 file by layer name, checking each
    shape; a layer missing from the file, or of another shape, is an error (the file is not this
    model). Layers only the file has (a classifier head) are ignored."""
    stored = {layer.replace("/", "_"): values for layer, values in read_weights(path)[0].items()}
    missing = []
    for layer in model.layers:
        if not layer.weights:
            continue
        weights = stored.get(layer.name)
        if weights is None:
            missing.append(layer.name)
            continue
        by_name = [weights.get(v.name) for v in layer.weights]
        if any(w is None for w in by_name) and len(weights) == len(layer.weights):
            by_name = list(weights.values())  # variables renamed: Keras 2 and 3 share the order
        for variable, value in zip(layer.weights, by_name):
            if value is None or tuple(value.shape) != tuple(variable.shape):
                raise ModelError(f"{path}: layer {layer.name} weight {variable.name} has shape "
                                 f"{None if value is None else value.shape}, the network needs "
                                 f"{tuple(variable.shape)}; this is not the VGGFace2 ResNet-50 file")
        layer.set_weights(by_name)
    if missing:
        raise ModelError(f"{path} lacks {len(missing)} layers of the VGGFace2 ResNet-50 "
                         f"({', '.join(missing[:4])}...); this is not the published {WEIGHTS}")


def crop_matrix(landmarks: np.ndarray) -> np.ndarray:
    """Source pixels -> the 224 px crop the net sees: faceswap's legacy framing."""
    matrix = geometry.alignment_matrix(landmarks, INPUT_SIZE, padding=CROP_PADDING)
    matrix[1, 2] += CROP_SHIFT_Y
    return matrix


def preprocess(crops: np.ndarray) -> np.ndarray:
    """BGR uint8 crops (n, 224, 224, 3) -> the net's input: BGR float32 minus the mean."""
    return np.asarray(crops, dtype=np.float32)[..., :3] - MEAN_BGR


class VggFace2Model:
    def __init__(self, config: VggFace2Config, weights_path: str) -> None:
        tf = tensorflow()
        import keras

        if keras.backend.backend() != "tensorflow":
            raise ModelError(f"vggface2 runs on Keras' TensorFlow backend, not {keras.backend.backend()!r}; "
                             "unset KERAS_BACKEND")
        self.config = config
        self._tf = tf
        self.device = tf_device(config.device)
        with tf.device(self.device):
            self.network = build_network()
            load_weights(self.network, weights_path)
        spec = tf.TensorSpec((None, INPUT_SIZE, INPUT_SIZE, 3), tf.float32)
        self._forward = tf.function(self._call, input_signature=[spec], autograph=False)

    def _call(self, batch: Any) -> Any:
        return self.network(batch, training=False)

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 224 px aligned face the net sees (BGR uint8)."""
        points = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
        return geometry.warp_face(image, crop_matrix(points), INPUT_SIZE)

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 512) float32 unit vectors, one per face's 68 landmarks."""
        crops = [self.crop(image, points) for points in landmarks]
        step = max(1, int(self.config.batch_size))
        chunks = [self._run(np.stack(crops[i:i + step])) for i in range(0, len(crops), step)]
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, EMBEDDING_SIZE), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def _run(self, crops: np.ndarray) -> np.ndarray:
        with self._tf.device(self.device):
            return np.asarray(self._forward(preprocess(crops)), dtype=np.float32)


def _build(config: VggFace2Config, store) -> VggFace2Model:
    return VggFace2Model(config, str(store.path(MODEL_ID, WEIGHTS)))


@hookimpl
def facekit_identities() -> list[PluginSpec]:
    return [PluginSpec(
        name="vggface2", kind="identity", factory=_build, config_class=VggFace2Config,
        model_ids=(MODEL_ID,), gpu_memory_mb=GPU_MEMORY_MB, batch_size=VggFace2Config.batch_size,
        gpu_memory_per_item_mb=32, metric="cosine", default_threshold=DEFAULT_THRESHOLD,
        description="VGGFace2 ResNet-50 dim_proj (512-d, Keras 3 on TensorFlow), cosine distance",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, version="v10.2",
        files=(ModelFile(WEIGHTS, sha256=None, size=None, url=URL, archive=True),),
        description="VGGFace2 ResNet-50 (Oxford VGG, 2018), Keras 2 model file as published by "
                    "faceswap (vggface2_resnet50_v2); about 99 MB",
    )]
