"""Masks added to (or replaced in, or imported into) one source's existing output folder, from its
alignments file: no detection, no alignment. Landmark masks need only the stored 68 points; the
frames are decoded only for maskers that read pixels. Each face file is written again with its
masks in its text (and as its alpha channel with ``mask_format=alpha``), from its own pixels.

Every file lands by atomic rename and the alignments file goes last. A run stopped halfway writes
it with the entries of the face files it wrote again (their hashes, sizes and masks), so the
folder stays whole for a rerun of the extraction, but without the request: the same command run
again does the source again (the same bytes: masks are deterministic) and skips the sources it
finished.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facekit.errors import FacekitError
from facekit.faces.masks import MaskMaker, centering_of, crop_matrices, mask_matrix
from facekit.fileio import atomic_write_bytes
from facekit.imaging import geometry
from facekit.media import open_input, read_image
from facekit.ledger.lock import check_finished
from facekit.output.alignments import ALIGNMENTS_FILE, face_from_dict, load_alignments, write_alignments
from facekit.output.mask_files import encode_mask_file, mask_file_path, with_alpha
from facekit.output.differences import MASK_TASK_KEY
from facekit.output.masks import masks_to_dict
from facekit.output.pngmeta import encode_png, face_text
from facekit.records import Face, StoredMask

log = logging.getLogger("facekit")

@dataclass(frozen=True)
class MaskRequestSettings:
    """What ``task=mask`` was asked: the maskers (None: none), how masks go beside the face
    files, the folder of edited masks to import (None: none), and each masker's meta entry."""

    maker: MaskMaker | None
    file_format: str
    size: int
    import_dir: Path | None
    maskers_meta: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"maskers": self.maskers_meta, "size": self.size, "format": self.file_format,
                "import": None if self.import_dir is None else str(self.import_dir)}


def output_folders(root: Path) -> list[Path]:
    """Every source folder under an extraction output (a single source's folder is its own)."""
    found = sorted(path.parent for path in root.rglob(ALIGNMENTS_FILE))
    if not found:
        check_finished(root)  # an extraction stopped before its first fold left its journal alone
        raise FacekitError(f"no {ALIGNMENTS_FILE} under {root}: give an extraction's output folder")
    return found


def remask_folder(folder: Path, request: MaskRequestSettings) -> tuple[int, int] | None:
    """Masks for every face file of one source folder; the number of faces done and of mask
    files imported, or None when an earlier run of the same request finished it."""
    path = folder / ALIGNMENTS_FILE
    check_finished(folder)
    document = load_alignments(path)
    meta = document.setdefault("meta", {})
    if request.import_dir is None and meta.get(MASK_TASK_KEY) == request.as_dict():  # the same request again
        return None
    output = meta.get("output", {})
    crop_size, padding = int(output.get("size", 256)), float(output.get("padding", geometry.DEFAULT_PADDING))
    frames = _frames_with_files(document)
    alpha_mask = next(iter((meta.get("masks") or {}).get("maskers", {})), None)  # an RGBA face file's alpha: the first
    images = _frame_images(meta, frames) if request.maker is not None and request.maker.needs_image else {}
    done = imported = 0
    try:
        for name, source, entries in frames:
            faces = [face_from_dict(entry) for entry in entries]
            matrices = crop_matrices(faces, crop_size, padding)
            for plugin in request.maker.plugins if request.maker is not None else []:
                try:
                    request.maker.make(images.get(name), faces, matrices, crop_size, only=plugin)
                except Exception as exc:  # a masker's failure, whoever wrote it: name it, the folder and the frame
                    raise FacekitError(f"masker {plugin.spec.name!r} failed on {folder}, frame {name}: "
                                       f"{type(exc).__name__}: {exc}") from exc
            if request.import_dir is not None:
                imported += _import_masks(request.import_dir, faces, matrices, crop_size, request.size)
            for entry, face in zip(entries, faces):
                _rewrite_face_file(folder, name, source, entry, face, request, crop_size, alpha_mask)
                done += 1
    except BaseException:
        if done:  # the face files written again go with their entries (hash, size, masks), or a rerun of the
            write_alignments(path, document)  # extraction takes them for damaged; the request is not recorded
        raise
    _record(meta, request)
    write_alignments(path, document)
    return done, imported


def _frames_with_files(document: dict[str, Any]) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    """(frame name, its source, its face entries that have a face file), for frames with any."""
    found = []
    for name, frame in document["frames"].items():
        entries = [entry for entry in frame.get("faces", []) if entry.get("crop")]
        if entries:
            found.append((name, frame.get("source"), entries))
    return found


def _frame_images(meta: dict[str, Any], frames: list[tuple[str, Any, Any]]) -> dict[str, np.ndarray]:
    """The pixels of the frames named, decoded from the run's input (for maskers that read
    pixels): an image folder's files one by one, a video read once through."""
    wanted = {name for name, _, _ in frames}
    source = open_input(str(meta.get("input", "")))
    images = {}
    for frame in source.frames(decode=False):  # image files come undecoded: only the wanted ones are read
        if frame.name in wanted:
            images[frame.name] = frame.image if frame.image is not None else read_image(Path(frame.path))
    missing = wanted - images.keys()
    if missing:
        raise FacekitError(f"{len(missing)} frame(s) of {meta.get('input')} could not be read again "
                           f"(first: {sorted(missing)[0]}); a masker that reads pixels needs the run's input")
    return images


def _import_masks(folder: Path, faces: list[Face], matrices: list[np.ndarray], crop_size: int, size: int) -> int:
    """Each face's edited masks, ``<folder>/<mask name>/<face file>`` as ``mask_format=file``
    writes them: read as grey, resized to the stored size, kept under the folder's name. How
    many were found."""
    import cv2

    found = 0
    for face, matrix in zip(faces, matrices):
        for mask_folder in sorted(p for p in folder.iterdir() if p.is_dir()):
            path = mask_folder / face.crop_file
            if not path.is_file():
                continue
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if grey is None:
                raise FacekitError(f"{path} is not an image facekit can read")
            if grey.shape[0] != size or grey.shape[1] != size:
                grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
            face.masks[mask_folder.name] = StoredMask(np.ascontiguousarray(grey), mask_matrix(matrix, crop_size, size),
                                                      centering_of(face))
            found += 1
    return found


def _rewrite_face_file(folder: Path, frame_name: str, source: str | None, entry: dict[str, Any], face: Face,
                       request: MaskRequestSettings, crop_size: int, alpha_mask: str | None) -> None:
    """The face file again, its pixels as they are (an alpha channel replaced with
    ``mask_format=alpha``), its text with its masks; its entry gets the masks, hash and size."""
    import cv2

    path = folder / face.crop_file
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.is_file() else None  # OpenCV warns on stderr of a missing one
    if pixels is None:
        raise FacekitError(f"face file {path} is missing or damaged; run the extraction again to restore it")
    names = request.maker.names if request.maker is not None else []
    # the alpha channel, and mask files, the folder already has are kept in step with the masks
    # now stored (an import into a mask_format=file folder left masks/ with the unedited ones)
    alpha = names[0] if request.file_format == "alpha" and names else alpha_mask if pixels.shape[-1] == 4 else None
    if alpha is not None and alpha in face.masks:
        pixels = with_alpha(pixels, face.masks[alpha])
    index = int(face.crop_file.rsplit("_", 1)[1].split(".")[0])
    landmarks = np.asarray(entry["landmarks"], dtype=np.float64)
    data = encode_png(pixels, face_text(frame_name, index, landmarks, source=source,
                                        masks=face.masks))
    atomic_write_bytes(path, data)
    for name, mask in face.masks.items():
        target = folder / mask_file_path(name, face.crop_file)
        if request.file_format == "file" or target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, encode_mask_file(mask, crop_size))
    entry["crop_sha256"], entry["crop_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    entry["mask"] = masks_to_dict(face.masks)


def _record(meta: dict[str, Any], request: MaskRequestSettings) -> None:
    """The masks in the meta and its fingerprint, as an extraction that made them records
    them, so that extraction run again into this folder resumes; and the request, so this
    command run again skips the source."""
    if request.maskers_meta:
        masks = meta.get("masks") or {"size": request.size, "maskers": {}}
        masks = {"size": request.size, "maskers": {**masks.get("maskers", {}), **request.maskers_meta}}
        meta["masks"] = masks
        meta.setdefault("fingerprint", {})["masks"] = masks
    meta[MASK_TASK_KEY] = request.as_dict()
