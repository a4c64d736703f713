"""Reference photos for the identity filter: each gives the embedding of its largest face."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facekit.sweep.cache import ReferenceCache, content_key
from facekit.errors import FacekitError
from facekit.faces.identity import reference_face
from facekit.media.sources import read_image
from facekit.faces.stages import FaceStages
from facekit.records import Frame, FrameRecord


def reference_embeddings(files: Sequence[str], stages: FaceStages, cache: ReferenceCache | None = None,
                         fingerprint: Any = None) -> np.ndarray:
    """(n, d) embeddings, one per file. Every file is checked before any input is processed:
    a missing, unreadable or faceless reference is an error naming the file."""
    vectors = []
    for name in files:
        path = Path(name).expanduser()
        if not path.is_file():
            raise FacekitError(f"reference photo {name!r} does not exist")
        key = content_key([path], fingerprint) if cache is not None else ""
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            cached = _embed_largest_face(path, stages).tolist()
            if cache is not None:
                cache.put(key, cached)
        vectors.append(cached)
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(vectors, dtype=np.float32)


def _embed_largest_face(path: Path, stages: FaceStages) -> np.ndarray:
    image = read_image(path)
    if image is None:
        raise FacekitError(f"reference photo {str(path)!r} cannot be read as an image")
    record = FrameRecord(Frame(name=path.stem, source=str(path), index=0, image=image))

    def keep_largest(found: FrameRecord) -> None:
        found.faces = [found.faces[reference_face(found.faces, str(path))]]

    stages.analyse([record], narrow=keep_largest)
    return record.faces[0].embedding
