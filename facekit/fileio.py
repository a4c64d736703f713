"""Files land whole or not at all (written to a temporary name in the same folder, then renamed);
and a file's content digest."""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

_CHUNK = 1 << 20


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically; ``durable`` also fsyncs before the rename.
    The temporary file is made with ``open(..., "xb")``, not ``mkstemp``: files get the mode
    the umask gives (0644 usually), not mkstemp's 0600, which left face crops unreadable to
    anyone but their writer."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
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
