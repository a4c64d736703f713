"""``output.embeddings=true`` through the command line: every face's identity embedding in the
alignments file, kept and rejected faces alike, without a filter; the same numbers a filter run
computes, in worker processes, on threads and from the analysis cache; none by default."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import copy_flat, load_json, run_facekit
from conftest import DATA, SCENES, require_data
from facekit.records import EMBEDDING_DECIMALS

pytestmark = pytest.mark.slow  # photos extracted with the identity filter and embeddings stored, five runs

PEOPLE = DATA / "images" / "people"
#: three portraits of three people, and a photo of two people (``quality.max_faces=1`` rejects one)
PHOTOS = (PEOPLE / "p01" / "img1.jpg", PEOPLE / "p04" / "img13.jpg", PEOPLE / "p05" / "img16.jpg",
          SCENES / "two_people.jpg")
SFACE_SIZE = 128


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_data()
    return copy_flat(PHOTOS, tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model and analysis cache for the module's runs, so the cached run finds the filter run's entry."""
    return tmp_path_factory.mktemp("home")


def _run(photos: Path, output: Path, home: Path, *extra: str, code: int = 0) -> str:
    result = run_facekit(f"input={photos}", f"output={output}", "runner.progress=false", *extra,
                         cwd=output.parent, env={"FACEKIT_HOME": str(home)})
    assert result.returncode == code, result.stderr[-4000:]
    return result.stderr


def _embeddings(output: Path) -> dict[tuple[str, int], list[float] | None]:
    frames = load_json(output / "alignments.json")["frames"]
    return {(name, n): face.get("embedding") for name, frame in frames.items() for n, face in enumerate(frame["faces"])}


@pytest.fixture(scope="module")
def filter_run(photos: Path, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filter run on threads that stores its analysis in the cache: the embeddings to match."""
    output = tmp_path_factory.mktemp("filter") / "faces"
    _run(photos, output, home, f"filter.refs=[{PHOTOS[0]}]", "runner.workers=0", "cache.enabled=true")
    return output


@pytest.fixture(scope="module")
def embeddings_run(photos: Path, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No filter, two worker processes, no cache, and one face of the two-people photo rejected."""
    output = tmp_path_factory.mktemp("embeddings") / "faces"
    stderr = _run(photos, output, home, "output.embeddings=true", "quality.max_faces=1", "runner.workers=2",
                  "cache.enabled=false")
    assert "in 2 worker processes" in stderr
    return output


def test_every_kept_and_rejected_face_stores_the_embedding_a_filter_run_computes(embeddings_run: Path,
                                                                                  filter_run: Path) -> None:
    stored, wanted = _embeddings(embeddings_run), _embeddings(filter_run)
    assert stored.keys() == wanted.keys() and len(stored) == len(PHOTOS) + 1
    for key, embedding in stored.items():
        assert embedding is not None and len(embedding) == SFACE_SIZE, key
        assert embedding == [round(v, EMBEDDING_DECIMALS) for v in embedding], key
        assert embedding == wanted[key], key
    faces = [face for frame in load_json(embeddings_run / "alignments.json")["frames"].values()
             for face in frame["faces"]]
    assert [face.get("keep", True) for face in faces].count(False) == 1
    assert all("distance" not in face for face in faces)  # stored, not judged: no filter was set


def test_the_setting_is_in_the_meta_and_the_resume_fingerprint(embeddings_run: Path, filter_run: Path) -> None:
    meta = load_json(embeddings_run / "alignments.json")["meta"]
    assert meta["embeddings"] is True and meta["fingerprint"]["embeddings"] is True
    assert meta["plugins"]["identity"]["name"] == "sface" and "filter" not in meta
    assert "embeddings" not in load_json(filter_run / "alignments.json")["meta"]["fingerprint"]


def test_a_rerun_without_it_is_refused_rather_than_mixing_frames(embeddings_run: Path, photos: Path,
                                                                 home: Path, tmp_path: Path) -> None:
    output = tmp_path / "faces"
    shutil.copytree(embeddings_run, output)
    stderr = _run(photos, output, home, "quality.max_faces=1", code=2)
    assert "written with other settings" in stderr and "embeddings" in stderr
    _run(photos, output, home, "output.embeddings=true", "quality.max_faces=1")  # the same settings resume


def test_a_run_served_from_the_analysis_cache_stores_the_same_embeddings(photos: Path, home: Path,
                                                                        filter_run: Path, tmp_path: Path) -> None:
    output = tmp_path / "faces"
    _run(photos, output, home, "output.embeddings=true", "cache.enabled=true", "output.size=128")
    assert load_json(output / "run_summary.json")["mode"] == "cached"
    assert _embeddings(output) == _embeddings(filter_run)


def test_a_default_run_stores_no_embeddings_and_loads_no_identity_plugin(photos: Path, home: Path,
                                                                        tmp_path: Path) -> None:
    output = tmp_path / "faces"
    _run(photos, output, home)
    embeddings = _embeddings(output)
    assert embeddings and all(value is None for value in embeddings.values())
    meta = load_json(output / "alignments.json")["meta"]
    assert "identity" not in meta["plugins"] and "embeddings" not in meta["fingerprint"]


def test_each_source_of_a_collection_stores_its_faces_embeddings(embeddings_run: Path, home: Path,
                                                                tmp_path: Path) -> None:
    """A tree of two sources: every face of each has the embedding the single-input run stored."""
    tree = tmp_path / "tree"
    copy_flat(PHOTOS[:2], tree / "first")
    copy_flat(PHOTOS[2:], tree / "second")
    output = tmp_path / "faces"
    _run(tree, output, home, "output.embeddings=true")
    wanted = _embeddings(embeddings_run)
    for source in ("first", "second"):
        stored = _embeddings(output / source)
        assert stored and all(embedding == wanted[key] for key, embedding in stored.items()), source
    assert len(_embeddings(output / "first")) + len(_embeddings(output / "second")) == len(wanted)
