"""S3FD: decoding on synthetic outputs with known answers, and the whole path on a weights file
written here in the published layout (no machine here can reach the real one)."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from cli_helpers import run_facekit
from conftest import SCENES, require_data
from facekit.models.checksum import read_sidecar
from facekit.models.store import ModelStore
from facekit.plugin.registry import default_registry
from facekit_plugins import s3fd
from loopback_server import serving

#: Every weighted layer of the published file: name -> weight shapes (kernel HWIO, bias), in order.
LAYERS: dict[str, list[tuple[int, ...]]] = {}
for _block, (_cin, _cout, _n) in enumerate(((3, 64, 2), (64, 128, 2), (128, 256, 3), (256, 512, 3), (512, 512, 3)), 1):
    for _i in range(1, _n + 1):
        LAYERS[f"conv{_block}_{_i}"] = [(3, 3, _cin if _i == 1 else _cout, _cout), (_cout,)]
LAYERS.update({
    "fc6": [(3, 3, 512, 1024), (1024,)], "fc7": [(1, 1, 1024, 1024), (1024,)],
    "conv6_1": [(1, 1, 1024, 256), (256,)], "conv6_2": [(3, 3, 256, 512), (512,)],
    "conv7_1": [(1, 1, 512, 128), (128,)], "conv7_2": [(3, 3, 128, 256), (256,)],
    "conv3_3_norm": [(256,)], "conv4_3_norm": [(512,)], "conv5_3_norm": [(512,)],
})
for _head, _channels in (("conv3_3_norm", 256), ("conv4_3_norm", 512), ("conv5_3_norm", 512), ("fc7", 1024),
                         ("conv6_2", 512), ("conv7_2", 256)):
    _classes = 4 if _head == "conv3_3_norm" else 2
    LAYERS[f"{_head}_mbox_conf"] = [(3, 3, _channels, _classes), (_classes,)]
    LAYERS[f"{_head}_mbox_loc"] = [(3, 3, _channels, 4), (4,)]


def _weights(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Small random weights, except the heads: every stride-32 anchor says 'face' with zero
    offsets and every other head says 'background', so the right boxes are known exactly."""
    values = {name: [rng.normal(0, 0.01, shape).astype(np.float32) for shape in shapes]
              for name, shapes in LAYERS.items()}
    for name, weights in values.items():
        if "mbox" in name:
            weights[0][:] = 0
            weights[1][:] = 0
            if name.endswith("conf"):
                weights[1][0] = 10.0 if name != "fc7_mbox_conf" else -10.0  # background logit
    return values


def write_published_file(path: Path, values: dict[str, list[np.ndarray]]) -> None:
    """A Keras ``save_weights`` h5: root ``layer_names``; a group per layer with ``weight_names``
    such as ``conv1_1/kernel:0`` (the '/' nests a group, as Keras wrote it)."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = np.array([n.encode() for n in values])
        handle.attrs["backend"], handle.attrs["keras_version"] = b"tensorflow", b"2.9.0"
        for name, weights in values.items():
            group = handle.create_group(name)
            kinds = ["l2norm"] if len(weights) == 1 else ["kernel", "bias"]
            names = [f"{name}/{kind}:0" for kind in kinds]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for weight_name, value in zip(names, weights):
                group.create_dataset(weight_name, data=value)


# -- decoding -----------------------------------------------------------------------------------------

def _silent_heads() -> list[np.ndarray]:
    """Network outputs for a 640 px input where no anchor scores a face."""
    outputs = []
    for size in (160, 80, 40, 24, 12, 6):
        conf = np.zeros((size, size, 2), np.float32)
        conf[..., 0] = 10.0
        outputs += [conf, np.zeros((size, size, 4), np.float32)]
    return outputs


def test_a_known_anchor_and_offset_give_a_known_box() -> None:
    outputs = _silent_heads()
    conf, loc = outputs[2], outputs[3]  # stride 8
    conf[3, 5] = (0.0, 10.0)
    loc[3, 5] = (0.5, -0.5, math.log(2) / 0.2, 0.0)
    boxes = s3fd.decode_heads(outputs, score_threshold=0.5)
    # anchor: centre (5*8+4, 3*8+4) = (44, 28), side 4*8 = 32; centre moves by offset*0.1*side,
    # width doubles (exp(log 2)), height stays
    assert boxes.shape == (1, 5)
    np.testing.assert_allclose(boxes[0, :4], [45.6 - 32, 26.4 - 16, 45.6 + 32, 26.4 + 16], atol=1e-4)
    assert boxes[0, 4] == pytest.approx(1 / (1 + math.exp(-10)))


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 100, 100, 0.9], [5, 5, 105, 105, 0.8], [300, 300, 400, 400, 0.7]], float)
    kept = s3fd.nms(boxes, 0.5)
    np.testing.assert_array_equal(kept[:, 4], [0.9, 0.7])


def test_anchor_counts_and_letterbox() -> None:
    assert len(s3fd.anchors(4, 160, 160)) == 25600
    image = np.full((320, 480, 3), 200, np.uint8)
    canvas, scale = s3fd.letterbox(image)
    assert scale == pytest.approx(640 / 480) and canvas.shape == (640, 640, 3)
    np.testing.assert_allclose(canvas[0, 0], 200 - s3fd.MEAN_BGR)
    assert not canvas[427:].any()  # the padding below the image is the mean: zero after subtraction


# -- the whole path ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def published_zip(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, list[np.ndarray]]]:
    folder = tmp_path_factory.mktemp("s3fd")
    values = _weights(np.random.default_rng(0))
    write_published_file(folder / s3fd.MODEL_FILE, values)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zipped:
        zipped.write(folder / s3fd.MODEL_FILE, s3fd.MODEL_FILE)
    return buffer.getvalue(), values


@pytest.mark.slow
def test_download_unzip_load_detect(published_zip, tmp_path: Path) -> None:
    require_data()
    import cv2

    data, values = published_zip
    registry = default_registry()
    spec = registry.models[s3fd.MODEL_ID]
    with serving({"/s3fd_keras_v2.zip": data}) as served:
        url = served.url("/s3fd_keras_v2.zip")
        local = dataclasses.replace(spec, files=tuple(dataclasses.replace(f, url=url) for f in spec.files))
        store = ModelStore({s3fd.MODEL_ID: local}, cache_dir=tmp_path, offline=False, quiet=True)
        plugin = registry.get("detector", "s3fd")
        detector = plugin.factory(registry.build_config(plugin, {"score_threshold": 0.5}), store)
        path = store.path(s3fd.MODEL_ID)
        assert read_sidecar(path) == hashlib.sha256(path.read_bytes()).hexdigest()
        ModelStore({s3fd.MODEL_ID: local}, cache_dir=tmp_path, offline=False, quiet=True).path(s3fd.MODEL_ID)
        assert len(served.requests) == 1
    for layer in detector._net.layers:  # the loader put every stored weight in its place
        for loaded, written in zip(layer.get_weights(), values.get(layer.name, [])):
            np.testing.assert_array_equal(loaded, written)

    image = cv2.imread(str(SCENES / "obama.jpg"))
    found = detector.detect([image])[0]
    height, width = image.shape[:2]
    scale = 640 / max(height, width)
    assert found, "every stride-32 anchor scores a face: NMS must leave some"
    for det in found:  # zero offsets: each box is a 128 px anchor mapped back to the photo
        x1, y1, x2, y2 = det.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height and det.points5 is None
        if x2 < width - 1 and y2 < height - 1 and x1 > 0 and y1 > 0:
            assert (x2 - x1) * scale == pytest.approx(128, abs=1e-3)
            phase = ((x1 + x2) / 2 * scale - 16) % 32  # centres sit at 16 + 32k in network pixels
            assert min(phase, 32 - phase) < 1e-3


def test_offline_without_weights_says_where_to_put_them(tmp_path: Path) -> None:
    require_data()
    result = run_facekit("+detector=s3fd", f"input={SCENES / 'obama.jpg'}", f"output={tmp_path / 'out'}",
                         cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert s3fd.MODEL_URL in line and "models/s3fd-keras-v2" in line
