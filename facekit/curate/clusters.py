"""Faces grouped by identity without references: HDBSCAN (scikit-learn) on unit embeddings.

On unit vectors the euclidean distance is sqrt(2 * cosine distance), so euclidean HDBSCAN
groups exactly as cosine would, with scikit-learn's fast tree-based neighbour search (its
cosine metric has none). HDBSCAN needs no number of clusters and leaves faces that fit no
group unclustered (-1): strangers in the background, a face seen once.

``min_cluster_size`` grows with the count: the smallest group worth calling a person is two
faces in a folder of a few dozen photos but more in a video, where one person fills hundreds of
frames; the square root keeps a handful of photos of one person a cluster at small counts and
stops a video's every shot being its own cluster at large ones.

scikit-learn's HDBSCAN builds its minimum spanning tree with Prim's algorithm, O(n^2) in the
count whatever the neighbour search, and slower still in 128 dimensions. So above
``EXACT_LIMIT`` faces a fixed random sample of ``SAMPLE`` faces is projected onto its
``REDUCED_DIMS`` principal axes (identity embeddings keep their structure in a few dozen
dimensions) and clustered there, and every face takes the cluster of its nearest sampled face in
that projection (faiss, exact search; a face nearest an unclustered one stays unclustered). The
groups a sample of that size resolves are the people with at least a few faces in every
``n / SAMPLE``: the many-person long tail of a million faces is left unclustered, not merged.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from facekit.curate.faiss_quiet import faiss as quiet_faiss

EXACT_LIMIT = 5_000
SAMPLE = 20_000
REDUCED_DIMS = 32
SEED = 0  # a fixed sample: the same input gives the same clusters
UNCLUSTERED = -1


def default_min_cluster_size(count: int) -> int:
    """Two faces at a few dozen, about sqrt(count) / 3 beyond (see the module docstring)."""
    return max(2, round(math.sqrt(max(count, 0)) / 3))


def cluster_labels(unit: np.ndarray, min_cluster_size: int | None = None,
                   exact_limit: int = EXACT_LIMIT, sample_size: int = SAMPLE) -> np.ndarray:
    """One integer label per row of ``unit`` (n, d) unit vectors, -1 for unclustered (rows of
    NaN included). Clusters are numbered by size, largest first, ties by their first row, so
    the numbering does not depend on HDBSCAN's internal order."""
    unit = np.asarray(unit, dtype=np.float32)
    labels = np.full(len(unit), UNCLUSTERED, dtype=np.int64)
    valid = np.flatnonzero(np.isfinite(unit).all(axis=1)) if unit.size else np.zeros(0, dtype=np.int64)
    size = min_cluster_size or default_min_cluster_size(len(valid))
    if len(valid) < max(2, size):
        return labels
    points = unit[valid]
    if len(points) <= exact_limit:
        found = _hdbscan(points, size)
    else:
        found = _sampled(points, size, sample_size)
    labels[valid] = found
    return renumbered(labels)


def _hdbscan(points: np.ndarray, min_cluster_size: int) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the default of ``copy`` changes in 1.10
        model = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=max(2, min_cluster_size // 2),
                        metric="euclidean", copy=True)
        return model.fit_predict(points.astype(np.float64))


def _sampled(points: np.ndarray, min_cluster_size: int, sample_size: int) -> np.ndarray:
    """HDBSCAN on a fixed sample in its principal axes; the rest labelled by their nearest
    sampled face there."""
    from sklearn.decomposition import PCA

    faiss = quiet_faiss()
    sample = np.sort(np.random.default_rng(SEED).choice(len(points), min(sample_size, len(points)), replace=False))
    projection = PCA(min(REDUCED_DIMS, points.shape[1], len(sample)), svd_solver="full").fit(points[sample])
    reduced = projection.transform(points).astype(np.float32)
    scaled = max(2, round(min_cluster_size * len(sample) / len(points)))
    sample_labels = _hdbscan(reduced[sample], scaled)
    index = faiss.IndexFlatL2(reduced.shape[1])
    index.add(np.ascontiguousarray(reduced[sample]))
    _, nearest = index.search(np.ascontiguousarray(reduced), 1)
    return sample_labels[nearest[:, 0]]


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
