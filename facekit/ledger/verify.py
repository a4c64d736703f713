"""Resume checks what it keeps: every face file of a frame an earlier run finished must be there
as that run wrote it, or the frame is done again. A journal line says a frame is finished; only
the file itself says its face file survived (deleted, cut short by a full disk, overwritten)."""
from __future__ import annotations

import hashlib
from enum import StrEnum
from pathlib import Path
from typing import Any, Iterable

from facekit.output.mask_files import mask_file_path


class Verify(StrEnum):
    """``resume.verify``: ``size`` stats each face file (cheap: no file is read); ``full`` also
    re-hashes it against its ``crop_sha256`` (finds a file replaced by another of equal size)."""

    size = "size"
    full = "full"


def frames_to_redo(folder: Path, done_faces: Iterable[tuple[str, list[dict[str, Any]]]], verify: Verify,
                   mask_files: bool = False) -> set[str]:
    """The finished frames one of whose face files is missing, of another size, or (``full``)
    of other bytes; with ``mask_files``, also one of whose masks' files is missing. An entry
    from before sizes were recorded is checked for presence only."""
    redo = set()
    for name, faces in done_faces:
        if not all(_files_intact(folder, face, verify, mask_files) for face in faces if face.get("crop")):
            redo.add(name)
    return redo


def _files_intact(folder: Path, face: dict[str, Any], verify: Verify, mask_files: bool) -> bool:
    """Whether a face's file is there as written, and (``mask_files``) each of its mask files."""
    crop = face["crop"]
    if not _intact(folder / crop, face.get("crop_bytes"), face.get("crop_sha256") if verify == Verify.full else None):
        return False
    return not mask_files or all((folder / mask_file_path(mask, crop)).is_file() for mask in face.get("mask") or {})


def _intact(path: Path, size: int | None, sha256: str | None) -> bool:
    try:
        if size is not None and path.stat().st_size != size:
            return False
        if sha256 is not None:
            return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
        return size is not None or path.exists()
    except OSError:
        return False
