"""Writes each face crop (PNG carrying its own provenance) and, on request, a debug frame."""
from __future__ import annotations

import hashlib
from pathlib import Path

from facekit.debug import draw_debug
from facekit.fileio import atomic_write_bytes
from facekit.pngmeta import encode_png, face_text
from facekit.types import FrameRecord


class FaceWriter:
    """Face files are named ``<frame>_<face index>.png`` and carry source frame, face index and
    landmarks in a PNG text chunk, so they stay traceable when moved or sorted."""

    def __init__(self, folder: Path, debug: bool = False) -> None:
        self.folder = folder
        self.debug_folder = folder / "debug" if debug else None
        folder.mkdir(parents=True, exist_ok=True)
        if self.debug_folder is not None:
            self.debug_folder.mkdir(exist_ok=True)

    def write(self, record: FrameRecord) -> None:
        """Writes the crops, fills in their file names and hashes, and frees the pixels."""
        for index, face in enumerate(record.faces):
            if face.crop is None:
                continue
            name = f"{record.frame.name}_{index}.png"
            text = face_text(record.frame.name, index, face.landmarks, source=record.frame.source)
            data = encode_png(face.crop, text)
            atomic_write_bytes(self.folder / name, data)
            face.crop_file, face.crop_sha256 = name, hashlib.sha256(data).hexdigest()
            face.crop = None
        if self.debug_folder is not None and record.frame.image is not None:
            self._write_debug(record)

    def _write_debug(self, record: FrameRecord) -> None:
        import cv2

        ok, data = cv2.imencode(".jpg", draw_debug(record.frame.image, record.faces))
        if ok:
            atomic_write_bytes(self.debug_folder / f"{record.frame.name}.jpg", data.tobytes())
