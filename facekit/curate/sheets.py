"""A contact sheet per cluster: its faces side by side, so a person can see at a glance whether
a cluster is one person and which one, before keeping it as ``filter.refs``.

The tiles are the face files themselves, shrunk (curation has them; the sweep's sheets cut faces
afresh from frames because rejected faces have no file). Tile size, row length and lettering
are the sweep's, so both kinds of sheet look alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from facekit.sweep.contact_sheet import FACES_PER_ROW, FONT, GAP, MISSING, TILE, shortened

MAX_FACES = 64  # the sharpest faces of a big cluster: enough to judge it, small enough to open
CAPTION_LINE = 12
CAPTION_SCALE = 0.33


def tile_caption(source: str, face_file: str) -> list[str]:
    """The lines under a tile: the face's source (a collection's folder or video) and its face
    file, each shortened in the middle to the tile's width, so neither is cut at the end where
    the frame number and face index are."""
    return [shortened(source, TILE, CAPTION_SCALE), shortened(face_file, TILE, CAPTION_SCALE)]


def cluster_sheet(files: Sequence[Path], captions: Sequence[Sequence[str]]) -> bytes:
    """A JPEG of ``files`` (face images) in rows of ``FACES_PER_ROW``, each captioned with its
    lines (``tile_caption``)."""
    count = min(len(files), MAX_FACES)
    rows = max(1, -(-count // FACES_PER_ROW))
    lines = max((len(caption) for caption in captions[:count]), default=1)
    cell_w, cell_h = TILE + GAP, TILE + lines * CAPTION_LINE + GAP
    sheet = np.full((GAP + rows * cell_h, GAP + FACES_PER_ROW * cell_w, 3), 255, dtype=np.uint8)
    for n in range(count):
        top, left = GAP + (n // FACES_PER_ROW) * cell_h, GAP + (n % FACES_PER_ROW) * cell_w
        image = cv2.imread(str(files[n]), cv2.IMREAD_COLOR)
        tile = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA) if image is not None else MISSING
        sheet[top:top + TILE, left:left + TILE] = tile
        for line_number, line in enumerate(captions[n]):
            cv2.putText(sheet, line, (left, top + TILE + (line_number + 1) * CAPTION_LINE - 2), FONT, CAPTION_SCALE,
                        (0, 0, 0), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("OpenCV could not encode the contact sheet")
    return data.tobytes()
