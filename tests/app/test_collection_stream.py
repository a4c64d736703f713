"""A collection at scale: one set of worker processes for every source, a plugin's failure ending
its source alone, sources run while the list is still being read, a source that vanishes
mid-run, and memory that does not grow with the number of sources."""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import cv2
import pytest

from cli_helpers import (facekit_process, file_hashes, install_module, load_json, path_with, peak_rss_mb,
                         run_facekit, wait_for_exit, wait_for_frames)
from conftest import DATA, require_data
from flaky_plugin import ctrl_c_once_hanging, install_flaky
from test_batches import RECORDING_MODULE, _batches_by_process

PEOPLE = DATA / "images" / "people"


def _photo_tree(tree: Path, folders: dict[str, list[str]]) -> Path:
    """Folders of the shared portraits, linked: ``{"a": ["p01/img1.jpg", ...]}``."""
    for folder, photos in folders.items():
        (tree / folder).mkdir(parents=True)
        for photo in photos:
            (tree / folder / Path(photo).name).symlink_to(PEOPLE / photo)
    return tree


def _states(out: Path) -> dict[str, str]:
    return {e["source"]: e["state"] for e in load_json(out / "collection.json")["sources"]}


PHOTOS = {"a": ["p01/img1.jpg", "p01/img2.jpg"], "b": ["p04/img14.jpg", "p04/img15.jpg"],
          "c": ["p05/img16.jpg", "p05/img17.jpg"], "d": ["p06/" + p.name for p in sorted((PEOPLE / "p06").glob("*.jpg"))[:2]]}


def test_worker_processes_start_once_for_every_source_of_a_collection(tmp_path: Path) -> None:
    require_data()
    site = tmp_path / "site"
    install_module(site, "toy_recording_facekit", RECORDING_MODULE, "recording")
    _photo_tree(tmp_path / "tree", PHOTOS)
    log = tmp_path / "calls.txt"
    result = run_facekit("input=tree", "output=out", "+detector=recording", f"detector.log={log}",
                         "runner.workers=2", "runner.progress=false", cwd=tmp_path, env=path_with(site))
    assert result.returncode == 0, result.stderr
    assert _states(tmp_path / "out") == {name: "done" for name in PHOTOS}
    calls = _batches_by_process(log)
    assert len(calls) == 2, calls  # the same two processes took every source's frames
    assert sum(map(sum, calls.values())) == 8
    assert "2 worker processes, started once" in result.stderr
    for name in PHOTOS:  # and each source's frames went to its own folder
        assert sorted(load_json(tmp_path / "out" / name / "alignments.json")["frames"]) == sorted(
            Path(p).stem for p in PHOTOS[name])
        assert load_json(tmp_path / "out" / name / "run_summary.json")["workers"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["threads", "worker-processes"])
def test_a_plugin_failing_on_one_frame_fails_its_source_and_the_other_sources_still_run(
        tmp_path: Path, workers: int) -> None:
    require_data()
    (tmp_path / "site").mkdir()
    env = install_flaky(tmp_path / "site")
    _photo_tree(tmp_path / "tree", PHOTOS)
    marked = cv2.imread(str(PEOPLE / "p04" / "img15.jpg"))  # b's second photo
    args = ("input=tree", "output=out", "+detector=flaky", "detector.fail_on_call=0",
            f"detector.frame_sha1={hashlib.sha1(marked.tobytes()).hexdigest()}", f"runner.workers={workers}",
            "runner.progress=false")
    result = run_facekit(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    entries = {e["source"]: e for e in load_json(tmp_path / "out" / "collection.json")["sources"]}
    assert {name: entry["state"] for name, entry in entries.items()} == {
        "a": "done", "b": "failed", "c": "done", "d": "done"}
    reason = entries["b"]["reason"]
    assert "flaky" in reason and "img15" in reason and "flaky on purpose" in reason, reason
    assert list(load_json(tmp_path / "out" / "b" / "alignments.json")["frames"]) == ["img14"]  # kept
    for name in ("c", "d"):  # the sources after it: every frame, as in a run without b
        assert len(load_json(tmp_path / "out" / name / "alignments.json")["frames"]) == 2
    text = " ".join(result.stderr.split())
    assert text.count("source b failed") == 1 and "1 failed" in text, text

    (tmp_path / "tree" / "b" / "img15.jpg").unlink()  # the same command then finishes b alone
    again = run_facekit(*args, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert set(_states(tmp_path / "out").values()) == {"done"}
    assert "3 source(s) done by an earlier run, not reopened" in " ".join(again.stderr.split())  # a, c, d


def test_sources_keep_their_numbers_1_to_n_when_a_failed_source_has_the_ones_opened_after_it_read_again(
        tmp_path: Path) -> None:
    """Source a fails on its second photo once c is open, so b and c are opened again by the
    next stream: each source is still named with one number, 1 to 4, in the listing's order."""
    require_data()
    (tmp_path / "site").mkdir()
    env = install_flaky(tmp_path / "site")
    _photo_tree(tmp_path / "tree", PHOTOS)
    marked = cv2.imread(str(PEOPLE / "p01" / "img2.jpg"))  # a's second photo
    result = run_facekit("input=tree", "output=out", "+detector=flaky", "detector.fail_on_call=0",
                         f"detector.frame_sha1={hashlib.sha1(marked.tobytes()).hexdigest()}",
                         f"detector.wait_for={tmp_path / 'out' / 'c'}", "runner.workers=0",
                         "runner.progress=false", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert _states(tmp_path / "out") == {"a": "failed", "b": "done", "c": "done", "d": "done"}
    opened = re.findall(r"source (\d+): (\w) ->", result.stderr)
    assert [rel for _, rel in opened].count("b") == 2, opened  # b was opened again after a failed
    assert sorted(set(opened)) == [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d")], opened


def test_the_first_source_runs_while_the_list_is_still_being_read(tmp_path: Path) -> None:
    """The list is a pipe: facekit gets its second line only once the first source has frames
    in its journal, so the run cannot have listed every source before it started."""
    require_data()
    listing = tmp_path / "list.txt"
    os.mkfifo(listing)
    first, second = PEOPLE / "p01", PEOPLE / "p04"
    with facekit_process(f"input=@{listing}", "output=out", "runner.progress=false", cwd=tmp_path) as process:
        pipe = _open_for_writing(listing, process)
        with os.fdopen(pipe, "w", encoding="utf-8") as lines:
            lines.write(f"{first}\n")
            lines.flush()
            wait_for_frames(process, tmp_path / "out" / "p01", 1)
            lines.write(f"{second}\n")
        wait_for_exit(process, "the run over the listed sources")
    assert process.returncode == 0
    assert _states(tmp_path / "out") == {str(first): "done", str(second): "done"}


def _open_for_writing(fifo: Path, process) -> int:
    """The pipe's writing end, once facekit has opened its reading end (it fails until then)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            time.sleep(0.05)
    raise AssertionError(f"facekit never opened {fifo} (exit code {process.poll()})")


@pytest.mark.slow
def test_a_video_that_vanishes_mid_run_fails_alone_and_the_run_goes_on(tmp_path: Path) -> None:
    require_data()
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "a" / "clip.mp4").symlink_to(DATA / "video" / "short_hamilton_clip.mp4")
    (tree / "z").mkdir()  # read last: folders are read in name order
    shutil.copy(DATA / "video" / "faceswap_test.mp4", tree / "z" / "clip.mp4")
    (tree / "b").mkdir()
    (tree / "b" / "clip.mp4").symlink_to(DATA / "video" / "faceswap_test.mp4")
    with facekit_process("input=tree", "output=out", "sample.every_n=2", "runner.progress=false",
                         cwd=tmp_path) as process:
        wait_for_frames(process, tmp_path / "out" / "a" / "clip", 3)
        (tree / "z" / "clip.mp4").unlink()
        wait_for_exit(process, "the run after a source vanished")
    assert process.returncode == 0
    entries = {e["source"]: e for e in load_json(tmp_path / "out" / "collection.json")["sources"]}
    assert {s: e["state"] for s, e in entries.items()} == {"a/clip.mp4": "done", "b/clip.mp4": "done",
                                                          "z/clip.mp4": "failed"}
    assert "does not exist" in entries["z/clip.mp4"]["reason"], entries["z/clip.mp4"]
    assert file_hashes(tmp_path / "out" / "b" / "clip", "*.png") != {}


#: What 150 sources may add to the peak of one folder of the same 150 photos: their entries in
#: collection.json (under 1 KB each) and the allocator's slack; a source that kept its frames,
#: journal or plugins after it ended would add far more.
FLAT_MB = 20


@pytest.mark.slow
def test_peak_memory_over_150_sources_is_that_of_one_folder_with_their_150_photos(tmp_path: Path) -> None:
    """Same frames both ways, so what differs is only what each source costs."""
    require_data()
    photo = PEOPLE / "p01" / "img1.jpg"
    flat, tree = tmp_path / "flat", tmp_path / "tree"
    flat.mkdir()
    for index in range(150):
        (flat / f"{index:04d}.jpg").symlink_to(photo)
        folder = tree / f"{index // 50:02d}" / f"{index:04d}"
        folder.mkdir(parents=True)
        (folder / photo.name).symlink_to(photo)
    peaks = {name: peak_rss_mb(f"input={name}", f"output=out_{name}", "runner.workers=0", "runner.progress=false",
                               cwd=tmp_path) for name in ("flat", "tree")}
    assert len(load_json(tmp_path / "out_flat" / "alignments.json")["frames"]) == 150
    states = _states(tmp_path / "out_tree")
    assert len(states) == 150 and set(states.values()) == {"done"}
    assert peaks["tree"] - peaks["flat"] < FLAT_MB, peaks


def test_a_collection_stopped_by_ctrl_c_records_the_pace_of_the_frames_it_did(tmp_path: Path) -> None:
    """collection.json's ``run`` said 0 frames a second (and 0 s busy) for a run that did frames
    before Ctrl-C: only a pipeline that returned counted its time."""
    require_data()
    _photo_tree(tmp_path / "tree", {name: PHOTOS[name] for name in ("a", "b")})
    args = ["detector.fail_on_call=3", "input=tree", "runner.progress=false", "runner.workers=0"]  # hangs in b, a done or not
    _, code, stderr = ctrl_c_once_hanging(args, tmp_path / "out", tmp_path, install_flaky(tmp_path / "site"))
    assert code == 130, stderr
    run = load_json(tmp_path / "out" / "collection.json")["run"]
    assert run["frames"] >= 1 and 0 < run["busy_s"] <= run["seconds"] and run["frames_per_s"] > 0, run
