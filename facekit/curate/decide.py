"""What curation decides for each face, from the settings: identity cluster, then duplicates,
then the best N, each step working on what the one before kept. No files are read or written
here beyond the embeddings' face files; ``facekit.curate.result`` writes the outcome."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from facekit.curate.best import best_per_identity
from facekit.curate.clusters import MIN_CLUSTER_SIZE, UNCLUSTERED, cluster_labels
from facekit.curate.dedupe import near_duplicates, reason as duplicate_reason
from facekit.curate.embeddings import face_vectors, typical_length, unit_rows
from facekit.curate.inventory import FaceEntry
from facekit.curate.joining import (cluster_distance, followed_faces, join_distance, joined_clusters, match_distance,
                                   split_where_together)
from facekit.faces.stages import FaceStages

log = logging.getLogger(__name__)

NO_FILE = "no face file found under the input"
UNREADABLE = "unreadable"  # its face file is there but cannot be decoded (cut short, overwritten)
UNCLUSTERED_REASON = "unclustered (best N is chosen per identity cluster)"


@dataclass(frozen=True)
class CurateSettings:
    """The ``curate`` config node, checked (facekit/app/schema.py says what each key means)."""

    cluster: bool = False
    dedupe: float | None = None
    dedupe_pose: float = 10.0
    best: int | None = None
    sort: str | None = None
    copy: bool = False
    min_cluster_size: int | None = None
    join: float | None = None  # None: JOIN_FRACTION of the identity plugin's match distance; 0: no joining

    @property
    def needs_identity(self) -> bool:
        """Clusters, duplicates, best N and the identity sort all need each face's embedding."""
        return self.cluster or self.dedupe is not None or self.best is not None or self.sort == "identity"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Curation:
    """Every face with its cluster (-1 unclustered; None when identities were not needed),
    whether it is kept and why not."""

    faces: list[FaceEntry]
    settings: CurateSettings
    identity: str | None = None
    unit: np.ndarray | None = None  # (n, d) unit embeddings, rows of NaN where none
    labels: np.ndarray | None = None
    #: the rows clustering took (a file that decodes, not rejected at extraction); the others
    #: have no cluster, not even "unclustered" (None where identities were not needed)
    clustered: np.ndarray | None = None
    kept: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    reasons: list[str | None] = field(default_factory=list)

    @property
    def clusters(self) -> list[int]:
        if self.labels is None:
            return []
        return sorted(int(label) for label in np.unique(self.labels) if label != UNCLUSTERED)

    def cluster_of(self, row: int) -> int | None:
        """The row's cluster, -1 unclustered; None for a face clustering did not take."""
        if self.labels is None or self.clustered is None or not self.clustered[row]:
            return None
        return int(self.labels[row])

    @property
    def unclustered(self) -> int:
        """The faces clustering took and left in no cluster."""
        if self.labels is None or self.clustered is None:
            return 0
        return int(((self.labels == UNCLUSTERED) & self.clustered).sum())


def decide(faces: Sequence[FaceEntry], settings: CurateSettings,
           stages: Callable[[], FaceStages] | None = None) -> Curation:
    """The whole decision; ``stages`` builds the identity plugin's stages when some face has no
    stored embedding of it."""
    faces = list(faces)
    curation = Curation(faces, settings, kept=np.zeros(len(faces), dtype=bool), reasons=[None] * len(faces))
    usable = np.array([face.path is not None and face.rejected is None for face in faces], dtype=bool)
    for row, face in enumerate(faces):
        if face.rejected is not None:
            curation.reasons[row] = face.rejected
        elif face.path is None:
            curation.reasons[row] = NO_FILE
    curation.kept = usable.copy()
    if not settings.needs_identity:
        return curation
    if stages is None:
        raise ValueError("clusters, duplicates and best N need the identity plugin's stages")
    built = stages()
    curation.identity = built.identity.spec.name if built.identity is not None else None
    rows = np.flatnonzero(usable)
    unreadable: list[int] = []
    vectors = face_vectors([faces[r] for r in rows], built, unreadable=unreadable)
    unit = unit_rows(vectors) if vectors.size else vectors
    curation.clustered = usable.copy()
    for position in unreadable:
        curation.kept[rows[position]] = False
        curation.reasons[rows[position]] = UNREADABLE
        curation.clustered[rows[position]] = False
    curation.unit = np.full((len(faces), unit.shape[1] if unit.ndim == 2 else 0), np.nan, dtype=np.float32)
    curation.unit[rows] = unit
    curation.labels = np.full(len(faces), UNCLUSTERED, dtype=np.int64)
    spec = built.identity.spec if built.identity is not None else None
    cut = cluster_distance(spec, typical_length(vectors))
    found = cluster_labels(unit, cut, settings.min_cluster_size)
    chosen = [faces[r] for r in rows]
    boxes, frames = face_boxes(chosen), [face.key[:2] for face in chosen]
    found = split_where_together(found, unit, frames, boxes, cut, max(MIN_CLUSTER_SIZE, settings.min_cluster_size or 0))
    limit = join_distance(spec, settings.join)
    if limit > 0:
        followed = followed_faces([(face.key[0], face.frame_index) for face in chosen], unit, boxes,
                                  match_distance(spec))
        found = joined_clusters(found, unit, frames, boxes, limit, followed)
    curation.labels[rows] = found
    log.info("%d cluster(s), %d face(s) unclustered", len(curation.clusters), curation.unclustered)
    if settings.dedupe is not None:
        _drop_duplicates(curation, rows, float(settings.dedupe))
    if settings.best is not None:
        _keep_best(curation, int(settings.best))
    return curation


def face_boxes(faces: Sequence[FaceEntry]) -> np.ndarray:
    """(n, 4) each face's landmark box in its frame; zeros for a face without landmarks."""
    return np.array([[*face.landmarks.min(axis=0), *face.landmarks.max(axis=0)] if face.landmarks is not None
                     else [0.0, 0.0, 0.0, 0.0] for face in faces], dtype=np.float64).reshape(-1, 4)


def measures(faces: Sequence[FaceEntry], key: str) -> np.ndarray:
    return np.array([getattr(face, key) for face in faces], dtype=np.float64)


def _drop_duplicates(curation: Curation, rows: np.ndarray, threshold: float) -> None:
    faces = [curation.faces[r] for r in rows]
    pose = np.stack([measures(faces, "yaw"), measures(faces, "pitch"), measures(faces, "roll")], axis=1)
    found = near_duplicates(curation.unit[rows], threshold, measures(faces, "sharpness"), pose,
                            curation.labels[rows], curation.settings.dedupe_pose)
    for position in np.flatnonzero(~found.kept):
        row = rows[position]
        curation.kept[row] = False
        curation.reasons[row] = duplicate_reason(faces[found.of[position]].name, float(found.distance[position]))
    log.info("dedupe: %d near-duplicate(s) dropped", int((~found.kept).sum()))


def _keep_best(curation: Curation, count: int) -> None:
    faces = curation.faces
    best = best_per_identity(curation.labels, measures(faces, "yaw"), measures(faces, "sharpness"), count,
                             candidates=curation.kept)
    for row in np.flatnonzero(curation.kept & ~best):
        curation.kept[row] = False
        curation.reasons[row] = UNCLUSTERED_REASON if curation.labels[row] == UNCLUSTERED else f"not among best {count}"
