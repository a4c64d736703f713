"""Writes each face crop (PNG carrying its own provenance) and, on request, a debug frame."""
from __future__ import annotations

import hashlib
from pathlib import Path

from facekit.debug import draw_debug
from facekit.fileio import atomic_write_bytes
from facekit.pngmeta import encode_png, face_text
from facekit.types import FrameRecord


REJECTED = "rejected"


class FaceWriter:
    """Face files are named ``<frame>_<face index>.png`` and carry source frame, face index and
    landmarks in a PNG text chunk, so they stay traceable when moved or sorted."""

    def __init__(self, folder: Path, debug: bool = False, save_rejected: bool = False) -> None:
        self.folder = folder
        self.debug_folder = folder / "debug" if debug else None
        self.rejected_folder = folder / REJECTED if save_rejected else None
        for path in (folder, self.debug_folder, self.rejected_folder):
            if path is not None:
                path.mkdir(parents=True, exist_ok=True)

    def write(self, record: FrameRecord) -> None:
        """Writes the crops, fills in their file names and hashes, and frees the pixels. Faces the
        filter rejected go to ``rejected/`` when asked, so a person can see what was dropped."""
        for index, face in enumerate(record.faces):
            folder = self.folder if face.keep else self.rejected_folder
            if face.crop is None or folder is None:
                face.crop = None
                continue
            name = f"{record.frame.name}_{index}.png"
            text = face_text(record.frame.name, index, face.landmarks, source=record.frame.source)
            data = encode_png(face.crop, text)
            atomic_write_bytes(folder / name, data)
            face.crop_file = name if face.keep else f"{REJECTED}/{name}"
            face.crop_sha256 = hashlib.sha256(data).hexdigest()
            face.crop = None
        if self.debug_folder is not None and record.frame.image is not None:
            self._write_debug(record)

    def _write_debug(self, record: FrameRecord) -> None:
        import cv2

        ok, data = cv2.imencode(".jpg", draw_debug(record.frame.image, record.faces))
        if ok:
            atomic_write_bytes(self.debug_folder / f"{record.frame.name}.jpg", data.tobytes())
