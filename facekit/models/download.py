"""Fetches one URL to one path, and nothing else: it resumes with HTTP Range, retries with
back-off, draws a progress bar, holds a lock so two processes never write one file, and checks
size and checksum before an atomic rename, so the final path only ever holds a whole, good file.

HTTP is the standard library's urllib: it follows redirects (release hosts send you to a CDN),
keeps the Range header across them, and adds no dependency for one GET.
"""
from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import ssl
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from filelock import FileLock, Timeout
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskID, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)

from facekit.console import STDERR
from facekit.errors import ModelError
from facekit.models.checksum import mismatch

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_NETWORK_ERRORS = (URLError, ConnectionError, TimeoutError, http.client.HTTPException, ssl.SSLError)
_CONTENT_RANGE = re.compile(r"bytes (?P<start>\d+)-\d+/(?P<total>\d+|\*)")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Only attempts that add no bytes count against ``attempts``: a flaky
    link that drops every few megabytes still finishes a large file."""

    attempts: int = 5  # consecutive attempts without progress before giving up
    backoff: float = 1.0  # seconds before the first retry; doubles after each fruitless attempt
    max_delay: float = 30.0
    timeout: float = 30.0  # seconds a socket may stay silent before the attempt counts as failed

    def delay(self, failures: int) -> float:
        return min(self.backoff * 2 ** max(failures - 1, 0), self.max_delay)


class _Failure(Exception):
    """One attempt failed; ``retry`` says whether another attempt could succeed."""

    def __init__(self, reason: str, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


@dataclass
class _Bar:
    """One file's row in the progress display."""

    progress: Progress
    task: TaskID

    def start(self, total: int | None, completed: int) -> None:
        self.progress.update(self.task, total=total, completed=completed)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


def partial_path(dest: Path) -> Path:
    """Where the bytes received so far wait, so an interrupted download resumes."""
    return dest.with_name(f"{dest.name}.part")


def download(url: str, dest: Path, *, sha256: str | None = None, size: int | None = None,
             retry: RetryPolicy = RetryPolicy(), quiet: bool = False, by_hand: str | None = None) -> Path:
    """Fetch ``url`` to ``dest`` and return ``dest``; raise ModelError naming the URL and what
    to do by hand (``by_hand``, else "put <name> in <folder>/"). ``sha256``/``size`` of None are
    not checked.

    If another process holds the lock and lands ``dest`` meanwhile, its file is returned as is.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _locked(dest):
            if not dest.is_file():
                _download_locked(url, dest, sha256, size, retry, quiet, by_hand)
    except OSError as e:  # network errors were turned into ModelError: this is the local disk
        raise ModelError(f"cannot write {dest} ({e.strerror or e}); "
                         f"set FACEKIT_HOME to a writable folder with free space") from None
    return dest


def _download_locked(url: str, dest: Path, sha256: str | None, size: int | None,
                     retry: RetryPolicy, quiet: bool, by_hand: str | None) -> None:
    part = partial_path(dest)
    try:
        with _progress_bar(dest.name, quiet) as bar:
            _fetch(url, part, size, retry, bar)
    except _Failure as failure:
        raise ModelError(f"could not download {url} ({failure}); "
                         f"{by_hand or f'put {dest.name} in {dest.parent}/'} by hand") from None
    problem = mismatch(part, sha256, size)
    if problem:
        part.unlink(missing_ok=True)
        raise ModelError(f"checksum mismatch for {url} ({problem}); the download was deleted: "
                         f"try again, or put a good copy of {dest.name} in {dest.parent}/")
    os.replace(part, dest)


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """Hold ``<dest>.lock`` (across processes and threads); say so when someone else has it.

    The empty lock file stays: deleting it while another process opens it would let two
    processes each hold "the" lock.
    """
    lock = FileLock(f"{dest}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another facekit process to finish downloading %s", dest.name)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _progress_bar(name: str, quiet: bool) -> Iterator[_Bar]:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=STDERR, disable=quiet) as progress:
        yield _Bar(progress, progress.add_task(f"downloading {name}", total=None))


def _fetch(url: str, part: Path, size: int | None, retry: RetryPolicy, bar: _Bar) -> None:
    """Fill ``part`` with all of ``url``, resuming after each dropped connection."""
    failures = tries = 0
    while True:
        before = _size(part)
        tries += 1
        try:
            return _attempt(url, part, size, retry.timeout, bar)
        except _Failure as failure:
            failures = 0 if _size(part) > before else failures + 1
            if not failure.retry or failures >= retry.attempts:
                raise _Failure(f"{failure}, after {tries} tries" if tries > 1 else str(failure),
                               retry=False) from None
            delay = retry.delay(failures)
            log.warning("download of %s failed (%s); retrying in %.1f s", url, failure, delay)
            time.sleep(delay)


def _attempt(url: str, part: Path, size: int | None, timeout: float, bar: _Bar) -> None:
    """One GET: continue ``part`` where it stops, or rewrite it when the server ignores Range."""
    offset = _resume_offset(part, size)
    if offset and offset == size:
        return  # an earlier run got every byte; the checksum decides whether they are right
    headers = {"User-Agent": "facekit", **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        with urlopen(Request(url, headers=headers), timeout=timeout) as response:
            start, total = _body_range(response, part, size)
            bar.start(total, start)
            _write(response, part, start, bar)
    except HTTPError as e:
        e.close()
        raise _http_failure(e, part) from None
    except _NETWORK_ERRORS as e:
        if isinstance(getattr(e, "reason", None), socket.gaierror):
            # a name that does not resolve will not resolve seconds later: say so now, not after retries
            raise _Failure(f"host {urlsplit(url).hostname} does not resolve ({_reason(e)}); "
                           "check the address and this machine's network", retry=False) from None
        raise _Failure(_reason(e), retry=True) from None
    received = _size(part)
    if total is not None and received < total:
        raise _Failure(f"connection closed after {received} of {total} bytes", retry=True)


def _resume_offset(part: Path, size: int | None) -> int:
    """Bytes already here; a partial file longer than the whole one is junk and goes."""
    offset = _size(part)
    if size is not None and offset > size:
        part.unlink()
        return 0
    return offset


def _body_range(response: http.client.HTTPResponse, part: Path, size: int | None) -> tuple[int, int | None]:
    """Where the body starts in the file, and the whole file's size (None when nobody says).

    A 200 answers a Range request with the whole file: the body starts at 0, not where
    ``part`` ends.
    """
    offset = _size(part)
    if response.status != 206:
        length = response.headers.get("Content-Length")
        return 0, int(length) if length else size
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None or int(match["start"]) > offset:  # a gap we cannot fill: start over
        part.unlink(missing_ok=True)
        raise _Failure(f"server sent an unusable range ({response.headers.get('Content-Range')})",
                       retry=True)
    return int(match["start"]), size if match["total"] == "*" else int(match["total"])


def _write(response: http.client.HTTPResponse, part: Path, start: int, bar: _Bar) -> None:
    """Write the body into ``part`` from ``start``; bytes received stay there if the link drops."""
    with part.open("r+b" if part.exists() else "wb") as out:
        out.seek(start)
        out.truncate()
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            bar.advance(len(chunk))
        out.flush()
        os.fsync(out.fileno())


def _http_failure(error: HTTPError, part: Path) -> _Failure:
    reason = f"HTTP {error.code} {error.reason}"
    if error.code == 416:  # the partial file does not fit the server's file: start over
        part.unlink(missing_ok=True)
        return _Failure(f"{reason}, restarting", retry=True)
    return _Failure(reason, retry=error.code in _RETRY_STATUS)


def _reason(error: Exception) -> str:
    """A network error in a few words (URLError hides the real one in ``reason``)."""
    return str(getattr(error, "reason", None) or error) or type(error).__name__


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
