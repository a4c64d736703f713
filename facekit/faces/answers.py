"""What each plugin kind must answer, checked where the stages take the answer. A third-party
plugin's wrong count or shape is an error naming the plugin and the frame, never points read
scrambled (a (2, 68) array reshapes without complaint) nor frames marked done without their
faces (a short list zipped against the frames). One box or vector that is not a face on one
frame is left out with a warning: a 10,000-frame run goes on."""
from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import numpy as np

from facekit.errors import StageError
from facekit.records import Detection, FrameRecord

log = logging.getLogger("facekit")


def checked_detections(found: Any, records: Sequence[FrameRecord], plugin: str) -> list[list[Detection]]:
    """A detector's answer for ``records``: one list of ``Detection`` a frame, each box a face's
    (finite, of some size, inside the frame at least in part, a finite score); the boxes that
    are not are left out with a warning."""
    frames = ", ".join(record.frame.name for record in records)
    if not isinstance(found, (list, tuple)) or len(found) != len(records) or \
            not all(isinstance(answer, (list, tuple)) for answer in found):
        raise _wrong(plugin, frames, f"{_count(found)} for {len(records)} frame(s); a detector returns one list of "
                                     "Detection per image, in order")
    answers = []
    for record, detections in zip(records, found):
        strays = [d for d in detections if not isinstance(d, Detection)]
        if strays:
            raise _wrong(plugin, record.frame.name, f"a {type(strays[0]).__name__} among its detections; each is "
                                                    "a facekit.plugin.Detection")
        height, width = record.frame.image.shape[:2]
        kept = [d for d in detections if _is_a_face_box(d, width, height)]
        if len(kept) < len(detections):
            log.warning("%s: %s gave %d box(es) that are empty, not numbers or outside the frame, or a score that "
                        "is not a number; left out", record.frame.name, plugin, len(detections) - len(kept))
        answers.append(kept)
    return answers


def checked_points(found: Any, count: int, frame: str, plugin: str) -> list[Any]:
    """An aligner's answer: one entry a detection (what each entry holds is the caller's)."""
    if not isinstance(found, (list, tuple)) or len(found) != count:
        raise _wrong(plugin, frame, f"{_count(found)} for {count} face(s); an aligner returns one (68, 2) array per "
                                    "detection")
    return list(found)


def checked_landmarks(points: Any, frame: str, plugin: str, what: str = "points") -> np.ndarray:
    """One face's 68 points (or its points for head pose) as a (68, 2) float array; any other
    shape is the plugin's error (a transposed answer would reshape into points all over the face)."""
    array = _numbers(points)
    if array is None or array.shape != (68, 2):
        shape = "no numbers" if array is None else f"shape {array.shape}"
        raise _wrong(plugin, frame, f"{what} of {shape}; an aligner gives each face (68, 2) {what}, x then y")
    return array


def checked_outline(outline: Any, frame: str, plugin: str) -> np.ndarray:
    """A face's outline (what the ``mesh`` masker fills): (n, 2) points, 3 or more."""
    array = _numbers(outline)
    if array is None or array.ndim != 2 or array.shape[1] != 2 or len(array) < 3:
        shape = "no numbers" if array is None else f"shape {array.shape}"
        raise _wrong(plugin, frame, f"an outline of {shape}; an outline is (n, 2) points round the face, n >= 3")
    return array


def checked_embeddings(vectors: Any, count: int, frame: str, plugin: str, dimensions: int | None = None) -> np.ndarray:
    """An identity model's answer: (faces, dimensions) numbers, a row a face; ``dimensions``,
    when known, is what its earlier answers had (vectors of two lengths cannot be compared)."""
    array = _numbers(vectors)
    if array is None or array.ndim != 2 or len(array) != count or array.shape[1] == 0:
        shape = "no numbers" if array is None else f"shape {array.shape}"
        raise _wrong(plugin, frame, f"embeddings of {shape} for {count} face(s); an identity model returns one "
                                    "row a face, (faces, dimensions)")
    if dimensions is not None and array.shape[1] != dimensions:
        raise _wrong(plugin, frame, f"{array.shape[1]}-dimension embeddings where its earlier ones had {dimensions}")
    return array


def _count(found: Any) -> str:
    """How many answers a list held, or what came instead of a list."""
    return f"{len(found)} answer(s)" if isinstance(found, (list, tuple)) else f"a {type(found).__name__}"


def _numbers(values: Any) -> np.ndarray | None:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _is_a_face_box(detection: Detection, width: int, height: int) -> bool:
    try:
        x1, y1, x2, y2 = (float(v) for v in detection.box)
        score = float(detection.score)
    except (TypeError, ValueError):
        return False
    finite = all(math.isfinite(v) for v in (x1, y1, x2, y2, score))
    return finite and x2 > x1 and y2 > y1 and x2 > 0 and y2 > 0 and x1 < width and y1 < height


def _wrong(plugin: str, frames: str, what: str) -> StageError:
    return StageError(f"{plugin} answered frame {frames} with {what}", plugin, what)
