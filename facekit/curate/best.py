"""The best N faces of each identity: a spread of head turns, the sharpest of each.

DeepFaceLab's "final" sort does this with yaw estimated from the landmarks; here the yaw is the
measured one in each alignments entry. Per cluster: the most turned face to each side is kept
first (so the kept faces span the widest yaw the cluster has), then the range between them is
cut into N equal yaw bins and each bin gives its sharpest face not yet kept, bin by bin, round
after round, until N are kept. Faces without a yaw come last, sharpest first. Every tie goes to
the sharper face, then to the earlier one, so the choice is the same on every run.
"""
from __future__ import annotations

import numpy as np

from facekit.curate.clusters import UNCLUSTERED


def best_per_identity(labels: np.ndarray, yaw: np.ndarray, sharpness: np.ndarray, count: int,
                      candidates: np.ndarray | None = None) -> np.ndarray:
    """A mask of the faces kept: up to ``count`` per cluster among ``candidates`` (all by
    default); unclustered faces are never kept (they have no identity to be the best of)."""
    labels = np.asarray(labels)
    kept = np.zeros(len(labels), dtype=bool)
    open_rows = np.ones(len(labels), dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool)
    for label in np.unique(labels[open_rows & (labels != UNCLUSTERED)]):
        rows = np.flatnonzero(open_rows & (labels == label))
        kept[spread(rows, np.asarray(yaw, dtype=np.float64)[rows], np.asarray(sharpness, dtype=np.float64)[rows],
                    count)] = True
    return kept


def spread(rows: np.ndarray, yaw: np.ndarray, sharpness: np.ndarray, count: int) -> np.ndarray:
    """``count`` of ``rows`` (with their yaw and sharpness) over yaw bins, as the module says."""
    if len(rows) <= count:
        return rows
    sharp = np.nan_to_num(sharpness, nan=-np.inf)
    by_sharpness = np.lexsort((rows, -sharp))  # positions, sharpest first, ties by row
    known = by_sharpness[np.isfinite(yaw[by_sharpness])]
    chosen: list[int] = []
    if count >= 2 and len(known) >= 2:
        chosen += [int(known[np.argmin(yaw[known])]), int(known[np.argmax(yaw[known])])]  # first = sharpest of ties
        low, high = yaw[chosen[0]], yaw[chosen[1]]
        width = (high - low) / count if high > low else 1.0
        bins = np.minimum(((yaw[known] - low) / width).astype(int), count - 1)
        queues = [[int(p) for p in known[bins == b] if p not in chosen] for b in range(count)]
        filled = [int(b) for b in bins[np.isin(known, chosen)]]
        taken = [filled.count(b) for b in range(count)]
        for _ in range(len(known)):
            if len(chosen) >= count:
                break
            for b in range(count):
                if len(chosen) < count and queues[b] and taken[b] == min(t for t, q in zip(taken, queues) if q):
                    chosen.append(queues[b].pop(0))
                    taken[b] += 1
    rest = [int(p) for p in by_sharpness if int(p) not in chosen]
    chosen += rest[:max(0, count - len(chosen))]
    return rows[np.asarray(chosen, dtype=np.int64)]
