"""The sorted folder's orders, with unknown values last and ties to the sharper face."""
from __future__ import annotations

import numpy as np
import pytest

from facekit.curate.ordering import sort_order


def test_yaw_runs_from_negative_to_positive_with_unknown_last() -> None:
    order = sort_order("yaw", np.array([10, np.nan, -20, 0], dtype=float), np.ones(4))
    assert list(order) == [2, 3, 0, 1]


def test_sharpness_and_size_put_the_highest_first() -> None:
    values = np.array([5, 50, 20], dtype=float)
    assert list(sort_order("sharpness", values, values)) == [1, 2, 0]
    assert list(sort_order("face_px", values, np.zeros(3))) == [1, 2, 0]


def test_identity_groups_clusters_sharpest_first_unclustered_last() -> None:
    order = sort_order("identity", np.array([1, -1, 0, 1, 0]), np.array([1, 9, 2, 3, 5], dtype=float))
    assert list(order) == [4, 2, 3, 0, 1]


def test_an_unknown_key_names_the_choices() -> None:
    with pytest.raises(ValueError, match="yaw, pitch, sharpness, face_px, identity"):
        sort_order("age", np.zeros(1), np.zeros(1))
