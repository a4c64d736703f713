"""A contact sheet of the faces nearest each threshold of a sweep, re-cropped from their frames.

Counts say how many faces a threshold keeps; only the faces themselves show whether the ones at
the edge are the right person (or too blurred, too turned). So each row shows the faces whose
value (the identity filter's distance, or the measure a quality limit bounds) lies nearest one
threshold, on both sides of it, with a green (kept) or red (rejected) border, the value, and
for a rejected face what rejected it: in a sweep over a threshold and a quality limit, a face
under the threshold may have been rejected for its yaw (``yaw 52.3 > 30``), not its distance.
Rejected faces have no crop file unless ``filter.save_rejected`` was set, so every tile is cut
afresh from its source frame with the landmarks in the alignments file.
"""
from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from facekit.faces.quality import reason_kind
from facekit.imaging import geometry
from facekit.media.sources import VIDEO_SUFFIXES, read_image, video_capture

log = logging.getLogger(__name__)

FACES_PER_ROW = 8
TILE = 96            # side of a face tile, pixels
BORDER = 3           # the keep / reject frame around a tile
CAPTION_LINE = 13
CAPTION = 2 * CAPTION_LINE + 3  # the lines under a tile: value and decision, then why a face was rejected
CAPTION_SCALE = 0.35
LABEL = 120          # the row's threshold, left of its tiles (at least)
LABEL_SCALE = 0.45
GAP = 4
KEEP, REJECT, MISSING = (40, 160, 40), (40, 40, 210), (200, 200, 200)  # BGR
FONT = cv2.FONT_HERSHEY_SIMPLEX

FaceKey = tuple[str, int, int]  # source, frame index, face number in the frame
#: A frame's face entries -> the value each is placed by (None: not placed, left off the sheet)
FaceValues = Callable[[Sequence[Mapping[str, Any]]], Sequence[float | None]]


def distances(faces: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """The identity filter's distance of each face (None where no filter judged it)."""
    return [face.get("distance") for face in faces]


@dataclass(frozen=True)
class SheetFace:
    """One judged face, with what it takes to cut it again from its frame."""

    source: str
    index: int      # frame: 1-based number in a video, position in an image folder
    number: int     # the face's position in its frame's list
    landmarks: np.ndarray
    value: float    # what the row's threshold bounds: a distance, a measure
    keep: bool
    reason: str | None = None  # why it was rejected, as the alignments file says

    @property
    def key(self) -> FaceKey:
        return self.source, self.index, self.number


@dataclass(frozen=True)
class SheetRow:
    label: str  # drawn left of the faces, one line per line
    faces: Sequence[SheetFace]
    value_format: str = ".3f"  # of each face's value, under its tile


def nearest_faces(frames: Mapping[str, Any], threshold: float, count: int = FACES_PER_ROW,
                  values: FaceValues = distances) -> list[SheetFace]:
    """The ``count`` faces of an alignments ``frames`` object whose value (``values``: the
    distance by default) lies nearest ``threshold``: half at or below it and half above, more
    from one side where the other runs short; in order of value."""
    placed = list(_placed_faces(frames, values))
    below = [f for f in placed if f[0] <= threshold]
    above = [f for f in placed if f[0] > threshold]
    take_below = min(len(below), max(count // 2, count - len(above)))
    chosen = heapq.nlargest(take_below, below, key=lambda f: f[0]) + \
        heapq.nsmallest(count - take_below, above, key=lambda f: f[0])
    return [SheetFace(frame["source"], int(frame["index"]), number,
                      np.asarray(frame["faces"][number]["landmarks"], dtype=np.float64),
                      value, bool(frame["faces"][number].get("keep", True)), frame["faces"][number].get("reason"))
            for value, frame, number in sorted(chosen, key=lambda f: f[0])]


def _placed_faces(frames: Mapping[str, Any], values: FaceValues) -> Iterator[tuple[float, Mapping[str, Any], int]]:
    """(value, frame, face number) of each face with a value and landmarks; only the chosen few
    become SheetFaces, so a long video's faces cost no arrays."""
    for frame in frames.values():
        for number, (face, value) in enumerate(zip(frame["faces"], values(frame["faces"]))):
            if value is not None and math.isfinite(value) and face.get("landmarks") is not None:
                yield float(value), frame, number


def render(rows: Sequence[SheetRow], base: Path) -> np.ndarray:
    """The sheet as a BGR image; relative sources are found under ``base`` (the sweep's cwd)."""
    crops = face_crops([face for row in rows for face in row.faces], base)
    cell = TILE + 2 * BORDER
    label = _label_width(rows)
    width = label + FACES_PER_ROW * (cell + GAP)
    row_height = cell + CAPTION + GAP
    sheet = np.full((max(1, len(rows)) * row_height + GAP, width, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        top = GAP + r * row_height
        for n, line in enumerate(row.label.splitlines()):
            _text(sheet, line, (GAP, top + cell // 2 + 18 * n), scale=LABEL_SCALE)
        for c, face in enumerate(row.faces[:FACES_PER_ROW]):
            _draw_tile(sheet, crops.get(face.key), face, label + c * (cell + GAP), top, row.value_format)
    return sheet


def _label_width(rows: Sequence[SheetRow]) -> int:
    """``LABEL``, or wider where a row's label needs it (a limit's name: ``max_misalignment``)."""
    lines = [line for row in rows for line in row.label.splitlines()]
    widest = max((cv2.getTextSize(line, FONT, LABEL_SCALE, 1)[0][0] for line in lines), default=0)
    return max(LABEL, widest + 2 * GAP)


def _draw_tile(sheet: np.ndarray, crop: np.ndarray | None, face: SheetFace, left: int, top: int,
               value_format: str) -> None:
    cell = TILE + 2 * BORDER
    sheet[top:top + cell, left:left + cell] = KEEP if face.keep else REJECT
    inner = sheet[top + BORDER:top + BORDER + TILE, left + BORDER:left + BORDER + TILE]
    inner[:] = MISSING if crop is None else crop
    for n, line in enumerate(tile_caption(face, value_format)):
        _text(sheet, shortened(line, cell, CAPTION_SCALE), (left + 1, top + cell + (n + 1) * CAPTION_LINE - 2),
              scale=CAPTION_SCALE, color=KEEP if face.keep else REJECT)


def tile_caption(face: SheetFace, value_format: str) -> list[str]:
    """The lines under a tile: its value and decision, then for a rejected face what rejected
    it: a quality limit's reason as the alignments file gives it (``yaw 52.3 > 30``), else
    ``identity`` (the filter's reasons are sentences; the value above is its distance)."""
    lines = [f"{face.value:{value_format}} {'KEEP' if face.keep else 'REJECT'}"]
    if not face.keep:
        lines.append(face.reason if face.reason and reason_kind(face.reason) != "identity" else "identity")
    return lines


def shortened(text: str, width: int, scale: float) -> str:
    """``text``, or as much of its start and end as fits ``width`` pixels with ".." between,
    a third from the start and two from the end: the end of a face file's name (frame number,
    face index) tells two faces apart, its start names the source."""
    def cut(keep: int) -> str:
        return f"{text[:keep // 3]}..{text[len(text) - (keep - keep // 3):]}"

    if cv2.getTextSize(text, FONT, scale, 1)[0][0] <= width:
        return text
    keep = len(text) - 1
    while keep > 1 and cv2.getTextSize(cut(keep), FONT, scale, 1)[0][0] > width:
        keep -= 1
    return cut(keep)


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
                capture, opened = video_capture(path), path
            capture.set(cv2.CAP_PROP_POS_FRAMES, index - 1)
            ok, image = capture.read()
            yield (source, index), image if ok else None
    finally:
        if capture is not None:
            capture.release()
