"""Writes each face crop (PNG carrying its own provenance) and, on request, a debug frame."""
from __future__ import annotations

import hashlib
from pathlib import Path

from facekit.output.debug_frames import draw_debug
from facekit.fileio import atomic_write_bytes
from facekit.output.pngmeta import encode_png, face_text
from facekit.records import Face, FrameRecord


REJECTED = "rejected"
DEBUG = "debug"  # output.debug's frames with boxes and landmarks drawn


class FaceWriter:
    """Face files are named ``<frame>_<face index>.png`` and carry source frame, face index and
    landmarks in a PNG text chunk, so they stay traceable when moved or sorted."""

    def __init__(self, folder: Path, debug: bool = False, save_rejected: bool = False, create: bool = True) -> None:
        """``create=False`` makes no folder: a writer that only encodes (``encode`` needs the
        settings, not the folder), as a collection's worker processes do for every source."""
        self.folder = folder
        self.debug_folder = folder / DEBUG if debug else None
        self.rejected_folder = folder / REJECTED if save_rejected else None
        self._made: set[Path] = {folder}  # folders made so far: debug/, rejected/ and masks/<name>/ on their first file
        if create:
            folder.mkdir(parents=True, exist_ok=True)

    def writes(self, face: Face) -> bool:
        """Whether this face gets a file: kept faces always, rejected ones when asked."""
        return face.keep or self.rejected_folder is not None

    def encode(self, record: FrameRecord) -> None:
        """Encodes each crop (and the debug frame) into ``record.pending``, names and hashes it,
        and frees the pixels. Runs on a stage thread: PNG encoding is the costliest part of
        writing, and OpenCV releases the GIL while it works. Rejected faces go to ``rejected/``
        when asked, so a person can see what was dropped."""
        for index, face in enumerate(record.faces):
            if face.crop is not None and self.writes(face):
                name = f"{record.frame.name}_{index}.png"
                text = face_text(record.frame.name, index, face.landmarks, source=record.frame.source, masks=face.masks)
                data = encode_png(face.crop, text)
                face.crop_file = name if face.keep else f"{REJECTED}/{name}"
                face.crop_sha256 = hashlib.sha256(data).hexdigest()
                face.crop_bytes = len(data)
                record.pending[face.crop_file] = data
            face.crop = None
        if self.debug_folder is not None and record.frame.image is not None:
            record.pending[f"debug/{record.frame.name}.jpg"] = _jpeg(draw_debug(record.frame.image, record.faces))

    def write(self, record: FrameRecord) -> None:
        """Lands each encoded file by atomic rename; a subfolder (debug/, rejected/,
        masks/<name>/) is made on its first file, so a rerun with nothing to do, or a run
        that rejects nothing, leaves no empty one."""
        for relative, data in record.pending.items():
            path = self.folder / relative
            if path.parent not in self._made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent)
            atomic_write_bytes(path, data)
        record.pending.clear()


def _jpeg(image) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image)
    return data.tobytes() if ok else b""
