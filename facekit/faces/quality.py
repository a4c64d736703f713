"""The quality filter: keep or reject a face by its measures (size, pose, sharpness, fit), and
keep only the largest faces of a frame.

The measures are computed once per face (``measure``, from ``FaceStages.normalise``) and stored
in the alignments file and the analysis cache, so a sweep over these thresholds runs no model.
A face that fails is kept in the alignments file with ``keep: false`` and a ``reason`` that
names the measure, its value and the limit ("yaw 52.3 > 40"), exactly as the identity filter's
rejects are. Every limit is off (None) unless set; pose limits apply to absolute angles.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

import numpy as np

from facekit.errors import ConfigError
from facekit.imaging import measures
from facekit.records import MEASURE_DECIMALS, SCORE_DECIMALS, Face, FrameRecord, Pose

decisions = logging.getLogger("facekit.decisions")

#: The words a quality reason starts with, one per limit; the run summary counts rejects by them.
MEASURES = ("face_px", "yaw", "pitch", "roll", "sharpness", "misalignment", "max_faces")


def measure(face: Face, image: np.ndarray | None) -> None:
    """Fills the measures ``face`` lacks (a face restored from the cache has them already),
    rounded as they are stored, so a fresh run and a cached replay judge the same numbers.
    Sharpness needs the frame's pixels and is left unset without them."""
    if face.landmarks is None:
        return
    if face.pose is None:
        face.pose = measured_pose(face.landmarks)
    if face.face_px is None:
        face.face_px = round(measures.face_px(face.landmarks), MEASURE_DECIMALS)
    if face.misalignment is None:
        face.misalignment = round(measures.misalignment(face.landmarks), SCORE_DECIMALS)
    if face.sharpness is None and image is not None:
        face.sharpness = round(measures.sharpness(image, face.landmarks), MEASURE_DECIMALS)


def measured_pose(landmarks68: np.ndarray) -> Pose:
    """Head pose from 68 points, rounded as it is stored."""
    yaw, pitch, roll = (round(v, MEASURE_DECIMALS) for v in measures.head_pose(landmarks68))
    return Pose(yaw, pitch, roll)


@dataclass(frozen=True)
class Limit:
    """One per-face limit: the measure it bounds, and from which side."""

    measure: str   # the word its reasons start with
    upper: bool    # max_*: a face above it fails; min_*: a face below it

    def passes(self, value: float, bound: float) -> bool:
        return value <= bound if self.upper else value >= bound


#: The per-face limits by their ``quality.*`` name, in the order ``decide`` checks them; the
#: filter and a sweep's report (which places faces by the swept limit's measure) both read it.
LIMITS = {"min_face_px": Limit("face_px", False), "max_yaw": Limit("yaw", True), "max_pitch": Limit("pitch", True),
          "max_roll": Limit("roll", True), "min_sharpness": Limit("sharpness", False),
          "max_misalignment": Limit("misalignment", True)}
POSE_AXES = ("yaw", "pitch", "roll")


def measured(face: Face, measure: str) -> float | None:
    """The value a limit on ``measure`` compares: a pose angle's absolute value (a face turned
    40 degrees either way is as far from frontal), else the measure itself."""
    if measure in POSE_AXES:
        return None if face.pose is None else abs(getattr(face.pose, measure))
    return getattr(face, measure)


@dataclass(frozen=True)
class QualityFilter:
    """The ``quality`` node's limits; None turns a limit off."""

    min_face_px: float | None = None
    max_yaw: float | None = None
    max_pitch: float | None = None
    max_roll: float | None = None
    min_sharpness: float | None = None
    max_misalignment: float | None = None
    max_faces: int | None = None

    def __post_init__(self) -> None:
        faces = self.max_faces  # a count, said as one whatever is wrong with it (-1 was "a number >= 0")
        if faces is not None and not (isinstance(faces, (int, float)) and math.isfinite(faces)
                                      and int(faces) == faces and faces >= 1):
            raise ConfigError(f"quality.max_faces must be a whole number of faces, 1 or more, got {faces!r}")
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"quality.{item.name} must be a number >= 0 (or null: off), got {value!r}")

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> QualityFilter | None:
        """The filter for a ``quality`` node, or None when every limit is off."""
        limits = {item.name: node.get(item.name) for item in fields(cls)} if node else {}
        if all(value is None for value in limits.values()):
            return None
        return cls(**limits)

    def as_dict(self) -> dict[str, Any]:
        """The limits that are set (the alignments file's meta and fingerprint)."""
        return {item.name: getattr(self, item.name) for item in fields(self) if getattr(self, item.name) is not None}

    def decide(self, face: Face) -> str | None:
        """The reason ``face`` fails, or None when it passes every limit (max_faces aside)."""
        for name, limit in LIMITS.items():
            bound, value = getattr(self, name), measured(face, limit.measure)
            if bound is None or value is None or not math.isfinite(value) or limit.passes(value, bound):
                continue
            shown = _number(value, limit.measure, lambda text: not limit.passes(float(text), bound))
            return f"{limit.measure} {shown} {'>' if limit.upper else '<'} {bound:g}"
        return None

    def judge(self, record: FrameRecord) -> None:
        """Rejects the faces that fail a limit, then all but the ``max_faces`` largest of those
        still kept (by ``face_px``). A face the identity filter already rejected keeps its reason."""
        for index, face in enumerate(record.faces):
            if face.keep and (reason := self.decide(face)) is not None:
                _reject(record, index, reason)
        if self.max_faces is not None:
            kept = [i for i, face in enumerate(record.faces) if face.keep]
            by_size = sorted(kept, key=lambda i: -(record.faces[i].face_px or 0.0))
            for rank, index in enumerate(by_size[self.max_faces:], start=self.max_faces + 1):
                size = _number(record.faces[index].face_px or 0.0, "face_px")
                _reject(record, index, f"max_faces {self.max_faces}: face_px {size} is the {_ordinal(rank)} largest")


def reason_kind(reason: str | None) -> str:
    """What a rejection is counted under: the quality measure it names, else ``identity``."""
    word = (reason or "").split(" ", 1)[0]
    return word if word in MEASURES else "identity"


def _reject(record: FrameRecord, index: int, reason: str) -> None:
    face = record.faces[index]
    face.keep, face.reason = False, reason
    decisions.info("rejected %s face %d: %s", record.frame.name, index, reason)


def _number(value: float, name: str, fails: Callable[[str], bool] = lambda text: True) -> str:
    """``value`` to 1 decimal (4 for misalignment), or as many more as it takes for the number
    shown to fail the limit as the value did: pitch -10.04 against max 10 read "10.0 > 10"."""
    places = 4 if name == "misalignment" else 1
    while not fails(text := f"{value:.{places}f}") and places < 8:
        places += 1
    return text


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
