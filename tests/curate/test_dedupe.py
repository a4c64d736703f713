"""Near-duplicates on embeddings the test makes: faiss finds the pairs, the sharpest of each
group is kept, and pose and cluster keep look-alikes of another kind apart."""
from __future__ import annotations

import numpy as np

from facekit.curate.dedupe import near_duplicates


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _shots(count: int = 5, per_shot: int = 6, seed: int = 1) -> np.ndarray:
    """``count`` shots of ``per_shot`` faces each: one random direction, a little noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(count, 128))
    return _unit(np.repeat(centres, per_shot, axis=0) + rng.normal(scale=0.02, size=(count * per_shot, 128)))


def test_each_shot_keeps_only_its_sharpest_face() -> None:
    unit = _shots()
    sharpness = np.random.default_rng(2).uniform(10, 100, len(unit))
    found = near_duplicates(unit, 0.1, sharpness)
    for shot in range(5):
        rows = np.arange(shot * 6, shot * 6 + 6)
        sharpest = rows[np.argmax(sharpness[rows])]
        assert list(rows[found.kept[rows]]) == [sharpest]
        assert set(found.of[rows[rows != sharpest]]) == {sharpest}
        assert (found.distance[rows[rows != sharpest]] < 0.1).all()


def test_a_different_pose_or_cluster_is_not_a_duplicate() -> None:
    unit = _shots(count=1, per_shot=3)
    pose = np.array([[0, 0, 0], [4, 0, 0], [40, 0, 0]], dtype=float)  # the third turned away
    found = near_duplicates(unit, 0.1, np.array([3.0, 2.0, 1.0]), pose, max_pose_deg=10)
    assert list(found.kept) == [True, False, True]
    found = near_duplicates(unit, 0.1, np.array([3.0, 2.0, 1.0]), labels=np.array([0, 1, 0]))
    assert list(found.kept) == [True, True, False]


def test_faces_without_an_embedding_are_never_duplicates() -> None:
    unit = _shots(count=1, per_shot=3)
    unit[1] = np.nan
    found = near_duplicates(unit, 0.1, np.array([1.0, 2.0, 3.0]))
    assert list(found.kept) == [False, True, True] and found.of[0] == 2


def test_equal_sharpness_keeps_the_earlier_face_whatever_the_order() -> None:
    unit = _shots(count=2, per_shot=4)
    flat = np.ones(len(unit))
    assert list(np.flatnonzero(near_duplicates(unit, 0.1, flat).kept)) == [0, 4]
    assert list(np.flatnonzero(near_duplicates(unit, 0.1, flat).kept)) == [0, 4]


def test_an_unclustered_face_is_a_group_of_its_own_and_never_a_duplicate() -> None:
    unit = _shots(count=1, per_shot=4)
    found = near_duplicates(unit, 0.1, np.array([4.0, 3.0, 2.0, 1.0]), labels=np.array([-1, -1, 0, 0]))
    assert list(found.kept) == [True, True, True, False]
