"""Clusters of embeddings the test makes: every person of two or more faces is a cluster of
their own, from one person alone to one person with thousands of faces beside people with two,
numbered by size, the same every time, and the rounds for many representatives agree with one."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from facekit.curate import clusters
from facekit.curate.clusters import cluster_labels, renumbered

MATCH = 0.637  # SFace's match distance


def _people(sizes: list[int], seed: int = 3, spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Faces of ``len(sizes)`` people in random directions; ``spread`` 0.6 puts one person's faces
    about 0.27 apart (cosine), as SFace's faces of one person in the people set are."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), 128))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    points = centres[truth] / np.linalg.norm(centres[truth], axis=1, keepdims=True)
    points = points + rng.normal(scale=spread / np.sqrt(128), size=points.shape)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32), truth


def test_groups_of_faces_become_clusters_numbered_largest_first() -> None:
    unit, truth = _people([3, 12, 6, 2])
    labels = cluster_labels(unit, MATCH)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert [int((labels == k).sum()) for k in range(4)] == [12, 6, 3, 2]


def test_one_persons_faces_alone_are_one_cluster() -> None:
    unit, _ = _people([8])
    assert list(cluster_labels(unit, MATCH)) == [0] * 8


def test_identical_copies_of_one_face_are_one_cluster() -> None:
    unit, _ = _people([1])
    assert list(cluster_labels(np.repeat(unit, 5, axis=0), MATCH)) == [0] * 5


def test_people_of_two_faces_beside_one_of_thousands_keep_clusters_of_their_own() -> None:
    unit, truth = _people([3000, *([2, 3, 4, 5] * 5)], seed=5)
    labels = cluster_labels(unit, MATCH)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert (labels != -1).all() and len(np.unique(labels)) == 21


def test_a_face_seen_once_and_faces_without_an_embedding_stay_unclustered() -> None:
    unit, _ = _people([4, 1, 4])
    unit[2] = np.nan
    labels = cluster_labels(unit, MATCH)
    assert labels[2] == -1 and labels[4] == -1
    assert (labels[[0, 1, 3]] == labels[0]).all() and (labels[5:] == labels[5]).all() and labels[0] != labels[5]


def test_the_minimum_cluster_size_leaves_smaller_groups_unclustered() -> None:
    unit, _ = _people([5, 3])
    labels = cluster_labels(unit, MATCH, min_cluster_size=4)
    assert list(labels) == [0] * 5 + [-1] * 3


def test_representatives_linked_in_rounds_and_found_by_a_graph_index_label_as_one_linkage_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    unit, truth = _people([40, 30, 20, 10, 2, 2, 2], seed=7, spread=0.9)
    whole = cluster_labels(unit, MATCH)
    monkeypatch.setattr(clusters, "LINKAGE_LIMIT", 20)
    monkeypatch.setattr(clusters, "FLAT_LIMIT", 10)
    monkeypatch.setattr(clusters, "BLOCK", 16)
    rounds = cluster_labels(unit, MATCH)
    assert adjusted_rand_score(truth, whole) == 1.0
    assert adjusted_rand_score(whole, rounds) == 1.0
    assert np.array_equal(rounds, cluster_labels(unit, MATCH))


def test_renumbering_ignores_the_labels_the_method_happened_to_give() -> None:
    assert list(renumbered(np.array([7, 7, -1, 3, 3, 3, 9]))) == [1, 1, -1, 0, 0, 0, 2]


def test_clusters_of_equal_size_are_numbered_in_the_order_their_first_faces_come() -> None:
    """Three clusters of two faces: the one met first is 0, whatever HDBSCAN's labels or their order."""
    assert list(renumbered(np.array([9, 2, -1, 9, 5, 2, 5]))) == [0, 1, -1, 0, 2, 1, 2]
    assert list(renumbered(np.array([5, 2, 9, 9, 2, 5]))) == [0, 1, 2, 2, 1, 0]
