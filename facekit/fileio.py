"""Files land whole or not at all (written to a temporary name in the same folder, then renamed);
and a file's content digest."""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

_CHUNK = 1 << 20
_TEMP_HEX = 16  # hex digits in a temporary file's name: .<name>.<hex>.tmp
_TEMPORARY = re.compile(rf"^\..+\.[0-9a-f]{{{_TEMP_HEX}}}\.tmp$")


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically; ``durable`` also fsyncs before the rename.
    The temporary file is made with ``open(..., "xb")``, not ``mkstemp``: files get the mode
    the umask gives (0644 usually), not mkstemp's 0600, which left face crops unreadable to
    anyone but their writer."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(_TEMP_HEX // 2)}.tmp"
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` survive a power cut (POSIX only)."""
    if os.name == "posix":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so a large weights file never sits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_left_temporaries(folder: Path) -> int:
    """Removes the temporary files ``atomic_write_bytes`` left in ``folder`` (not below it) when
    its process was killed mid-write (each up to a whole face file): call it only while no other
    writer can be writing there (the output's lock held). How many it removed."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if _TEMPORARY.match(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed += 1
    return removed


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, innermost first: what a
    ``mkdir(parents=True)`` of it will make."""
    return [parent for parent in [folder, *folder.parents] if not parent.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Each of ``folders`` (innermost first) that is still empty goes; the first that is not (or
    is gone) stops it, leaving its parents."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
