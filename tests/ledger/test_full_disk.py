"""A disk that fills up mid-run (a small tmpfs, mounted by the test: root, as CI runs): one error
line, no face file left without its journal line, a collection's source left ``partial``, and
once space is freed the same command ends as a run that never failed."""
from __future__ import annotations

import json
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from cli_helpers import file_hashes, load_json, run_facekit
from conftest import DATA, require_data

CLIP = DATA / "video" / "faceswap_test.mp4"  # 91 frames, a face each: about 13 MB of face files
ARGS = ("runner.progress=false", "output.save_every=1")


@contextmanager
def small_disk(folder: Path, megabytes: int) -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "facekit-full", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a full disk is made with a tmpfs mount (root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _journaled(folder: Path) -> set[str]:
    """Frames in the folder's alignments file and journal."""
    names = set(load_json(folder / "alignments.json")["frames"]) if (folder / "alignments.json").exists() else set()
    journal = folder / "alignments.json.journal"
    if journal.exists():
        for line in journal.read_bytes().split(b"\n")[1:]:
            try:
                names.add(json.loads(line)["name"])
            except ValueError:
                pass  # a line cut off by the full disk
    return names


def _no_orphans(folder: Path) -> None:
    frames = _journaled(folder)
    orphans = [png.name for png in folder.glob("*.png") if png.name.rsplit("_", 1)[0] not in frames]
    assert orphans == [], f"face files without their journal line in {folder}: {orphans[:5]}"


def _one_error_line(result) -> None:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("facekit: error")]
    warnings = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert len(errors) == 1 and "cannot write" in errors[0] and warnings == [], result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["single", "collection"])
def test_a_full_disk_ends_in_one_line_leaves_no_orphan_and_the_rerun_equals_an_uninterrupted_run(
        kind: str, tmp_path: Path) -> None:
    require_data()
    if kind == "single":
        source, folders = CLIP, [""]
    else:
        source = tmp_path / "tree"
        for name in ("a", "b"):
            (source / name).mkdir(parents=True)
            (source / name / "clip.mp4").symlink_to(CLIP)
        folders = ["a/clip", "b/clip"]
    whole = run_facekit(f"input={source}", f"output={tmp_path / 'whole'}", *ARGS, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    with small_disk(tmp_path / "disk", 32) as disk:  # room for 7 MB of faces (single) or 20 MB (two sources)
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (25 if kind == "single" else 12) * 1024 * 1024)
        full = run_facekit(f"input={source}", f"output={disk / 'out'}", *ARGS, cwd=tmp_path)
        _one_error_line(full)
        for folder in folders:
            if (disk / "out" / folder).exists():
                _no_orphans(disk / "out" / folder)
        if kind == "collection":
            states = {e["source"]: e["state"] for e in load_json(disk / "out" / "collection.json")["sources"]}
            assert "failed" not in states.values() and "partial" in states.values(), states
        filler.unlink()
        again = run_facekit(f"input={source}", f"output={disk / 'out'}", *ARGS, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        for folder in folders:
            ours, theirs = disk / "out" / folder, tmp_path / "whole" / folder
            assert list(load_json(ours / "alignments.json")["frames"].items()) == \
                list(load_json(theirs / "alignments.json")["frames"].items())
            assert file_hashes(ours, "*.png") == file_hashes(theirs, "*.png")
        if kind == "collection":
            assert {e["state"] for e in load_json(disk / "out" / "collection.json")["sources"]} == {"done"}


def _in_finished_shards(folder: Path) -> set[str]:
    names = set()
    for journal in (folder / ".facekit-shards").glob("*.jsonl"):
        for line in journal.read_bytes().split(b"\n")[1:]:
            try:
                names.add(json.loads(line)["name"])
            except (ValueError, KeyError):
                pass  # the end line
    return names


@pytest.mark.slow
def test_a_full_disk_on_ray_leaves_no_face_file_outside_a_finished_shard_and_the_rerun_equals_a_local_run(
        tmp_path: Path) -> None:
    """A shard whose writes fail removes the face files it had landed (its journal is abandoned,
    so nothing else would name them); the rerun runs the failed shards and ends as a local run."""
    require_data()
    pytest.importorskip("ray", reason="runner=ray needs Ray: pip install '.[ray]'")
    loopback = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    ray_args = ("runner=ray", "runner.shard_frames=15", *ARGS)
    whole = run_facekit(f"input={CLIP}", f"output={tmp_path / 'whole'}", *ARGS, cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    with small_disk(tmp_path / "disk", 32) as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 25 * 1024 * 1024)
        full = run_facekit(f"input={CLIP}", f"output={disk / 'out'}", *ray_args, cwd=tmp_path, env=loopback)
        assert full.returncode != 0 and "Traceback" not in full.stderr, full.stderr
        written = [line for line in full.stderr.splitlines() if "cannot write" in line]
        assert written and all(f"cannot write {disk / 'out'}" in line for line in written), full.stderr  # never "None"
        out = disk / "out"
        named = _journaled(out) | _in_finished_shards(out)
        orphans = [png.name for png in out.glob("*.png") if png.name.rsplit("_", 1)[0] not in named]
        assert orphans == [], f"face files outside any finished shard: {orphans[:5]}"
        filler.unlink()
        again = run_facekit(f"input={CLIP}", f"output={out}", *ray_args, cwd=tmp_path, env=loopback)
        assert again.returncode == 0, again.stderr
        assert list(load_json(out / "alignments.json")["frames"].items()) == \
            list(load_json(tmp_path / "whole" / "alignments.json")["frames"].items())
        assert file_hashes(out, "*.png") == file_hashes(tmp_path / "whole", "*.png")


def test_a_full_disk_is_the_reason_of_the_source_it_stopped_and_the_others_say_that_source_stopped_them(
        tmp_path: Path) -> None:
    """Every open source had the first one's "cannot write .../a: ...; the frames before
    a_000031 are saved" as its own reason, though some wrote nothing."""
    require_data()
    source = tmp_path / "tree"
    for name in ("a", "b"):
        (source / name).mkdir(parents=True)
        (source / name / "clip.mp4").symlink_to(CLIP)
    with small_disk(tmp_path / "disk", 1) as disk:  # a's 10 frames are read (and b opened) before it fills
        full = run_facekit(f"input={source}", f"output={disk / 'out'}", "sample.every_n=10", *ARGS, cwd=tmp_path)
        _one_error_line(full)
        reasons = {e["source"]: (e["state"], e.get("reason") or "")
                   for e in load_json(disk / "out" / "collection.json")["sources"]}
    assert reasons["a/clip.mp4"][0] == "partial" and "cannot write" in reasons["a/clip.mp4"][1], reasons
    assert reasons["b/clip.mp4"] == ("partial", "stopped before it ended, when source a/clip.mp4 stopped the run; "
                                                "the same command resumes it"), reasons
