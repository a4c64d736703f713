"""A pass's stages run in worker processes, each taking whole frames, so the cores work free of
one another's GIL.

With threads in one process (``facekit.engine.threads``) the two CPU models overlap, but every stage's
Python between model calls waits on the one GIL: on the 2-core machine the pipeline kept 1.7 of
2 cores busy and spent about 20% more CPU a frame than one thread doing the same work. Worker
processes run the whole chain (detect, align, embed, judge, crop, encode) on one frame each
(a batch of frames, when a stage batches: the detector gets the batch it is configured for);
the calling process decodes video frames (a worker decodes the image files it takes: a 12 MP
photo is 36 MB to pipe), hands frames to whichever worker has room, through memory they share
(``facekit.engine.frame_slots``; the pipe where that is missing), and writes the results in input
order. Each worker builds its plugins from their names and configs, as the design asks of any
worker.

Stopping keeps finished work, as with threads (whose waits, drain on Ctrl-C and failure message
``facekit.engine.stopping`` holds for both): a failing plugin ends the run after the frames
before it are written; a worker that dies ends it with the plugin and frame it was on; Ctrl-C
(or SIGTERM, which the CLI turns into one) drains the frames in flight for up to ``drain_s``
seconds. Workers ignore both signals (a terminal sends Ctrl-C to the whole process group) and
leave when the calling process tells them to, or when it is gone.
"""
from __future__ import annotations

import logging
import multiprocessing
import pickle
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from facekit.errors import FacekitError, StageError
from facekit.log_relay import configured_levels, replay
from facekit.engine.frame_slots import SlotWriter
from facekit.engine.pixel_pipe import send_pixels
from facekit.engine.stopping import POLL_S, Stopping, get_unless, poll_timeout, put_unless
from facekit.engine.worker_loop import ANSWERED, LABEL_BYTES, LOGS, RUN, UNREADABLE, Unreadable, serve
from facekit.engine.threads import PixelsInFlight, Stage
from facekit.records import FrameRecord

log = logging.getLogger(__name__)

_END = object()  # after the last frame in ``todo``
#: Batches a worker holds at once: the one it works on and the next, so it never waits for one.
_PER_WORKER = 2
_START_TIMEOUT_S = 300.0  # building models can be slow on a loaded machine, but not this slow
_FAILURE_DRAIN_S = 5.0  # after a failure, how long the frames before it may take to come back


@dataclass
class WorkerPlan:
    """How a pass runs in workers: how many, the dicts its stages add timings to (the
    ``FaceStages.model_s`` of the bound), and what each worker calls once before its first frame
    (building the models, so a missing weights file fails before any frame is read)."""

    count: int
    counters: list[dict[str, float]] = field(default_factory=list)
    prepare: list[Callable[[], None]] = field(default_factory=list)

    def payload(self, stages: Sequence[Stage]) -> bytes | None:
        """The stages as a worker rebuilds them (plugins by name and config, from the installed
        packages), or None when some part cannot be pickled (a stage function defined inside
        another, say): such a pass stays on threads."""
        try:
            return pickle.dumps((list(stages), self.counters, self.prepare))
        except Exception as exc:  # pickle raises several types; any means "cannot travel"
            log.info("stages stay in this process: %s", exc)
            return None


@dataclass
class _Worker:
    process: Any
    conn: Connection
    label: Any  # shared bytes: the stage and plugin the worker is in now
    in_flight: dict[int, FrameRecord] = field(default_factory=dict)
    room: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(_PER_WORKER))
    stopping: bool = False  # told to leave by stop(): its end is expected
    farewell: bool = False  # its sender has sent the last frame and then None: it leaves when done
    gone: bool = False  # ended, and everything it sent has been read
    slots: SlotWriter = field(default_factory=lambda: SlotWriter(_PER_WORKER))  # video frames' memory


class WorkerPool(Stopping):
    """Runs each record through every stage in one of ``plan.count`` processes; ``sink`` gets
    them in input order on the calling thread. The stages' ``busy_s`` and ``plan.counters`` add
    up what the workers measured. One pool serves one pass.

    The workers start, and build their models, when the pool is made; ``run`` then feeds them,
    so a run's timing (like a run on threads, whose models are built before it) starts with
    the models ready.
    """

    def __init__(self, plan: WorkerPlan, stages: Sequence[Stage], payload: bytes, queue_size: int,
                 max_bytes: int | None = None) -> None:
        super().__init__()  # closing: no new frames go out either; those in flight still come back
        self.stages, self.counters = stages, plan.counters
        #: frames a worker runs together: a batching stage (detect) gets its configured batch
        self.batch = max([1, *(stage.batch_size for stage in stages)])
        self.pixels = PixelsInFlight(max_bytes)  # decoded frames read ahead and not yet sent
        self.sink: Callable[[FrameRecord], None] = lambda record: None
        self.unreadable: Callable[[str, str, list[str]], None] = lambda path, why, said: None
        self.damaged: Callable[[str, list[str]], None] = lambda path, said: None
        self.workers: list[_Worker] = []
        self.todo: queue.Queue = queue.Queue(maxsize=max(1, queue_size))  # (seq, record), decoded ahead
        self.total: int | None = None  # frames read, once the reader is done
        self.next_seq = 0  # the next frame to sink, in input order
        self.finished: dict[int, FrameRecord] = {}
        self.logged: dict[int, list] = {}  # a batch's log records, at its first frame: shown when it is sunk
        self.failure: StageError | None = None
        self.failed_seq: int | None = None
        self.give_up_at: float | None = None  # after a failure, stragglers get this long
        self.reader_error: BaseException | None = None
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()  # in_flight is shared by the sender threads and this one
        try:
            self._start(payload, plan.count)
        except BaseException:
            self.stop()
            raise

    def run(self, records: Iterable[FrameRecord], sink: Callable[[FrameRecord], None], drain_s: float = 1.0,
            unreadable: Callable[[str, str, list[str]], None] = lambda path, why, said: None,
            damaged: Callable[[str, list[str]], None] = lambda path, said: None) -> None:
        """Raises StageError when a plugin fails or a worker dies, once the frames before it are
        sunk (waiting at most ``_FAILURE_DRAIN_S`` for them); re-raises KeyboardInterrupt after
        draining for up to ``drain_s`` seconds. The workers are stopped on the way out.

        Records whose frame holds only a file path are decoded by the worker; one it cannot
        decode goes to ``unreadable`` (its path, why, and what the decoder printed) instead of
        ``sink``, in input order; one that decoded while its decoder printed goes to ``damaged``
        as well as to ``sink``."""
        self.sink, self.unreadable, self.damaged = sink, unreadable, damaged
        try:
            self._feed(records)
            self.drain_on_interrupt(self._collect, drain_s)
        finally:
            self.stop()
        if self.failure is not None:
            raise self.failure
        if self.reader_error is not None:
            if isinstance(self.reader_error, FacekitError):
                raise self.reader_error
            raise StageError(f"reading frames failed: {type(self.reader_error).__name__}: "
                             f"{self.reader_error}") from self.reader_error

    # -- start and stop ---------------------------------------------------------------------
    def _start(self, payload: bytes, count: int) -> None:
        """Starts the workers and waits until each has built its models, so a missing weights
        file fails here, before the first frame."""
        context = multiprocessing.get_context("spawn")  # fork would copy this process's threads' locks
        for _ in range(count):
            ours, theirs = context.Pipe(duplex=True)
            label = context.RawArray("c", LABEL_BYTES)
            process = context.Process(target=serve, args=(theirs, payload, label, configured_levels()), daemon=True,
                                      name="facekit-worker")
            _start_deaf(process)
            theirs.close()
            held = _PER_WORKER * self.batch
            self.workers.append(_Worker(process, ours, label, room=threading.Semaphore(held), slots=SlotWriter(held)))
        deadline = time.monotonic() + _START_TIMEOUT_S
        for worker in self.workers:
            while not worker.conn.poll(POLL_S):
                if not worker.process.is_alive() or time.monotonic() > deadline:
                    raise StageError(f"a worker process could not start ({_how_it_ended(worker.process)})")
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):  # poll() is also true at the pipe's end: the worker died starting
                worker.process.join(5.0)  # for its exit code
                raise StageError(f"a worker process could not start ({_how_it_ended(worker.process)})") from None
            if message[0] != "ready":
                raise StageError(message[2])

    def stop(self) -> None:
        """Tells every worker to leave, and kills those still there after half a second: what
        they hold is unfinished, and a rerun does it again. Only a worker's sender thread writes
        to its pipe (two writers would interleave), so the senders say goodbye as they leave."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.closing.set()
        if not self.threads:  # stopped before any frame: no sender to say it
            for worker in self.workers:
                _say_goodbye(worker.conn)
        deadline = time.monotonic() + 0.5
        for worker in self.workers:
            worker.stopping = True
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            if worker.process.is_alive():
                worker.process.kill()  # busy in a model call, or hung; it ignores SIGTERM (see worker_loop.serve)
                worker.process.join(timeout=1.0)
        for thread in self.threads:
            thread.join(timeout=0.5)  # a send to a killed worker has failed by now
        for worker in self.workers:
            worker.conn.close()
            worker.slots.close()

    # -- sending ----------------------------------------------------------------------------
    def _feed(self, records: Iterable[FrameRecord]) -> None:
        """A reader thread decodes ahead into a bounded queue; one sender thread a worker hands
        the next frame to its worker whenever it has room. Sends block while a worker is busy,
        so they happen off the calling thread, which must stay free to take results."""
        self.threads.append(threading.Thread(target=self._read, args=(records,), name="read", daemon=True))
        for worker in self.workers:
            self.threads.append(threading.Thread(target=self._send, args=(worker,), name="send", daemon=True))
        for thread in self.threads:
            thread.start()

    def _read(self, records: Iterable[FrameRecord]) -> None:
        count = 0
        try:
            # taking a record decodes a video frame; an image file is only named
            for record in self.pixels.admitted(records, self.reader_stops):
                if self.closing.is_set() or not self._put((count, record)):
                    break
                count += 1
        except BaseException as exc:  # a reader error must reach the calling thread
            self.reader_error = exc
            self.closing.set()
        self.total = count
        self._put(_END)

    def _put(self, item: object) -> bool:
        return put_unless(self.todo, item, self.stopped.is_set)

    def _send(self, worker: _Worker) -> None:
        try:
            self._send_frames(worker)
        finally:
            worker.farewell = True
            _say_goodbye(worker.conn)

    def _send_frames(self, worker: _Worker) -> None:
        """Hands the worker ``self.batch`` frames as they are read, then the word to run them:
        fewer only at the end of the input, or once closing (those it has are still run)."""
        ended = False
        while not (ended or self.closing.is_set() or worker.stopping):
            sent = 0
            while sent < self.batch and not (self.closing.is_set() or worker.stopping):
                if not worker.room.acquire(timeout=POLL_S):
                    continue
                item = self._take()
                if item is None:
                    ended = True
                    break
                if not self._send_frame(worker, *item):
                    return  # the worker is gone; the calling thread sees its sentinel
                sent += 1
            if sent:
                try:
                    worker.conn.send(RUN)
                except OSError:
                    return

    def _send_frame(self, worker: _Worker, seq: int, record: FrameRecord) -> bool:
        """False when the worker is gone."""
        with self.lock:
            worker.in_flight[seq] = record
        frame = record.frame
        self.pixels.release(record)  # sent now, or never (the worker is gone)
        try:
            if frame.image is None:  # an image file: the worker decodes it
                worker.conn.send((seq, frame.name, frame.source, frame.index, frame.path, None, None, None))
                return True
            image = np.ascontiguousarray(frame.image)
            frame.image = None  # the worker has its own copy now
            offset = worker.slots.place(worker.conn, seq, image)
            worker.conn.send((seq, frame.name, frame.source, frame.index, frame.path, image.shape,
                              image.dtype.str, offset))
            if offset is None:
                send_pixels(worker.conn, image)
        except OSError:
            return False
        return True

    def _take(self) -> tuple[int, FrameRecord] | None:
        """The next (seq, record), or None at the end of the input or once closing."""
        item = get_unless(self.todo, self.closing.is_set)
        if item is _END:
            self.todo.put(_END)  # the end, for the other senders too
            return None
        return item  # type: ignore[return-value]

    # -- results ----------------------------------------------------------------------------
    def _collect(self, deadline: float | None) -> None:
        """Takes results until every frame read is sunk, or a failure has sunk what came before
        it, or ``deadline``. After a stop (Ctrl-C, a bad reader), whatever came back is sunk,
        gaps and all: a rerun does the frames that did not."""
        while not self._done():
            timeout = poll_timeout(deadline, self.give_up_at)
            if timeout is None:
                break
            self._receive(timeout)
            self._sink_in_order()
        if self.failed_seq is None and self.closing.is_set():
            for seq in sorted(self.finished):
                self._hand_over(seq, self.finished.pop(seq))

    def _in_flight(self) -> bool:
        with self.lock:
            return any(w.in_flight for w in self.workers)

    def _done(self) -> bool:
        if self.failed_seq is not None:
            return self.next_seq >= self.failed_seq
        if self.closing.is_set():
            return not self._in_flight()
        return self.total is not None and self.next_seq >= self.total

    def _receive(self, timeout: float) -> None:
        listening = [w for w in self.workers if not (w.stopping or w.gone)]
        by_handle = {w.conn: w for w in listening}
        by_sentinel = {w.process.sentinel: w for w in listening}
        ready = wait([*by_handle, *by_sentinel], timeout=timeout)
        for handle in ready:  # results first: a worker may have sent some before it ended
            if handle in by_handle and not self._result(by_handle[handle]):
                self._died(by_handle[handle])
        for handle in ready:
            if handle in by_sentinel:
                self._died(by_sentinel[handle])

    def _result(self, worker: _Worker) -> bool:
        """Takes one message from ``worker``; False when its pipe has closed."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        if message[0] == LOGS:  # what building the models, or a batch that failed, logged
            replay(message[1])
            return True
        kind, seq = message[0], message[1]
        with self.lock:
            sent = worker.in_flight.pop(seq, None)
        worker.slots.release(seq)  # before the room: the sender may place the next frame at once
        worker.room.release()
        if kind == UNREADABLE:
            frame = sent.frame if sent is not None else None
            self.finished[seq] = Unreadable(frame.path or frame.source if frame is not None else f"frame {seq}",
                                             message[2], message[3])
        elif kind == ANSWERED:
            _, _, record, busy, counted, logged, said = message
            if logged:
                self.logged[seq] = logged
            if said:
                self.damaged(record.frame.path or record.frame.source, said)
            for stage, seconds in zip(self.stages, busy):
                stage.busy_s += seconds
            for mine, theirs in zip(self.counters, counted):
                for key, seconds in theirs.items():
                    mine[key] = mine.get(key, 0.0) + seconds
            self.finished[seq] = record
        else:
            self._fail(seq, StageError(message[2]))
        return True

    def _died(self, worker: _Worker) -> None:
        """Its pipe closed or its process ended: read what it sent before, then, unless it left
        as told with nothing outstanding, fail the run at the first frame it held. A worker told
        to leave may still be tearing its models down when its pipe closes (TensorFlow's can take
        over a second on a loaded machine): with every frame answered, that is no failure."""
        if worker.stopping or worker.gone:
            return
        try:
            while worker.conn.poll() and self._result(worker):
                pass  # what it sent before it ended
        except OSError:
            pass
        worker.gone = True
        with self.lock:
            lost = sorted(worker.in_flight)
        if worker.farewell and not lost:
            return  # it left as told, every frame it took answered: how its exit ends loses nothing
        worker.process.join(timeout=1.0)
        how = f"worker process {worker.process.pid} died ({_how_it_ended(worker.process)})"
        if lost:
            frame = worker.in_flight[lost[0]].frame.name
            where = worker.label.value.decode(errors="replace") or "between stages"
            self._fail(lost[0], StageError(f"{how} on frame {frame}, in {where}"))
        else:
            self._fail(self.next_seq, StageError(f"{how} between frames"))

    def _fail(self, seq: int, error: StageError) -> None:
        self.closing.set()
        if self.give_up_at is None:
            self.give_up_at = time.monotonic() + _FAILURE_DRAIN_S
        if self.failed_seq is None or seq < self.failed_seq:
            self.failed_seq, self.failure = seq, error

    def _sink_in_order(self) -> None:
        limit = self.failed_seq
        while self.next_seq in self.finished and (limit is None or self.next_seq < limit):
            self._hand_over(self.next_seq, self.finished.pop(self.next_seq))
            self.next_seq += 1

    def _hand_over(self, seq: int, result: FrameRecord | Unreadable) -> None:
        replay(self.logged.pop(seq, []))  # what the worker logged on it, in frame order
        if isinstance(result, Unreadable):
            self.unreadable(result.path, result.why, result.said)
        else:
            self.sink(result)


def _say_goodbye(conn: Connection) -> None:
    try:
        conn.send(None)
    except OSError:
        pass  # gone already


#: The signals a worker never acts on: a terminal's Ctrl-C reaches the whole process group, and
#: the calling process tells its workers when to stop.
_STOPS = {signal.SIGINT, signal.SIGTERM}


def _start_deaf(process: multiprocessing.process.BaseProcess) -> None:
    """Starts ``process`` with Ctrl-C and SIGTERM blocked, a mask it keeps across exec: ``serve``
    ignores them only once it runs, and a Ctrl-C while a worker imported its modules printed a
    traceback from each worker. This process gets a signal sent meanwhile when the mask comes back.
    Multiprocessing's resource tracker is started first: starting it unblocks both signals."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _how_it_ended(process: Any) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
