"""File checksums: the one place that says whether a file on disk is the file a spec names."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from facekit.fileio import file_sha256


def mismatch(path: Path, sha256: str | None, size: int | None) -> str | None:
    """Why ``path`` is not the expected file, or None when it is.

    Size is compared first: it is free and catches truncated files without hashing them.
    None for ``sha256`` or ``size`` means "unknown, don't check".
    """
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size is {actual_size} bytes, expected {size}"
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256.lower():
            return f"sha256 is {actual}, expected {sha256.lower()}"
    return None


def read_sidecar(path: Path) -> str | None:
    """The sha256 recorded beside ``path`` (``<file>.sha256``), or None when none was recorded."""
    try:
        text = sidecar_path(path).read_text(encoding="ascii").split()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text[0].lower() if text else None


def write_sidecar(path: Path, sha256: str) -> None:
    """Record ``sha256`` beside ``path`` (sha256sum's format), atomically, so a reader never sees
    half a digest and two processes recording the same file cannot interleave."""
    sidecar = sidecar_path(path)
    tmp = sidecar.with_name(f"{sidecar.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(f"{sha256}  {path.name}\n", encoding="ascii")
    os.replace(tmp, sidecar)


def sidecar_path(path: Path) -> Path:
    """Where the recorded checksum of a file with no published one lives."""
    return path.with_name(f"{path.name}.sha256")


def record_sidecar(path: Path) -> str:
    """Hash ``path`` and record the digest beside it: trust on first use for a file published
    without a checksum, so later corruption is caught. Returns the digest."""
    digest = file_sha256(path)
    write_sidecar(path, digest)
    return digest
