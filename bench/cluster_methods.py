"""The clustering methods ``bench/curate.py --methods`` compares, each a function of (n, d) unit
vectors and the identity plugin's match distance to one label per row (-1: unclustered). Groups
of one face count as unclustered for every method, as they do in ``facekit.curate.clusters``."""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from facekit.curate.clusters import cluster_labels
from facekit.curate.faiss_quiet import faiss as quiet_faiss

NEIGHBOURS = 30  # edges of the threshold graph: each face's nearest faces within the match distance
WHISPER_ROUNDS = 20


def hdbscan_before(unit: np.ndarray, match: float) -> np.ndarray:
    """HDBSCAN as curation ran it before: no single cluster, the minimum size from the count."""
    from sklearn.cluster import HDBSCAN

    size = max(2, round(np.sqrt(len(unit)) / 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return HDBSCAN(min_cluster_size=size, min_samples=max(2, size // 2), copy=True).fit_predict(unit.astype(np.float64))


def hdbscan(selection: str) -> Callable[[np.ndarray, float], np.ndarray]:
    def run(unit: np.ndarray, match: float) -> np.ndarray:
        from sklearn.cluster import HDBSCAN

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return HDBSCAN(min_cluster_size=2, allow_single_cluster=True, cluster_selection_method=selection,
                           copy=True).fit_predict(unit.astype(np.float64))
    return run


def _graph(unit: np.ndarray, match: float) -> tuple[np.ndarray, np.ndarray]:
    """Each face's NEIGHBOURS nearest faces and similarities, -1 beyond the match distance."""
    index = quiet_faiss().IndexFlatIP(unit.shape[1])
    index.add(unit)
    similarity, nearest = index.search(unit, min(NEIGHBOURS, len(unit)))
    nearest[similarity < 1.0 - match] = -1
    return similarity, nearest


def components(unit: np.ndarray, match: float) -> np.ndarray:
    """Connected components of the threshold graph (single linkage at the match distance)."""
    _, nearest = _graph(unit, match)
    rows, cols = np.nonzero(nearest >= 0)
    graph = coo_matrix((np.ones(len(rows)), (rows, nearest[rows, cols])), shape=(len(unit), len(unit)))
    return connected_components(graph, directed=False)[1]


def whispers(unit: np.ndarray, match: float) -> np.ndarray:
    """Chinese whispers on the threshold graph, edges weighted by similarity (as dlib's
    ``chinese_whispers_clustering``): each face in a random order takes its neighbours' heaviest label."""
    similarity, nearest = _graph(unit, match)
    labels = np.arange(len(unit))
    rng = np.random.default_rng(0)
    for _ in range(WHISPER_ROUNDS):
        for row in rng.permutation(len(unit)):
            weights: dict[int, float] = {}
            for weight, other in zip(similarity[row], nearest[row]):
                if other >= 0 and other != row:
                    weights[labels[other]] = weights.get(labels[other], 0.0) + float(weight)
            if weights:
                labels[row] = max(weights, key=weights.__getitem__)
    return labels


def agglomerative(method: str) -> Callable[[np.ndarray, float], np.ndarray]:
    """scipy's hierarchical clustering of every face, cut at the match distance."""
    def run(unit: np.ndarray, match: float) -> np.ndarray:
        if len(unit) < 2:
            return np.zeros(len(unit), dtype=np.int64)
        return fcluster(linkage(unit.astype(np.float64), method=method, metric="cosine"), t=match, criterion="distance")
    return run


def representatives_first(unit: np.ndarray, match: float) -> np.ndarray:
    """facekit's: representatives, average linkage on them, the rest take their representative's."""
    return cluster_labels(unit, match)


METHODS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "HDBSCAN, earlier settings": hdbscan_before,
    "HDBSCAN leaf, single allowed": hdbscan("leaf"),
    "HDBSCAN eom, single allowed": hdbscan("eom"),
    "threshold graph, components": components,
    "threshold graph, Chinese whispers": whispers,
    "agglomerative, single": agglomerative("single"),
    "agglomerative, complete": agglomerative("complete"),
    "agglomerative, average": agglomerative("average"),
    "representatives, then average (chosen)": representatives_first,
}
#: Methods that hold every pairwise distance or run Prim's O(n^2): left out above this count
QUADRATIC = {"HDBSCAN, earlier settings", "HDBSCAN leaf, single allowed", "HDBSCAN eom, single allowed", "agglomerative, single",
             "agglomerative, complete", "agglomerative, average"}


def without_singles(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64)
    ids, counts = np.unique(labels, return_counts=True)
    labels[np.isin(labels, ids[counts < 2])] = -1
    return labels
