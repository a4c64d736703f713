"""Schedules the passes: detect and align together (parallel) or one after the other (serial)."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facekit.console import STDERR
from facekit.errors import StageError
from facekit.gpu import RunMode
from facekit.media import FrameSource
from facekit.pipeline import FaceStages
from facekit.threads import Stage, StageFailure, run_stages
from facekit.types import FrameRecord

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    resumed: int = 0
    skipped: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"{self.frames} frames, {self.faces} faces in {self.seconds:.1f} s ({rate:.1f} frames/s); "
                f"{self.resumed} already done, {self.skipped} skipped")


class Runner:
    """Drives one extraction: reads ``source``, runs the stages, hands each record to ``sink``."""

    def __init__(self, stages: FaceStages, mode: RunMode, queue_size: int = 16, progress: bool = True) -> None:
        self.stages = stages
        self.mode = mode
        self.queue_size = queue_size
        self.progress = progress

    def run(self, source: FrameSource, sink: Callable[[FrameRecord], None],
            done: frozenset[str] = frozenset()) -> RunSummary:
        summary = RunSummary(resumed=len(done))
        started = time.perf_counter()
        total = max(0, len(source) - len(done))

        def count(record: FrameRecord) -> None:
            sink(record)
            summary.frames += 1
            summary.faces += len(record.faces)

        with self._progress() as bars:
            if self.mode == "parallel":
                self._parallel(source, done, count, bars, total)
            else:
                self._serial(source, done, count, bars, total)
        summary.skipped = len(source.skipped)
        summary.seconds = time.perf_counter() - started
        return summary

    def _parallel(self, source: FrameSource, done: frozenset[str], sink: Callable[[FrameRecord], None],
                  bars: Progress, total: int) -> None:
        bar = bars.add_task("pass 1 of 1: detect + align", total=total or None)
        self._run([self._detect_stage(), self._align_stage()], _records(source, done), _advancing(sink, bars, bar))

    def _serial(self, source: FrameSource, done: frozenset[str], sink: Callable[[FrameRecord], None],
                bars: Progress, total: int) -> None:
        """Detect every frame, then align every frame: only one model's memory is in use at a time.
        Pass 2 decodes the frames again rather than holding them all."""
        detected: dict[str, FrameRecord] = {}

        def keep(record: FrameRecord) -> None:
            record.frame.image = None
            detected[record.frame.name] = record

        bar = bars.add_task("pass 1 of 2: detect", total=total or None)
        self._run([self._detect_stage()], _records(source, done), _advancing(keep, bars, bar))
        bar = bars.add_task("pass 2 of 2: align", total=len(detected) or None)
        self._run([self._align_stage()], _redecoded(source, done, detected), _advancing(sink, bars, bar))

    def _run(self, stages: list[Stage], records: Iterator[FrameRecord], sink: Callable[[FrameRecord], None]) -> None:
        try:
            run_stages(records, stages, sink, self.queue_size)
        except StageFailure as failure:
            cause = failure.__cause__
            if isinstance(cause, StageError):
                raise cause from None
            raise StageError(f"stage failed: {type(cause).__name__}: {cause}") from cause

    def _detect_stage(self) -> Stage:
        return Stage("detect", self.stages.detect, batch_size=max(1, self.stages.detector.spec.batch_size))

    def _align_stage(self) -> Stage:
        def align(batch: list[FrameRecord]) -> None:
            for record in batch:
                self.stages.align(record)

        return Stage("align", align)

    @contextmanager
    def _progress(self) -> Iterator[Progress]:
        bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=STDERR, disable=not self.progress)
        with bars:
            yield bars


def _records(source: FrameSource, done: frozenset[str]) -> Iterator[FrameRecord]:
    for frame in source.frames(skip=done):
        yield FrameRecord(frame)


def _redecoded(source: FrameSource, done: frozenset[str], detected: dict[str, FrameRecord]) -> Iterator[FrameRecord]:
    for frame in source.frames(skip=done):
        record = detected.get(frame.name)
        if record is not None:
            record.frame.image = frame.image
            yield record


def _advancing(sink: Callable[[FrameRecord], None], bars: Progress, bar: int) -> Callable[[FrameRecord], None]:
    def advance(record: FrameRecord) -> None:
        sink(record)
        bars.advance(bar)

    return advance
