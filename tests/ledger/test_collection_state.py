"""``collection.json`` keeps up with a collection's states without rewriting itself for each."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from facekit.ledger.collection_state import SAVE_EVERY_S, CollectionState
from facekit.ledger.states import SourceState
from facekit.media.collection import COLLECTION_FILE, Source


@pytest.mark.parametrize("state", list(SourceState))
def test_states_set_within_the_save_interval_are_written_together_whatever_the_state(tmp_path: Path,
                                                                                  state: SourceState) -> None:
    """A failed or stopped source's state was written at once, the whole file each time: a
    collection of 3,000 failing sources took 5.5 times the CPU of 1,000."""
    path = tmp_path / COLLECTION_FILE
    collection = CollectionState(path, "tree", {})
    sources = [Source(tmp_path / f"s{n}", "folder", f"s{n}", f"s{n}") for n in range(200)]
    for source in sources:  # each wrote into its folder (one that wrote nothing is forgotten by the load)
        (tmp_path / source.output).mkdir()
    begun = time.monotonic()
    collection.set(sources[0], state)  # the first is written (nothing was)
    first = path.stat().st_ino
    for source in sources[1:]:
        collection.set(source, state)
    if time.monotonic() - begun < SAVE_EVERY_S:  # a machine this slow would rightly have saved again
        assert path.stat().st_ino == first  # not replaced since
    collection.save()  # the run's end
    assert len(CollectionState.load(path, "tree", {}).earlier) == 200


@pytest.mark.slow  # a run of 40 sources
def test_a_run_of_many_failing_sources_rewrites_collection_json_once_per_interval(tmp_path: Path) -> None:
    """Each source that opened and then failed (its one photo unreadable) rewrote the whole file
    at once: O(sources²) over thousands. Watched from here, the file is replaced about once
    every ``SAVE_EVERY_S`` of the run, not once a source."""
    import threading

    from cli_helpers import run_facekit

    for n in range(40):
        (tmp_path / "tree" / f"s{n:02d}").mkdir(parents=True)
        (tmp_path / "tree" / f"s{n:02d}" / "a.jpg").write_text("not a photo")
    path, seen, done = tmp_path / "out" / COLLECTION_FILE, set(), threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                seen.add(path.stat().st_ino)
            except OSError:
                pass
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    begun = time.monotonic()
    try:
        result = run_facekit("input=tree", "output=out", "runner.progress=false", cwd=tmp_path)
    finally:
        done.set()
        watcher.join()
    assert result.returncode == 2 and "(40 failed" in " ".join(result.stderr.split()), result.stderr[-2000:]
    assert len(seen) <= (time.monotonic() - begun) / SAVE_EVERY_S + 3, len(seen)


def _failed_at_opening(root: Path, settings: dict) -> None:
    """collection.json of a run whose one source never opened (a list's line mistyped)."""
    collection = CollectionState(root / COLLECTION_FILE, "@list.txt", settings)
    collection.set(Source(root / "typo" / "clip.mp4", "video", "typo/clip.mp4", "clip"), SourceState.FAILED,
                   reason="does not exist")
    collection.save()


def test_a_source_that_failed_before_writing_holds_no_folder_name_on_the_rerun(tmp_path: Path) -> None:
    """A list run whose every line was mistyped left collection.json naming them; the corrected
    list's sources went to ``clip~2``, beside no ``clip`` at all."""
    _failed_at_opening(tmp_path, {"size": 256})
    state = CollectionState.load(tmp_path / COLLECTION_FILE, "@list.txt", {"size": 256})
    corrected = Source(tmp_path / "videos" / "clip.mp4", "video", "videos/clip.mp4", "clip")
    assert [source.output for source in state.pinned([corrected])] == ["clip"]
    assert state.earlier == {}


def test_a_collection_whose_sources_wrote_nothing_does_not_refuse_other_settings(tmp_path: Path) -> None:
    """Its settings shaped no file, so nothing of it would mix with the rerun's."""
    _failed_at_opening(tmp_path, {"sample": 1})
    CollectionState.load(tmp_path / COLLECTION_FILE, "@list.txt", {"sample": 30})  # not refused


def test_a_failed_source_whose_folder_was_made_keeps_its_name_and_its_settings(tmp_path: Path) -> None:
    """One that wrote into its folder before it failed still holds both: its frames are there."""
    from facekit.errors import FacekitError

    _failed_at_opening(tmp_path, {"sample": 1})
    (tmp_path / "clip").mkdir()
    with pytest.raises(FacekitError, match="other settings"):
        CollectionState.load(tmp_path / COLLECTION_FILE, "@list.txt", {"sample": 30})
    state = CollectionState.load(tmp_path / COLLECTION_FILE, "@list.txt", {"sample": 1})
    corrected = Source(tmp_path / "videos" / "clip.mp4", "video", "videos/clip.mp4", "clip")
    assert [source.output for source in state.pinned([corrected])] == ["clip~2"]
