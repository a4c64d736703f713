"""Clusters of embeddings the test makes: HDBSCAN finds the groups, numbered by size, the
same every time, and the sampled path for large counts agrees with the exact one."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from facekit.curate.clusters import cluster_labels, default_min_cluster_size, renumbered


def _people(sizes: list[int], seed: int = 3, spread: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), 128))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    points = centres[truth] / np.linalg.norm(centres[truth], axis=1, keepdims=True)
    points = points + rng.normal(scale=spread / np.sqrt(128), size=points.shape)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), truth


def test_groups_of_faces_become_clusters_numbered_largest_first() -> None:
    unit, truth = _people([3, 12, 6, 2])
    labels = cluster_labels(unit, min_cluster_size=2)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert [int((labels == k).sum()) for k in range(4)] == [12, 6, 3, 2]


def test_faces_without_an_embedding_stay_unclustered() -> None:
    unit, _ = _people([4, 4])
    unit[2] = np.nan
    labels = cluster_labels(unit, min_cluster_size=2)
    assert labels[2] == -1 and (labels[[0, 1, 3]] == labels[0]).all() and labels[0] >= 0


def test_the_sampled_path_labels_as_the_exact_one_does() -> None:
    unit, truth = _people([400, 300, 200, 100])
    exact = cluster_labels(unit, min_cluster_size=20)
    sampled = cluster_labels(unit, min_cluster_size=20, exact_limit=300, sample_size=400)
    assert adjusted_rand_score(truth, exact) == 1.0
    assert adjusted_rand_score(truth, sampled) > 0.99
    assert np.array_equal(sampled, cluster_labels(unit, min_cluster_size=20, exact_limit=300, sample_size=400))


def test_the_minimum_cluster_grows_with_the_count_from_two() -> None:
    assert default_min_cluster_size(0) == default_min_cluster_size(30) == 2
    sizes = [default_min_cluster_size(n) for n in (100, 1_000, 100_000)]
    assert sizes == sorted(sizes) and sizes[-1] > 50


def test_renumbering_ignores_the_labels_hdbscan_happened_to_give() -> None:
    assert list(renumbered(np.array([7, 7, -1, 3, 3, 3, 9]))) == [1, 1, -1, 0, 0, 0, 2]


def test_clusters_of_equal_size_are_numbered_in_the_order_their_first_faces_come() -> None:
    """Three clusters of two faces: the one met first is 0, whatever HDBSCAN's labels or their order."""
    assert list(renumbered(np.array([9, 2, -1, 9, 5, 2, 5]))) == [0, 1, -1, 0, 2, 1, 2]
    assert list(renumbered(np.array([5, 2, 9, 9, 2, 5]))) == [0, 1, 2, 2, 1, 0]
