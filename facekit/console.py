"""One rich console on stderr, shared by log messages and progress bars so they don't collide."""
from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

STDERR = Console(stderr=True)


class LogHandler(RichHandler):
    """Hydra's console log handler (see conf/config.yaml): short lines, no paths or times.

    On a terminal rich lays each message out beside its level, wrapped to the window. Anywhere
    else (a log file, a pipe, CI) a record is one plain line in the same layout, so that it can
    be searched: rich would wrap it at 80 columns and pad it with spaces."""

    def __init__(self) -> None:
        super().__init__(console=STDERR, show_time=False, show_path=False, markup=False,
                         rich_tracebacks=False)

    def emit(self, record: logging.LogRecord) -> None:
        if self.console.is_terminal:
            super().emit(record)
            return
        try:
            self.console.file.write(f"{record.levelname:<8} {self.format(record)}\n")
            self.console.file.flush()
        except Exception:  # noqa: BLE001 - logging must never end the run
            self.handleError(record)
