"""Faces grouped by identity without references: representatives, then average linkage at the
identity plugin's match distance.

A person is whoever the identity model says matches: two faces closer than its match distance
(SFace's 0.637 cosine) are one person. Density-based clustering (HDBSCAN) asks a different
question, what is dense beside its surroundings, and answers it badly for real collections: one
person alone is no cluster at all, and beside a video's hundreds of frames of one person a few
photos each of several others fall below its minimum size and are merged or dropped.
``bench/curate.py`` compares it with a threshold graph, Chinese whispers and agglomerative
clustering on such sets; average linkage cut at the match distance is the method that keeps
every person of two or more faces as the majority of a cluster of their own on all of them.

Average linkage joins two groups while the mean distance over all their pairs is within the
match distance: unlike single linkage (a threshold graph's connected components) one close
stranger cannot chain two people together, and unlike density it does not care how many faces a
person has. It needs every pairwise distance, so it runs on representatives: faces are taken in
order and each joins the first representative within ``match_distance / 4`` (cosine; half the
match distance in euclidean terms, so any two faces of one representative are within the match
distance of each other), else becomes one. A video's shot and identical copies collapse to one or
a few. Up to ``LINKAGE_LIMIT`` representatives are linked at once; beyond it, a fixed sample of
that many is linked, every other representative within the match distance of a sampled one
takes its nearest one's cluster, and the representatives left (people the sample missed) go
round again, so a person of two faces among a million is still found.

Groups smaller than ``min_cluster_size`` (two faces by default) are left unclustered (-1): a face
seen once has no identity to group. Linkage knows no frames: a cluster that holds two people of
one frame is split afterwards (``joining.split_where_together``).
"""
from __future__ import annotations

import numpy as np

from facekit.curate.faiss_quiet import faiss as quiet_faiss

UNCLUSTERED = -1
MIN_CLUSTER_SIZE = 2
LINKAGE_LIMIT = 10_000  # representatives linked at once: their pairwise distances take 400 MB
FLAT_LIMIT = 5_000  # representatives searched exactly up to this count, by a graph index (HNSW) beyond
BLOCK = 4_096  # faces compared with the representatives, then with each other, at a time
SEED = 0  # a fixed sample: the same input gives the same clusters


def cluster_labels(unit: np.ndarray, match_distance: float, min_cluster_size: int | None = None) -> np.ndarray:
    """One integer label per row of ``unit`` (n, d) unit vectors, -1 for unclustered (rows of
    NaN included); ``match_distance`` the cosine distance within which two faces are one
    person. Clusters are numbered by size, largest first, ties by their first row."""
    unit = np.asarray(unit, dtype=np.float32)
    labels = np.full(len(unit), UNCLUSTERED, dtype=np.int64)
    valid = np.flatnonzero(np.isfinite(unit).all(axis=1)) if unit.size else np.zeros(0, dtype=np.int64)
    size = max(MIN_CLUSTER_SIZE, min_cluster_size or MIN_CLUSTER_SIZE)
    if len(valid) < size:
        return labels
    points = np.ascontiguousarray(unit[valid])
    leaders, of_leader = representatives(points, match_distance / 4)
    groups = linked(points[leaders], match_distance)
    found = groups[of_leader]
    ids, counts = np.unique(found, return_counts=True)
    found[np.isin(found, ids[counts < size])] = UNCLUSTERED
    labels[valid] = found
    return renumbered(labels)


def representatives(points: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows of the representatives, each row's representative's position among them): greedy
    in row order, each face joining the nearest earlier representative within cosine ``radius``."""
    faiss = quiet_faiss()
    of = np.empty(len(points), dtype=np.int64)
    leaders: list[int] = []
    index = faiss.IndexFlatIP(points.shape[1])
    for start in range(0, len(points), BLOCK):
        block = points[start:start + BLOCK]
        covered = np.zeros(len(block), dtype=bool)
        if index.ntotal:
            similarity, nearest = index.search(block, 1)
            covered = similarity[:, 0] >= 1.0 - radius
            of[start + np.flatnonzero(covered)] = nearest[covered, 0]
        rest = np.flatnonzero(~covered)
        fresh = _greedy_leaders(block[rest], radius)
        for position in np.unique(fresh):
            leaders.append(start + int(rest[position]))
        first = len(leaders) - len(np.unique(fresh))
        of[start + rest] = first + np.searchsorted(np.unique(fresh), fresh)
        index = _grown(index, block[rest[np.unique(fresh)]])
    return np.asarray(leaders, dtype=np.int64), of


def _greedy_leaders(block: np.ndarray, radius: float) -> np.ndarray:
    """For each row of ``block``: the row of its representative within the block (itself when
    no earlier representative is within ``radius``)."""
    owner = np.full(len(block), -1, dtype=np.int64)
    if not len(block):
        return owner
    similarity = block @ block.T
    for row in range(len(block)):
        if owner[row] < 0:
            owner[(owner < 0) & (similarity[row] >= 1.0 - radius)] = row
    return owner


def _grown(index, added: np.ndarray):
    """``index`` with ``added`` appended; past FLAT_LIMIT vectors a flat index becomes a graph
    index (built on one thread: faiss's threaded HNSW build is not the same twice)."""
    faiss = quiet_faiss()
    if isinstance(index, faiss.IndexFlatIP) and index.ntotal + len(added) > FLAT_LIMIT:
        stored = index.reconstruct_n(0, index.ntotal)
        index = faiss.IndexHNSWFlat(stored.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
        added = np.concatenate([stored, added])
    if len(added):
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            index.add(np.ascontiguousarray(added))
        finally:
            faiss.omp_set_num_threads(threads)
    return index


def linked(points: np.ndarray, match_distance: float) -> np.ndarray:
    """A group number per row: average linkage cut at ``match_distance``, in rounds of at most
    LINKAGE_LIMIT rows (see the module docstring)."""
    groups = np.full(len(points), -1, dtype=np.int64)
    open_rows = np.arange(len(points))
    rng = np.random.default_rng(SEED)
    while len(open_rows):
        sample = open_rows if len(open_rows) <= LINKAGE_LIMIT else np.sort(
            rng.choice(open_rows, LINKAGE_LIMIT, replace=False))
        found = _average_linkage(points[sample], match_distance) + groups.max() + 1
        groups[sample] = found
        rest = open_rows[groups[open_rows] < 0]
        if len(rest):
            similarity, nearest = _nearest(points[sample], points[rest])
            close = similarity >= 1.0 - match_distance
            groups[rest[close]] = found[nearest[close]]
        open_rows = open_rows[groups[open_rows] < 0]
    return groups


def _average_linkage(points: np.ndarray, match_distance: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(points) < 2:
        return np.zeros(len(points), dtype=np.int64)
    tree = linkage(points.astype(np.float64), method="average", metric="cosine")
    return fcluster(tree, t=match_distance, criterion="distance").astype(np.int64) - 1


def _nearest(base: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = quiet_faiss().IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    similarity, nearest = index.search(np.ascontiguousarray(queries, dtype=np.float32), 1)
    return similarity[:, 0], nearest[:, 0]


def renumbered(labels: np.ndarray) -> np.ndarray:
    """Clusters numbered 0, 1, ... by size (largest first), ties by first appearance; -1 stays."""
    labels = np.asarray(labels)
    clustered = labels[labels != UNCLUSTERED]
    if not len(clustered):
        return labels.copy()
    ids, first, counts = np.unique(clustered, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))  # by count descending, then first row
    mapping = np.full(ids.max() + 1, UNCLUSTERED, dtype=np.int64)
    mapping[ids[order]] = np.arange(len(ids))
    result = labels.astype(np.int64).copy()
    result[labels != UNCLUSTERED] = mapping[clustered]
    return result
