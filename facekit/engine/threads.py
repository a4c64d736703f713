"""Stages on their own threads joined by bounded queues, so decode, detect, align and write overlap.

The models release the GIL (OpenCV DNN, TFLite, TensorFlow), so threads give real overlap
without copying frames between processes. Waits, draining on Ctrl-C and the failure message are
``facekit.engine.stopping``'s, as for worker processes.

Stopping keeps finished work. When a stage fails, it ends the stream at its own position: the
frames already past it drain through the later stages to the sink, and the earlier stages stop.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from facekit.engine.stopping import POLL_S, Stopping, get_unless, poll_timeout, put_unless, stage_failure_message
from facekit.records import FrameRecord

_END = object()


@dataclass
class Stage:
    """``work`` processes a batch of records in place: ``batch_size`` of them, fewer only at the
    end of the input, on a stop, or while the frames in flight hold the byte limit (the reader
    then waits for frames to leave, so a stage that waited for more would wait for ever)."""

    name: str
    work: Callable[[list[FrameRecord]], None]
    batch_size: int = 1
    busy_s: float = 0.0  # time spent in ``work``, for the run summary and bench/extract.py
    plugin: str = ""  # the plugin ``work`` calls, e.g. "detector 'yunet'": named if a worker dies in it


class StageFailure(Exception):
    """Raised in the caller's thread when a stage thread failed, from the original; its message is
    the line for the user (``stage_failure_message``)."""


class _Link(queue.Queue):
    """A bounded queue that knows when its consumer is gone, so producers stop waiting on it."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.abandoned = threading.Event()


class PixelsInFlight:
    """The bytes of decoded frames read and not yet done with (sunk, on threads; sent to a worker
    process, in ``facekit.engine.workers``), kept under ``limit``: frame counts alone bound a video's
    0.7 MB frames well, but 16 frames a queue of 8000x6000 photos (144 MB each) held 1.7 GB. The
    reader waits before decoding the next frame while those frames hold ``limit`` or more; one
    frame always may go, however big."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.held: dict[int, int] = {}  # id(record) -> bytes, from the reader until the sink
        self.total = 0
        self.changed = threading.Condition()

    def admitted(self, records: Iterable[FrameRecord], stopped: Callable[[], bool]) -> Iterator[FrameRecord]:
        """``records``, each decoded (taken from the iterator) only once there is room for it and
        counted from then on; ends early when ``stopped`` comes first."""
        frames = iter(records)
        while self.wait_for_room(stopped):
            record = next(frames, None)  # decodes the frame
            if record is None:
                return
            self.add(record)
            yield record

    def full(self) -> bool:
        """The frames held reach the limit: the reader waits for one to leave before the next."""
        return self.limit is not None and bool(self.held) and self.total >= self.limit

    def wait_for_room(self, stopped: Callable[[], bool]) -> bool:
        """False when ``stopped`` came first."""
        with self.changed:
            while self.full():
                if stopped():
                    return False
                self.changed.wait(POLL_S)
        return not stopped()

    def add(self, record: FrameRecord) -> None:
        image = record.frame.image
        with self.changed:
            self.held[id(record)] = size = 0 if image is None else image.nbytes
            self.total += size

    def release(self, record: FrameRecord) -> None:
        with self.changed:
            self.total -= self.held.pop(id(record), 0)
            self.changed.notify_all()


class _Pipeline(Stopping):
    def __init__(self, max_bytes: int | None = None) -> None:
        super().__init__()
        self.failure: BaseException | None = None
        self.pixels = PixelsInFlight(max_bytes)

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.closing.set()

    def put(self, link: _Link, item: object) -> bool:
        return put_unless(link, item, lambda: self.stopped.is_set() or link.abandoned.is_set())

    def get(self, link: _Link) -> object | None:
        """The next item, or None once the pipeline is stopping."""
        return get_unless(link, self.stopped.is_set)

    def produce(self, records: Iterable[FrameRecord], out: _Link) -> None:
        try:
            for record in self.pixels.admitted(records, self.reader_stops):
                if self.closing.is_set() or not self.put(out, record):
                    break
        except BaseException as exc:  # a reader error must reach the main thread
            self.fail(exc)
        self.put(out, _END)

    def run_stage(self, stage: Stage, inbox: _Link, out: _Link) -> None:
        try:
            while True:
                item = self.get(inbox)
                if item is None:
                    return
                if item is _END:
                    break
                filled = self.fill_batch(item, inbox, stage.batch_size)
                if filled is None:
                    return
                batch, ended = filled
                started = time.perf_counter()
                stage.work(batch)
                stage.busy_s += time.perf_counter() - started
                for record in batch:
                    if not self.put(out, record):
                        return
                if ended:
                    break
        except BaseException as exc:  # SystemExit from a plugin too: the run must hear of it
            self.fail(exc)
            inbox.abandoned.set()
        self.put(out, _END)

    def fill_batch(self, first: object, inbox: _Link, size: int) -> tuple[list[FrameRecord], bool] | None:
        """``first`` and the records after it up to ``size``, waiting for them as they come, so a
        plugin gets the batch it was configured for; and whether the input ended with them. Fewer
        at the end, and while the frames in flight hold the byte limit (the reader waits for some
        to leave, so more would never come). None on a stop."""
        batch = [first]
        while len(batch) < size:
            full = self.pixels.full()
            try:
                item = inbox.get_nowait() if full else inbox.get(timeout=POLL_S)
            except queue.Empty:
                if self.stopped.is_set():
                    return None
                if full:
                    break
                continue
            if item is _END:
                return batch, True  # type: ignore[return-value]
            batch.append(item)
        return batch, False  # type: ignore[return-value]


def run_stages(records: Iterable[FrameRecord], stages: Sequence[Stage],
               sink: Callable[[FrameRecord], None], queue_size: int, drain_s: float = 1.0,
               max_bytes: int | None = None) -> None:
    """Feed ``records`` through ``stages`` on threads; ``sink`` runs on the calling thread.
    At most ``queue_size`` records wait between two stages, and the decoded frames between the
    reader and the sink hold at most about ``max_bytes`` (None: no limit but the counts).

    Raises StageFailure (from the stage's exception) once the frames that passed the failing
    stage are sunk; re-raises KeyboardInterrupt after draining for up to ``drain_s`` seconds.
    """
    pipe = _Pipeline(max_bytes)
    links = [_Link(queue_size) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=pipe.produce, args=(records, links[0]), name="read", daemon=True)]
    threads += [
        threading.Thread(target=pipe.run_stage, args=(stage, links[i], links[i + 1]), name=stage.name, daemon=True)
        for i, stage in enumerate(stages)
    ]
    for thread in threads:
        thread.start()
    try:
        pipe.drain_on_interrupt(lambda deadline: _sink_all(pipe, links[-1], sink, deadline), drain_s)
    except BaseException as exc:  # the sink's own error, or Ctrl-C: the reader stops too
        pipe.fail(exc)
        raise
    finally:
        _stop(pipe, threads)
    if pipe.failure is not None:
        raise StageFailure(stage_failure_message(pipe.failure)) from pipe.failure


def _sink_all(pipe: _Pipeline, link: _Link, sink: Callable[[FrameRecord], None], deadline: float | None) -> None:
    while (timeout := poll_timeout(deadline)) is not None:
        try:
            item = link.get(timeout=timeout)
        except queue.Empty:
            continue
        if item is _END:
            return
        try:
            sink(item)  # type: ignore[arg-type]
        finally:
            pipe.pixels.release(item)  # type: ignore[arg-type]


def _stop(pipe: _Pipeline, threads: list[threading.Thread]) -> None:
    pipe.stopped.set()
    for thread in threads:
        thread.join(timeout=0.5)
