"""Masks through the command: ``output.masks`` while extracting (single source, collection),
``output.mask_format`` (alpha, file), ``task=mask`` on an existing output and
``mask.import`` of edited masks, and the mistakes each refuses."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import file_hashes, load_json, run_facekit, stopped_midway
from conftest import require_data
from facekit.faces.masks import mask_matrix
from facekit.output.masks import mask_from_dict
from facekit.output.pngmeta import MASKS_KEY, read_png_text

MASKS = "output.masks=[components,extended]"


def _extract(out: Path, *args: str) -> None:
    result = run_facekit(f"input={require_data() / 'images' / 'scenes'}", f"output={out}", "runner.progress=false",
                         *args, cwd=out.parent)
    assert result.returncode == 0, result.stderr


def _mask(out: Path, *args: str):
    return run_facekit("task=mask", f"input={out}", *args, cwd=out.parent)


def stored_masks(out: Path) -> dict[str, dict]:
    """Every face file's stored masks, by face file then mask name, from alignments.json."""
    frames = load_json(out / "alignments.json")["frames"]
    return {face["crop"]: face.get("mask", {}) for frame in frames.values() for face in frame["faces"] if face["crop"]}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 127, b > 127
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def with_masks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("with") / "faces"
    _extract(out, MASKS, "output.mask_format=file")
    return out


@pytest.fixture(scope="module")
def added_later(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Extracted without masks, then given them by task=mask."""
    out = tmp_path_factory.mktemp("later") / "faces"
    _extract(out)
    result = _mask(out, MASKS, "output.mask_format=file")
    assert result.returncode == 0, result.stderr
    return out


def test_two_runs_give_the_same_bytes_of_masks_mask_files_and_face_files(with_masks: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _extract(again, MASKS, "output.mask_format=file")
    assert file_hashes(again, "*.png", "masks/*/*.png") == file_hashes(with_masks, "*.png", "masks/*/*.png")
    assert stored_masks(again) == stored_masks(with_masks)


def test_every_face_gets_each_mask_stored_at_128_px_with_its_matrix_and_the_legacy_centering(with_masks: Path) -> None:
    masks = stored_masks(with_masks)
    assert len(masks) == 33 and all(set(found) == {"components", "extended"} for found in masks.values())
    for found in masks.values():
        for entry in found.values():
            assert entry["size"] == 128 and entry["centering"] == "legacy" and np.shape(entry["affine"]) == (2, 3)
            assert mask_from_dict(entry).pixels.any()


def test_each_face_file_carries_its_masks_as_alignments_json_stores_them(with_masks: Path) -> None:
    for face_file, masks in stored_masks(with_masks).items():
        assert json.loads(read_png_text(with_masks / face_file)[MASKS_KEY]) == masks


def test_mask_files_are_the_stored_masks_at_the_face_files_size(with_masks: Path) -> None:
    for face_file, masks in stored_masks(with_masks).items():
        for name, entry in masks.items():
            written = cv2.imread(str(with_masks / "masks" / name / face_file), cv2.IMREAD_UNCHANGED)
            assert written.shape == (256, 256)
            expected = cv2.resize(mask_from_dict(entry).pixels, (256, 256), interpolation=cv2.INTER_CUBIC)
            assert np.array_equal(written, expected)


def test_a_run_without_masks_writes_no_mask_key_folder_or_text(added_later: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    _extract(plain)
    assert not (plain / "masks").exists()
    text = (plain / "alignments.json").read_text()
    assert '"mask"' not in text and '"outline"' not in text and '"masks"' not in text
    assert all(MASKS_KEY not in read_png_text(path) for path in plain.glob("*.png"))


def test_task_mask_on_an_output_extracted_without_masks_gives_the_masks_of_extracting_with_them(
        with_masks: Path, added_later: Path) -> None:
    assert stored_masks(added_later) == stored_masks(with_masks)
    assert file_hashes(added_later, "*.png", "masks/*/*.png") == file_hashes(with_masks, "*.png", "masks/*/*.png")
    mine, theirs = load_json(added_later / "alignments.json")["meta"], load_json(with_masks / "alignments.json")["meta"]
    assert mine["fingerprint"] == theirs["fingerprint"]  # the extraction with masks resumes there


def test_task_mask_run_again_skips_the_source_it_finished(added_later: Path) -> None:
    before = file_hashes(added_later, "*.png", "masks/*/*.png", "alignments.json")
    result = _mask(added_later, MASKS, "output.mask_format=file")
    assert result.returncode == 0 and "1 already done" in result.stderr
    assert file_hashes(added_later, "*.png", "masks/*/*.png", "alignments.json") == before


def test_the_extraction_command_run_again_after_task_mask_finds_nothing_to_do(added_later: Path) -> None:
    before = file_hashes(added_later, "*.png", "*.json", "masks/*/*.png")
    result = run_facekit(f"input={require_data() / 'images' / 'scenes'}", f"output={added_later}",
                         "runner.progress=false", cwd=added_later.parent)
    assert result.returncode == 0 and "nothing to do" in result.stderr, result.stderr
    assert file_hashes(added_later, "*.png", "*.json", "masks/*/*.png") == before


def test_the_extraction_command_with_frames_to_do_after_task_mask_is_refused_and_touches_nothing(
        added_later: Path, tmp_path: Path) -> None:
    """Its new faces would have no masks among faces that have them."""
    out = tmp_path / "faces"
    shutil.copytree(added_later, out)
    next(out.glob("*.png")).unlink()  # that frame is done again
    before = file_hashes(out, "*.png", "*.json", "*.log", ".hydra/*", "masks/*/*.png")
    result = run_facekit(f"input={require_data() / 'images' / 'scenes'}", f"output={out}", "runner.progress=false",
                         cwd=tmp_path)
    assert result.returncode != 0
    assert "task=mask added those masks after the extraction" in result.stderr.splitlines()[-1]
    assert "done again" not in result.stderr, result.stderr  # refused: no frame is, so none is said to be
    assert file_hashes(out, "*.png", "*.json", "*.log", ".hydra/*", "masks/*/*.png") == before


def test_an_exported_mask_edited_and_imported_reads_back_as_the_edit(with_masks: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    _extract(out, MASKS, "output.mask_format=file")
    edits = tmp_path / "edits"
    edited = {}
    for path in sorted((out / "masks" / "components").glob("*.png")):
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        mask[: mask.shape[0] // 2, : mask.shape[1] // 2] = 0  # erase the top-left quarter
        (edits / "components").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(edits / "components" / path.name), mask)
        edited[path.name] = mask
    result = _mask(out, f"mask.import={edits}")
    assert result.returncode == 0, result.stderr
    stored = stored_masks(out)
    scores = {name: iou(cv2.resize(mask_from_dict(stored[name]["components"]).pixels, (256, 256),
                                   interpolation=cv2.INTER_CUBIC), edit) for name, edit in edited.items()}
    assert len(scores) == 33 and [f"{n}: {s:.4f}" for n, s in scores.items() if not s >= 0.99] == []
    untouched = stored_masks(with_masks)  # the mask not imported is kept as it was
    assert all(stored[name]["extended"] == untouched[name]["extended"] for name in edited)
    assert all(json.loads(read_png_text(out / name)[MASKS_KEY]) == stored[name] for name in edited)
    # masks/ holds the edits too: it kept the unedited masks beside the edited ones stored
    written = {name: cv2.imread(str(out / "masks" / "components" / name), cv2.IMREAD_GRAYSCALE) for name in edited}
    assert [name for name, edit in edited.items() if not iou(written[name], edit) >= 0.99] == []


def test_a_rerun_does_again_a_frame_whose_mask_file_is_gone_and_it_comes_back(with_masks: Path, tmp_path: Path) -> None:
    """Resume checked the face files only: a mask file deleted stayed missing, "nothing to do"."""
    out = tmp_path / "faces"
    shutil.copytree(with_masks, out)
    gone = next((out / "masks" / "components").glob("*.png"))
    held = gone.read_bytes()
    gone.unlink()
    result = run_facekit(f"input={require_data() / 'images' / 'scenes'}", f"output={out}", "runner.progress=false",
                         MASKS, "output.mask_format=file", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 finished frame(s) have a face file or mask file that is missing" in " ".join(result.stderr.split())
    assert gone.read_bytes() == held


def test_an_import_folder_without_mask_files_is_refused_and_one_whose_names_match_no_face_warns(
        with_masks: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces"
    shutil.copytree(with_masks, out)
    before = (out / "alignments.json").read_bytes()
    nested = tmp_path / "nested"  # the folder above masks/: the mask folders are one level further down
    shutil.copytree(out / "masks", nested / "masks")
    for folder in (tmp_path / "empty", nested):
        folder.mkdir(exist_ok=True)
        result = _mask(out, f"mask.import={folder}")
        assert result.returncode == 2 and "holds no <mask name>/<face file>.png" in result.stderr, result.stderr
    assert (out / "alignments.json").read_bytes() == before
    renamed = tmp_path / "renamed" / "components"
    renamed.mkdir(parents=True)
    first = next((out / "masks" / "components").glob("*.png"))
    shutil.copy(first, renamed / f"edited_{first.name}")
    result = _mask(out, f"mask.import={renamed.parent}")
    assert result.returncode == 0 and "no mask was imported" in result.stderr, result.stderr
    shutil.copy(first, renamed / first.name)  # one named as its face file now: the other is named as left out
    result = _mask(out, f"mask.import={renamed.parent}")
    said = " ".join(result.stderr.split())
    assert result.returncode == 0 and "1 of its 2 mask files are named as no face file" in said, result.stderr


def test_alpha_writes_rgba_face_files_whose_alpha_is_the_first_mask(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    _extract(out, "output.masks=[extended,components]", "output.mask_format=alpha", "output.mask_size=256")
    for face_file, masks in stored_masks(out).items():
        image = cv2.imread(str(out / face_file), cv2.IMREAD_UNCHANGED)
        assert image.shape == (256, 256, 4)
        assert np.array_equal(image[..., 3], mask_from_dict(masks["extended"]).pixels)
    assert not (out / "masks").exists()


def test_an_import_into_rgba_face_files_puts_the_edited_first_mask_in_their_alpha(tmp_path: Path) -> None:
    """The alpha channel kept the unedited mask while the stored mask was the edit."""
    out = tmp_path / "faces"
    _extract(out, "output.masks=[extended,components]", "output.mask_format=alpha", "output.mask_size=256")
    edits = tmp_path / "edits" / "extended"
    edits.mkdir(parents=True)
    for face_file in stored_masks(out):
        alpha = cv2.imread(str(out / face_file), cv2.IMREAD_UNCHANGED)[..., 3].copy()
        alpha[:128] = 0  # the top half erased
        cv2.imwrite(str(edits / face_file), alpha)
    result = _mask(out, f"mask.import={edits.parent}", "output.mask_size=256")
    assert result.returncode == 0, result.stderr
    for face_file, masks in stored_masks(out).items():
        image = cv2.imread(str(out / face_file), cv2.IMREAD_UNCHANGED)
        assert image.shape == (256, 256, 4) and not image[:128, :, 3].any(), face_file
        assert np.array_equal(image[..., 3], mask_from_dict(masks["extended"]).pixels), face_file


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_masks_through_a_collection_reach_every_source_and_task_mask_adds_the_same_to_one(tmp_path: Path) -> None:
    people = require_data() / "images" / "people"
    out, later = tmp_path / "people", tmp_path / "later"
    for folder, masks in ((out, ["output.masks=[components]"]), (later, [])):
        result = run_facekit(f"input={people}", f"output={folder}", "runner.progress=false", *masks, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    added = _mask(later, "output.masks=[components]")
    assert added.returncode == 0, added.stderr
    sources = sorted(path.parent.relative_to(out) for path in out.rglob("alignments.json"))
    assert len(sources) == 7
    for source in sources:
        masks = stored_masks(out / source)
        assert masks and all(set(found) == {"components"} for found in masks.values())
        assert stored_masks(later / source) == masks


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_task_mask_leaves_a_collections_unfinished_source_for_the_extraction_to_finish_first(tmp_path: Path) -> None:
    """Masks would change the source's settings under the extraction's journal: it could not
    resume. So the source is named and left out; once the extraction finishes it, it is masked."""
    tree, out = tmp_path / "tree", tmp_path / "people"
    tree.mkdir()
    for person in ("p01", "p04"):
        (tree / person).symlink_to(require_data() / "images" / "people" / person)
    extract = (f"input={tree}", f"output={out}", "runner.progress=false")
    assert run_facekit(*extract, cwd=tmp_path).returncode == 0
    stopped_midway(out, "p04", "p04", 2)
    untouched = (out / "p04" / "alignments.json").read_bytes()
    result = _mask(out, "output.masks=[components]")
    assert result.returncode == 0, result.stderr
    assert f"{out / 'p04'}: its extraction is partial; masks go to finished sources only" in result.stderr, result.stderr
    assert "in 1 source folder(s)" in result.stderr and "1 unfinished, left out" in result.stderr
    assert (out / "p04" / "alignments.json").read_bytes() == untouched
    assert all(set(masks) == {"components"} for masks in stored_masks(out / "p01").values())
    resumed = run_facekit(*extract, cwd=tmp_path)  # the extraction resumes the source, under its own settings
    assert resumed.returncode == 0 and "resuming: 2 frame(s) already done" in resumed.stderr, resumed.stderr
    again = _mask(out, "output.masks=[components]")
    assert again.returncode == 0 and "1 already done" in again.stderr and "unfinished" not in again.stderr, again.stderr
    assert stored_masks(out / "p04") and all(set(m) == {"components"} for m in stored_masks(out / "p04").values())


def test_the_mesh_mask_comes_from_the_outline_the_facemesh_aligner_records(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    _extract(out, "+aligner=facemesh", "output.masks=[mesh]")
    frames = load_json(out / "alignments.json")["frames"]
    faces = [face for frame in frames.values() for face in frame["faces"]]
    assert faces and all(len(face["outline"]) == 33 and set(face["mask"]) == {"mesh"} for face in faces)


@pytest.mark.parametrize(("args", "says"), [
    (["output.masks=[nose]"], "unknown masker 'nose'; choose one of: components, extended, mesh"),
    (["output.mask_format=alpha"], "output.mask_format=alpha writes masks, but none is asked for"),
    (["output.masks=[components]", "output.mask_format=png"], "mask_format"),
    (["output.masks=[components]", "output.mask_size=0"], "output.mask_size must be a whole number of pixels from 1 to 8192, got 0"),
    (["output.masks=[components]", "output.mask_size=99999"], "output.mask_size must be a whole number of pixels from 1 to 8192, got 99999"),
    (["output.masks=[components,components]"], "names a mask twice"),
    pytest.param(["output.masks=[mesh]", "+aligner=dlib"],
                 "masker 'mesh' draws the face outline an aligner traces, and aligner 'dlib' traces none: "
                 "extract with +aligner=facemesh",
                 marks=pytest.mark.skipif(importlib.util.find_spec("facekit_dlib") is None,
                                          reason="an aligner that traces no outline: the dlib plugin is not installed")),
], ids=["unknown masker", "alpha without masks", "unknown format", "zero size", "oversized", "twice",
        "mesh without an outline"])
def test_a_wrong_mask_setting_stops_extraction_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    result = run_facekit(f"input={require_data() / 'images' / 'scenes' / 'biden.jpg'}", f"output={tmp_path / 'o'}",
                         *args, cwd=tmp_path)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "o").exists()  # refused before the run: no lock, no .hydra/, no log


def test_task_mask_refuses_a_folder_without_alignments_and_a_request_without_masks(added_later: Path,
                                                                                  tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = _mask(empty, "output.masks=[components]")
    assert nothing.returncode == 2 and "no alignments.json under" in nothing.stderr
    bare = _mask(added_later)
    assert bare.returncode == 2 and "task=mask needs masks to make or import" in bare.stderr
    for result in (nothing, bare):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_task_mask_asked_for_mesh_where_no_outline_was_recorded_says_so_in_one_line(added_later: Path) -> None:
    result = _mask(added_later, "output.masks=[mesh]")
    assert result.returncode == 2 and "needs the face outline an aligner traces" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_masks_of_a_head_centred_extraction_are_stored_with_its_centering_and_task_mask_gives_the_same(
        tmp_path: Path) -> None:
    out, later = tmp_path / "head", tmp_path / "later"
    _extract(out, MASKS, "output.centering=head")
    _extract(later, "output.centering=head")
    added = _mask(later, MASKS)
    assert added.returncode == 0, added.stderr
    frames = load_json(out / "alignments.json")["frames"]
    faces = [face for frame in frames.values() for face in frame["faces"] if face["crop"]]
    assert len(faces) == 33
    for face in faces:
        assert face["centering"] == "head"
        for entry in face["mask"].values():  # the mask square is the head crop's, not legacy's
            assert entry["centering"] == "head"
            assert np.allclose(entry["affine"], mask_matrix(np.asarray(face["matrix"]), 256, 128), atol=1e-5)
    assert stored_masks(later) == stored_masks(out)


def test_task_mask_on_a_missing_face_file_is_one_line_without_opencvs_warning(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    _extract(out)
    next(out.glob("*.png")).unlink()
    result = _mask(out, "output.masks=[components]")
    assert result.returncode == 2 and "is missing or damaged; run the extraction again" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "WARN" not in result.stderr, result.stderr


def test_mask_and_recrop_on_an_extraction_killed_before_its_first_fold_say_it_is_unfinished(tmp_path: Path) -> None:
    """A hard kill leaves the journal alone, no alignments.json: "give an extraction's output
    folder" sent the user looking for another folder; the extraction run again finishes it."""
    from facekit.output.alignments import AlignmentsWriter

    out = tmp_path / "killed"
    AlignmentsWriter(out / "alignments.json", {"input": "clip.mp4", "fingerprint": {}})  # never closed: as killed
    assert (out / "alignments.json.journal").is_file() and not (out / "alignments.json").exists()
    for result in (_mask(out, "output.masks=[components]"),
                   run_facekit("task=recrop", f"input={out}", f"output={tmp_path / 'recropped'}", cwd=tmp_path)):
        assert result.returncode == 2, result.stderr
        assert "holds an unfinished extraction (alignments.json.journal); run the extraction again" in result.stderr


def test_task_mask_given_an_output_folder_is_refused_rather_than_writing_in_place_unasked(added_later: Path,
                                                                                          tmp_path: Path) -> None:
    """It masks in place: an output= it did not read looked like a copy being made."""
    before = file_hashes(added_later, "*.png", "*.json", "masks/*/*.png")
    result = _mask(added_later, "output.masks=[components]", f"output={tmp_path / 'masked'}")
    assert result.returncode == 2 and "task=mask adds masks in place" in result.stderr.strip().splitlines()[-1]
    assert file_hashes(added_later, "*.png", "*.json", "masks/*/*.png") == before
    assert not (tmp_path / "masked").exists()


def test_task_mask_on_a_folder_above_an_extraction_leaves_no_lock_file_in_it(tmp_path: Path) -> None:
    """The folder is the user's (photos beside the extraction): only facekit's folders keep files of facekit's."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    _extract(mine / "faces")
    result = _mask(mine, "output.masks=[components]")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["faces", "notes.txt"]


LATE_MASKER = '''\
from dataclasses import dataclass

import numpy as np

from facekit.plugin import hookimpl
from facekit.plugin.spec import PluginSpec


@dataclass
class C:
    pass


class Late:
    calls = 0

    def mask(self, image, requests):
        Late.calls += 1
        if Late.calls == 3:
            raise RuntimeError("mask broken on purpose")
        return [np.full((r.size, r.size), 255, np.uint8) for r in requests]


@hookimpl
def facekit_maskers():
    return [PluginSpec("late", "masker", lambda config, store: Late(), C)]
'''


def test_task_mask_stopped_by_a_masker_names_it_and_leaves_the_folder_whole_for_the_extraction(
        tmp_path: Path) -> None:
    """The face files written again before the failure carried new bytes while alignments.json
    kept the old hashes: the extraction run again took them for damaged and did them again. The
    message named neither the masker nor its error's type."""
    import hashlib

    from cli_helpers import install_module, path_with

    out = tmp_path / "faces"
    _extract(out)
    install_module(tmp_path / "site", "toy_late_masker", LATE_MASKER, "late")
    result = run_facekit("task=mask", f"input={out}", "output.masks=[late]", cwd=tmp_path,
                         env=path_with(tmp_path / "site"))
    assert result.returncode == 2, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(error) == 1 and "masker 'late' failed on" in error[0] and \
        "RuntimeError: mask broken on purpose" in error[0], result.stderr
    faces = [face for frame in load_json(out / "alignments.json")["frames"].values() for face in frame["faces"]
             if face["crop"]]
    assert sum("mask" in face for face in faces) >= 1  # some were done before the failure
    for face in faces:
        assert hashlib.sha256((out / face["crop"]).read_bytes()).hexdigest() == face["crop_sha256"], face["crop"]
    again = run_facekit(f"input={require_data() / 'images' / 'scenes'}", f"output={out}", "runner.progress=false",
                        cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
