"""The identity filter: keep or reject a face from its embedding's distances to reference faces.

No model code: embeddings come from an identity plugin; this module only compares them. The rules
are faceswap's face filter (refs = its "filter", nrefs = its "nfilter"):

- refs only: keep when the mean distance to the refs is within the threshold;
- nrefs only: reject when the mean distance to the nrefs is within the threshold;
- both: reject when the nearest nref is nearer than the nearest ref, or the nrefs are nearer on
  average; otherwise keep when the refs hold at least half of a k-nearest-neighbour vote, with
  k = min(5, min(len(refs), len(nrefs)) + 1). The threshold plays no part here: with both sets
  the decision is relative, so a threshold sweep does not change it.

"Within" is ``<=``, and a tie never rejects: equal nearest or mean distances pass on to the vote,
and in the vote a ref and an nref at the same distance rank the ref first.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from facekit.errors import ConfigError, FacekitError
from facekit.plugin.spec import DISTANCE_METRICS
from facekit.records import SCORE_DECIMALS, Face

log = logging.getLogger(__name__)

MAX_K = 5  # faceswap's cap on the vote: a few neighbours, so one odd reference cannot swing it


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - _unit(a) @ _unit(b).T, 0.0, 2.0)


def _euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)


def _euclidean_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _euclidean(_unit(a), _unit(b))


_METRICS = {"cosine": _cosine, "euclidean": _euclidean, "euclidean_l2": _euclidean_l2}
METRICS = DISTANCE_METRICS  # what plugins may declare; a test holds the two equal


def check_metric(metric: str) -> None:
    """Raise ConfigError naming the choices unless ``metric`` is one :func:`distances` knows."""
    if metric not in _METRICS:
        raise ConfigError(f"unknown distance metric {metric!r}; choose one of: {', '.join(METRICS)}")


def distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """(n, m) distances between the rows of ``a`` (n, d) and ``b`` (m, d).

    ``cosine`` is 1 - cos (0 same direction, 2 opposite); ``euclidean`` the plain L2 distance;
    ``euclidean_l2`` the L2 distance of the unit vectors (sqrt(2 * cosine)), for models whose
    threshold was published that way. Those two normalise the vectors rather than trust them to
    be unit: embeddings come back rounded from the alignments file and the analysis cache.
    """
    check_metric(metric)
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings of different sizes: {a.shape[1]} and {b.shape[1]}")
    return _METRICS[metric](a, b)


@dataclass(frozen=True)
class Decision:
    """The filter's verdict on one face.

    ``distance`` is what the alignments file records and sweep reports sort by: the mean distance
    to the refs (refs only, and both: how like the wanted people the face is), or to the nrefs
    (nrefs only). In the refs-only and nrefs-only cases it is the number the threshold was applied to.
    """

    keep: bool
    reason: str | None
    distance: float | None


class IdentityFilter:
    """Judges embeddings against reference embeddings (refs: keep these people; nrefs: drop them)."""

    def __init__(self, refs: np.ndarray, nrefs: np.ndarray, threshold: float, metric: str) -> None:
        self.refs = _as_matrix(refs)
        self.nrefs = _as_matrix(nrefs)
        if not len(self.refs) and not len(self.nrefs):
            raise ConfigError("the identity filter needs at least one ref or nref photo")
        if len(self.refs) and len(self.nrefs) and self.refs.shape[1] != self.nrefs.shape[1]:
            raise ConfigError(f"refs and nrefs embeddings differ in size: "
                              f"{self.refs.shape[1]} and {self.nrefs.shape[1]}")
        check_metric(metric)  # now, not on the first face
        self.threshold = as_threshold(threshold)
        self.metric = metric

    @property
    def k(self) -> int:
        """Neighbours in the vote (both sets given): min(5, min(refs, nrefs) + 1)."""
        return min(MAX_K, min(len(self.refs), len(self.nrefs)) + 1)

    def decide(self, embedding: np.ndarray) -> Decision:
        """Keep or reject one face, with the reason for a rejection."""
        vector = np.asarray(embedding, dtype=np.float64).reshape(1, -1)
        if not len(self.nrefs):
            return self._refs_only(distances(vector, self.refs, self.metric)[0])
        if not len(self.refs):
            return self._nrefs_only(distances(vector, self.nrefs, self.metric)[0])
        return self._both(distances(vector, self.refs, self.metric)[0], distances(vector, self.nrefs, self.metric)[0])

    def _refs_only(self, to_refs: np.ndarray) -> Decision:
        mean = stored_distance(to_refs.mean())
        if mean <= self.threshold:
            return Decision(True, None, mean)
        return Decision(False, f"mean distance to refs {_apart(mean, self.threshold, '>')}", mean)

    def _nrefs_only(self, to_nrefs: np.ndarray) -> Decision:
        mean = stored_distance(to_nrefs.mean())
        if mean <= self.threshold:
            return Decision(False, f"mean distance to nrefs {_apart(mean, self.threshold, '<=')}", mean)
        return Decision(True, None, mean)

    def _both(self, to_refs: np.ndarray, to_nrefs: np.ndarray) -> Decision:
        mean_refs, mean_nrefs = stored_distance(to_refs.mean()), stored_distance(to_nrefs.mean())
        nearest_ref, nearest_nref = stored_distance(to_refs.min()), stored_distance(to_nrefs.min())
        if nearest_nref < nearest_ref:
            nref, ref = _both_shown(nearest_nref, nearest_ref)
            return Decision(False, f"nearest nref {nref} is nearer than nearest ref {ref}", mean_refs)
        if mean_nrefs < mean_refs:
            nrefs, refs = _both_shown(mean_nrefs, mean_refs)
            return Decision(False, f"mean distance to nrefs {nrefs} < to refs {refs}", mean_refs)
        votes = _ref_votes(to_refs, to_nrefs, self.k)
        if votes / self.k >= 0.5:
            return Decision(True, None, mean_refs)
        return Decision(False, f"{votes} of the {self.k} nearest references are refs (less than half)", mean_refs)


def stored_distance(value: float) -> float:
    """A distance as the alignments file stores it (``SCORE_DECIMALS``): a threshold is judged
    against the number a user reads there, so a face stored at exactly the threshold is kept."""
    return round(float(value), SCORE_DECIMALS)


def _apart(value: float, threshold: float, relation: str) -> str:
    """``0.256 > threshold 0.255``: the two at ``_both_shown``'s decimals."""
    shown, bound = _both_shown(value, threshold)
    return f"{shown} {relation} threshold {bound}"


def _both_shown(first: float, second: float) -> tuple[str, str]:
    """Two numbers at three decimals, or as many more as it takes for them to read as different
    numbers when they are (never ``0.224 > threshold 0.224``)."""
    places = 3
    while f"{first:.{places}f}" == f"{second:.{places}f}" and first != second and places < 8:
        places += 1
    return f"{first:.{places}f}", f"{second:.{places}f}"


def _ref_votes(to_refs: np.ndarray, to_nrefs: np.ndarray, k: int) -> int:
    """How many of the ``k`` nearest references are refs; at equal distance a ref ranks first
    (a stable sort over refs listed before nrefs)."""
    pooled = np.concatenate([to_refs, to_nrefs])
    nearest = np.argsort(pooled, kind="stable")[:k]
    return int((nearest < len(to_refs)).sum())


def as_threshold(threshold: Any, key: str = "filter.threshold") -> float:
    """A threshold as a float, or a ConfigError naming ``key`` (the CLI's, or the library's
    ``threshold=``) for anything that is not a distance: negative, NaN, infinite, not a number,
    or a bool (which float() reads as 1.0 or 0.0: a slip, not a distance)."""
    try:
        value = math.nan if isinstance(threshold, (bool, np.bool_)) else float(threshold)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{key} must be a distance (a number >= 0), got {threshold!r}")
    return value


def _as_matrix(embeddings: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """(n, d) float64; an empty list of references becomes (0, 0)."""
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.size == 0:
        return np.zeros((0, 0))
    return matrix.reshape(len(matrix), -1) if matrix.ndim > 1 else matrix.reshape(1, -1)


def reference_face(faces: Sequence[Face], file: str) -> int:
    """The index of the face a reference photo stands for: the largest (box area), since the
    person a photo was chosen for is nearly always the one it is framed on. Logs a warning naming
    ``file`` when there are several, and raises when there is none."""
    if not faces:
        raise FacekitError(f"no face found in reference photo {file!r}")
    areas = [face.detection.width * face.detection.height for face in faces]
    index = int(np.argmax(areas))
    if len(faces) > 1:
        log.warning("reference photo %s holds %d faces; using the largest", file, len(faces))
    return index
