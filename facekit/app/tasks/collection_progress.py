"""One progress display over a whole collection: sources done of those listed, frames a second
and the time left over every source, and the source being read now.

The time left is an estimate, since a source's frames are counted only when it opens: the
sources not taken from the listing yet are taken to hold as many frames as the opened ones do on
average. A source that failed, was done by an earlier run, or ended counts the frames it was
actually given, so the display ends at 100% whatever failed on the way.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from facekit.console import STDERR

if TYPE_CHECKING:
    from facekit.app.tasks.listing import ListedAhead


class CollectionProgress:
    """Counts kept by the run's threads (the reader opens sources, the sink finishes them) and
    shown by one rich bar; ``enabled=False`` keeps the counts without a display."""

    def __init__(self, enabled: bool = True, listing: ListedAhead | None = None) -> None:
        self.enabled = enabled
        self.listing = listing  # its counts: sources found so far, and whether that is all
        self._expected: dict[int, int] = {}  # by source number: the frames it is to run (resumed ones left out)
        self._done: dict[int, int] = {}  # by source number: the frames it ran
        self.finished = 0  # sources done, failed or passed over
        self.frames = 0
        self.met = 0  # sources taken from the listing: opened, failed or done by an earlier run
        self.busy_s = 0.0  # the pipelines' own time, their worker processes' start left out
        self.current = ""
        self.started = time.perf_counter()
        self._bars: Progress | None = None
        self._bar: TaskID | None = None

    @contextmanager
    def shown(self) -> Iterator[CollectionProgress]:
        bars = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[frames]}"),
                        TimeRemainingColumn(), TextColumn("{task.fields[current]}", markup=False), console=STDERR,
                        disable=not self.enabled)
        self.started = time.perf_counter()
        with bars:
            self._bars, self._bar = bars, bars.add_task("sources", total=None, frames="", current="")
            try:
                yield self
            finally:
                self._refresh()
                self._bars = None

    @property
    def listed(self) -> int:
        return max(self.listing.listed if self.listing is not None else 0, self.met)

    def met_source(self) -> int:
        """Counts a source taken from the listing; its number, from 1."""
        self.met += 1
        return self.met

    def opened_source(self, number: int, rel: str, frames: int) -> None:
        """Source ``number`` opened with ``frames`` still to run; opened again after a restart, it
        keeps what it ran before and adds what is left."""
        self._expected[number] = self._done.get(number, 0) + frames
        self.current = rel
        self._refresh()

    def finished_source(self, number: int | None = None) -> None:
        """A source done, failed or passed over; an opened one (``number``) now counts the frames it
        ran, not those it was expected to (the rest failed, or a video held fewer than its header said)."""
        self.finished += 1
        if number is not None and number in self._expected:
            self._expected[number] = self._done.get(number, 0)
        self._refresh()

    def frame_done(self, number: int, count: int = 1) -> None:
        """``count`` frames of source ``number`` run."""
        self.frames += count
        self._done[number] = self._done.get(number, 0) + count
        if count > 1 or self.frames % 8 == 0:  # rich redraws on its own clock; the fields need not change per frame
            self._refresh()

    def rate(self) -> float:
        """Frames a second since the display started (model loading and all)."""
        seconds = time.perf_counter() - self.started
        return self.frames / seconds if seconds > 0 else 0.0

    def figures(self, seconds: float) -> dict[str, float]:
        """collection.json's ``run``: the frames run, the whole run's seconds, the pipelines' own
        seconds, and frames a second of those."""
        return {"frames": self.frames, "seconds": round(seconds, 3), "busy_s": round(self.busy_s, 3),
                "frames_per_s": round(self.busy_rate(), 2)}

    def busy_rate(self) -> float:
        """Frames a second of the pipelines' own time: what a bench compares across collections."""
        return self.frames / self.busy_s if self.busy_s > 0 else 0.0

    def total_frames(self) -> int:
        """The frames of the opened sources, plus their mean for each source listed but not yet
        taken from the listing (one that failed or was done before it opened adds none)."""
        if not self._expected:
            return 0
        expected = sum(self._expected.values())
        return expected + round(expected / len(self._expected) * max(0, self.listed - self.met))

    def description(self) -> str:
        listing_done = self.listing is None or self.listing.finished
        listed = f"{self.listed}" if listing_done else f"{self.listed}+ (listing)"
        return f"sources {self.finished}/{listed}"

    def _refresh(self) -> None:
        if self._bars is None or self._bar is None:
            return
        total = self.total_frames()
        self._bars.update(self._bar, description=self.description(), completed=self.frames,
                          total=max(total, self.frames) or None,
                          frames=f"{self.frames}/{total} frames, {self.rate():.1f} frames/s",
                          current=self.current)
