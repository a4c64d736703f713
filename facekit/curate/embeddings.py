"""Each face's identity vector: the one stored at extraction (``output.embeddings=true``) when
the same identity plugin made it, else computed from the face file by the identity plugin.

A face file is the frame warped by the alignment matrix, so the face's landmarks moved by that
same matrix sit on the file's face: the identity plugin then embeds the file exactly as it
embeds a frame (``FaceStages.embed``, the one place that calls it), nothing is detected again.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import cv2
import numpy as np

from facekit.curate.inventory import FaceEntry
from facekit.errors import FacekitError
from facekit.faces.stages import FaceStages
from facekit.imaging import geometry
from facekit.records import Detection, Face, Frame, FrameRecord

log = logging.getLogger(__name__)

BATCH = 64  # files decoded together (on threads: OpenCV's PNG decoder releases the GIL)

T = TypeVar("T")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32), so euclidean distance orders pairs as cosine does."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def face_embeddings(faces: Sequence[FaceEntry], stages: FaceStages,
                    progress: Callable[[int], None] | None = None, unreadable: list[int] | None = None) -> np.ndarray:
    """(n, d) unit vectors, one per face (``face_vectors`` scaled to length 1)."""
    vectors = face_vectors(faces, stages, progress, unreadable)
    return unit_rows(vectors) if vectors.size else vectors


def typical_length(vectors: np.ndarray) -> float:
    """The median length of the rows that hold a vector (1.0 when none does): the scale a
    euclidean plugin's match distance is written in (dlib's vectors are about 1.4 long)."""
    lengths = np.linalg.norm(np.asarray(vectors, dtype=np.float64), axis=1) if np.size(vectors) else np.zeros(0)
    lengths = lengths[np.isfinite(lengths) & (lengths > 0)]
    return float(np.median(lengths)) if lengths.size else 1.0


def face_vectors(faces: Sequence[FaceEntry], stages: FaceStages,
                 progress: Callable[[int], None] | None = None, unreadable: list[int] | None = None) -> np.ndarray:
    """(n, d) identity vectors as the plugin gives them, one per face; a row of NaN for a face
    that has neither a usable stored vector nor a file with landmarks (it stays out of clusters
    and duplicates), and for a face file that cannot be decoded, whose row also goes into
    ``unreadable``."""
    name = stages.identity.spec.name if stages.identity is not None else None
    # a stored vector is used where the same plugin made it with the same options: other options
    # (another model size, say) make other vectors, which cannot be compared with this run's
    options = json.loads(json.dumps(dataclasses.asdict(stages.identity.config))) if stages.identity is not None and \
        dataclasses.is_dataclass(stages.identity.config) else None
    vectors: dict[int, np.ndarray] = {}
    todo, to_check = [], []
    for row, face in enumerate(faces):
        if face.embedding is not None and face.embedded_by == name and face.embedded_with in (None, options):
            vectors[row] = face.embedding
            if face.path is not None and not _as_written(face):
                to_check.append(row)
        elif face.path is not None and face.landmarks is not None:
            todo.append(row)
    if todo:
        log.info("embedding %d face file(s) with identity %s (%d stored)", len(todo), name, len(vectors))

    def cannot_read(row: int) -> None:
        log.warning("cannot read face file %s; it is dropped as unreadable", faces[row].path)
        vectors.pop(row, None)
        if unreadable is not None:
            unreadable.append(row)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for rows in _batches(todo, BATCH):
            for row, crop in zip(rows, pool.map(lambda r: _read(faces[r]), rows)):
                if crop is None:
                    cannot_read(row)
                    continue
                vector = embed_crop(stages, crop, faces[row])
                if vector is not None:  # else its row stays NaN: out of clusters and duplicates
                    vectors[row] = vector
            if progress is not None:
                progress(len(rows))
        for row, crop in zip(to_check, pool.map(lambda r: _read(faces[r]), to_check)):
            if crop is None:  # a stored vector is of the face extraction wrote, not of what is there now
                cannot_read(row)
    lengths = {len(v) for v in vectors.values()}
    if len(lengths) > 1:
        raise FacekitError(f"identity {name!r} gave vectors of {len(lengths)} lengths ({', '.join(map(str, sorted(lengths)))}); "
                           "they cannot be compared: a plugin gives one length whatever the face")
    size = max(lengths, default=0)
    result = np.full((len(faces), size), np.nan, dtype=np.float32)
    for row, vector in vectors.items():
        result[row] = vector
    return result


def _read(face: FaceEntry) -> np.ndarray | None:
    return cv2.imread(str(face.path), cv2.IMREAD_COLOR)


def _as_written(face: FaceEntry) -> bool:
    """Whether the face file has the size extraction wrote (one stat): a file cut short or
    overwritten since is decoded before its stored vector is trusted, as resume checks sizes."""
    try:
        return face.crop_bytes is not None and face.path is not None and face.path.stat().st_size == face.crop_bytes
    except OSError:
        return False


def embed_crop(stages: FaceStages, crop: np.ndarray, face: FaceEntry) -> np.ndarray | None:
    """The identity vector of one face file: its landmarks moved into the file, then the very
    call extraction makes on a frame; None when that call left the face out (a vector that is
    not numbers, said in a warning)."""
    matrix = file_matrix(face, crop.shape[0])
    points = geometry.transform_points(face.landmarks, matrix)
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    record = FrameRecord(Frame(name=face.name, source=face.key[0], index=face.frame_index, image=crop),
                         height=crop.shape[0], width=crop.shape[1],
                         faces=[Face(detection=Detection((x0, y0, x1, y1), 1.0), landmarks=points.astype(np.float32))])
    stages.embed(record)
    return record.faces[0].embedding if record.faces else None


def file_matrix(face: FaceEntry, side: int) -> np.ndarray:
    """The affine from the face's frame into its file, ``side`` pixels a side: the crop's own as
    stored (a face or head centring sits the face elsewhere in the file than legacy's), scaled
    from the side it was made at with pixel centres kept; legacy's from the landmarks for
    entries written before matrices were stored."""
    if face.matrix is None or face.size <= 0:
        return geometry.alignment_matrix(face.landmarks, side, padding=face.padding)
    return geometry.rescaled_matrix(face.matrix, face.size, side)


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
