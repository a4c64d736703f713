"""cv2-dnn (ResNet-10 SSD, Caffe through OpenCV DNN): decoding of the net's [1, 1, N, 7] output,
and the whole path with no internet: a caffemodel and prototxt in the published layout with this
test's own random weights, zipped under the published member names, served by a loopback HTTP
server through the model store, loaded by the plugin's factory and run on a real photo."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

import caffe_files
from conftest import SCENES
from facekit.models.checksum import read_sidecar
from facekit.models.store import ModelStore
from facekit.plugin.registry import default_registry
from facekit.records import Detection
from facekit_plugins import cv2_dnn
from loopback_server import serving

SEED = 7


def _rows(*rows: tuple[float, ...]) -> np.ndarray:
    return np.array(rows, dtype=np.float32).reshape(1, 1, len(rows), 7)


# -- decoding ------------------------------------------------------------------------------------

def test_decoding_maps_normalised_boxes_to_pixels_with_threshold_and_clipping() -> None:
    output = _rows(
        (0, 1, 0.90, 0.10, 0.20, 0.30, 0.40),    # inside: (20, 20, 60, 40) on 200 x 100
        (0, 1, 0.30, 0.50, 0.50, 0.60, 0.60),    # under the threshold
        (0, 1, 0.50, 0.60, 0.10, 0.80, 0.50),    # exactly at the threshold: kept
        (0, 1, 0.80, -0.10, 0.50, 0.50, 1.20),   # runs past the left and bottom edges: clipped
        (0, 1, 0.95, 1.10, 0.10, 1.30, 0.50),    # wholly right of the image: dropped
        (-1, 0, 0.99, 0.10, 0.10, 0.20, 0.20),   # OpenCV's "nothing found" row
        (0, 1, 0.97, np.nan, 0.10, 0.20, 0.20),  # not finite
        (0, 1, 0.70, 0.10, 0.10, 0.105, 0.20),   # 1 px wide once in pixels: nothing left
    )
    [found] = cv2_dnn.decode_detections(output, [(200, 100)], score_threshold=0.5)
    assert all(isinstance(d, Detection) and d.points5 is None for d in found)
    assert [d.score for d in found] == pytest.approx([0.90, 0.80, 0.50])  # most confident first
    assert [d.box for d in found] == [pytest.approx(b, abs=1e-4) for b in
                                      [(20, 20, 60, 40), (0, 50, 100, 100), (120, 10, 160, 50)]]


def test_decoding_splits_a_batch_by_image_index() -> None:
    output = _rows((1, 1, 0.9, 0.5, 0.5, 1.0, 1.0), (0, 1, 0.8, 0.0, 0.0, 0.5, 0.5), (2, 1, 0.9, 0, 0, 1, 1))
    first, second = cv2_dnn.decode_detections(output, [(100, 100), (640, 480)], score_threshold=0.5)
    assert [d.box for d in first] == [pytest.approx((0, 0, 50, 50))]
    assert [d.box for d in second] == [pytest.approx((320, 240, 640, 480))]  # index 2 is not in the batch


def test_no_rows_no_detections() -> None:
    assert cv2_dnn.decode_detections(np.zeros((1, 1, 0, 7), np.float32), [(10, 10)], 0.5) == [[]]


# -- the whole path ------------------------------------------------------------------------------

def _published_zip(net: caffe_files.NetDef) -> bytes:
    return caffe_files.model_zip(net, {cv2_dnn.CAFFEMODEL: "caffemodel", cv2_dnn.PROTOTXT: "prototxt"}, SEED)


def _served_spec(url: str):
    """The plugin's own model spec with every file's URL pointed at the loopback server."""
    spec = default_registry().models[cv2_dnn.MODEL_ID]
    return dataclasses.replace(spec, files=tuple(dataclasses.replace(f, url=url) for f in spec.files))


def _member_sha256(zipped: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        return {name: hashlib.sha256(archive.read(name)).hexdigest() for name in archive.namelist()}


def test_download_unzip_load_detect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = cv2.imread(str(SCENES / "obama.jpg"))
    if image is None:
        pytest.skip(f"{SCENES / 'obama.jpg'} not found")
    monkeypatch.delenv("FACEKIT_OFFLINE", raising=False)
    zipped = _published_zip(caffe_files.resnet_ssd_net())
    path = urlparse(cv2_dnn.URL).path
    registry = default_registry()
    plugin = registry.get("detector", "cv2-dnn")
    with serving({path: zipped}) as served:
        spec = _served_spec(served.url(path))
        store = ModelStore({spec.id: spec}, cache_dir=tmp_path, quiet=True)
        detector = plugin.factory(registry.build_config(plugin, {}), store)
        found = detector.detect([image])
        # a second store on the same cache finds both files there and checks them: no request
        ModelStore({spec.id: spec}, cache_dir=tmp_path, quiet=True).ensure(spec.id)
    assert served.requests == [(path, None)]  # one download for both members

    folder = store.folder(spec.id)
    expected = _member_sha256(zipped)
    for name in (cv2_dnn.CAFFEMODEL, cv2_dnn.PROTOTXT):
        assert read_sidecar(folder / name) == expected[name], name  # recorded on first download
    assert not list(folder.glob("*.zip"))

    height, width = image.shape[:2]
    assert len(found) == 1 and found[0], "random weights still give boxes above 0.5 on a real photo"
    for detection in found[0]:
        assert isinstance(detection, Detection) and detection.points5 is None
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, detection.box
        assert 0.5 <= detection.score <= 1.0
    assert [d.score for d in found[0]] == sorted((d.score for d in found[0]), reverse=True)


def test_written_caffemodel_holds_exactly_the_random_weights(tmp_path: Path) -> None:
    """The hand-written protobuf is read back by OpenCV blob for blob, value for value."""
    net = caffe_files.resnet_ssd_net()
    paths = caffe_files.write_model(tmp_path, net, "resnet_ssd_v1", seed=SEED)
    loaded = cv2.dnn.readNetFromCaffe(paths["resnet_ssd_v1.prototxt"], paths["resnet_ssd_v1.caffemodel"])
    assert Path(paths["resnet_ssd_v1.caffemodel"]).stat().st_size == pytest.approx(10.66e6, rel=0.01)
    rng = np.random.default_rng(SEED)
    checked = 0
    for layer in net.layers:
        if not layer.blob_shapes:
            continue
        for i, blob in enumerate(caffe_files.random_blobs(layer, rng)):
            got = loaded.getParam(layer.name, i)
            assert got.size == blob.size, (layer.name, i)
            np.testing.assert_array_equal(got.reshape(blob.shape), blob, err_msg=f"{layer.name} blob {i}")
            checked += 1
    assert checked == sum(len(layer.blob_shapes) for layer in net.layers) == 104  # every one
    assert net.parameter_count() == 2_662_666
