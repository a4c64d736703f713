"""vgg-face (VGG-Face through OpenCV DNN): the whole path with no internet. The test writes a
caffemodel and prototxt in the layout of the original release (V1 layers, VGG-16, fc8 of 2622,
its own random weights), zips them under the published member names, serves the zip from a
loopback HTTP server through the model store, builds the plugin through the registry and embeds
the face that facekit's Extractor finds on a real photo.

Cost: the random caffemodel is 580 MB, as big as the real one (fc6 alone is 25088 x 4096
floats). It is built once for this module, in memory. Measured on 2 cores: build the zip about
3 s, download, unzip and hash about 6.5 s, check and load about 2.5 s, a forward pass about
1.5 s; the module takes about 20 s and peaks at about 2.3 GB of memory.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from typing import Iterator, NamedTuple
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest

import caffe_files
from conftest import SCENES
from facekit.imaging import geometry
from facekit.models.checksum import read_sidecar
from facekit.models.store import ModelStore
from facekit.plugin.registry import default_registry
from facekit_plugins import vgg_face
from loopback_server import serving

SEED = 11


class Installed(NamedTuple):
    model: vgg_face.VggFaceModel
    store: ModelStore
    requests: list
    member_sha256: dict[str, str]
    url_path: str


@pytest.fixture(scope="module")
def obama() -> np.ndarray:
    image = cv2.imread(str(SCENES / "obama.jpg"))
    if image is None:
        pytest.skip(f"{SCENES / 'obama.jpg'} not found")
    return image


@pytest.fixture(scope="module")
def landmarks(obama: np.ndarray) -> list[np.ndarray]:
    from facekit import Extractor

    faces = Extractor().extract(obama)
    assert len(faces) == 1
    return [faces[0].landmarks]


@pytest.fixture(scope="module")
def installed(obama: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Publish, download, unzip and load the model once for the module: it is 580 MB."""
    net = caffe_files.vgg_face_net()
    zipped = caffe_files.model_zip(net, {vgg_face.CAFFEMODEL: "caffemodel", vgg_face.PROTOTXT: "prototxt"}, SEED)
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        member_sha256 = {}
        for name in archive.namelist():
            digest = hashlib.sha256()
            with archive.open(name) as member:
                while chunk := member.read(1 << 22):
                    digest.update(chunk)
            member_sha256[name] = digest.hexdigest()
    path = urlparse(vgg_face.URL).path
    registry = default_registry()
    plugin = registry.get("identity", "vgg-face")
    with pytest.MonkeyPatch.context() as patch, serving({path: zipped}) as served:
        del zipped  # the server holds the only copy
        patch.delenv("FACEKIT_OFFLINE", raising=False)
        spec = registry.models[vgg_face.MODEL_ID]
        spec = dataclasses.replace(spec, files=tuple(dataclasses.replace(f, url=served.url(path)) for f in spec.files))
        store = ModelStore({spec.id: spec}, cache_dir=tmp_path_factory.mktemp("vgg_face_cache"), quiet=True)
        model = plugin.factory(registry.build_config(plugin, {}), store)
        served.files.clear()
        yield Installed(model, store, served.requests, member_sha256, path)


def test_the_plugin_declares_cosine_and_its_threshold() -> None:
    spec = default_registry().get("identity", "vgg-face")
    assert (spec.metric, spec.default_threshold, spec.model_ids) == ("cosine", 0.4, (vgg_face.MODEL_ID,))
    assert spec.gpu_memory_mb == 0
    files = default_registry().models[vgg_face.MODEL_ID].files
    assert [(f.name, f.sha256, f.archive, f.url) for f in files] == [
        (vgg_face.CAFFEMODEL, None, True, vgg_face.URL), (vgg_face.PROTOTXT, None, True, vgg_face.URL)]


@pytest.mark.slow
def test_one_download_both_files_checksums_recorded(installed: Installed) -> None:
    assert installed.requests == [(installed.url_path, None)]
    folder = installed.store.folder(vgg_face.MODEL_ID)
    for name in (vgg_face.CAFFEMODEL, vgg_face.PROTOTXT):
        assert read_sidecar(folder / name) == installed.member_sha256[name], name
    assert (folder / vgg_face.CAFFEMODEL).stat().st_size > 500e6  # the real model's size
    assert not list(folder.glob("*.zip"))


@pytest.mark.slow
def test_the_weights_loaded_are_the_ones_written(installed: Installed) -> None:
    net = caffe_files.vgg_face_net()
    loaded = installed.model._net
    first = caffe_files.random_blobs(net.layers[0], np.random.default_rng(SEED))  # conv1_1: the first draws
    for i, blob in enumerate(first):
        np.testing.assert_array_equal(loaded.getParam("conv1_1", i).reshape(blob.shape), blob)
    for layer in net.layers:
        for i, shape in enumerate(layer.blob_shapes):
            assert loaded.getParam(layer.name, i).size == np.prod(shape), (layer.name, i)
    assert net.parameter_count() == 145_002_878


@pytest.mark.slow
def test_embeds_the_face_on_a_real_photo(installed: Installed, obama: np.ndarray,
                                         landmarks: list[np.ndarray]) -> None:
    vectors = installed.model.embed(obama, landmarks)
    assert vectors.shape == (1, vgg_face.EMBEDDING_SIZE) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert (vectors < 0).any()  # fc7 before relu7, as faceswap read it


@pytest.mark.slow
def test_batches_give_the_vectors_single_faces_give(installed: Installed, obama: np.ndarray,
                                                   landmarks: list[np.ndarray]) -> None:
    shifted = landmarks[0] + (12.0, -7.0)
    together = installed.model.embed(obama, [landmarks[0], shifted, landmarks[0]])
    alone = np.vstack([installed.model.embed(obama, [points]) for points in (landmarks[0], shifted)])
    np.testing.assert_allclose(together[:2], alone, atol=1e-4)
    np.testing.assert_allclose(together[2], together[0], atol=1e-5)
    assert installed.model.embed(obama, []).shape == (0, vgg_face.EMBEDDING_SIZE)


def test_the_crop_is_faceswaps_tight_legacy_framing(obama: np.ndarray, landmarks: list[np.ndarray]) -> None:
    """All 68 points inside the 224 crop with little room around them: brows to chin fill it."""
    matrix = geometry.alignment_matrix(landmarks[0], vgg_face.INPUT_SIZE, padding=vgg_face.CROP_PADDING)
    points = geometry.transform_points(landmarks[0], matrix)
    assert (points >= 0).all() and (points <= vgg_face.INPUT_SIZE).all()
    brow_to_chin = points[8, 1] - points[17:27, 1].min()
    assert 0.65 < brow_to_chin / vgg_face.INPUT_SIZE < 0.9  # facekit's own 0.15 padding: 0.56
