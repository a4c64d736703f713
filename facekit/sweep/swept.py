"""The settings a sweep's report can put on its x axis, each with the per-face value it bounds:
``filter.threshold`` a face's distance to the refs, each ``quality.*`` limit one measure (for
``max_faces``, a face's rank by size in its frame). The report plots kept and rejected faces
against the setting and shows, per job, the faces whose value lies nearest the job's limit: the
faces that limit decides on."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping, Sequence

from facekit.faces.quality import LIMITS, POSE_AXES
from facekit.sweep.contact_sheet import FaceValues, distances

THRESHOLD_KEY = "filter.threshold"
MAX_FACES = "max_faces"


@dataclass(frozen=True)
class SweptSetting:
    """One setting a sweep varies, and how to read it and its faces back from a job's alignments."""

    key: str             # the override as typed: filter.threshold, quality.max_yaw
    values: FaceValues   # a frame's face entries -> the value each is placed by
    value_format: str    # a face's value under its contact-sheet tile

    @property
    def name(self) -> str:
        """The key without its group: threshold, max_yaw."""
        return self.key.rpartition(".")[2]

    def limit(self, meta: Mapping[str, Any]) -> float | None:
        """The value a job applied (its alignments meta), or None where it set none."""
        if self.key == THRESHOLD_KEY:
            node = meta.get("filter")
            return None if not node else float(node["threshold"])
        value = (meta.get("quality") or {}).get(self.name)
        return None if value is None else float(value)

    def row_label(self, limit: float, job: int, also: str = "") -> str:
        """A contact-sheet row's label, one line per line; ``also``: the other swept values."""
        lines = [f"t = {limit:.15g}"] if self.key == THRESHOLD_KEY else [self.name, f"= {limit:g}"]  # as typed: 0.6376, not 0.638
        return "\n".join([*lines, *([also] if also else []), f"job {job}"])


def measure_values(measure: str, faces: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """The ``measure`` of each face entry as the quality filter reads it (``measured``: pose
    angles as absolute values), read from the JSON without making Faces: a long video's report
    reads every face of every job."""
    if measure in POSE_AXES:
        angles = [(face.get("pose") or {}).get(measure) for face in faces]
        return [None if angle is None else abs(float(angle)) for angle in angles]
    return [None if face.get(measure) is None else float(face[measure]) for face in faces]


def size_ranks(faces: Sequence[Mapping[str, Any]]) -> list[float | None]:
    """Each face's rank by ``face_px`` among the faces ``max_faces`` chose from (1: the largest):
    those kept, and those it rejected; a face another limit rejected first has no rank."""
    ranked = [n for n, face in enumerate(faces) if face.get("keep", True)
              or str(face.get("reason") or "").startswith(MAX_FACES)]
    ranked.sort(key=lambda n: -(faces[n].get("face_px") or 0.0))
    ranks: list[float | None] = [None] * len(faces)
    for rank, n in enumerate(ranked, start=1):
        ranks[n] = float(rank)
    return ranks


_FORMATS = {"misalignment": ".4f"}  # the others: ".2f"; each as stored, so "15.00 REJECT" never hides 15.04 > 15

#: Every setting the report knows, in the order it chooses the x axis among those that vary.
SETTINGS = {
    THRESHOLD_KEY: SweptSetting(THRESHOLD_KEY, distances, ".3f"),
    **{f"quality.{name}": SweptSetting(f"quality.{name}", partial(measure_values, limit.measure),
                                       _FORMATS.get(limit.measure, ".2f"))
       for name, limit in LIMITS.items()},
    f"quality.{MAX_FACES}": SweptSetting(f"quality.{MAX_FACES}", size_ranks, ".0f"),
}


def x_axis(overrides: Sequence[Mapping[str, str]]) -> SweptSetting:
    """The first known setting whose value differs between the jobs (their overrides), else the
    first one they set, else the threshold: a sweep over something else (``output.size``) still
    shows the limit it applied, a filter's default threshold included."""
    for key, setting in SETTINGS.items():
        if len({job.get(key) for job in overrides}) > 1:
            return setting
    named = [key for key in SETTINGS if any(key in job for job in overrides)]
    return SETTINGS[named[0] if named else THRESHOLD_KEY]
