"""Reading an output folder: every face, in a fixed order, found by its PNG text or its name."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curate_helpers import shared_extraction

from facekit.curate.inventory import read_output
from facekit.errors import FacekitError
from facekit.output.pngmeta import encode_png, read_png_head_text, read_png_text


def test_a_collection_is_read_source_by_source_with_its_measures(tmp_path_factory: pytest.TempPathFactory) -> None:
    people = shared_extraction("people", tmp_path_factory)
    faces = read_output(people)
    assert len(faces) >= 27 and [f.name for f in faces] == sorted([f.name for f in faces], key=lambda n: n.split("/")[0])
    assert all(f.path == people / f.name for f in faces)
    assert all(abs(f.yaw) < 90 and f.sharpness > 0 and f.face_px > 0 and f.landmarks.shape == (68, 2) for f in faces)


def test_a_folder_no_source_of_collection_json_names_is_left_out_and_said(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A source moved or removed since (its entry gone from collection.json) left its folder, and
    curation counted its faces beside the moved source's: the same photos twice."""
    copy = tmp_path / "copy"
    shutil.copytree(shared_extraction("people", tmp_path_factory), copy)
    before = read_output(copy)
    shutil.copytree(copy / "p01", copy / "p01_gone")  # as a source renamed since would leave it
    with caplog.at_level("WARNING"):
        after = read_output(copy)
    assert [f.name for f in after] == [f.name for f in before]
    assert "1 alignments file(s) there belong to no source its collection.json lists" in caplog.text


def test_a_source_whose_extraction_is_not_done_is_curated_as_it_is_and_said(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A stopped extraction folds its journal, so its partial source looked finished: curated
    with no word that it held only its first frames."""
    import json

    copy = tmp_path / "copy"
    shutil.copytree(shared_extraction("people", tmp_path_factory), copy)
    state = json.loads((copy / "collection.json").read_text())
    state["sources"][0]["state"] = "partial"
    (copy / "collection.json").write_text(json.dumps(state))
    with caplog.at_level("WARNING"):
        faces = read_output(copy)
    assert len(faces) >= 27
    assert (f"1 source(s) whose extraction is not done are curated with the faces they have: "
            f"{state['sources'][0]['source']} (partial)") in caplog.text


def test_a_file_without_text_is_found_by_its_name_and_a_missing_one_left_out(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(shared_extraction("people", tmp_path_factory), copy)
    stripped, gone = copy / "p01" / "img1_0.png", copy / "p04" / "img13_0.png"
    import cv2

    stripped.write_bytes(encode_png(cv2.imread(str(stripped)), {}))  # pixels kept, text dropped
    gone.unlink()
    faces = {f.name: f for f in read_output(copy)}
    assert faces["p01/img1_0.png"].path == stripped
    assert faces["p04/img13_0.png"].path is None


def test_the_head_reader_gives_the_text_the_whole_file_reader_does(tmp_path_factory: pytest.TempPathFactory) -> None:
    people = shared_extraction("people", tmp_path_factory)
    for path in sorted(people.rglob("*.png"))[:5]:
        assert read_png_head_text(path) == read_png_text(path) != {}


def test_a_folder_without_alignments_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FacekitError, match="no alignments.json under"):
        read_output(tmp_path)


def test_a_source_whose_extraction_stopped_before_its_fold_is_refused_naming_it(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(shared_extraction("people", tmp_path_factory), copy)
    (copy / "p04" / "alignments.json.journal").write_text("{}\n", encoding="utf-8")  # its frames, not yet folded
    with pytest.raises(FacekitError, match=r"p04 holds an unfinished extraction \(alignments.json.journal\)"):
        read_output(copy)
