"""One writer per output folder, and what a reader of a folder finds while one writes or after one stopped."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from facekit.errors import FacekitError
from facekit.output.alignments import ALIGNMENTS_FILE, journal_path

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


def check_finished(folder: Path) -> None:
    """Refuses a source folder whose extraction has not folded its journal: one still running
    (it holds the folder's lock), or one that stopped, whose finished frames are in its journal,
    not yet in the alignments file a reader would take as the whole of it."""
    journal = journal_path(folder / ALIGNMENTS_FILE)
    if not journal.exists():
        return
    if being_written(folder):
        raise FacekitError(f"another facekit run is writing to {folder}; wait for it to end")
    raise FacekitError(f"{folder} holds an unfinished extraction ({journal.name}); run the extraction again to "
                       "finish it first")


def being_written(folder: Path) -> bool:
    """Whether a run holds ``folder``'s lock now (taken and let go at once when none does)."""
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # a folder this process cannot write: no run of its own holds it either
        return False
    lock.release()
    return False
