"""What native decoders print straight to the stderr descriptor while a file decodes, caught so
that a warning can name the file. libjpeg writes lines like "Corrupt JPEG data: 75 extraneous
bytes before marker 0xd5" to fd 2 itself; in a folder of thousands, such a line said nothing of
which photo it was.

Catching means pointing fd 2 at a file for the length of one decode. In a worker process one
thread decodes and nothing else writes. On threads, the progress bar and the log write from
other threads meanwhile; ``python_stderr_apart`` first points Python's ``sys.stderr`` at a copy
of fd 2, so they keep reaching the terminal while fd 2 is away. What another thread's native
code printed in that moment would be caught with the file's lines: no model here prints while
it runs, so that is rare, and the line is still shown, in the file's warning.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator


class DecoderOutput:
    """Catches fd 2 around a decode; one catch at a time in a process (fd 2 is one per process)."""

    _one_at_a_time = threading.Lock()

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()

    @contextmanager
    def caught(self) -> Iterator[list[str]]:
        """The lines written to stderr meanwhile, filled in on the way out."""
        lines: list[str] = []
        with self._one_at_a_time:
            saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
            try:
                yield lines
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                lines.extend(self._taken())

    def _taken(self) -> list[str]:
        """What the file holds, as stripped non-empty lines; the file is emptied for the next catch."""
        size = os.fstat(self._file.fileno()).st_size
        if not size:
            return []
        self._file.seek(0)
        text = self._file.read(size).decode("utf-8", errors="replace")
        self._file.seek(0)
        self._file.truncate()
        return [line.strip() for line in text.splitlines() if line.strip()]


@contextmanager
def python_stderr_apart() -> Iterator[bool]:
    """Python's ``sys.stderr`` (the log, progress bars, warnings) writes to a copy of fd 2 for the
    duration, so ``DecoderOutput`` may point fd 2 elsewhere for a moment on one thread. Yields
    whether it did: not when ``sys.stderr`` is not fd 2 itself (a test's capture, say), whose
    writes must keep going where they go."""
    original = sys.stderr
    try:
        if original is None or original.fileno() != 2:
            raise ValueError("sys.stderr is not fd 2")
        original.flush()
        copy = os.dup(2)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        yield False
        return
    apart = open(copy, "w", encoding=original.encoding, errors=original.errors, buffering=1)
    sys.stderr = apart
    try:
        yield True
    finally:
        sys.stderr = original
        apart.close()
