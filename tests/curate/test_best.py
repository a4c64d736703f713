"""The best N faces of an identity: the widest yaw first, the sharpest of each yaw bin after."""
from __future__ import annotations

import numpy as np

from facekit.curate.best import best_per_identity, spread


def test_the_extremes_are_kept_even_when_blurred() -> None:
    yaw = np.array([-40, -5, 0, 2, 5, 38], dtype=float)
    sharpness = np.array([1, 90, 95, 99, 80, 2], dtype=float)
    chosen = spread(np.arange(6), yaw, sharpness, 3)
    assert set(chosen) == {0, 5, 3}  # both ends, then the sharpest of the middle


def test_each_yaw_bin_gives_its_sharpest_face_before_any_bin_gives_two() -> None:
    yaw = np.array([-30, -29, -28, -1, 0, 1, 28, 29, 30], dtype=float)
    sharpness = np.array([5, 50, 7, 10, 90, 20, 8, 60, 9], dtype=float)
    chosen = spread(np.arange(9), yaw, sharpness, 5)
    assert set(chosen) == {0, 8, 4, 1, 7}


def test_n_of_one_is_the_sharpest_and_fewer_faces_than_n_are_all_kept() -> None:
    yaw = np.array([-20, 0, 20], dtype=float)
    assert list(spread(np.arange(3), yaw, np.array([1.0, 3.0, 2.0]), 1)) == [1]
    assert sorted(spread(np.arange(3), yaw, np.array([1.0, 3.0, 2.0]), 5)) == [0, 1, 2]


def test_faces_without_a_yaw_come_after_the_measured_ones() -> None:
    yaw = np.array([np.nan, -10, 10, np.nan], dtype=float)
    chosen = spread(np.arange(4), yaw, np.array([100.0, 1.0, 2.0, 50.0]), 3)
    assert list(chosen) == [1, 2, 0]


def test_best_is_per_cluster_and_leaves_the_unclustered_out() -> None:
    labels = np.array([0, 0, 0, 1, 1, -1])
    yaw = np.array([-10, 0, 10, 5, 6, 0], dtype=float)
    kept = best_per_identity(labels, yaw, np.ones(6), 2)
    assert list(kept) == [True, False, True, True, True, False]
    kept = best_per_identity(labels, yaw, np.ones(6), 2, candidates=np.array([False, True, True, True, True, True]))
    assert list(kept) == [False, True, True, True, True, False]
