"""The library's identity surface: ``Extractor(identity=...)`` embeddings, ``facekit.distance`` /
``facekit.compare`` in the plugin's metric, and ``facekit.IdentityFilter``, held to what the CLI
and bench/identity.py compute on the shared data."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

import facekit
from cli_helpers import load_json, run_facekit
from conftest import DATA, SCENES
from facekit.errors import ConfigError, FacekitError
from facekit.faces.evaluate import PhotoSet, embed_photos, face_landmarks, load_identity, pair_confusion
from facekit.faces.identity import reference_face
from facekit.plugin.registry import default_registry

PEOPLE = DATA / "images" / "people"
REFERENCE = SCENES / "obama.jpg"


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory, session_derived: Path) -> Iterator[Path]:
    """One model cache for the module's extractors and CLI run (conftest's own is per test)."""
    if not (PEOPLE / "pairs.csv").is_file():
        pytest.skip(f"shared test data not found at {DATA}")
    home = tmp_path_factory.mktemp("library_identity")
    (home / "derived").symlink_to(session_derived, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEKIT_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def extractor(cache_home: Path) -> facekit.Extractor:
    return facekit.Extractor(identity="sface", offline=True)


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    assert image is not None, path
    return image


def test_every_face_gets_its_embedding(extractor: facekit.Extractor) -> None:
    faces = extractor.extract(_read(SCENES / "two_people.jpg"))
    assert len(faces) == 2 and extractor.identity == "sface"
    for face in faces:
        assert face.embedding.shape == (128,) and face.landmarks.shape == (68, 2) and face.crop is not None
    assert facekit.Extractor(offline=True).extract(_read(SCENES / "obama.jpg"))[0].embedding is None  # none asked


def test_distance_is_the_plugins_metric_and_compare_its_default_threshold(extractor: facekit.Extractor) -> None:
    obama, obama2, biden = (extractor.extract(_read(SCENES / name))[0] for name in ("obama.jpg", "obama2.jpg",
                                                                                      "biden.jpg"))
    spec = default_registry().get("identity", "sface")
    assert spec.metric == "cosine"
    a, b = obama.embedding.astype(np.float64), obama2.embedding.astype(np.float64)
    cosine = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert facekit.distance(obama, obama2, identity="sface") == pytest.approx(cosine, abs=1e-9)
    assert facekit.distance(obama.embedding, obama2.embedding) == pytest.approx(cosine, abs=1e-9)  # arrays too
    many = facekit.distance([obama, obama2, biden], obama, identity="sface")
    assert many.shape == (3,) and many[0] == pytest.approx(0, abs=1e-6) and many[2] > spec.default_threshold
    assert facekit.compare(obama, obama2, identity="sface", threshold=None) is True
    assert facekit.compare(obama, biden, identity="sface", threshold=None) is False
    assert facekit.compare(obama, obama2, threshold=cosine * 0.99) is False  # within is <=: just under it is out
    assert list(facekit.compare([obama2, biden], obama)) == [True, False]


def test_compare_over_extractor_embeddings_has_bench_identitys_pair_accuracy(extractor: facekit.Extractor) -> None:
    """bench/identity.py: the largest face of each photo, embedded by the plugin, pairs called at
    its default threshold. The library path must give that same figure."""
    photos = PhotoSet.read(PEOPLE)
    bench = embed_photos(photos, face_landmarks(photos, facekit.Extractor(offline=True)), load_identity("sface").model)
    bench_accuracy = pair_confusion(photos, bench, 0.637, "cosine").accuracy
    largest = {}
    for file in photos.identities:
        faces = extractor.extract(_read(photos.folder / file))
        largest[file] = faces[reference_face(faces, file)]
    called = np.array([facekit.compare(largest[a], largest[b], identity="sface") for a, b, _ in photos.pairs])
    same = np.array([same for _, _, same in photos.pairs])
    library_accuracy = float((called == same).mean())
    assert len(photos.pairs) == 351
    assert library_accuracy == bench_accuracy, (library_accuracy, bench_accuracy)


@pytest.fixture(scope="module")
def cli_kept(cache_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bool]]:
    """The CLI's filter with one reference over the shared scenes: each frame's faces, kept or not."""
    out = tmp_path_factory.mktemp("cli_filter") / "faces"
    result = run_facekit(f"input={SCENES}", f"output={out}", f"filter.refs=[{REFERENCE}]", "runner.progress=false",
                         cwd=out.parent, env={"FACEKIT_HOME": str(cache_home)})
    assert result.returncode == 0, result.stderr
    frames = load_json(out / "alignments.json")["frames"]
    return {name: [face["keep"] for face in frame["faces"]] for name, frame in frames.items()}


@pytest.mark.parametrize("built_from", ["photo path", "photo pixels", "embedding"])
def test_the_library_filter_keeps_exactly_the_faces_the_cli_keeps(extractor: facekit.Extractor,
                                                                   cli_kept: dict[str, list[bool]],
                                                                   built_from: str) -> None:
    faces = extractor.extract(_read(REFERENCE))
    reference = {"photo path": str(REFERENCE), "photo pixels": _read(REFERENCE),
                 "embedding": faces[reference_face(faces, "obama.jpg")].embedding}
    wanted = facekit.IdentityFilter(refs=[reference[built_from]], extractor=extractor)
    kept = {}
    for _, frame in facekit.collection(SCENES):
        faces = extractor.extract(frame.image)
        wanted.filter(faces)
        kept[frame.name] = [face.keep for face in faces]
    assert kept == cli_kept
    assert 0 < sum(map(sum, kept.values())) < sum(map(len, kept.values()))  # some faces kept, some not


def test_a_filter_without_an_identity_plugin_or_a_reference_is_refused(extractor: facekit.Extractor) -> None:
    with pytest.raises(ConfigError, match="Extractor\\(identity=...\\)"):
        facekit.IdentityFilter(refs=[str(REFERENCE)], extractor=facekit.Extractor(offline=True))
    with pytest.raises(ConfigError, match="at least one ref"):
        facekit.IdentityFilter(refs=[], extractor=extractor)
    with pytest.raises(FacekitError, match="reference photo 'nosuch.jpg' does not exist"):
        facekit.IdentityFilter(refs=["nosuch.jpg"], extractor=extractor)
    with pytest.raises(ConfigError, match="without an embedding"):
        facekit.distance(facekit.Extractor(offline=True).extract(_read(REFERENCE))[0], np.zeros(128))


def test_several_faces_as_b_a_bad_threshold_and_a_photo_of_the_wrong_kind_are_value_errors() -> None:
    photo = cv2.imread(str(SCENES / "obama.jpg"))
    extractor = facekit.Extractor(identity="sface")
    face = extractor.extract(photo)[0]
    with pytest.raises(ValueError, match="b is one face or embedding"):
        facekit.distance(face, [face, face])  # it compared with the first alone
    for threshold in (-1, float("nan")):  # the filter's own check, as IdentityFilter(threshold=...) has
        with pytest.raises(ConfigError, match="threshold must be a distance"):
            facekit.compare(face, face, threshold=threshold)
    for wrong in (photo.astype(np.float32), photo[:, :, :2]):  # float pixels, two channels
        with pytest.raises(ValueError, match=r"reference #0: a photo is uint8 pixels of shape \(height, width, 3\)"):
            facekit.IdentityFilter(refs=[wrong], extractor=extractor)
    # grey and BGRA photos are taken as Extractor.extract takes them (grey was taken for an embedding)
    bgr = facekit.IdentityFilter(refs=[photo], extractor=extractor).rules.refs
    assert np.array_equal(facekit.IdentityFilter(refs=[cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)], extractor=extractor).rules.refs, bgr)
    grey = facekit.IdentityFilter(refs=[cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)], extractor=extractor)
    assert grey.rules.refs.shape == bgr.shape and grey.filter(face)  # the same person, from grey pixels


def test_the_filter_takes_one_face_as_it_takes_a_list(extractor: facekit.Extractor) -> None:
    faces = extractor.extract(_read(SCENES / "two_people.jpg"))
    wanted = facekit.IdentityFilter(refs=[str(REFERENCE)], extractor=extractor)
    assert [len(wanted.filter(face)) for face in faces] == [len(wanted.filter([face])) for face in faces]


def test_one_reference_alone_is_one_reference_whatever_its_kind(extractor: facekit.Extractor) -> None:
    """refs=photo read the photo's first row of pixels as a grey photo ("no face found in
    reference photo '#0'"); refs=face and refs=embedding were a TypeError. A path alone worked."""
    photo = _read(REFERENCE)
    face, = extractor.extract(photo)
    listed = facekit.IdentityFilter(refs=[str(REFERENCE)], extractor=extractor).rules.refs
    for alone in (str(REFERENCE), photo, face, face.embedding):
        assert np.array_equal(facekit.IdentityFilter(refs=alone, extractor=extractor).rules.refs, listed), type(alone)
        assert np.array_equal(facekit.IdentityFilter(nrefs=alone, refs=[face], extractor=extractor).rules.nrefs, listed)
    with pytest.raises(ValueError, match="refs and nrefs hold photos"):
        facekit.IdentityFilter(refs=3, extractor=extractor)


def test_the_distances_to_no_faces_are_none(extractor: facekit.Extractor) -> None:
    """face_recognition's face_distance([], face) is an empty array; facekit's said "embeddings
    of different sizes: 0 and 128"."""
    face, = extractor.extract(_read(REFERENCE))
    assert facekit.distance([], face).shape == (0,)
    assert facekit.compare([], face).shape == (0,)


def test_threads_sharing_an_extractor_get_each_frames_own_faces(extractor: facekit.Extractor) -> None:
    """Two threads in one Extractor's models at once gave one frame's faces to the other (8 faces
    for a photo of one), or LiteRT's "reference to internal data" error."""
    from concurrent.futures import ThreadPoolExecutor

    photos = [_read(SCENES / "two_people.jpg"), _read(REFERENCE)]
    alone = [extractor.extract(photo) for photo in photos]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(extractor.extract, photos * 12))
    for number, faces in enumerate(found):
        expected = alone[number % 2]
        assert len(faces) == len(expected), number
        assert all(np.array_equal(a.landmarks, b.landmarks) and np.array_equal(a.embedding, b.embedding)
                   for a, b in zip(faces, expected)), number


def test_faces_embedded_by_one_identity_plugin_are_refused_in_another_ones_metric(extractor: facekit.Extractor) -> None:
    """compare(identity="dlib-resnet") on sface vectors answered False from a Euclidean distance
    of sface vectors; each face knows the plugin that embedded it, so the mix-up is named."""
    obama, obama2 = (extractor.extract(_read(SCENES / name))[0] for name in ("obama.jpg", "obama2.jpg"))
    assert obama.embedded_by == "sface"
    mixed = "identity='vgg-face' but the face is embedded with 'sface'"
    with pytest.raises(ConfigError, match=mixed):
        facekit.compare(obama, obama2, identity="vgg-face")
    with pytest.raises(ConfigError, match=mixed):
        facekit.distance([obama2, obama], obama.embedding, identity="vgg-face")
    with pytest.raises(ConfigError, match=mixed):
        facekit.IdentityFilter(refs=[obama], identity="vgg-face")
    wanted = facekit.IdentityFilter(refs=[obama.embedding], identity="vgg-face")  # a bare vector names no plugin
    with pytest.raises(ConfigError, match=mixed):
        wanted.filter(obama2)


def test_a_bool_threshold_is_refused_as_other_non_numbers_are(extractor: facekit.Extractor) -> None:
    face = extractor.extract(_read(REFERENCE))[0]
    for flag in (True, False, np.True_):  # True was taken as 1.0, False as 0.0
        with pytest.raises(ConfigError, match="threshold must be a distance"):
            facekit.compare(face, face, threshold=flag)
        with pytest.raises(ConfigError, match="threshold must be a distance"):
            facekit.IdentityFilter(refs=[face], threshold=flag)


def test_a_reference_photo_that_is_a_folder_is_called_a_folder_by_the_library_and_the_cli(
        extractor: facekit.Extractor, cache_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    said = f"reference photo '{folder}' is a folder, not a photo"  # it was "does not exist"
    with pytest.raises(FacekitError) as refused:
        facekit.IdentityFilter(refs=[str(folder)], extractor=extractor)
    assert str(refused.value) == said
    result = run_facekit(f"input={REFERENCE}", f"output={tmp_path / 'out'}", f"filter.refs=[{folder}]",
                         "runner.progress=false", cwd=tmp_path, env={"FACEKIT_HOME": str(cache_home)})
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"facekit: error: {said}"]
    assert not (tmp_path / "out").exists()
