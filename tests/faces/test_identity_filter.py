"""The identity filter's rules on synthetic embeddings, no model involved.

Most cases use one-dimensional embeddings with the euclidean metric, so a reference at position
p lies at distance |p| from the face at 0 and every distance in a case can be read off directly.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from facekit.errors import ConfigError, FacekitError
from facekit.faces.identity import Decision, IdentityFilter, distances, reference_face
from facekit.records import Detection, Face

FACE = np.array([0.0])


def points(*positions: float) -> np.ndarray:
    """References at these positions on a line: (n, 1) embeddings."""
    return np.array(positions, dtype=np.float64).reshape(-1, 1)


def judge(refs: tuple[float, ...], nrefs: tuple[float, ...], threshold: float = 1.0) -> Decision:
    return IdentityFilter(points(*refs), points(*nrefs), threshold, "euclidean").decide(FACE)


# --- distances ---------------------------------------------------------------------------------

def test_cosine_distance_is_one_minus_cos_and_ignores_length() -> None:
    a = np.array([[1.0, 0.0], [3.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, 5.0], [-1.0, 0.0]])
    np.testing.assert_allclose(distances(a, b, "cosine"), [[0, 1, 2], [0, 1, 2]], atol=1e-12)


def test_euclidean_distances_and_their_unit_vector_form() -> None:
    a, b = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(distances(a + [1, 0], b, "euclidean"), [[math.sqrt(20), math.sqrt(5)]])
    unit = distances(np.array([[1.0, 1.0]]), b, "euclidean_l2")
    np.testing.assert_allclose(unit, np.sqrt(2 * distances(np.array([[1.0, 1.0]]), b, "cosine")))


def test_distances_reject_unknown_metrics_and_mismatched_sizes() -> None:
    with pytest.raises(ConfigError, match="choose one of: cosine, euclidean, euclidean_l2"):
        distances(points(1), points(2), "manhattan")
    with pytest.raises(ValueError, match="different sizes"):
        distances(np.zeros((1, 3)), np.zeros((2, 4)), "cosine")


# --- refs only ---------------------------------------------------------------------------------

def test_refs_only_keeps_within_the_threshold_by_the_mean() -> None:
    assert judge((0.5, 1.5), ()) == Decision(True, None, 1.0)  # mean 1.0: equal to the threshold is within
    decision = judge((0.2, 2.2), ())  # nearest ref 0.2 is close, but the mean decides
    assert not decision.keep and decision.distance == pytest.approx(1.2)
    assert decision.reason == "mean distance to refs 1.200 > threshold 1.000"


def test_a_distance_is_judged_as_stored_so_one_stored_at_the_threshold_is_kept() -> None:
    """The alignments file stores a distance to 4 decimals: a face that reads 0.2244 there is kept
    at filter.threshold=0.2244, and a rejection never reads as two equal numbers."""
    at = judge((0.22443,), (), threshold=0.2244)
    assert at == Decision(True, None, 0.2244)
    assert judge((), (0.22443,), threshold=0.2244).reason == "mean distance to nrefs 0.224 <= threshold 0.224"
    over = judge((0.30118,), (), threshold=0.3011)
    assert not over.keep and over.reason == "mean distance to refs 0.3012 > threshold 0.3011", over.reason


def test_with_refs_and_nrefs_distances_are_judged_as_stored_and_never_read_as_the_same_number() -> None:
    decision = judge((0.2244,), (0.2241,))
    assert not decision.keep and decision.reason == "nearest nref 0.2241 is nearer than nearest ref 0.2244", decision
    assert decision.distance == 0.2244  # the mean distance to the refs, as the alignments file stores it
    assert judge((0.22404,), (0.22401,)).keep  # equal as stored (0.224): a tie never rejects


# --- nrefs only --------------------------------------------------------------------------------

def test_nrefs_only_rejects_within_the_threshold_by_the_mean() -> None:
    decision = judge((), (0.5, 1.5))  # mean 1.0: within, so rejected
    assert decision == Decision(False, "mean distance to nrefs 1.000 <= threshold 1.000", 1.0)
    assert judge((), (0.2, 2.2)) == Decision(True, None, pytest.approx(1.2))


# --- both --------------------------------------------------------------------------------------

def test_both_rejects_when_the_nearest_nref_is_nearer_than_the_nearest_ref() -> None:
    decision = judge((2, 3), (1, 50), threshold=100)  # the threshold plays no part
    assert not decision.keep
    assert decision.reason == "nearest nref 1.000 is nearer than nearest ref 2.000"
    assert decision.distance == pytest.approx(2.5)  # mean distance to the refs


def test_both_rejects_when_the_nrefs_are_nearer_on_average() -> None:
    decision = judge((1, 9), (2, 3), threshold=0)
    assert (decision.keep, decision.reason) == (False, "mean distance to nrefs 2.500 < to refs 5.000")


def test_both_rejects_when_the_refs_lose_the_vote() -> None:
    # nearest is a ref and the refs are nearer on average, but k = 5 and 3 of the 5 nearest are nrefs
    decision = judge((1, 20, -20, 20), (2, -2, 2, 40, -40))
    assert (decision.keep, decision.reason) == (False, "2 of the 5 nearest references are refs (less than half)")


def test_both_keeps_on_exactly_half_the_vote_whatever_the_threshold() -> None:
    assert judge((1,), (3,), threshold=0) == Decision(True, None, 1.0)  # k = 2: one ref, one nref


def test_both_ties_never_reject() -> None:
    # equal nearest (1 and 1) and equal means (3 and 3) pass on to the vote; k = 3 and at equal
    # distances a ref ranks first: ref 1, nref 1, ref 5 -> 2 of 3.
    assert judge((1, 5), (-1, -5)).keep


@pytest.mark.parametrize(("n_refs", "n_nrefs", "k"), [
    (1, 1, 2), (1, 9, 2), (9, 1, 2), (2, 3, 3), (3, 3, 4), (4, 7, 5), (5, 5, 5), (12, 30, 5),
])
def test_k_is_min_of_5_and_the_smaller_set_plus_one(n_refs: int, n_nrefs: int, k: int) -> None:
    face_filter = IdentityFilter(points(*range(1, n_refs + 1)), points(*range(1, n_nrefs + 1)), 1.0, "euclidean")
    assert face_filter.k == k


def test_the_vote_uses_k_smaller_set_plus_one() -> None:
    # one ref: k = 2, so ref 1 and nref 2 split the vote and the face is kept (k = 3 would reject)
    assert judge((1,), (2, 2.5, 3, 100, 100)).keep
    # three refs: k = 4, ranked ref 1, nref 2, nref 3, ref 4: kept on half the vote; k = 3
    # (no "+ 1") would give 1 of 3, and k = 5 (adding nref 5) 2 of 5
    assert judge((1, 4, 10), (2, 3, 5, 100)).keep


def test_the_vote_is_capped_at_5() -> None:
    # 6 and 6: k = 5 -> refs 1, 1 and nrefs 2, 2, 2: rejected (k = 7 would add two refs and keep)
    decision = judge((1, 1, 9, 9, 9, 9), (2, 2, 2, 50, 50, 50))
    assert decision.reason == "2 of the 5 nearest references are refs (less than half)"


# --- construction ------------------------------------------------------------------------------

def test_no_references_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at least one ref or nref"):
        IdentityFilter(np.zeros((0, 128)), [], 0.5, "cosine")


@pytest.mark.parametrize("threshold", [-0.1, float("nan"), float("inf"), "high", None])
def test_a_threshold_must_be_a_distance(threshold: object) -> None:
    with pytest.raises(ConfigError, match="filter.threshold"):
        IdentityFilter(points(1), [], threshold, "cosine")  # type: ignore[arg-type]


def test_an_unknown_metric_fails_before_any_face() -> None:
    with pytest.raises(ConfigError, match="unknown distance metric 'dot'"):
        IdentityFilter(points(1), [], 0.5, "dot")


def test_cosine_filter_on_unnormalised_embeddings_keeps_what_a_run_records() -> None:
    face_filter = IdentityFilter(np.array([[2.0, 0.0]]), [], 0.3, "cosine")
    assert (face_filter.threshold, face_filter.metric) == (0.3, "cosine")
    assert face_filter.decide(np.array([5.0, 1.0])).keep  # cos 0.98: distance 0.02
    near = face_filter.decide(np.array([1.0, 1.0]))  # 45 degrees: distance 0.293, within 0.3
    assert near.keep and near.distance == round(1 - math.sqrt(0.5), 4)  # as the alignments file stores it
    assert not face_filter.decide(np.array([0.0, 1.0])).keep


# --- reference photos --------------------------------------------------------------------------

def _face(x1: float, y1: float, x2: float, y2: float) -> Face:
    return Face(detection=Detection((x1, y1, x2, y2), 0.9))


def test_reference_face_is_the_largest_and_several_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    faces = [_face(0, 0, 10, 40), _face(0, 0, 30, 20), _face(0, 0, 20, 20)]  # areas 400, 600, 400
    with caplog.at_level(logging.WARNING):
        assert reference_face(faces, "group.jpg") == 1
    assert "group.jpg holds 3 faces; using the largest" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert reference_face(faces[:1], "me.jpg") == 0
    assert not caplog.text


def test_reference_without_a_face_names_the_file() -> None:
    with pytest.raises(FacekitError, match="no face found in reference photo 'empty.jpg'"):
        reference_face([], "empty.jpg")
