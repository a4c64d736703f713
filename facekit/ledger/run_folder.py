"""The run's output folder: one run at a time, and nothing left behind by a run that is refused.

A lock on ``output.dir`` itself is held for the whole run, whatever the input and executor: two
runs into one folder would split a collection's sources between them and each rewrite its state.
Until the run is accepted (``accept``: every check that can refuse it has passed) the folder
holds nothing of this run's but the lock; a refused or failed start removes the lock file and
the folders it made, so the output is left exactly as it was found.
"""
from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from facekit.errors import FacekitError, OutputError
from facekit.fileio import missing_folders, remove_empty_folders

RUN_LOCK_FILE = ".facekit-run.lock"


class RunFolder:
    def __init__(self, folder: Path, leave_no_lock: bool = False) -> None:
        """``leave_no_lock``: the folder is the user's, not an output of facekit's (``task=mask``
        writes into an extraction's folders under it): the lock file goes when the run ends."""
        self.folder = folder
        self._leave_no_lock = leave_no_lock
        self.accepted = False
        self._made: list[Path] = []  # folders this run created, innermost first
        self._lock: FileLock | None = None
        self._lock_was_there = False

    def __enter__(self) -> RunFolder:
        _refuse_inside_a_held_folder(self.folder)
        missing = missing_folders(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot make the folder {self.folder}: {exc.strerror or exc}") from None
        self._made = missing
        lock_path = self.folder / RUN_LOCK_FILE
        self._lock_was_there = lock_path.exists()
        self._lock = FileLock(str(lock_path))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            self._lock = None
            self._undo()
            raise FacekitError(f"another facekit run is writing to {self.folder}; wait for it to end, "
                               "or choose another output") from None
        except OSError as exc:  # a read-only folder: its lock cannot be made (after Timeout, itself an OSError)
            self._lock = None
            self._undo()
            raise OutputError(f"cannot write into {self.folder}: {exc.strerror or exc}") from None
        return self

    def accept(self) -> None:
        """Every check passed: from here on the run writes, and what it writes stays."""
        self.accepted = True

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None and self.accepted and self._leave_no_lock and not self._lock_was_there:
            # removed while still held: a run that opens it after finds no file and makes its own,
            # and one that opened it before finds it locked and is refused, as it would have been
            (self.folder / RUN_LOCK_FILE).unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
        if not self.accepted:
            self._undo()

    def _undo(self) -> None:
        """Removes the lock file (unless an earlier run left it) and every folder this run made
        that is still empty, innermost first."""
        if self._lock is not None and not self._lock_was_there:
            (self.folder / RUN_LOCK_FILE).unlink(missing_ok=True)
        remove_empty_folders(self._made)  # one not empty holds someone else's files: it and its parents stay


def _refuse_inside_a_held_folder(folder: Path) -> None:
    """A folder inside another run's output while that run writes it is refused too: the other
    run may be about to write there (a collection's source not reached yet), and would then
    find another run's files in its source's folder."""
    for above in folder.resolve().parents:
        lock_path = above / RUN_LOCK_FILE
        if not lock_path.is_file():
            continue
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise FacekitError(f"another facekit run is writing to {above}, which holds {folder}; wait for it to "
                               "end, or choose an output outside it") from None
        except OSError:  # a folder this user cannot write: no run of its own holds it either
            continue
        lock.release()
