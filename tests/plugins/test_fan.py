"""fan (2D-FAN-4 through Keras 3): FAN's crop and heatmap decoding on synthetic inputs with known
answers, and the whole path with no internet.

The whole path: the test writes an .h5 in the layout faceswap published (a whole model saved by
Keras 3 in its legacy ``.h5`` format: ``model_config``, ``model_weights`` with ``layer_names`` and
per-layer ``weight_names``; its own random weights), zips it under the published member name,
serves the zip from a loopback HTTP server through the model store, builds the plugin through the
registry and aligns the face YuNet finds on a real photo. The weighted layers (names and shapes)
are described here independently of the plugin, and the file is checked against that description
before it is served.

Measured on 2 cores: building the network about 3 s, writing the 98 MB file about 3 s, download,
unzip and hash under 1 s, building and loading the plugin's network about 5 s, its first pass
(tracing) about 5 s, then 0.5 to 0.9 s a face; the whole file about 40 s.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import pytest

from conftest import SCENES
from facekit.errors import ModelError
from facekit.models.checksum import read_sidecar
from facekit.models.store import ModelStore
from facekit.plugin.registry import default_registry
from facekit.records import Detection
from facekit_plugins import fan
from loopback_server import serving

SEED = 13

# A box whose FAN square is exactly 400 px: w + h = 390, so side = 200 * 390 / 195.
BOX = (100.0, 150.0, 295.0, 345.0)
CX, CY, SIDE = 197.5, 247.5 - 0.12 * 195, 400.0  # centre moved up by 0.12 of the height: 224.1
CELL = SIDE / 64  # one heatmap cell is 6.25 source pixels


# -- crop rule -----------------------------------------------------------------------------------

def test_crop_rule_maps_a_box_to_fans_centre_and_square() -> None:
    roi = fan.roi_from_box(BOX)
    assert (roi.cx, roi.cy, roi.side) == pytest.approx((197.5, 224.1, 400.0))
    # FAN's one-based top-left corner: one crop pixel (400 / 256 = 1.5625) inside the square
    # from (-2.5, 24.1), floored: (-0.9375, 25.6625) -> (-1, 25); far corner (397.5, 424.1).
    assert roi.region() == (-1, 25, 397, 424)
    tight = fan.roi_from_box(BOX, reference_scale=250.0, centre_shift=0.0)
    assert (tight.cx, tight.cy, tight.side) == pytest.approx((197.5, 247.5, 312.0))


def test_crop_fills_beyond_the_image_with_zeros() -> None:
    image = np.full((300, 500, 3), 200, np.uint8)
    patch = fan.crop(image, fan.roi_from_box(BOX))
    assert patch.shape == (256, 256, 3) and patch.dtype == np.uint8
    # the region runs from y = 25 to 424: rows from y = 300 on (crop row (300 - 25) * 256/399 =
    # 176.4 on) are outside the image; x from -1: the first column is too (0.64 of a crop pixel)
    assert patch[180:, 10:240].max() == 0 and patch[10:170, 10:240].min() == 200


@pytest.mark.parametrize("dot", [(150, 260), (320, 390), (30, 60)])
def test_a_point_in_the_image_decodes_back_to_itself(dot: tuple[int, int]) -> None:
    """Crop and decoding agree: a bright dot seen at crop coordinate u decodes (through the
    heatmap grid, u / 4) to the dot, up to FAN's one-based crop offset of about a crop pixel."""
    image = np.zeros((500, 500, 3), np.uint8)
    image[dot[1] - 3:dot[1] + 4, dot[0] - 3:dot[0] + 4] = 255
    roi = fan.roi_from_box(BOX)
    patch = fan.crop(image, roi)[:, :, 0].astype(np.float64)
    ys, xs = np.nonzero(patch > 20)
    weights = patch[ys, xs]
    seen = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum() + 0.5
    np.testing.assert_allclose(roi.to_image(seen / 4), dot, atol=1.2 * SIDE / 256)


# -- decoding ------------------------------------------------------------------------------------

def peak(value: float = 1.0, right: float = 0.5, left: float = 0.5, down: float = 0.5,
         up: float = 0.5, at: tuple[int, int] = (20, 30)) -> np.ndarray:
    """One 64x64 heatmap: ``value`` at column, row ``at``, its four neighbours as given."""
    col, row = at
    heatmap = np.zeros((64, 64), np.float32)
    heatmap[row, col] = value
    for (dc, dr), v in {(1, 0): right, (-1, 0): left, (0, 1): down, (0, -1): up}.items():
        if 0 <= col + dc < 64 and 0 <= row + dr < 64:
            heatmap[row + dr, col + dc] = v
    return heatmap


def test_a_symmetric_peak_decodes_to_its_cell_centre() -> None:
    assert fan.heatmap_peaks(peak()).tolist() == [20.5, 30.5]


def test_an_asymmetric_neighbour_moves_the_peak_a_quarter_cell() -> None:
    # right 0.6 > left 0.4: x + 0.25; down 0.3 < up 0.7: y - 0.25
    assert fan.heatmap_peaks(peak(right=0.6, left=0.4, down=0.3, up=0.7)).tolist() == [20.75, 30.25]
    assert fan.heatmap_peaks(peak(right=0.1, left=0.2, down=0.9, up=0.2)).tolist() == [20.25, 30.75]


def test_a_peak_on_the_border_is_not_refined() -> None:
    assert fan.heatmap_peaks(peak(right=0.9, down=0.9, at=(0, 10))).tolist() == [0.5, 10.5]
    assert fan.heatmap_peaks(peak(left=0.9, up=0.1, at=(63, 63))).tolist() == [63.5, 63.5]


def test_68_peaks_decode_to_landmarks_in_source_pixels() -> None:
    """The aligner's own decode path (network output (n, 64, 64, 68), channels last) with a
    stand-in for the network: each heatmap's peak at a known cell gives that landmark."""
    rng = np.random.default_rng(SEED)
    cells = rng.integers(1, 63, size=(68, 2))
    maps = np.stack([peak(at=(int(c), int(r))) for c, r in cells])  # (68, 64, 64)
    maps[0] = peak(at=(20, 30))
    maps[1] = peak(right=0.6, left=0.4, down=0.3, up=0.7, at=(20, 30))
    aligner = object.__new__(fan.FanAligner)
    aligner.config = fan.FanConfig()
    aligner.heatmaps = lambda crops: np.repeat(maps.transpose(1, 2, 0)[None], len(crops), axis=0)
    image = np.zeros((480, 640, 3), np.uint8)
    first, second = aligner.align(image, [Detection(BOX, 0.9), Detection((10, 20, 205, 215), 0.9)])
    assert first.shape == (68, 2) and first.dtype == np.float64
    # by hand: x = CX - SIDE/2 + p * SIDE/64 = -2.5 + 6.25 p, y = 24.1 + 6.25 p
    np.testing.assert_allclose(first[0], [-2.5 + 20.5 * 6.25, 24.1 + 30.5 * 6.25])  # 125.625, 214.725
    np.testing.assert_allclose(first[1], [127.1875, 213.1625])  # p = (20.75, 30.25)
    expected = np.array([CX - SIDE / 2, CY - SIDE / 2]) + (cells + 0.5) * CELL
    np.testing.assert_allclose(first[2:], expected[2:])
    np.testing.assert_allclose(second - first, np.broadcast_to([-90.0, -130.0], (68, 2)), atol=1e-9)


def test_no_detections_runs_nothing() -> None:
    aligner = object.__new__(fan.FanAligner)
    aligner.config = fan.FanConfig()
    aligner.heatmaps = None  # would fail if called
    assert aligner.align(np.zeros((10, 10, 3), np.uint8), []) == []


# -- the published file, described independently of the plugin ----------------------------------

def weighted_layers() -> dict[str, dict[str, tuple[int, ...]]]:
    """2D-FAN-4's layers with weights, named by the PyTorch module paths: name -> variable ->
    shape (Keras layout: kernels (k, k, in, out))."""
    layers: dict[str, dict[str, tuple[int, ...]]] = {}

    def conv(name: str, k: int, cin: int, cout: int, bias: bool = False) -> None:
        layers[name] = {"kernel": (k, k, cin, cout), **({"bias": (cout,)} if bias else {})}

    def bn(name: str, channels: int) -> None:
        layers[name] = {v: (channels,) for v in ("gamma", "beta", "moving_mean", "moving_variance")}

    def block(name: str, cin: int, cout: int) -> None:
        widths = (cin, cout // 2, cout // 4, cout // 4)
        for i in range(3):
            bn(f"{name}.bn{i + 1}", widths[i])
            conv(f"{name}.conv{i + 1}", 3, widths[i], widths[i + 1])
        if cin != cout:
            bn(f"{name}.downsample.0", cin)
            conv(f"{name}.downsample.2", 1, cin, cout)

    conv("conv1", 7, 3, 64, bias=True)
    bn("bn1", 64)
    block("conv2", 64, 128)
    block("conv3", 128, 128)
    block("conv4", 128, 256)
    for i in range(4):
        for level in range(4, 0, -1):
            for part in ("b1", "b2", "b3") + (("b2_plus",) if level == 1 else ()):
                block(f"m{i}.{part}_{level}", 256, 256)
        block(f"top_m_{i}", 256, 256)
        conv(f"conv_last{i}", 1, 256, 256, bias=True)
        bn(f"bn_end{i}", 256)
        conv(f"l{i}", 1, 256, 68, bias=True)
        if i < 3:
            conv(f"bl{i}", 1, 256, 256, bias=True)
            conv(f"al{i}", 1, 68, 256, bias=True)
    return layers


def random_weights(variable: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Weights of a plausible scale, so four stacks of residual blocks neither vanish nor overflow."""
    if variable == "kernel":
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(1 / np.prod(shape[:-1])))
    if variable in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    return rng.uniform(-0.1, 0.1, shape).astype(np.float32)  # beta, moving_mean, bias


def published_file(path: Path, network: Any, seed: int) -> None:
    """Random weights into ``network`` (by the description above) and a Keras 3 ``.h5`` of it."""
    rng = np.random.default_rng(seed)
    description = weighted_layers()
    for layer in network.layers:
        if layer.weights:
            shapes = description[layer.name]
            layer.set_weights([random_weights(v.name, shapes[v.name], rng) for v in layer.weights])
    network.save(path)  # Keras 3 writes the legacy whole-model HDF5 layout for ".h5"


def h5_contents(path: Path) -> dict[str, dict[str, tuple[int, ...]]]:
    import h5py

    with h5py.File(path, "r") as file:
        assert {"model_config", "keras_version", "backend"} <= set(file.attrs)
        group = file["model_weights"]
        found = {}
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            names = [n.decode() if isinstance(n, bytes) else n for n in group[layer].attrs["weight_names"]]
            if names:
                found[layer] = {n.rsplit("/", 1)[-1]: group[layer][n].shape for n in names}
        return found


def zipped(name: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # random floats don't deflate
        archive.writestr(name, body)
    return buffer.getvalue()


# -- the whole path ------------------------------------------------------------------------------

class Installed(NamedTuple):
    aligner: fan.FanAligner
    store: ModelStore
    specs: dict
    requests: list
    h5: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("fan")
    h5 = work / fan.WEIGHTS
    published_file(h5, fan.build_network(), SEED)
    body = zipped(fan.WEIGHTS, h5.read_bytes())
    registry = default_registry()
    spec = registry.get("aligner", "fan")
    with serving({"/v13.3/face-alignment-network_2d4_keras_v3.zip": body}) as served:
        model = registry.models[fan.MODEL_ID]
        (file,) = model.files
        assert (file.name, file.sha256, file.url, file.archive) == (fan.WEIGHTS, None, fan.URL, True)
        local = dataclasses.replace(file, url=served.url("/v13.3/face-alignment-network_2d4_keras_v3.zip"))
        specs = {model.id: dataclasses.replace(model, files=(local,))}
        store = ModelStore(specs, cache_dir=work / "cache", quiet=True)
        aligner = spec.factory(registry.build_config(spec, {}), store)
        yield Installed(aligner, store, specs, served.requests, h5)


@pytest.mark.slow
def test_the_file_has_2dfan4s_layers_and_shapes(installed: Installed) -> None:
    contents = h5_contents(installed.h5)
    assert contents == weighted_layers()
    assert sum(int(np.prod(s)) for layer in contents.values() for s in layer.values()) == 23_874_320


@pytest.mark.slow
def test_download_unzip_record_and_reuse(installed: Installed) -> None:
    path = installed.store.path(fan.MODEL_ID, fan.WEIGHTS)
    assert path == installed.store.folder(fan.MODEL_ID) / fan.WEIGHTS
    assert path.read_bytes() == installed.h5.read_bytes()
    assert read_sidecar(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")) == [
        fan.WEIGHTS, f"{fan.WEIGHTS}.sha256"]  # the zip is gone
    assert len(installed.requests) == 1
    again = ModelStore(installed.specs, cache_dir=installed.store.cache_dir, quiet=True)
    assert again.path(fan.MODEL_ID, fan.WEIGHTS) == path
    assert len(installed.requests) == 1  # the second call made no request


@pytest.mark.slow
def test_aligns_the_face_yunet_finds(installed: Installed) -> None:
    import cv2

    image_path = SCENES / "obama.jpg"
    if not image_path.is_file():
        pytest.skip(f"shared test data not found at {image_path}")
    image = cv2.imread(str(image_path))
    registry = default_registry()
    spec = registry.get("detector", "yunet")
    detector = spec.factory(registry.build_config(spec, {}), ModelStore(registry.models, quiet=True))
    (faces,) = detector.detect([image])
    assert faces, "YuNet found no face on obama.jpg"
    (points,) = installed.aligner.align(image, faces[:1])
    assert points.shape == (68, 2) and points.dtype == np.float64 and np.isfinite(points).all()
    roi = installed.aligner.roi(faces[0])
    low, high = np.array([roi.cx, roi.cy]) - roi.side / 2, np.array([roi.cx, roi.cy]) + roi.side / 2
    assert (points > low).all() and (points < high).all()  # random weights: anywhere in FAN's square
    heatmaps = installed.aligner.heatmaps(fan.crop(image, roi)[None])
    assert heatmaps.shape == (1, 64, 64, 68) and np.isfinite(heatmaps).all() and heatmaps.std() > 0


@pytest.mark.slow
def test_faces_of_a_frame_share_a_forward_pass(installed: Installed) -> None:
    aligner = installed.aligner
    image = np.random.default_rng(SEED).integers(0, 256, (400, 600, 3), dtype=np.uint8)
    detections = [Detection(b, 0.9) for b in [(50, 60, 200, 230), (300, 80, 420, 220), (430, 200, 560, 360)]]
    calls: list[tuple[int, np.ndarray]] = []
    forward = aligner._forward

    def counted(batch: Any) -> Any:
        out = forward(batch)
        calls.append((len(batch), np.asarray(out)))
        return out

    aligner._forward = counted
    try:
        together = aligner.align(image, detections)
        aligner.config = dataclasses.replace(aligner.config, batch_size=2)
        crops = np.stack([fan.crop(image, aligner.roi(d)) for d in detections])
        chunked = aligner.heatmaps(crops)
    finally:
        aligner._forward = forward
        aligner.config = dataclasses.replace(aligner.config, batch_size=fan.FanConfig.batch_size)
    assert [n for n, _ in calls] == [3, 2, 1]  # one pass for the frame; then chunks of 2
    assert len(together) == 3 and all(p.shape == (68, 2) for p in together)
    np.testing.assert_allclose(chunked, calls[0][1], rtol=1e-4, atol=1e-4 * np.abs(chunked).max())


@pytest.mark.slow
def test_a_file_with_other_layer_names_loads_as_the_whole_model(installed: Installed, tmp_path: Path) -> None:
    """The published file's own layer names could not be checked: one that names them otherwise
    is loaded as the whole model it is, with the same result."""
    import keras

    original = installed.aligner.network  # the network of the installed file, last stack's output
    renamed = keras.models.clone_model(original, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "name": f"{type(layer).__name__.lower()}_{id(layer)}"}))
    for old, new in zip(original.layers, renamed.layers):
        new.set_weights(old.get_weights())
    renamed.save(tmp_path / "renamed.h5")
    loaded = fan.load_network(str(tmp_path / "renamed.h5"))
    assert not {"conv1", "l3"} & {layer.name for layer in loaded.layers}
    crop = np.random.default_rng(SEED).integers(0, 256, (1, 256, 256, 3), dtype=np.uint8)
    want = installed.aligner.heatmaps(crop)
    got = np.asarray(loaded([fan.preprocess(crop)], training=False))  # as saved: a list of one input
    assert got.shape == want.shape == (1, 64, 64, 68)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_a_file_that_is_not_fan_names_what_it_holds(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((32, 32, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="something_else")(inputs))
    other.save(tmp_path / "other.h5")
    with pytest.raises(ModelError, match=r"lacks the 2D-FAN-4 layers by name \(conv1, bn1.*something_else.*"
                                         r"not \(None, 256, 256, 3\) -> \(None, 64, 64, 68\)"):
        fan.load_network(str(tmp_path / "other.h5"))
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="not a readable HDF5 file"):
        fan.load_network(str(tmp_path / "junk.h5"))


def test_spec_declares_its_model_and_memory() -> None:
    spec = default_registry().get("aligner", "fan")
    assert (spec.model_ids, spec.batch_size) == ((fan.MODEL_ID,), 12)
    assert spec.gpu_memory_mb == 2240 + 64 * 12
