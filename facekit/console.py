"""One rich console on stderr, shared by log messages and progress bars so they don't collide,
and by Hydra's own lines (its launcher's, in a sweep) as well as facekit's."""
from __future__ import annotations

import logging
import re
from pathlib import Path

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


#: a value quoted for Hydra's parser: 'fötos', "it's" (a backslash escapes the quote inside)
_QUOTED = re.compile(r"""(['"])((?:\\.|(?!\1).)*)\1""")
#: Hydra's launcher's line for each job: "\t#0 : input='fötos' output.size=64"
_JOB_LINE = re.compile(r"^\s*#\d+ : ")


def quantity(count: int, noun: str) -> str:
    """``1 frame``, ``2 frames``: a count and its noun as a user reads them."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def hydra_quoted(text: str) -> str:
    """``text`` as a Hydra quoted value that reads back as exactly ``text``: in single quotes
    unless it holds one and no double quote; a backslash is doubled only where it precedes the
    quote character or the closing quote (Hydra unescapes nothing else in quotes)."""
    quote = '"' if "'" in text and '"' not in text else "'"
    escaped = re.sub(rf"(\\*)({quote}|\Z)",
                     lambda m: m.group(1) * 2 + ("\\" + quote if m.group(2) else ""), text)
    return f"{quote}{escaped}{quote}"


def unquoted(override: str) -> str:
    """An override with Hydra's quoting taken out (``input='fötos'`` as ``input=fötos``): the
    value as the person typed it, for showing, never for parsing again."""
    return _QUOTED.sub(lambda m: re.sub(r"\\(.)", r"\1", m.group(2)), override)


class PlainJobLines(logging.Filter):
    """Hydra's launcher names each job of a sweep by its overrides as Hydra parses them, quotes
    and a leading tab included; this shows them as typed, in facekit's console format."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _JOB_LINE.match(message):
            record.msg, record.args = unquoted(message.strip()), None
        return True


class RunLogFile(logging.Handler):
    """The run's log file (``facekit.log``), opened only once the run is accepted
    (``open_run_log``): until then records wait here, and a run refused before that writes no
    log at all, so its output folder is left as it was found."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__()
        self._waiting: list[logging.LogRecord] = []
        self._file: logging.FileHandler | None = None
        if formatter is not None:
            self.setFormatter(formatter)

    def open(self, path: Path) -> None:
        if self._file is not None and Path(self._file.baseFilename) == path.resolve():
            return
        if self._file is not None:
            self._file.close()
        # a name that is not UTF-8 (Latin-1, held with surrogates) is written escaped, as stderr shows it
        self._file = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")
        self._file.setFormatter(self.formatter)
        waiting, self._waiting = self._waiting, []
        for record in waiting:
            self._file.emit(record)

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None:
            if len(self._waiting) < _MOST_WAITING:
                self._waiting.append(record)
            return
        self._file.emit(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


_MOST_WAITING = 10_000  # lines before acceptance: a handful in practice; the bound keeps memory bounded


def open_run_log(path: Path) -> None:
    """Every ``RunLogFile`` of the logging set-up (Hydra's job logging) starts writing to ``path``."""
    for logger in [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, RunLogFile):
                handler.open(path)
