"""The loop each worker process runs: build the stages from their pickled names and configs,
then take frames (through shared memory or the pipe, or an image file's path to decode here),
run each batch through every stage, and send each frame's result back in order."""
from __future__ import annotations

import pickle
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Sequence

import numpy as np

from facekit.engine.frame_slots import frame_in, receive_region
from facekit.engine.pixel_pipe import receive_pixels
from facekit.engine.stopping import stage_failure_message
from facekit.engine.threads import Stage
from facekit.log_relay import LogKeeper, keep_logs
from facekit.media.decoder_output import DecoderOutput
from facekit.media.sources import load_pixels_caught
from facekit.records import Frame, FrameRecord

RUN = ("run",)  # after a batch's frames: the worker runs them through its stages together
LOGS = "logs"  # a worker's message of what it logged: (LOGS, records)
# A worker's answer for a frame, by its first item: the record and its figures; a frame it could
# not read (why, what its decoder said); a stage's failure (its message). Messages of the pipe,
# apart from a source's states (facekit.ledger.states).
ANSWERED, UNREADABLE, STAGE_FAILED = "answered", "unreadable", "stage failed"
LABEL_BYTES = 200


@dataclass
class Unreadable:
    """A frame whose image file its worker could not decode: reported in its place in the order."""

    path: str
    why: str
    said: list[str]  # what its decoder printed



def serve(conn: Connection, payload: bytes, label: Any, log_levels: dict[str, int]) -> None:
    """A worker's life: build the stages, then take frames and run each batch of them when told,
    until told to stop or the calling process is gone (its end of the pipe closes). What it
    logs goes back to the calling process (``facekit.log_relay``) with each batch's results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs = keep_logs(log_levels)
    try:
        import cv2

        cv2.setNumThreads(1)  # the workers already keep every core busy
        stages, counters, prepare = pickle.loads(payload)
        for step in prepare:
            step()
    except BaseException as exc:  # noqa: BLE001 - the calling process must hear why
        conn.send((STAGE_FAILED, -1, stage_failure_message(exc)))
        return
    conn.send(("ready",))
    if not _send_logs(conn, logs):  # what building the models said
        return
    labels = [_stage_label(stage).encode()[:LABEL_BYTES - 1] for stage in stages]
    decoder = DecoderOutput()
    region = None  # video frames' shared memory, once the calling process has sent it
    batch: list[tuple[int, FrameRecord, list[str]]] = []  # frames taken, what their decoders printed
    while True:
        try:
            header = conn.recv()
            if header is None:
                return
            if header == RUN:
                if batch and not _run_batch(conn, batch, stages, labels, label, counters, logs):
                    return
                batch = []
                continue
            if header[0] == "slots":
                region = receive_region(conn, header[1])
                continue
            seq, name, source, index, path, shape, dtype, offset = header
            image = None
            if offset is not None:
                image = frame_in(region, offset, shape, dtype)
            elif shape is not None:
                image = np.empty(shape, dtype=np.dtype(dtype))
                receive_pixels(conn, image)
        except (EOFError, OSError):
            return  # the calling process is gone
        record = FrameRecord(Frame(name=name, source=source, index=index, image=image, path=path))
        said: list[str] = []
        if image is None:  # an image file, to decode here
            why, said = load_pixels_caught(record.frame, decoder)
            if why is not None:
                if not _reply(conn, (UNREADABLE, seq, why, said)):
                    return
                continue
        batch.append((seq, record, said))


def _run_batch(conn: Connection, batch: list[tuple[int, FrameRecord, list[str]]], stages: Sequence[Stage],
               labels: list[bytes], label: Any, counters: list[dict[str, float]], logs: LogKeeper) -> bool:
    """Runs the batch's records through every stage, each stage taking them all at once, and
    sends each frame's result; the batch's timings and log records come with its first (the
    calling process shows and files them when it writes that frame, so they read in frame
    order). A failure counts at the batch's first frame (the plugin's message names every frame
    of the batch), so the run keeps the frames before the batch; what the batch logged goes
    ahead of it. False when the calling process is gone."""
    records = [record for _, record, _ in batch]
    before = [dict(c) for c in counters]
    busy = []
    try:
        for stage, stage_label in zip(stages, labels):
            label.value = stage_label
            started = time.perf_counter()
            stage.work(records)
            busy.append(time.perf_counter() - started)
        counted = [{k: v - b.get(k, 0.0) for k, v in c.items()} for c, b in zip(counters, before)]
        replies: list[tuple[Any, ...]] = []
        for number, (seq, record, said) in enumerate(batch):
            record.frame.image = None
            first_only = (busy, counted, logs.take()) if number == 0 else ([0.0] * len(busy), [{} for _ in counted], [])
            replies.append((ANSWERED, seq, record, *first_only, said))
    except BaseException as exc:  # noqa: BLE001 - SystemExit from a plugin too
        replies = [(STAGE_FAILED, batch[0][0], stage_failure_message(exc))]
    finally:
        label.value = b""
    return _send_logs(conn, logs) and all(_reply(conn, reply) for reply in replies)


def _reply(conn: Connection, reply: tuple[Any, ...]) -> bool:
    """Sends a frame's result; False when the calling process is gone."""
    try:
        try:
            conn.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # a plugin's output that cannot travel
            conn.send((STAGE_FAILED, reply[1], stage_failure_message(exc)))
    except OSError:
        return False
    return True


def _send_logs(conn: Connection, logs: LogKeeper) -> bool:
    """What the worker logged since it last sent, if anything; False when the calling process
    is gone."""
    records = logs.take()
    return _reply(conn, (LOGS, records)) if records else True


def _stage_label(stage: Stage) -> str:
    return f"stage {stage.name}" + (f" ({stage.plugin})" if stage.plugin else "")
