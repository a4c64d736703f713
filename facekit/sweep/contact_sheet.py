"""A contact sheet of the faces nearest each threshold of a sweep, re-cropped from their frames.

Counts say how many faces a threshold keeps; only the faces themselves show whether the ones at
the edge are the right person. So each row shows the faces whose distance lies nearest one
threshold, on both sides of it, with a green (kept) or red (rejected) border and the distance.
Rejected faces have no crop file unless ``filter.save_rejected`` was set, so every tile is cut
afresh from its source frame with the landmarks in the alignments file.
"""
from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from facekit.imaging import geometry
from facekit.media.sources import VIDEO_SUFFIXES, read_image

log = logging.getLogger(__name__)

FACES_PER_ROW = 8
TILE = 96            # side of a face tile, pixels
BORDER = 3           # the keep / reject frame around a tile
CAPTION = 16         # the line under a tile: distance and decision
LABEL = 120          # the row's threshold, left of its tiles
GAP = 4
KEEP, REJECT, MISSING = (40, 160, 40), (40, 40, 210), (200, 200, 200)  # BGR
FONT = cv2.FONT_HERSHEY_SIMPLEX

FaceKey = tuple[str, int, int]  # source, frame index, face number in the frame


@dataclass(frozen=True)
class SheetFace:
    """One judged face, with what it takes to cut it again from its frame."""

    source: str
    index: int      # frame: 1-based number in a video, position in an image folder
    number: int     # the face's position in its frame's list
    landmarks: np.ndarray
    distance: float
    keep: bool

    @property
    def key(self) -> FaceKey:
        return self.source, self.index, self.number


@dataclass(frozen=True)
class SheetRow:
    label: str  # drawn left of the faces, one line per line
    faces: Sequence[SheetFace]


def nearest_faces(frames: Mapping[str, Any], threshold: float, count: int = FACES_PER_ROW) -> list[SheetFace]:
    """The ``count`` judged faces of an alignments ``frames`` object whose distance lies nearest
    ``threshold``: half at or below it and half above, more from one side where the other runs
    short; in order of distance."""
    faces = list(_judged_faces(frames))
    below = [f for f in faces if f.distance <= threshold]
    above = [f for f in faces if f.distance > threshold]
    take_below = min(len(below), max(count // 2, count - len(above)))
    chosen = heapq.nlargest(take_below, below, key=lambda f: f.distance) + \
        heapq.nsmallest(count - take_below, above, key=lambda f: f.distance)
    return sorted(chosen, key=lambda f: f.distance)


def _judged_faces(frames: Mapping[str, Any]) -> Iterator[SheetFace]:
    for frame in frames.values():
        for number, face in enumerate(frame["faces"]):
            if face.get("distance") is not None and face.get("landmarks") is not None:
                yield SheetFace(frame["source"], int(frame["index"]), number,
                                np.asarray(face["landmarks"], dtype=np.float64),
                                float(face["distance"]), bool(face.get("keep", True)))


def render(rows: Sequence[SheetRow], base: Path) -> np.ndarray:
    """The sheet as a BGR image; relative sources are found under ``base`` (the sweep's cwd)."""
    crops = face_crops([face for row in rows for face in row.faces], base)
    cell = TILE + 2 * BORDER
    width = LABEL + FACES_PER_ROW * (cell + GAP)
    row_height = cell + CAPTION + GAP
    sheet = np.full((max(1, len(rows)) * row_height + GAP, width, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        top = GAP + r * row_height
        for n, line in enumerate(row.label.splitlines()):
            _text(sheet, line, (GAP, top + cell // 2 + 18 * n), scale=0.45)
        for c, face in enumerate(row.faces[:FACES_PER_ROW]):
            _draw_tile(sheet, crops.get(face.key), face, LABEL + c * (cell + GAP), top)
    return sheet


def _draw_tile(sheet: np.ndarray, crop: np.ndarray | None, face: SheetFace, left: int, top: int) -> None:
    cell = TILE + 2 * BORDER
    sheet[top:top + cell, left:left + cell] = KEEP if face.keep else REJECT
    inner = sheet[top + BORDER:top + BORDER + TILE, left + BORDER:left + BORDER + TILE]
    inner[:] = MISSING if crop is None else crop
    caption = f"{face.distance:.3f} {'KEEP' if face.keep else 'REJECT'}"
    _text(sheet, caption, (left + 1, top + cell + CAPTION - 4), scale=0.35,
          color=KEEP if face.keep else REJECT)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float,
          color: tuple[int, int, int] = (0, 0, 0)) -> None:
    cv2.putText(image, text, origin, FONT, scale, color, 1, cv2.LINE_AA)


def face_crops(faces: Iterable[SheetFace], base: Path) -> dict[FaceKey, np.ndarray]:
    """Each face cut from its frame at ``TILE`` pixels; each frame is decoded once, whichever
    rows show its faces. Faces whose frame cannot be read are left out, with a warning."""
    by_frame: dict[tuple[str, int], dict[FaceKey, SheetFace]] = {}
    for face in faces:
        by_frame.setdefault((face.source, face.index), {})[face.key] = face
    crops: dict[FaceKey, np.ndarray] = {}
    for (source, index), image in _frames(sorted(by_frame), base):
        if image is None:
            log.warning("contact sheet: cannot read frame %d of %s; its faces are shown grey", index, source)
            continue
        for key, face in by_frame[source, index].items():
            matrix = geometry.alignment_matrix(face.landmarks, TILE)
            crops[key] = geometry.warp_face(image, matrix, TILE)
    return crops


def _frames(wanted: Sequence[tuple[str, int]], base: Path) -> Iterator[tuple[tuple[str, int], np.ndarray | None]]:
    """The frames ``(source, index)`` in the order given; a video is opened once and each frame
    is reached by seeking (``index`` is 1-based, OpenCV's frame position 0-based)."""
    capture, opened = None, None
    try:
        for source, index in wanted:
            path = base / source
            if path.suffix.lower() not in VIDEO_SUFFIXES:
                yield (source, index), read_image(path)
                continue
            if opened != path:
                if capture is not None:
                    capture.release()
                capture, opened = cv2.VideoCapture(str(path)), path
            capture.set(cv2.CAP_PROP_POS_FRAMES, index - 1)
            ok, image = capture.read()
            yield (source, index), image if ok else None
    finally:
        if capture is not None:
            capture.release()
