"""One person's clusters joined across shots.

In a video one person's faces change at a cut (lighting, angle, expression) and stay put within a
shot, so a shot can end as a cluster of its own (density-based clustering gave a clip of one
singer in seven shots seven clusters). So clusters are then joined, closest pair
first, while the distance between their mean vectors (average of the faces' unit vectors,
renormalised) is at most ``max_distance``; a joined cluster's mean is that of all its faces.

Before that, clusters joined by a face followed from frame to frame are one: a face in one
frame and a face in the next frame of the same video whose boxes overlap by more than
``SAME_FACE_IOU`` and whose vectors are within the plugin's match distance are one person, and
two clusters with at least ``FOLLOWED_LINKS`` such links are joined whatever their means (a dim
face's vectors wander within one shot). One link is not enough: a cut can put another person
where the last one was.

Two clusters that hold two different faces of one frame are never joined: a frame shows a
person once. Two faces of one frame whose boxes overlap by more than ``SAME_FACE_IOU`` are
the detector finding one face twice, and do not count as two people.

The count of clusters is small beside the count of faces (tens to a few thousand), so the
pairwise distances of the clusters fit in memory and each join costs one pass over them.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterator, Sequence

import numpy as np

from facekit.curate.clusters import UNCLUSTERED, renumbered

SAME_FACE_IOU = 0.5
FOLLOWED_LINKS = 2


def joined_clusters(labels: np.ndarray, unit: np.ndarray, frames: Sequence[Hashable],
                    boxes: np.ndarray, max_distance: float,
                    followed: Sequence[tuple[int, int]] = ()) -> np.ndarray:
    """``labels`` with clusters joined (see the module docstring), renumbered by size.
    ``unit``: (n, d) unit vectors; ``frames``: each face's frame (faces of one frame share it);
    ``boxes``: (n, 4) x0, y0, x1, y1 in the frame's pixels; ``followed``: pairs of rows, one
    face followed into the next frame (``followed_faces``)."""
    labels = np.asarray(labels)
    ids = np.unique(labels[labels != UNCLUSTERED])
    if len(ids) < 2:
        return renumbered(labels)
    position = {int(label): index for index, label in enumerate(ids)}
    sums = np.zeros((len(ids), unit.shape[1]), dtype=np.float64)
    np.add.at(sums, [position[int(label)] for label in labels[labels != UNCLUSTERED]], unit[labels != UNCLUSTERED])
    apart = _never_together(labels, frames, boxes, position)
    owner = np.arange(len(ids))

    def join(first: int, second: int) -> int:
        """Cluster ``second`` into ``first`` (the lower position keeps both); the keeper."""
        keep, gone = min(first, second), max(first, second)
        sums[keep] += sums[gone]
        apart[keep] |= apart[gone]
        apart[:, keep] = apart[keep]
        owner[owner == gone] = keep
        return keep

    for first, second in _followed_clusters(labels, followed, position):
        if owner[first] != owner[second] and not apart[owner[first], owner[second]]:
            join(int(owner[first]), int(owner[second]))
    distance = _mean_distances(sums)
    distance[owner != np.arange(len(ids))] = np.inf
    distance[:, owner != np.arange(len(ids))] = np.inf
    distance[apart] = np.inf
    np.fill_diagonal(distance, np.inf)
    while True:
        pair = np.unravel_index(np.argmin(distance), distance.shape)
        if not distance[pair] <= max_distance:
            break
        keep = join(int(pair[0]), int(pair[1]))
        gone = int(pair[0]) + int(pair[1]) - keep
        distance[gone, :] = distance[:, gone] = np.inf
        row = 1.0 - _means(sums[keep:keep + 1]) @ _means(sums).T
        row = row[0]
        row[apart[keep] | np.isinf(distance[keep])] = np.inf
        row[keep] = np.inf
        distance[keep, :] = distance[:, keep] = row
    result = labels.astype(np.int64).copy()
    clustered = labels != UNCLUSTERED
    result[clustered] = ids[owner[[position[int(label)] for label in labels[clustered]]]]
    return renumbered(result)


def split_where_together(labels: np.ndarray, unit: np.ndarray, frames: Sequence[Hashable], boxes: np.ndarray,
                         distance: float, min_size: int) -> np.ndarray:
    """``labels`` with each cluster that holds two different faces of one frame (boxes that
    overlap by at most SAME_FACE_IOU) built again from its faces' representatives, joined as
    ``joined_clusters`` joins, never two of one frame together, while their means are within
    ``distance``; parts smaller than ``min_size`` are left unclustered. Average linkage knows no
    frames: on a clip and photos it put two people of one frame in one cluster 16 times."""
    from facekit.curate.clusters import representatives

    labels = np.asarray(labels).astype(np.int64).copy()
    torn = sorted({int(labels[first]) for first, second in _two_of_one_frame(labels, frames, boxes)
                   if labels[first] == labels[second]})
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for label in torn:
        rows = np.flatnonzero(labels == label)
        _, of_leader = representatives(np.ascontiguousarray(unit[rows], dtype=np.float32), distance / 4)
        parts = joined_clusters(of_leader, unit[rows], [frames[r] for r in rows], boxes[rows], distance)
        ids, counts = np.unique(parts, return_counts=True)
        for part, count in zip(ids, counts):
            members = rows[parts == part]
            labels[members] = next_label if count >= min_size else UNCLUSTERED
            next_label += 1
    return renumbered(labels)


def followed_faces(frames: Sequence[tuple[Hashable, int]], unit: np.ndarray, boxes: np.ndarray,
                   match_distance: float) -> list[tuple[int, int]]:
    """Pairs of rows: a face and the face of the next frame of its source (``frames``: source
    and frame number per row) that overlaps it by more than SAME_FACE_IOU, vectors within
    ``match_distance``."""
    by_source: dict[Hashable, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row, (source, number) in enumerate(frames):
        by_source[source][number].append(row)
    pairs = []
    for numbers in by_source.values():
        order = sorted(numbers)
        for earlier, later in zip(order, order[1:]):
            for first in numbers[earlier]:
                for second in numbers[later]:
                    if (overlap(boxes[first], boxes[second]) > SAME_FACE_IOU
                            and 1.0 - float(unit[first] @ unit[second]) <= match_distance):
                        pairs.append((first, second))
    return pairs


def _followed_clusters(labels: np.ndarray, followed: Sequence[tuple[int, int]],
                       position: dict[int, int]) -> list[tuple[int, int]]:
    """Cluster positions linked by at least FOLLOWED_LINKS followed faces, most links first."""
    links: dict[tuple[int, int], int] = defaultdict(int)
    for first, second in followed:
        a, b = int(labels[first]), int(labels[second])
        if a != UNCLUSTERED and b != UNCLUSTERED and a != b:
            links[tuple(sorted((position[a], position[b])))] += 1  # type: ignore[index]
    return [pair for pair, count in sorted(links.items(), key=lambda item: (-item[1], item[0]))
            if count >= FOLLOWED_LINKS]


def _means(sums: np.ndarray) -> np.ndarray:
    return sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)


def _mean_distances(sums: np.ndarray) -> np.ndarray:
    means = _means(sums)
    return 1.0 - means @ means.T


def _never_together(labels: np.ndarray, frames: Sequence[Hashable], boxes: np.ndarray,
                    position: dict[int, int]) -> np.ndarray:
    """(k, k): True where two clusters hold two different faces of one frame."""
    apart = np.zeros((len(position), len(position)), dtype=bool)
    for first, second in _two_of_one_frame(labels, frames, boxes):
        a, b = position[int(labels[first])], position[int(labels[second])]
        if a != b:
            apart[a, b] = apart[b, a] = True
    return apart


def _two_of_one_frame(labels: np.ndarray, frames: Sequence[Hashable], boxes: np.ndarray) -> Iterator[tuple[int, int]]:
    """Pairs of rows of clustered faces that are two faces of one frame: boxes overlapping by at
    most SAME_FACE_IOU (more is the detector finding one face twice)."""
    by_frame: dict[Hashable, list[int]] = defaultdict(list)
    for row, frame in enumerate(frames):
        if labels[row] != UNCLUSTERED:
            by_frame[frame].append(row)
    for rows in by_frame.values():
        for index, first in enumerate(rows):
            for second in rows[index + 1:]:
                if overlap(boxes[first], boxes[second]) <= SAME_FACE_IOU:
                    yield first, second


def overlap(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - inter
    return float(inter / union) if union > 0 else 0.0


JOIN_FRACTION = 0.55
"""Of the identity plugin's match distance (two single faces closer than it are one person).
Means of many faces are steadier than single faces, so they are held to a stricter distance:
on the shared clip with SFace, one singer's seven shots have means 0.11-0.30 apart and the
nearest means of two different people (dim, blurred audience faces) 0.38; 0.55 of SFace's
0.637 is 0.35, between the two."""


def join_distance(identity: object | None, setting: float | None) -> float:
    """The cosine distance clusters are joined within: ``setting`` when given, else
    JOIN_FRACTION of a cosine plugin's match distance; 0 (no joining) for a plugin whose match
    distance is euclidean on vectors of its own length (dlib's are about 1.6 long, so its 0.6
    says nothing of unit vectors) or unknown: set ``curate.join`` for those."""
    if setting is not None:
        return float(setting)
    return JOIN_FRACTION * match_distance(identity)


#: The cosine distance faces are clustered within when the identity plugin gives none.
FALLBACK_MATCH = 0.4


def cluster_distance(identity: object | None, length: float = 1.0) -> float:
    """The cosine distance within which two faces are one person, for clustering: a cosine
    plugin's match distance; for a euclidean one, the cosine distance of two vectors of the
    faces' typical ``length`` its match distance apart (they are compared as unit vectors here,
    and a match distance is written for the plugin's own lengths: dlib's 0.6 on vectors about
    1.4 long is 0.09, where taking them as unit vectors gave 0.18 and put 7 people in 2
    clusters); else FALLBACK_MATCH."""
    threshold = getattr(identity, "default_threshold", None)
    if threshold is None or getattr(identity, "metric", None) not in ("cosine", "euclidean"):
        return FALLBACK_MATCH
    if identity.metric == "cosine":  # type: ignore[attr-defined]
        return float(threshold)
    return (float(threshold) / length) ** 2 / 2


def match_distance(identity: object | None) -> float:
    """A cosine plugin's match distance, 0 when it has none (no face is then followed)."""
    if getattr(identity, "metric", None) != "cosine" or getattr(identity, "default_threshold", None) is None:
        return 0.0
    return float(identity.default_threshold)  # type: ignore[attr-defined]
