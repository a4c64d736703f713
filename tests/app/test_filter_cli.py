"""The identity filter through the command line: references, decisions, reasons, rejected faces."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import load_json, run_facekit
from conftest import DATA, SCENES, require_data

PEOPLE = DATA / "images" / "people"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three photos of p01 and two of p04 in one flat folder."""
    require_data()
    folder = tmp_path_factory.mktemp("mixed")
    for person, names in (("p01", ("img2.jpg", "img4.jpg", "img5.jpg")), ("p04", ("img14.jpg", "img15.jpg"))):
        for name in names:
            shutil.copy(PEOPLE / person / name, folder / f"{person}_{name}")
    return folder


def _faces(out: Path) -> dict[str, dict]:
    frames = load_json(out / "alignments.json")["frames"]
    return {name: frame["faces"][0] for name, frame in frames.items()}


def test_refs_keep_the_person_and_record_reasons(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    result = run_facekit("+identity=sface", f"input={mixed}", f"output={out}", "filter.save_rejected=true",
                         f"filter.refs=[{PEOPLE / 'p01' / 'img1.jpg'}]", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    meta = load_json(out / "alignments.json")["meta"]
    assert meta["plugins"]["identity"]["name"] == "sface" and meta["filter"]["metric"] == "cosine"
    for name, face in _faces(out).items():
        assert face["keep"] is name.startswith("p01"), (name, face["distance"])
        assert len(face["embedding"]) == 128
        if not face["keep"]:
            assert "mean distance to refs" in face["reason"] and face["crop"].startswith("rejected/")
        assert (out / face["crop"]).is_file()
    assert "2 face(s) rejected" in " ".join(result.stderr.split())
    assert "rejected p04_img14 face 0" in (out / "facekit.log").read_text()


def test_nrefs_drop_the_person(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    result = run_facekit(f"input={mixed}", f"output={out}", f"filter.nrefs=[{PEOPLE / 'p04' / 'img13.jpg'}]",
                         "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name, face in _faces(out).items():
        assert face["keep"] is name.startswith("p01")
        assert (face["crop"] is None) is name.startswith("p04")  # rejects get no file by default


def test_threshold_overrides_the_default(mixed: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    result = run_facekit(f"input={mixed}", f"output={out}", f"filter.refs=[{PEOPLE / 'p01' / 'img1.jpg'}]",
                         "filter.threshold=0.01", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_json(out / "alignments.json")["meta"]["filter"]["threshold"] == 0.01
    assert not any(face["keep"] for face in _faces(out).values())


def test_a_reference_with_two_faces_uses_the_largest_and_warns(mixed: Path, tmp_path: Path) -> None:
    result = run_facekit(f"input={mixed}", f"output={tmp_path / 'faces'}", "runner.progress=false",
                         f"filter.refs=[{SCENES / 'two_people.jpg'}]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "two_people.jpg holds 2 faces; using the largest" in " ".join(result.stderr.split())


@pytest.mark.parametrize("sweep", [[], ["-m", "filter.threshold=0.3,0.5"]], ids=["run", "sweep"])
@pytest.mark.parametrize("problem", ["missing", "unreadable", "faceless"])
def test_a_bad_reference_stops_before_any_input(mixed: Path, tmp_path: Path, problem: str, sweep: list[str]) -> None:
    """A sweep's too: its first job is refused, and the folders Hydra made for it are gone."""
    ref = tmp_path / f"{problem}.jpg"
    if problem == "unreadable":
        ref.write_text("not an image")
    elif problem == "faceless":
        import cv2
        import numpy as np

        cv2.imwrite(str(ref), np.full((200, 200, 3), 127, np.uint8))
    out = tmp_path / "faces"
    result = run_facekit(*sweep, f"input={mixed}", f"output={out}", f"filter.refs=[{ref}]", "runner.progress=false",
                         cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{problem}.jpg" in result.stderr.splitlines()[-1]
    assert not out.exists()  # no input was processed, and a refused run writes nothing


def test_a_threshold_without_references_warns_that_no_filter_runs(tmp_path: Path) -> None:
    result = run_facekit(f"input={require_data() / 'images' / 'scenes' / 'two_people.jpg'}", f"output={tmp_path / 'o'}",
                         "filter.threshold=0.3", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "filter.threshold=0.3 does nothing without filter.refs or filter.nrefs" in " ".join(result.stderr.split())
    faces = [f for frame in load_json(tmp_path / "o" / "alignments.json")["frames"].values() for f in frame["faces"]]
    assert len(faces) == 2 and all(face.get("keep", True) for face in faces)  # written only where a filter judged


def test_a_threshold_without_references_is_said_once_for_a_collection_not_once_a_source(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for person in ("p01", "p04"):
        (tree / person).symlink_to(require_data() / "images" / "people" / person)
    result = run_facekit(f"input={tree}", f"output={tmp_path / 'o'}", "filter.threshold=0.3", "runner.mode=serial",
                         "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stderr.split()).count("filter.threshold=0.3 does nothing without filter.refs") == 1


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
@pytest.mark.parametrize("collection", [False, True], ids=["single", "collection"])
def test_a_reference_photo_is_compared_by_content_on_a_rerun(tmp_path: Path, collection: bool) -> None:
    """Typed another way, the same photo resumes the output; replaced under its name, it is other
    settings, refused with nothing written (half the frames judged against each would be neither)."""
    source = tmp_path / "people"
    shutil.copytree(PEOPLE / "p01", source / "p01")
    if collection:
        shutil.copytree(PEOPLE / "p04", source / "p04")
    else:
        source = source / "p01"
    ref, out = tmp_path / "ref.jpg", tmp_path / "out"
    shutil.copy(PEOPLE / "p01" / "img1.jpg", ref)
    args = [f"input={source}", f"output={out}", "runner.progress=false"]
    assert run_facekit(*args, "filter.refs=[ref.jpg]", cwd=tmp_path).returncode == 0
    typed_otherwise = run_facekit(*args, f"filter.refs=[{ref},ref.jpg]", cwd=tmp_path)
    assert typed_otherwise.returncode == 0, typed_otherwise.stderr
    assert "nothing to do" in typed_otherwise.stderr, typed_otherwise.stderr
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    shutil.copy(PEOPLE / "p04" / "img13.jpg", ref)
    replaced = run_facekit(*args, "filter.refs=[ref.jpg]", cwd=tmp_path)
    assert replaced.returncode == 2, replaced.stderr
    assert "filter.refs: other reference photos there (compared by their content" in replaced.stderr, replaced.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == kept


def test_a_fingerprint_that_holds_reference_photos_as_typed_compares_by_what_they_hold_now(tmp_path: Path) -> None:
    """An older facekit wrote the paths as typed: such a file still resumes while the photo is the same."""
    from facekit.output.differences import same_fingerprint
    from facekit.output.reference_digests import reference_digests

    ref = tmp_path / "ref.jpg"
    shutil.copy(PEOPLE / "p01" / "img1.jpg", ref)
    older = {"input": "x", "filter": {"refs": [str(ref)], "nrefs": [], "threshold": 0.4, "metric": "cosine"}}
    now = {"input": "x", "filter": {"refs": reference_digests([ref]), "nrefs": [], "threshold": 0.4, "metric": "cosine"}}
    assert same_fingerprint(older, now)
    shutil.copy(PEOPLE / "p04" / "img13.jpg", ref)
    assert not same_fingerprint(older, now)
