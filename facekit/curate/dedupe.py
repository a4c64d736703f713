"""Near-duplicates: faces of one person in nearly the same pose and picture (the frames of one
shot, the same photo in two sources), of which only the sharpest is worth keeping.

Two faces are duplicates when the cosine distance of their unit embeddings is below the
threshold, their yaw, pitch and roll each differ by at most ``max_pose_deg`` and they share a
cluster (when clusters are known). Pairs come from faiss's range search within each cluster
(exact for clusters below ``FLAT_LIMIT`` faces, an inverted-file index above it), never from
comparing every pair in Python. Then, sharpest first, each face not yet dropped is kept and drops its remaining
duplicates: a greedy pass, so a kept face is never dropped later and the result does not
depend on the order the faces came in (ties go to the earlier face).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facekit.curate.clusters import UNCLUSTERED
from facekit.curate.faiss_quiet import faiss as quiet_faiss

FLAT_LIMIT = 50_000  # exact search below; an IVF index above (its cells' borders may hide a few pairs)
IVF_PROBES = 16
#: Below this a search runs on one thread: a cluster's few hundred faces take far longer to share
#: out among OpenMP threads than to search (five times longer on a busy 2-core machine)
ONE_THREAD_LIMIT = 5_000


@dataclass(frozen=True)
class Duplicates:
    """For each face: -1 when kept, else the row of the kept face it duplicates, and the distance."""

    of: np.ndarray  # (n,) int64
    distance: np.ndarray  # (n,) float32, NaN for kept faces

    @property
    def kept(self) -> np.ndarray:
        return self.of < 0


def near_duplicates(unit: np.ndarray, threshold: float, sharpness: np.ndarray, pose: np.ndarray | None = None,
                    labels: np.ndarray | None = None, max_pose_deg: float = 10.0) -> Duplicates:
    """``unit`` (n, d) unit embeddings (NaN rows: never duplicates); ``threshold`` a cosine
    distance; ``pose`` (n, 3) yaw, pitch, roll in degrees (NaN: not compared); ``labels``
    cluster per face (-1 unclustered: a group of its own, never a duplicate: two
    unclustered faces are not known to be one person)."""
    count = len(unit)
    of = np.full(count, -1, dtype=np.int64)
    distance = np.full(count, np.nan, dtype=np.float32)
    valid = np.flatnonzero(np.isfinite(unit).all(axis=1)) if count else np.zeros(0, dtype=np.int64)
    if len(valid) < 2 or threshold <= 0:
        return Duplicates(of, distance)
    queries, others, similarity = _grouped_pairs(unit, valid, labels, 1.0 - threshold)
    close = _same_pose(pose, queries, others, max_pose_deg) & (queries != others) & (similarity > 1.0 - threshold)
    queries, others, gap = queries[close], others[close], np.maximum(1.0 - similarity[close], 0).astype(np.float32)
    order = np.argsort(queries, kind="stable")
    queries, others, gap = queries[order], others[order], gap[order]
    starts = np.searchsorted(queries, np.arange(count + 1))
    decided = np.zeros(count, dtype=bool)
    for face in _sharpest_first(sharpness):
        if decided[face]:
            continue
        decided[face] = True
        if starts[face] == starts[face + 1]:
            continue
        span = slice(starts[face], starts[face + 1])
        fresh = ~decided[others[span]]
        dropped = others[span][fresh]
        decided[dropped] = True
        of[dropped] = face
        distance[dropped] = gap[span][fresh]
    return Duplicates(of, distance)


def _grouped_pairs(unit: np.ndarray, valid: np.ndarray, labels: np.ndarray | None,
                   min_similarity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, other row, similarity) of every pair within ``min_similarity`` that shares a
    cluster: each cluster is searched on its own, which makes the search exact for clusters up
    to ``FLAT_LIMIT`` faces and cheap (the sum of the clusters' squares, not the count's)."""
    if labels is None:
        groups = [valid]
    else:
        valid = valid[labels[valid] != UNCLUSTERED]  # each unclustered face is a group of its own
        by_label = valid[np.argsort(labels[valid], kind="stable")]  # rows stay in order within a cluster
        groups = np.split(by_label, np.unique(labels[by_label], return_index=True)[1][1:])
    found = []
    for rows in groups:
        if len(rows) < 2:
            continue
        lims, neighbours, similarity = _pairs(np.ascontiguousarray(unit[rows], dtype=np.float32), min_similarity)
        found.append((np.repeat(rows, np.diff(lims)), rows[neighbours], similarity))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    return tuple(np.concatenate(parts) for parts in zip(*found))  # type: ignore[return-value]


def _pairs(points: np.ndarray, min_similarity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """faiss range search by inner product: (lims, neighbour rows, similarities), CSR style."""
    faiss = quiet_faiss()
    count, dim = points.shape
    if count <= FLAT_LIMIT:
        index = faiss.IndexFlatIP(dim)
    else:
        cells = int(4 * math.sqrt(count))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(count, min(count, 64 * cells), replace=False)
        index.train(points[np.sort(sample)])
        index.nprobe = IVF_PROBES
    index.add(points)
    threads = faiss.omp_get_max_threads()
    if count <= ONE_THREAD_LIMIT:
        faiss.omp_set_num_threads(1)
    try:
        lims, similarity, rows = index.range_search(points, float(min_similarity))
    finally:
        faiss.omp_set_num_threads(threads)
    return lims.astype(np.int64), rows.astype(np.int64), similarity


def _same_pose(pose: np.ndarray | None, a: np.ndarray, b: np.ndarray, max_deg: float) -> np.ndarray:
    if pose is None:
        return np.ones(len(a), dtype=bool)
    apart = np.abs(pose[a] - pose[b])
    return ~(apart > max_deg).any(axis=1)  # NaN compares False: an unknown pose does not separate


def _sharpest_first(sharpness: np.ndarray) -> np.ndarray:
    """Rows by sharpness, highest first, unknown last; ties by row."""
    values = np.nan_to_num(np.asarray(sharpness, dtype=np.float64), nan=-np.inf)
    return np.lexsort((np.arange(len(values)), -values))


def reason(kept_name: str, distance: float) -> str:
    """What curation.json says of a dropped duplicate."""
    return f"duplicate of {kept_name} (distance {distance:.3f})"
