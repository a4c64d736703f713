"""Embeddings for curation: a face file embedded by the identity plugin gives the vector the
plugin gave its frame at extraction, and stored vectors are used as they are."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from curate_helpers import PEOPLE, extract
from conftest import require_data

from facekit.curate.embeddings import embed_crop, face_embeddings
from facekit.curate.inventory import read_output
from facekit.faces.stages import FaceStages
from facekit.models.store import ModelStore
from facekit.plugin.loading import load_plugin
from facekit.plugin.registry import default_registry


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four portraits extracted with ``output.embeddings=true``: each entry stores its embedding."""
    require_data()
    folder = tmp_path_factory.mktemp("photos")
    for name in ("p01/img1.jpg", "p01/img2.jpg", "p04/img13.jpg", "p06/img18.jpg"):
        shutil.copy(PEOPLE / name, folder / Path(name).name)
    return extract(tmp_path_factory.mktemp("out"), folder, "output.embeddings=true")


def _stages() -> FaceStages:
    registry = default_registry()
    store = ModelStore(registry.models, cache_dir=None)
    plugin = lambda kind, name: load_plugin(registry, store, kind, name)  # noqa: E731 - built on first use only
    return FaceStages(plugin("detector", "yunet"), plugin("aligner", "facemesh"), plugin("identity", "sface"))


def test_a_face_file_embeds_as_its_frame_did(embedded: Path, tmp_path: Path) -> None:
    faces = read_output(embedded)
    assert len(faces) == 4 and all(face.embedded_by == "sface" for face in faces)
    stages = _stages()
    for face in faces:
        vector = embed_crop(stages, cv2.imread(str(face.path)), face)
        stored = face.embedding / np.linalg.norm(face.embedding)
        assert 1 - float(vector @ stored) < 0.01, face.name


def test_stored_embeddings_are_used_and_missing_ones_computed(embedded: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    faces = read_output(embedded)
    stages = _stages()
    with caplog.at_level(logging.INFO, logger="facekit.curate.embeddings"):
        stored = face_embeddings(faces, stages)
    assert "embedding" not in caplog.text  # nothing computed
    faces[1].embedding = None
    with caplog.at_level(logging.INFO, logger="facekit.curate.embeddings"):
        mixed = face_embeddings(faces, stages)
    assert "embedding 1 face file(s) with identity sface (3 stored)" in caplog.text
    assert np.allclose(mixed[[0, 2, 3]], stored[[0, 2, 3]]) and 1 - float(mixed[1] @ stored[1]) < 0.01


@pytest.mark.parametrize("centering", ["face", "head"])
def test_a_face_or_head_centred_face_file_embeds_as_its_frame_did(centering: str, tmp_path: Path) -> None:
    """The face sits elsewhere in a face or head crop than in legacy's: curation reads where from
    the crop's stored matrix (scaled when the file is another size), not legacy's rule."""
    require_data()
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("p01/img1.jpg", "p04/img13.jpg"):
        shutil.copy(PEOPLE / name, folder / Path(name).name)
    (tmp_path / "out").mkdir()
    out = extract(tmp_path / "out", folder, "output.embeddings=true", f"output.centering={centering}")
    stages = _stages()
    for face in read_output(out):
        crop = cv2.imread(str(face.path))
        for image in (crop, cv2.resize(crop, (384, 384), interpolation=cv2.INTER_CUBIC)):
            vector = embed_crop(stages, image, face)
            stored = face.embedding / np.linalg.norm(face.embedding)
            assert 1 - float(vector @ stored) < 0.01, (face.name, image.shape)
