"""A Ray actor's work: build the plugins once, then run whole shards through the same stages,
in the same order, as a run on this machine (``facekit.faces.stages``), writing face files and the
shard's journal into the source's output folder.

The plugins arrive as the pickled stages worker processes get (``facekit.engine.workers``): each
plugin by name and config, rebuilt from the packages installed on the worker's node. A plugin
that raises fails its shard with the plugin and frame named (``StageError``); the worker stays
up for the next shard, and the driver reports the failure.
"""
from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facekit.errors import FacekitError
from facekit.faces.finisher import Finisher
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.source import LedgerSettings
from facekit.log_relay import keep_logs
from facekit.media.sampling import Sampling
from facekit.media.shards import Shard, shard_frames
from facekit.output.alignments import journal_line
from facekit.output.face_files import FaceWriter
from facekit.records import FrameRecord
from facekit.distributed.shard_journal import ShardJournalWriter


@dataclass(frozen=True)
class ShardTask:
    """One shard and where its output goes."""

    shard: Shard
    output: str
    sampling: Sampling
    fingerprint: Any  # the alignments meta's fingerprint: the journal's header
    books: LedgerSettings  # what it writes beside the face files (debug frames, rejected crops)


@dataclass
class ShardResult:
    task: ShardTask
    frames: int = 0
    faces: int = 0
    frame_names: list[str] = field(default_factory=list)  # in its journal, in order: what the driver checks it finds
    rejected: RejectCounts = field(default_factory=RejectCounts)
    skipped: dict[str, str] = field(default_factory=dict)  # image files that did not decode, and why
    failure: str | None = None  # the plugin and frame, when the shard failed
    seconds: float = 0.0
    node: str = ""
    logs: list[logging.LogRecord] = field(default_factory=list)  # what the worker logged (facekit.log_relay)
    landed: bool = False  # its worker was lost, but only after the shard's journal landed (the driver's finding)


class ShardWorker:
    """Made by the driver as a Ray actor (``ray.remote(ShardWorker).options(...)``)."""

    def __init__(self, payload: bytes, cv2_threads: int = 1, log_levels: dict[str, int] | None = None) -> None:
        import cv2

        self._logs = keep_logs(log_levels or {})  # each shard's result takes them back to the driver
        cv2.setNumThreads(max(1, cv2_threads))  # the CPUs it asked Ray for, not every core of the node
        self.stages, self.face_filter, self.quality = pickle.loads(payload)
        self.stages.load_models()  # a missing weights file fails here, before any shard is taken

    def node(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def run(self, task: ShardTask) -> ShardResult:
        result = ShardResult(task, node=self.node())
        started = time.perf_counter()
        output = Path(task.output)
        writer = FaceWriter(output, debug=task.books.debug, save_rejected=task.books.save_rejected)
        finish = Finisher(self.stages, self.face_filter, writer, self.quality)
        journal = ShardJournalWriter(output, task.shard, task.fingerprint)
        written: list[str] = []  # face files this shard landed: its journal, abandoned, would not name them
        try:
            batch: list[FrameRecord] = []
            for frame in shard_frames(task.shard, task.sampling, result.skipped):
                if not self.stages.wants(frame):
                    continue
                batch.append(FrameRecord(frame))
                if len(batch) >= self.stages.batch_size:
                    self._finish(batch, finish, journal, result, written)
                    batch = []
            if batch:
                self._finish(batch, finish, journal, result, written)
            journal.commit()
        except (FacekitError, OSError) as exc:  # StageError names plugin and frame
            journal.abandon()
            _remove(output, written)  # no face file without its journal line (a full disk, say)
            result.failure = (str(exc) if isinstance(exc, FacekitError)
                              else f"cannot write {exc.filename or output}: {exc.strerror or exc}")  # a full disk names no file
        except BaseException:
            journal.abandon()
            raise
        result.seconds = time.perf_counter() - started
        result.logs = self._logs.take()
        return result

    def _finish(self, batch: list[FrameRecord], finish: Finisher, journal: ShardJournalWriter,
                result: ShardResult, written: list[str]) -> None:
        """The model stages on the batch, then the chain's last stage (``Finisher``: judge, crop,
        encode) and writing, frame by frame, as a local run does."""
        for step in self.stages.steps():
            step.work(batch)
        for record in batch:
            finish(record)
            written.extend(record.pending)
            finish.writer.write(record)
            journal.write(journal_line(record))
            result.frames += 1
            result.frame_names.append(record.frame.name)
            result.faces += len(record.faces)
            result.rejected.count(record)


def _remove(output: Path, written: list[str]) -> None:
    for relative in written:
        try:
            (output / relative).unlink(missing_ok=True)
        except OSError:
            pass  # a folder gone with the disk: nothing left to remove
