"""What an extraction output folder holds: every face of every alignments file under it, and
where its face file is now.

Face files are found by the text each one carries (``facekit.output.pngmeta``: source, frame,
face index), so a folder whose files were renamed or moved about still curates; a file without
that text is found by the name its alignments entry gave it. Nothing here writes.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

import numpy as np

from facekit.errors import FacekitError
from facekit.imaging.geometry import DEFAULT_PADDING
from facekit.media.collection import COLLECTION_FILE, listed_sources
from facekit.ledger.lock import check_finished
from facekit.ledger.states import SourceState
from facekit.output.alignments import ALIGNMENTS_FILE, journal_path, load_alignments
from facekit.output.mask_files import mask_file_path
from facekit.output.pngmeta import FACE_KEY, FRAME_KEY, SOURCE_KEY, read_png_head_text

log = logging.getLogger(__name__)

FaceKey = tuple[str, str, int]  # source, frame name, face index in the frame


@dataclass
class FaceEntry:
    """One face of an alignments file, with what curation reads of it."""

    name: str  # where extraction wrote its file, relative to the input folder (POSIX)
    key: FaceKey
    frame_index: int
    landmarks: np.ndarray | None  # (68, 2), source pixels
    embedding: np.ndarray | None  # stored at extraction, by ``embedded_by``
    embedded_by: str | None  # the identity plugin that made ``embedding``
    yaw: float
    pitch: float
    roll: float
    sharpness: float
    face_px: float
    padding: float  # the crop's, from the alignments meta: where the landmarks sit in the file
    size: int = 0  # the crop's side at extraction (the alignments meta's), which ``matrix`` is for
    matrix: np.ndarray | None = None  # (2, 3) the crop's affine, crop <- frame, as stored (any centering)
    crop_bytes: int | None = None  # the face file's size as extraction wrote it
    rejected: str | None = None  # extraction's reason when it did not keep the face
    misalignment: float = math.nan  # the fit error extraction measured (``facekit.imaging.measures``)
    path: Path | None = None  # the face file now; None when it is nowhere under the input
    mask_files: dict[str, Path] = field(default_factory=dict)  # by mask: masks/<mask>/<its file>, where written
    embedded_with: dict[str, Any] | None = None  # the options ``embedded_by`` had (None: not recorded)

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.name).name


def read_output(root: Path) -> list[FaceEntry]:
    """Every face under ``root`` (one source's folder or a whole collection), in a fixed order
    (alignments file, then frame, then face), each with its file found."""
    if not root.is_dir():
        why = "is not a folder" if root.exists() else "does not exist"
        raise FacekitError(f"input {str(root)!r} {why}; give an extraction output folder")
    listed = _listed_folders(root)

    def of_a_source(path: Path) -> bool:
        return listed is None or path.parent.relative_to(root).as_posix() in listed

    for journal in _walk(root, journal_path(ALIGNMENTS_FILE).name.__eq__):
        if of_a_source(journal):
            check_finished(journal.parent)  # its faces are not all in its alignments file yet
    found = sorted(_walk(root, ALIGNMENTS_FILE.__eq__), key=lambda p: p.relative_to(root).as_posix())
    files = [path for path in found if of_a_source(path)]
    if len(files) < len(found):
        log.warning("%s: %d alignments file(s) there belong to no source its %s lists (a source moved or removed "
                    "since the folder was written); their faces are left out", root, len(found) - len(files),
                    COLLECTION_FILE)
    if not files:
        raise FacekitError(f"no {ALIGNMENTS_FILE} under {str(root)!r}; give the output folder of an extraction")
    faces = [face for path in files for face in _faces_of(root, path)]
    _find_files(root, faces)
    return faces


def _listed_folders(root: Path) -> set[str] | None:
    """The output folders of the sources a collection's ``collection.json`` lists (POSIX,
    relative; ``.`` for the root's own photos); None for a single source's folder, or one whose
    collection.json cannot be read (every alignments file is read then, as before)."""
    if not (root / COLLECTION_FILE).is_file():
        return None
    try:
        entries = listed_sources(root)
    except (OSError, ValueError):
        return None
    unfinished = [f"{entry.get('source')} ({entry.get('state')})" for entry in entries
                  if entry.get("output") and entry.get("state") not in (None, SourceState.DONE)]
    if unfinished:  # curated as they are, and said: a stopped extraction's source holds only its first frames
        log.warning("%s: %d source(s) whose extraction is not done are curated with the faces they have: %s%s; run "
                    "the extraction again to finish them, then this command", root, len(unfinished),
                    ", ".join(unfinished[:5]), f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else "")
    return {PurePosixPath(str(entry["output"])).as_posix() for entry in entries if entry.get("output")}


def _faces_of(root: Path, path: Path) -> Iterator[FaceEntry]:
    document = load_alignments(path)
    meta = document.get("meta") or {}
    padding = float((meta.get("output") or {}).get("padding") or DEFAULT_PADDING)
    size = int((meta.get("output") or {}).get("size") or 0)
    identity = (meta.get("plugins") or {}).get("identity") or {}
    embedded_by, embedded_with = identity.get("name"), identity.get("config")
    folder = path.parent.relative_to(root).as_posix()
    frames = sorted(document["frames"].items(), key=lambda item: (str(item[1]["source"]), int(item[1]["index"]), item[0]))
    for frame_name, frame in frames:
        for number, entry in enumerate(frame["faces"]):
            crop = entry.get("crop")
            if not crop:  # a face that got no file (rejected without filter.save_rejected)
                continue
            face = _entry(PurePosixPath(folder, crop).as_posix() if folder != "." else crop,
                          (str(frame["source"]), frame_name, number), int(frame["index"]), entry, padding, size,
                          embedded_by)
            if face.embedding is not None:
                face.embedded_with = embedded_with
            for mask in entry.get("mask") or {}:  # output.mask_format=file wrote masks/<mask>/<face file>
                mask_file = path.parent / mask_file_path(mask, crop)
                if mask_file.is_file():
                    face.mask_files[mask] = mask_file
            yield face


def _entry(name: str, key: FaceKey, frame_index: int, entry: dict[str, Any], padding: float, size: int,
           embedded_by: str | None) -> FaceEntry:
    pose = entry.get("pose") or {}
    landmarks, embedding, matrix = entry.get("landmarks"), entry.get("embedding"), entry.get("matrix")
    return FaceEntry(
        name=name, key=key, frame_index=frame_index,
        landmarks=None if landmarks is None else np.asarray(landmarks, dtype=np.float64).reshape(68, 2),
        embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        embedded_by=embedded_by if embedding is not None else None,
        yaw=_number(pose.get("yaw")), pitch=_number(pose.get("pitch")), roll=_number(pose.get("roll")),
        sharpness=_number(entry.get("sharpness")), face_px=_number(entry.get("face_px")), padding=padding, size=size,
        matrix=None if matrix is None else np.asarray(matrix, dtype=np.float64).reshape(2, 3),
        crop_bytes=None if entry.get("crop_bytes") is None else int(entry["crop_bytes"]),
        rejected=None if entry.get("keep", True) else f"rejected at extraction: {entry.get('reason')}",
        misalignment=_number(entry.get("misalignment")))


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _find_files(root: Path, faces: list[FaceEntry]) -> None:
    """Each face's file: the PNG under ``root`` whose text names its source, frame and face
    (the one at the written name when several do), else the file at the written name when that
    file carries no such text."""
    by_key: dict[FaceKey, list[Path]] = {}
    untagged: set[Path] = set()
    for path in _walk(root, lambda name: name.lower().endswith(".png")):
        key = _tag(path)
        if key is None:
            untagged.add(path)
        else:
            by_key.setdefault(key, []).append(path)
    for face in faces:
        written = root / face.name
        found = by_key.get(face.key, [])
        if found:
            face.path = written if written in found else found[0]
        elif written in untagged:
            face.path = written
    missing = sum(face.path is None for face in faces)
    if missing:
        log.warning("%d face file(s) named in the alignments are not under %s; they are left out", missing, root)


def _tag(path: Path) -> FaceKey | None:
    """(source, frame, face) from a face file's text; None when it has none or cannot be read."""
    try:
        text = read_png_head_text(path)
        return text[SOURCE_KEY], text[FRAME_KEY], int(text[FACE_KEY])
    except (OSError, ValueError, KeyError):
        return None


def _walk(root: Path, wanted: Any) -> Iterator[Path]:
    """Files under ``root`` whose name ``wanted`` accepts, in sorted order, hidden folders (a
    ``.hydra``, a temporary) left out; symbolic links to folders are not followed."""
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            if wanted(name):
                yield Path(folder) / name
