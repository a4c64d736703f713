"""Reference photos for the identity filter: each gives the embedding of its largest face."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from facekit.faces.reference_photos import read_reference, reference_embedding, reference_path
from facekit.faces.stages import FaceStages
from facekit.sweep.cache import ReferenceCache, content_key


def reference_embeddings(files: Sequence[str], stages: FaceStages, cache: ReferenceCache | None = None,
                         fingerprint: Any = None) -> np.ndarray:
    """(n, d) embeddings, one per file. Every file is checked before any input is processed:
    a missing, unreadable or faceless reference is an error naming the file."""
    vectors = []
    for name in files:
        path = reference_path(name)
        key = content_key([path], fingerprint) if cache is not None else ""
        cached = cache.get(key) if cache is not None else None
        if cached is None:
            cached = reference_embedding(read_reference(path), stages, str(path)).tolist()
            if cache is not None:
                cache.put(key, cached)
        vectors.append(cached)
    if not vectors:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(vectors, dtype=np.float32)

