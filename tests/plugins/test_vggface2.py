"""vggface2 (VGGFace2 ResNet-50 through Keras 3): the whole path with no internet. The test writes
an .h5 in the layout faceswap published (a whole Keras 2 model file: ``model_config``, and
``model_weights`` with ``layer_names`` and per-layer ``weight_names``, the original names with
``/`` so layers nest as HDF5 groups; its own random weights), zips it under the published member
name, serves the zip from a loopback HTTP server through the model store, builds the plugin
through the registry and embeds the faces facekit's Extractor finds on a real photo.

The file is described here independently of the plugin (names, order and shapes of the Keras 2
model), so the plugin's network and loader are checked against it, not against themselves.
Measured on 2 cores: writing the 99 MB file 0.4 s, zipping it 2.6 s, building the Keras network
about 3 s and loading its weights 0.3 s, about 0.09 s a face; the module takes about 12 s.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Iterator, NamedTuple
from urllib.parse import urlparse

import cv2
import h5py
import numpy as np
import pytest

from conftest import SCENES
from facekit.imaging import geometry
from facekit.errors import ModelError
from facekit.models.checksum import read_sidecar
from facekit.models.store import ModelStore
from facekit.plugin.registry import default_registry
from facekit_plugins import vggface2
from facekit_plugins._keras_h5 import attr_strings, read_weights
from loopback_server import serving

SEED = 7


# -- the published file, described independently of the plugin -----------------------------------

class Layer(NamedTuple):
    name: str  # the original Keras 2 name, with "/"
    class_name: str
    inbound: tuple[str, ...]
    weights: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (variable, shape)


def keras2_layers() -> list[Layer]:
    """The layers of faceswap's vggface2_resnet50_v2.h5 in Keras 2's ``model.layers`` order (by
    depth: in a first block the shortcut's convolution follows the main path's last one)."""
    layers = [Layer("base_input", "InputLayer", ())]
    counters: dict[str, int] = {}

    def auto(kind: str) -> str:  # Keras 2 names unnamed layers activation_1, add_1, ...
        counters[kind] = counters.get(kind, 0) + 1
        return f"{kind}_{counters[kind]}"

    def conv(name: str, source: str, k: int, cin: int, cout: int) -> str:
        layers.append(Layer(name, "Conv2D", (source,), (("kernel", (k, k, cin, cout)),)))
        return name

    def bn(conv_name: str, channels: int) -> str:
        name = f"{conv_name}/bn"
        layers.append(Layer(name, "BatchNormalization", (conv_name,),
                            tuple((v, (channels,)) for v in ("gamma", "beta", "moving_mean", "moving_variance"))))
        return name

    def relu(source: str) -> str:
        name = auto("activation")
        layers.append(Layer(name, "Activation", (source,)))
        return name

    x = relu(bn(conv("conv1/7x7_s2", "base_input", 7, 3, 64), 64))
    layers.append(Layer(auto("max_pooling2d"), "MaxPooling2D", (x,)))
    x, channels = layers[-1].name, 64
    for stage, width, blocks in ((2, 64, 3), (3, 128, 4), (4, 256, 6), (5, 512, 3)):
        for block in range(1, blocks + 1):
            p = f"conv{stage}_{block}"
            y = relu(bn(conv(f"{p}_1x1_reduce", x, 1, channels, width), width))
            y = relu(bn(conv(f"{p}_3x3", y, 3, width, width), width))
            conv(f"{p}_1x1_increase", y, 1, width, 4 * width)
            shortcut = conv(f"{p}_1x1_proj", x, 1, channels, 4 * width) if block == 1 else x
            y = bn(f"{p}_1x1_increase", 4 * width)
            if block == 1:
                shortcut = bn(shortcut, 4 * width)
            layers.append(Layer(auto("add"), "Add", (y, shortcut)))
            x, channels = relu(layers[-1].name), 4 * width
    layers.append(Layer("avg_pool", "AveragePooling2D", (x,)))
    layers.append(Layer(auto("flatten"), "Flatten", ("avg_pool",)))
    layers.append(Layer("dim_proj", "Dense", (layers[-1].name,), (("kernel", (2048, 512)), ("bias", (512,)))))
    layers.append(Layer(auto("l2_normalize"), "L2_normalize", ("dim_proj",)))
    return layers


def random_weights(layer: Layer, rng: np.random.Generator) -> list[np.ndarray]:
    """Weights of a plausible scale, so 16 residual blocks neither vanish nor overflow."""
    out = []
    for variable, shape in layer.weights:
        if variable == "kernel":
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2 / np.prod(shape[:-1])))
        elif variable in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:  # beta, moving_mean, bias
            value = rng.uniform(-0.1, 0.1 if variable != "bias" else 0.3, shape).astype(np.float32)
        out.append(value)
    return out


def keras2_model_file(layers: list[Layer], seed: int) -> bytes:
    """A whole Keras 2.2 model file (``keras.models.save_model``, no optimizer) in memory."""
    rng = np.random.default_rng(seed)
    config = {"class_name": "Model", "config": {
        "name": "model_1",
        "layers": [{"name": layer.name, "class_name": layer.class_name, "config": {"name": layer.name},
                    "inbound_nodes": [[[source, 0, 0, {}] for source in layer.inbound]] if layer.inbound else []}
                   for layer in layers],
        "input_layers": [["base_input", 0, 0]], "output_layers": [[layers[-1].name, 0, 0]]}}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.attrs["keras_version"] = b"2.2.4"
        file.attrs["backend"] = b"tensorflow"
        file.attrs["model_config"] = json.dumps(config).encode("utf8")
        weights = file.create_group("model_weights")
        # h5py 2 (Keras 2's time) stored Keras' lists of names as fixed-length byte strings
        weights.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in layers])
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.2.4"
        for layer in layers:
            group = weights.require_group(layer.name)  # "conv1/7x7_s2/bn" nests inside its conv's group
            names = [f"{layer.name}/{variable}:0" for variable, _ in layer.weights]
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names]) if names else np.zeros(0)
            for name, value in zip(names, random_weights(layer, rng)):
                group.create_dataset(name, data=value)
    return buffer.getvalue()


def zipped(name: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(name, body)
    return buffer.getvalue()


# -- fixtures ------------------------------------------------------------------------------------

class Installed(NamedTuple):
    model: vggface2.VggFace2Model
    cache: Path
    requests: list
    sha256: str
    url_path: str


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Publish, download, unzip and load the model once for the module."""
    body = keras2_model_file(keras2_layers(), SEED)
    path = urlparse(vggface2.URL).path
    registry = default_registry()
    plugin = registry.get("identity", "vggface2")
    cache = tmp_path_factory.mktemp("vggface2_cache")
    sha256 = hashlib.sha256(body).hexdigest()
    with pytest.MonkeyPatch.context() as patch, serving({path: zipped(vggface2.WEIGHTS, body)}) as served:
        del body
        patch.delenv("FACEKIT_OFFLINE", raising=False)
        spec = registry.models[vggface2.MODEL_ID]
        spec = dataclasses.replace(spec, files=tuple(dataclasses.replace(f, url=served.url(path)) for f in spec.files))
        store = ModelStore({spec.id: spec}, cache_dir=cache, quiet=True)
        model = plugin.factory(registry.build_config(plugin, {}), store)
        yield Installed(model, cache, served.requests, sha256, path)


@pytest.fixture(scope="module")
def two_people() -> np.ndarray:
    image = cv2.imread(str(SCENES / "two_people.jpg"))
    if image is None:
        pytest.skip(f"{SCENES / 'two_people.jpg'} not found")
    return image


@pytest.fixture(scope="module")
def landmarks(two_people: np.ndarray) -> list[np.ndarray]:
    from facekit import Extractor

    faces = Extractor().extract(two_people)
    assert len(faces) == 2
    return [face.landmarks for face in faces]


# -- tests ---------------------------------------------------------------------------------------

def test_the_plugin_declares_cosine_its_threshold_and_the_published_file() -> None:
    registry = default_registry()
    spec = registry.get("identity", "vggface2")
    assert (spec.metric, spec.default_threshold, spec.model_ids) == ("cosine", 0.4, (vggface2.MODEL_ID,))
    assert spec.batch_size == 16 and spec.gpu_memory_mb == 2468 + 32 * 16
    files = registry.models[vggface2.MODEL_ID].files
    assert [(f.name, f.sha256, f.size, f.archive, f.url) for f in files] == [(
        "vggface2_resnet50_v2.h5", None, None, True,
        "https://github.com/deepfakes-models/faceswap-models/releases/download/v10.2/vggface2_resnet50_v2.zip")]


@pytest.mark.slow
def test_one_download_checksum_recorded_then_no_more_requests(installed: Installed) -> None:
    assert installed.requests == [(installed.url_path, None)]
    folder = installed.cache / "models" / vggface2.MODEL_ID
    assert read_sidecar(folder / vggface2.WEIGHTS) == installed.sha256
    assert not list(folder.glob("*.zip"))
    registry = default_registry()
    again = ModelStore({vggface2.MODEL_ID: registry.models[vggface2.MODEL_ID]}, cache_dir=installed.cache,
                       quiet=True)
    assert again.path(vggface2.MODEL_ID) == folder / vggface2.WEIGHTS
    assert len(installed.requests) == 1  # the cache served it, checked against the recorded sha256


@pytest.mark.slow
def test_the_weights_loaded_are_the_ones_written(installed: Installed) -> None:
    layers = keras2_layers()
    network = installed.model.network
    assert network.count_params() == sum(int(np.prod(s)) for layer in layers for _, s in layer.weights) == 24_610_240
    weighted = [layer for layer in layers if layer.weights]
    assert len([layer for layer in network.layers if layer.weights]) == len(weighted) == 107
    rng = np.random.default_rng(SEED)
    expected = {layer.name: random_weights(layer, rng) for layer in weighted}  # the same draws, in order
    for name in ("conv1/7x7_s2", "conv1/7x7_s2/bn", "conv3_1_1x1_proj/bn", "conv5_3_1x1_increase", "dim_proj"):
        loaded = network.get_layer(name.replace("/", "_")).get_weights()
        assert len(loaded) == len(expected[name])
        for got, want in zip(loaded, expected[name]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_embeds_the_two_faces_on_a_real_photo(installed: Installed, two_people: np.ndarray,
                                             landmarks: list[np.ndarray]) -> None:
    vectors = installed.model.embed(two_people, landmarks)
    assert vectors.shape == (2, vggface2.EMBEDDING_SIZE) == (2, 512) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all() and (vectors >= 0).all()  # dim_proj ends in a ReLU
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


@pytest.mark.slow
def test_batches_give_the_vectors_single_faces_give(installed: Installed, two_people: np.ndarray,
                                                   landmarks: list[np.ndarray]) -> None:
    together = installed.model.embed(two_people, landmarks + [landmarks[0]])
    alone = np.vstack([installed.model.embed(two_people, [points]) for points in landmarks])
    np.testing.assert_allclose(together[:2], alone, atol=1e-4)
    np.testing.assert_allclose(together[2], together[0], atol=1e-5)
    assert installed.model.embed(two_people, []).shape == (0, 512)


def test_the_crop_is_faceswaps_legacy_framing_and_the_input_is_bgr_minus_the_mean() -> None:
    """A synthetic face with a known answer: landmarks on facekit's mean face, a flat BGR colour
    and one white dot on the nose tip."""
    size, scale, offset = 480, 300.0, 90.0
    points = geometry.MEAN_FACE_68 * scale + offset
    image = np.full((size, size, 3), (10, 120, 200), np.uint8)  # B, G, R
    nose = points[30]
    cv2.circle(image, (int(round(nose[0])), int(round(nose[1]))), 3, (255, 255, 255), -1)
    matrix = vggface2.crop_matrix(points)
    crop = geometry.warp_face(image, matrix, vggface2.INPUT_SIZE)
    # the mean face's unit square spans the crop less 2.3% a side, 4.24 px higher than centred
    expected = 224 * (0.023 + (1 - 2 * 0.023) * geometry.MEAN_FACE_68[30]) + (0, -4.24)
    np.testing.assert_allclose(geometry.transform_points(nose, matrix)[0], expected, atol=1e-6)
    ys, xs = np.nonzero(crop.min(axis=2) > 250)
    np.testing.assert_allclose((xs.mean(), ys.mean()), expected, atol=1.0)
    batch = vggface2.preprocess(crop[None])
    assert batch.shape == (1, 224, 224, 3) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, 5, 5], [10 - 91.4953, 120 - 103.8827, 200 - 131.0912], rtol=1e-6)


def test_a_file_that_is_not_this_model_is_a_model_error(tmp_path: Path) -> None:
    layers = [layer for layer in keras2_layers() if layer.name != "conv4_2_3x3"]
    missing = tmp_path / "missing.h5"
    missing.write_bytes(keras2_model_file(layers, SEED))
    with pytest.raises(ModelError, match="lacks 1 layers .*conv4_2_3x3"):
        vggface2.load_weights(vggface2.build_network(), str(missing))
    not_h5 = tmp_path / "not.h5"
    not_h5.write_bytes(b"PK\x03\x04 a zip, not HDF5")
    with pytest.raises(ModelError, match="not a readable HDF5"):
        read_weights(str(not_h5))


def test_name_lists_in_any_of_the_ways_keras_and_h5py_store_them() -> None:
    """Keras splits a list over 64 KB into ``name0``, ``name1``...; h5py 2 wrote fixed-length
    byte strings, h5py 3 writes variable-length ones; an empty list is an empty float array."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file.attrs["layer_names0"] = np.array([b"conv1/7x7_s2", b"conv1/7x7_s2/bn"])
        file.attrs["layer_names1"] = [b"dim_proj"]
        file.attrs["weight_names"] = np.zeros(0)
        assert attr_strings(file, "layer_names") == ["conv1/7x7_s2", "conv1/7x7_s2/bn", "dim_proj"]
        assert attr_strings(file, "weight_names") == []
