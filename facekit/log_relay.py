"""Log lines from another process (a worker process, a Ray worker) shown and filed as the run's
own. The worker keeps its records (``keep_logs``); they travel back with its results, and the
calling process hands each to its logger (``replay``), whose handlers (the console,
facekit.log) treat it as one of their own.

Without this a worker's warnings reached stderr bare, through Python's last-resort handler, and
its INFO lines were dropped: the one line per rejected face that the summary points to ("reasons
in facekit.log") was in facekit.log on threads and missing from it in worker processes.
"""
from __future__ import annotations

import copy
import logging
import threading


def configured_levels() -> dict[str, int]:
    """This process's logger levels that were set (root's under ""), for a worker to copy, so
    it keeps what this process would show or file and nothing more."""
    levels = {"": logging.getLogger().getEffectiveLevel()}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            levels[name] = logger.level
    return levels


class LogKeeper(logging.Handler):
    """Keeps the records it is given, ready to travel: each message formatted with its
    arguments (which may not pickle) and an exception's traceback as text."""

    def __init__(self) -> None:
        super().__init__()
        self._records: list[logging.LogRecord] = []
        self._taking = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        portable = copy.copy(record)
        portable.msg, portable.args = record.getMessage(), None
        if record.exc_info:
            portable.exc_text = logging.Formatter().formatException(record.exc_info)
        portable.exc_info = None
        with self._taking:
            self._records.append(portable)

    def take(self) -> list[logging.LogRecord]:
        """The records kept since the last take."""
        with self._taking:
            taken, self._records = self._records, []
        return taken


def keep_logs(levels: dict[str, int]) -> LogKeeper:
    """In a worker: every record goes to one keeper (the root logger's only handler) at the
    calling process's levels."""
    keeper = LogKeeper()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(keeper)
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)
    return keeper


def replay(records: list[logging.LogRecord]) -> None:
    """In the calling process: each record goes to its own logger's handlers, if that logger
    takes its level here."""
    for record in records:
        logger = logging.getLogger(None if record.name == "root" else record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
