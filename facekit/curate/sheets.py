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

from facekit.sweep.contact_sheet import FACES_PER_ROW, GAP, MISSING, TILE

MAX_FACES = 64  # the sharpest faces of a big cluster: enough to judge it, small enough to open
CAPTION = 14


def cluster_sheet(files: Sequence[Path], captions: Sequence[str]) -> bytes:
    """A JPEG of ``files`` (face images) in rows of ``FACES_PER_ROW``, each captioned."""
    count = min(len(files), MAX_FACES)
    rows = max(1, -(-count // FACES_PER_ROW))
    cell_w, cell_h = TILE + GAP, TILE + CAPTION + GAP
    sheet = np.full((GAP + rows * cell_h, GAP + FACES_PER_ROW * cell_w, 3), 255, dtype=np.uint8)
    for n in range(count):
        top, left = GAP + (n // FACES_PER_ROW) * cell_h, GAP + (n % FACES_PER_ROW) * cell_w
        image = cv2.imread(str(files[n]), cv2.IMREAD_COLOR)
        tile = cv2.resize(image, (TILE, TILE), interpolation=cv2.INTER_AREA) if image is not None else MISSING
        sheet[top:top + TILE, left:left + TILE] = tile
        cv2.putText(sheet, captions[n][:16], (left, top + TILE + CAPTION - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.33,
                    (0, 0, 0), 1, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("OpenCV could not encode the contact sheet")
    return data.tobytes()
