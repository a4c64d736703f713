"""How a run stops, the same for stages on threads (``facekit.engine.threads``) and in worker
processes (``facekit.engine.workers``).

Nothing blocks forever: every wait wakes up at least every ``POLL_S`` seconds to ask whether the
run is stopping, so Ctrl-C, SIGTERM (which the CLI turns into Ctrl-C) or a failing stage ends a
run promptly whatever its threads were waiting on. A stop comes in two steps, so that finished
work is kept: *closing*, the reader takes no new frames while those in flight drain to the sink;
*stopped*, everything ends now. On Ctrl-C a run closes and drains for up to ``drain_s`` seconds;
a second Ctrl-C, or a stage that never returns, ends it at once.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from facekit.errors import FacekitError

POLL_S = 0.05


class Stopping:
    """The two steps of a stop, as events every thread of a run can see."""

    def __init__(self) -> None:
        self.closing = threading.Event()  # the reader takes no new frames; those in flight drain
        self.stopped = threading.Event()  # everything ends now

    def reader_stops(self) -> bool:
        """The reader decodes no more frames: the run is closing, or stopped outright."""
        return self.closing.is_set() or self.stopped.is_set()

    def drain_on_interrupt(self, collect: Callable[[float | None], None], drain_s: float) -> None:
        """``collect(None)`` takes results until the run is over; on Ctrl-C the run closes and
        ``collect`` takes what is still in flight until ``drain_s`` seconds from now (its
        deadline), then the Ctrl-C goes on. A second Ctrl-C ends the drain at once."""
        try:
            collect(None)
        except KeyboardInterrupt:
            self.closing.set()
            collect(time.monotonic() + drain_s)
            raise


def poll_timeout(*deadlines: float | None) -> float | None:
    """How long the next wait may last: ``POLL_S``, less as the earliest deadline (of those not
    None) nears; None once it has passed."""
    due = [t for t in deadlines if t is not None]
    if not due:
        return POLL_S
    left = min(due) - time.monotonic()
    return min(POLL_S, left) if left > 0 else None


def put_unless(link: queue.Queue, item: object, stopped: Callable[[], bool]) -> bool:
    """Puts ``item`` on a bounded queue, asking ``stopped`` every ``POLL_S`` while it is full,
    so no producer waits forever; False when it stopped first."""
    while not stopped():
        try:
            link.put(item, timeout=POLL_S)
            return True
        except queue.Full:
            continue
    return False


def get_unless(link: queue.Queue, stopped: Callable[[], bool]) -> object | None:
    """The next item, asking ``stopped`` every ``POLL_S`` while there is none; None when it
    stopped first."""
    while not stopped():
        try:
            return link.get(timeout=POLL_S)
        except queue.Empty:
            continue
    return None


def stage_failure_message(exc: BaseException) -> str:
    """One line for the user about a stage that raised ``exc``: facekit's own errors (a plugin
    and frame, missing weights) as they are, anything else with its type."""
    if isinstance(exc, FacekitError):
        return str(exc)
    return f"stage failed: {type(exc).__name__}: {exc}"
