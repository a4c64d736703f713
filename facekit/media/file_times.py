"""When a source file last changed, as resume and re-crop tell a photo replaced since it was
extracted: its change time, which no copy or ``touch`` can set back."""
from __future__ import annotations

import os
import stat


def changed_ns(path: str | os.PathLike[str]) -> int:
    """When a file last changed (its change time, ctime), and for a symlink also the file it
    names: either one replaced is another photo. 0 where it cannot be read (gone meanwhile:
    the run says so when it reads it)."""
    try:
        own = os.lstat(path)
        return max(own.st_ctime_ns, os.stat(path).st_ctime_ns) if stat.S_ISLNK(own.st_mode) else own.st_ctime_ns
    except OSError:
        return 0


def changed_after(path: str | os.PathLike[str], written_ns: int | None) -> bool:
    """Whether the file changed after ``written_ns`` (an output's last write; None: never
    written, so nothing is newer): the photo there is not the one its frame was made from."""
    return written_ns is not None and changed_ns(path) > written_ns
