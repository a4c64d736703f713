"""A rerun checks the face files of the frames it keeps: a face file deleted, cut short, or
(with ``resume.verify=full``) replaced by other bytes of the same size has its frame done again,
with one warning line, and the output ends equal to an uninterrupted run's."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import file_hashes, load_json, run_facekit
from conftest import DATA, require_data

CLIP = "faceswap_test.mp4"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_data()
    work = tmp_path_factory.mktemp("resume_verify")
    result = run_facekit(f"input={DATA / 'video' / CLIP}", "output=whole", "runner.progress=false", cwd=work)
    assert result.returncode == 0, result.stderr
    return work / "whole"


def _damage(out: Path, how: str) -> str:
    """Damages one face file of ``out`` as ``how`` says; the frame it belongs to."""
    frames = load_json(out / "alignments.json")["frames"]
    names = [name for name, frame in frames.items() if frame["faces"]]
    victim, other = frames[names[10]]["faces"][0], frames[names[20]]["faces"][0]
    path = out / victim["crop"]
    if how == "deleted":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: victim["crop_bytes"] // 2])
    else:  # another face's bytes, cut or padded to this file's size
        data = (out / other["crop"]).read_bytes()[: victim["crop_bytes"]]
        path.write_bytes(data + b"\0" * (victim["crop_bytes"] - len(data)))
    return names[10]


@pytest.mark.parametrize("how, verify", [("deleted", "size"), ("truncated", "size"), ("replaced", "full")])
def test_a_damaged_face_file_has_its_frame_done_again_and_the_output_equals_an_uninterrupted_run(
        uninterrupted: Path, tmp_path: Path, how: str, verify: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    _damage(out, how)
    result = run_facekit(f"input={DATA / 'video' / CLIP}", "output=out", "runner.progress=false",
                         f"resume.verify={verify}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "missing or damaged" in line]
    assert len(warnings) == 1 and "1 finished frame(s)" in warnings[0], result.stderr
    assert load_json(out / "run_summary.json")["frames"] == 1
    assert list(load_json(out / "alignments.json")["frames"].items()) == \
        list(load_json(uninterrupted / "alignments.json")["frames"].items())
    assert file_hashes(out, "*.png") == file_hashes(uninterrupted, "*.png")


def test_a_face_file_of_other_bytes_but_its_size_passes_the_default_check(uninterrupted: Path, tmp_path: Path) -> None:
    """What ``resume.verify=full`` is for: the default check stats the files and reads none."""
    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    victim = _damage(out, "replaced")
    replaced = file_hashes(out, "*.png")
    result = run_facekit(f"input={DATA / 'video' / CLIP}", "output=out", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0 and "missing or damaged" not in result.stderr, result.stderr
    assert "nothing to do: 91 frames already done" in result.stderr, result.stderr  # no frame run again
    assert file_hashes(out, "*.png") == replaced and victim in load_json(out / "alignments.json")["frames"]


def test_a_folder_rerun_counts_as_resumed_only_the_photos_still_there(tmp_path: Path) -> None:
    """A photo deleted since keeps its entry, which is not this run's to count: the log said
    'resuming: 2 frame(s) already done' and '2 already done' of a folder that held one of them."""
    require_data()
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        shutil.copy(DATA / "images" / "scenes" / name, folder / name)
    args = (f"input={folder}", f"output={tmp_path / 'faces'}", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    (folder / "biden.jpg").unlink()
    shutil.copy(DATA / "images" / "scenes" / "obama2.jpg", folder / "obama2.jpg")
    result = run_facekit(*args, cwd=tmp_path)
    said = " ".join(result.stderr.split())
    assert result.returncode == 0 and "resuming: 1 frame(s) already done" in said, result.stderr
    assert "done: 1 frame, 1 face" in said and "1 already done" in said, result.stderr
    assert load_json(tmp_path / "faces" / "run_summary.json")["resumed"] == 1


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_verify_full_reopens_a_collections_done_sources_and_remakes_a_lost_face_file(tmp_path: Path) -> None:
    """Done sources are not reopened, so a face file deleted from one stayed lost, and
    resume.verify=full, which promises to read every face file again, did nothing."""
    require_data()
    tree = tmp_path / "tree"
    for person in ("p01", "p04"):
        (tree / person).parent.mkdir(exist_ok=True)
        (tree / person).symlink_to(DATA / "images" / "people" / person, target_is_directory=True)
    args = (f"input={tree}", f"output={tmp_path / 'out'}", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    lost = next((tmp_path / "out" / "p04").glob("*.png"))
    kept = file_hashes(tmp_path / "out", "*/*.png")
    lost.unlink()
    plain = run_facekit(*args, cwd=tmp_path)
    assert plain.returncode == 0 and "nothing to do" in plain.stderr and not lost.exists()  # size: done sources trusted
    full = run_facekit(*args, "resume.verify=full", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    assert "1 finished frame(s) have a face file that is missing or damaged" in " ".join(full.stderr.split())
    assert file_hashes(tmp_path / "out", "*/*.png") == kept


def test_a_rerun_that_writes_removes_the_temporary_files_a_killed_run_left_and_a_refused_one_keeps_them(
        uninterrupted: Path, tmp_path: Path) -> None:
    """``kill -9`` mid-write leaves ``.<face file>.<hex>.tmp`` (up to a whole face file each):
    the next run that writes there removes them, in the folder and the ones it writes below it;
    a rerun refused for its settings writes nothing, so it removes nothing either."""
    out = tmp_path / "out"
    shutil.copytree(uninterrupted, out)
    left = [out / ".faceswap_test_000012_0.png.0123456789abcdef.tmp",
            out / "rejected" / ".faceswap_test_000013_0.png.fedcba9876543210.tmp",
            out / "masks" / "components" / ".faceswap_test_000012_0.png.00000000ffffffff.tmp",
            out / "masks" / "components" / "rejected" / ".faceswap_test_000013_0.png.00000000eeeeeeee.tmp"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a PNG")
    mine = out / ".notes.txt.tmp"  # not one of facekit's: kept
    mine.write_text("mine")
    refused = run_facekit(f"input={DATA / 'video' / CLIP}", f"output={out}", "output.size=128", cwd=tmp_path)
    assert refused.returncode == 2 and all(path.exists() for path in left), refused.stderr
    _damage(out, "deleted")
    again = run_facekit(f"input={DATA / 'video' / CLIP}", f"output={out}", "runner.progress=false", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert not any(path.exists() for path in left) and mine.exists()
    assert "removed 4 temporary file(s) a stopped run left" in again.stderr, again.stderr
