"""Stages on their own threads joined by bounded queues, so decode, detect, align and write overlap.

The models release the GIL (OpenCV DNN, TFLite, TensorFlow), so threads give real overlap
without copying frames between processes. A failure in any stage stops every stage promptly;
nothing blocks forever, because every wait wakes up to check the stop flag.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from facekit.types import FrameRecord

_END = object()
_POLL_S = 0.1


@dataclass
class Stage:
    """``work`` processes a batch of records in place; batches form from what is queued."""

    name: str
    work: Callable[[list[FrameRecord]], None]
    batch_size: int = 1


class StageFailure(Exception):
    """Raised in the caller's thread when a stage thread failed; wraps the original."""


class _Pipeline:
    def __init__(self, queue_size: int) -> None:
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.queue_size = queue_size

    def fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.stop.set()

    def put(self, q: queue.Queue, item: object) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue) -> object | None:
        """The next item, or None once the pipeline is stopping."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return None

    def produce(self, records: Iterable[FrameRecord], out: queue.Queue) -> None:
        try:
            for record in records:
                if not self.put(out, record):
                    return
            self.put(out, _END)
        except BaseException as exc:  # a reader error must reach the main thread
            self.fail(exc)

    def run_stage(self, stage: Stage, inbox: queue.Queue, out: queue.Queue) -> None:
        try:
            while True:
                item = self.get(inbox)
                if item is None:
                    return
                if item is _END:
                    self.put(out, _END)
                    return
                batch, ended = self._fill_batch(item, inbox, stage.batch_size)
                stage.work(batch)
                for record in batch:
                    if not self.put(out, record):
                        return
                if ended:
                    self.put(out, _END)
                    return
        except BaseException as exc:
            self.fail(exc)

    @staticmethod
    def _fill_batch(first: object, inbox: queue.Queue, size: int) -> tuple[list[FrameRecord], bool]:
        """The first record plus whatever is already queued, up to ``size``; never waits."""
        batch = [first]
        while len(batch) < size:
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                break
            if item is _END:
                return batch, True  # type: ignore[return-value]
            batch.append(item)
        return batch, False  # type: ignore[return-value]


def run_stages(records: Iterable[FrameRecord], stages: Sequence[Stage],
               sink: Callable[[FrameRecord], None], queue_size: int = 16) -> None:
    """Feed ``records`` through ``stages`` on threads; ``sink`` runs on the calling thread.

    Raises StageFailure (from the stage's exception) when a stage fails, and lets
    KeyboardInterrupt through after stopping every thread.
    """
    pipe = _Pipeline(queue_size)
    queues = [queue.Queue(maxsize=queue_size) for _ in range(len(stages) + 1)]
    threads = [threading.Thread(target=pipe.produce, args=(records, queues[0]), name="read", daemon=True)]
    threads += [
        threading.Thread(target=pipe.run_stage, args=(stage, queues[i], queues[i + 1]), name=stage.name, daemon=True)
        for i, stage in enumerate(stages)
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            item = pipe.get(queues[-1])
            if item is None or item is _END:
                break
            sink(item)  # type: ignore[arg-type]
    except BaseException as exc:
        pipe.fail(exc)
        raise
    finally:
        pipe.stop.set()
        for thread in threads:
            thread.join(timeout=2.0)
    if pipe.failure is not None:
        raise StageFailure(str(pipe.failure)) from pipe.failure
