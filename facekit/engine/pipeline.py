"""Schedules the passes: detect and align together (parallel) or one after the other (serial)."""
from __future__ import annotations

import logging
import multiprocessing
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from facekit.console import STDERR, quantity
from facekit.media.decoder_output import DecoderOutput, python_stderr_apart
from facekit.errors import StageError
from facekit.media.sources import FrameSource
from facekit.engine.threads import Stage, StageFailure, run_stages
from facekit.records import FrameRecord, OneByOne
from facekit.engine.workers import WorkerPlan, WorkerPool

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    frames: int = 0
    faces: int = 0
    resumed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    workers: int = 0  # worker processes the stages ran in (0: threads in this process)
    start_s: float = 0.0  # starting worker processes (building their models), before ``seconds``
    stage_s: dict[str, float] = field(default_factory=dict)  # busy time of each stage's thread
    sink_s: float = 0.0  # writing faces and alignments, on the calling thread

    def line(self) -> str:
        rate = self.frames / self.seconds if self.seconds else 0.0
        return (f"{quantity(self.frames, 'frame')}, {quantity(self.faces, 'face')} in {self.seconds:.1f} s "
                f"({rate:.1f} frames/s); {self.resumed} already done, {self.skipped} skipped")


@dataclass
class Pass:
    """One read of the input through some stages; a run is one or more passes."""

    name: str
    stages: list[Stage]


def plan_passes(steps: Sequence[Any], grouping: Sequence[Sequence[str]], finish: Sequence[Stage] = ()) -> list[Pass]:
    """The model ``steps`` (each with a name, its work, its batch size and its plugin's label:
    ``FaceStages.steps``, in their order) grouped into passes as
    ``grouping`` names them (``[["detect"], ["align", "embed"]]``, see
    ``gpu.plan_passes_for_gpu``); a pass runs each of its stages on its own thread. ``finish``
    stages (judge, crop, encode) end the last pass."""
    by_name = {step.name: Stage(step.name, step.work, batch_size=step.batch_size, plugin=step.plugin.label)
               for step in steps}
    # a name no step has ("mask": maskers run in ``finish``) holds its place in the grouping only
    passes = [[by_name[name] for name in group if name in by_name] for group in grouping]
    passes[-1].extend(finish)
    return [Pass(" + ".join(s.name for s in group), group) for group in passes]


def per_record(name: str, work: Callable[[FrameRecord], None], plugin: str = "") -> Stage:
    """A stage that handles its batch one record at a time."""
    return Stage(name, OneByOne(work), plugin=plugin)


class Pipeline:
    """Drives one extraction: reads ``source`` once per pass and hands each finished record to
    ``sink``. Between passes records keep their faces but drop their pixels; the next pass decodes
    the frames again rather than holding a whole video in memory."""

    def __init__(self, passes: list[Pass], queue_size: int, progress: bool = True,
                 workers: WorkerPlan | None = None, queue_mb: int | None = None) -> None:
        self.passes = passes
        self.queue_size = queue_size
        self.queue_mb = queue_mb  # decoded frames read ahead, in MB (None: the counts alone bound them)
        self.progress = progress
        self.workers = workers  # a one-pass run in worker processes rather than threads
        self.summary = RunSummary()  # the last run's, also when it raised

    def run(self, source: FrameSource, sink: Callable[[FrameRecord], None],
            done: frozenset[str] = frozenset(), todo: int | None = None) -> RunSummary:
        """Every pass over ``source``'s frames not in ``done``, each record to ``sink`` in input
        order. ``todo``: the frames left, where ``done`` also names frames the source no longer
        gives (a folder's photos removed or named anew since); the progress bar's total."""
        self.summary = summary = RunSummary(resumed=len(done))
        begun = time.perf_counter()
        pool = self._worker_pool()
        summary.start_s = time.perf_counter() - begun
        summary.workers = len(pool.workers) if pool is not None else 0

        def finish(record: FrameRecord) -> None:
            begun = time.perf_counter()
            sink(record)
            summary.sink_s += time.perf_counter() - begun
            summary.frames += 1
            summary.faces += len(record.faces)

        started = time.perf_counter()
        try:
            with _decoders_caught(source, on_threads=pool is None), self._progress() as bars:
                previous: dict[str, FrameRecord] = {}
                for number, step in enumerate(self.passes, start=1):
                    if number == 1:  # worker processes decode image files themselves, side by side
                        feed = _records(source, done, decode=pool is None)
                        total = max(0, len(source) - len(done)) if todo is None else todo
                    else:
                        feed, total = _redecoded(source, done, previous), len(previous)
                    current: dict[str, FrameRecord] = {}
                    target = finish if number == len(self.passes) else _carry(current)
                    bar = bars.add_task(f"pass {number} of {len(self.passes)}: {step.name}", total=total or None)
                    try:
                        if pool is not None:
                            pool.run(feed, _advancing(target, bars, bar), unreadable=source.unreadable,
                                     damaged=source.damaged)
                        else:
                            self._run(step.stages, feed, _advancing(target, bars, bar))
                    finally:
                        for stage in step.stages:
                            summary.stage_s[stage.name] = summary.stage_s.get(stage.name, 0.0) + stage.busy_s
                    previous = current
        finally:  # a run that stops too: what it did, at its own pace (collection.json's rate)
            summary.skipped = len(source.skipped)
            summary.seconds = time.perf_counter() - started
        return summary

    def _worker_pool(self) -> WorkerPool | None:
        """Worker processes for a one-pass run that asked for them and whose stages can travel.
        A run that asked but cannot have them builds its models here and runs on threads."""
        if self.workers is None:
            return None
        payload = None
        if multiprocessing.current_process().daemon:  # e.g. a sweep job in a launcher's pool
            log.info("this process may not start worker processes (it is a daemon); stages run on threads")
        elif len(self.passes) == 1:
            payload = self.workers.payload(self.passes[0].stages)
        if payload is None:
            for step in self.workers.prepare:
                step()
            return None
        return WorkerPool(self.workers, self.passes[0].stages, payload, self.queue_size, self._max_bytes())

    def _run(self, stages: list[Stage], records: Iterator[FrameRecord], sink: Callable[[FrameRecord], None]) -> None:
        try:
            with opencv_threads(1 if len(stages) > 1 else None):
                run_stages(records, stages, sink, self.queue_size, max_bytes=self._max_bytes())
        except StageFailure as failure:
            cause = failure.__cause__
            if isinstance(cause, StageError):
                raise cause from None
            raise StageError(str(failure)) from cause

    def _max_bytes(self) -> int | None:
        return None if self.queue_mb is None else self.queue_mb * 2 ** 20

    @contextmanager
    def _progress(self) -> Iterator[Progress]:
        bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=STDERR, disable=not self.progress)
        with bars:
            yield bars


@contextmanager
def _decoders_caught(source: FrameSource, on_threads: bool) -> Iterator[None]:
    """On threads, image files decode in this process: what their decoders print is caught, so
    the warning names the file, as in worker processes (see ``facekit.media.decoder_output``)."""
    if not on_threads or source.kind == "video":
        yield
        return
    with python_stderr_apart() as apart:
        source.decoder_output = DecoderOutput() if apart else None
        try:
            yield
        finally:
            source.decoder_output = None


@contextmanager
def opencv_threads(count: int | None) -> Iterator[None]:
    """While stages run side by side, each already keeps a core busy: OpenCV's own thread pool
    (one thread a core by default) would only make them take turns. On the 2-core machine one
    OpenCV thread a stage used 5% less CPU and ran 3% faster on the Hamilton clip. ``None``
    leaves OpenCV's setting alone (a pass with one stage may use every core)."""
    if count is None:
        yield
        return
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _carry(into: dict[str, FrameRecord]) -> Callable[[FrameRecord], None]:
    def keep(record: FrameRecord) -> None:
        record.frame.image = None
        into[record.frame.name] = record

    return keep


def _records(source: FrameSource, done: frozenset[str], decode: bool = True) -> Iterator[FrameRecord]:
    for frame in source.frames(skip=done, decode=decode):
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
