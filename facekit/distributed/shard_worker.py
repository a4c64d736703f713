"""A Ray actor's work: build the plugins once, then run whole shards through the same stages,
in the same order, as a run on this machine (``facekit.faces.stages``), writing face files and the
shard's journal into the source's output folder through the shard's ledger (``facekit.ledger.shards``).

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

from facekit.errors import FacekitError, cannot_write
from facekit.faces.finisher import Finisher
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.shards import ShardLedger
from facekit.ledger.source import LedgerSettings
from facekit.log_relay import keep_logs
from facekit.media.sampling import Sampling
from facekit.media.shards import Shard, shard_frames
from facekit.records import FrameRecord


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
        ledger = ShardLedger(output, task.shard, task.fingerprint, task.books)
        finish = Finisher(self.stages, self.face_filter, ledger.writer, self.quality)
        try:
            batch: list[FrameRecord] = []
            for frame in shard_frames(task.shard, task.sampling, result.skipped):
                if not self.stages.wants(frame):
                    continue
                batch.append(FrameRecord(frame))
                if len(batch) >= self.stages.batch_size:
                    self._finish(batch, finish, ledger)
                    batch = []
            if batch:
                self._finish(batch, finish, ledger)
            ledger.commit()
        except (FacekitError, OSError) as exc:  # StageError names plugin and frame
            ledger.abandon()  # no face file without its journal line (a full disk, say)
            result.failure = str(exc) if isinstance(exc, FacekitError) else cannot_write(exc, output)
        except BaseException:
            ledger.abandon()
            raise
        counts = ledger.counts
        result.frames, result.faces, result.frame_names, result.rejected = (counts.frames, counts.faces,
                                                                             counts.frame_names, counts.rejected)
        result.seconds = time.perf_counter() - started
        result.logs = self._logs.take()
        return result

    def _finish(self, batch: list[FrameRecord], finish: Finisher, ledger: ShardLedger) -> None:
        """The model stages on the batch, then the chain's last stage (``Finisher``: judge, crop,
        encode) and the shard's ledger, frame by frame, as a local run does."""
        for step in self.stages.steps():
            step.work(batch)
        for record in batch:
            finish(record)
            ledger.write(record)
