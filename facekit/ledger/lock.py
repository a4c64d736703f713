"""One writer per output folder."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from facekit.errors import FacekitError

LOCK_FILE = ".facekit.lock"


@contextmanager
def exclusive_output(output: Path) -> Iterator[None]:
    """One run per output folder: two writers would interleave one journal."""
    lock = FileLock(str(output / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FacekitError(f"another facekit run is writing to {output}; wait for it or choose another output") from None
    try:
        yield
    finally:
        lock.release()
