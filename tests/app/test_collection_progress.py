"""A collection's frame estimate: sources not yet listed count the mean of the opened ones; a
source that failed, ended early or was done before counts only the frames it ran."""
from __future__ import annotations

from facekit.app.tasks.collection_progress import CollectionProgress


def test_a_source_that_fails_partway_counts_only_the_frames_it_ran() -> None:
    progress = CollectionProgress(enabled=False)
    for number, frames in ((progress.met_source(), 100), (progress.met_source(), 50)):
        progress.opened_source(number, f"s{number}", frames)
    progress.frame_done(1, 30)
    progress.finished_source(1)  # failed after 30 of its 100 frames
    progress.frame_done(2, 50)
    progress.finished_source(2)
    assert (progress.frames, progress.total_frames()) == (80, 80)


def test_a_source_opened_again_after_a_restart_keeps_the_frames_it_ran_before() -> None:
    progress = CollectionProgress(enabled=False)
    number = progress.met_source()
    progress.opened_source(number, "a", 40)
    progress.frame_done(number, 10)
    progress.opened_source(number, "a", 30)  # resumed from its journal: 30 left
    assert progress.total_frames() == 40


def test_sources_failed_or_done_before_they_open_add_no_frames_to_the_estimate() -> None:
    progress = CollectionProgress(enabled=False)
    opened = progress.met_source()
    progress.opened_source(opened, "a", 20)
    progress.met_source()
    progress.finished_source()  # failed as it was listed: never opened
    assert progress.total_frames() == 20
