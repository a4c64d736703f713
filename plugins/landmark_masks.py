"""Masks drawn from landmarks, no weights: faceswap's ``components`` and ``extended``, and
``mesh``, the face outline FaceMesh traces.

``components`` is the union of the convex hulls of the face's parts as faceswap draws them
(jaw halves, cheeks, nose ridge, eye regions, nose; each hull reaches down to the chin, point 8);
``extended`` adds the same hulls with the brows moved up by half the distance from the top of each
eye to its brow (faceswap's ``extended``: the forehead just above the brows is kept); drawing the
unmoved hulls too keeps every pixel of ``components``, which moving an outer brow point alone can
shave off a jaw hull. ``mesh`` fills the outline
the facemesh aligner records when this masker is named (``plugins/facemesh.py``: ``OUTLINE``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from facekit.plugin import MaskRequest, PluginSpec, hookimpl

#: faceswap's components parts, as index ranges of the 68 points (``plugins/extract/mask/components.py``).
PARTS: tuple[tuple[range, ...], ...] = (
    (range(0, 9), range(17, 18)),  # jaw, image-left half, up to the brow's outer end
    (range(8, 17), range(26, 27)),  # jaw, image-right half
    (range(17, 20), range(8, 9)),  # cheek, image-left
    (range(24, 27), range(8, 9)),  # cheek, image-right
    (range(19, 25), range(8, 9)),  # nose ridge, between the brows down to the chin
    (range(17, 22), range(27, 28), range(31, 36), range(8, 9)),  # eye region, image-left
    (range(22, 27), range(27, 28), range(31, 36), range(8, 9)),  # eye region, image-right
    (range(27, 31), range(31, 36)),  # nose
)
#: Every part's points gathered with one index array, then cut into parts by slices (views):
#: one gather a face instead of one a part.
_GATHER = np.concatenate([np.arange(r.start, r.stop) for part in PARTS for r in part])
_CUTS = tuple(np.cumsum([0] + [sum(len(r) for r in part) for part in PARTS]).tolist())
#: Subpixel precision of the polygons OpenCV fills (``shift``): 1/16 px.
_SHIFT = 4


@dataclass
class ComponentsConfig:
    pass


@dataclass
class ExtendedConfig:
    # faceswap moves each brow point up by half the distance from the eye's top to the brow
    brow_shift: float = 0.5


@dataclass
class MeshConfig:
    pass


def fill_hulls(size: int, parts: Sequence[np.ndarray]) -> np.ndarray:
    """A size x size uint8 mask, 255 inside the convex hull of each point set."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    for points in parts:
        cv2.fillConvexPoly(mask, cv2.convexHull(_fixed(points)), 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask


def fill_parts(size: int, landmark_sets: Sequence[np.ndarray]) -> np.ndarray:
    """``fill_hulls`` of faceswap's parts of each set of 68 points, into one mask."""
    return fill_hulls(size, [part for points in landmark_sets for part in component_parts(_fixed(points))])


def fill_polygon(size: int, points: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [_fixed(points).reshape(-1, 1, 2)], 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask


def _fixed(points: np.ndarray) -> np.ndarray:
    """Points in OpenCV's fixed point (``_SHIFT`` fractional bits); points already int32 pass."""
    points = np.asarray(points)
    if points.dtype == np.int32:
        return points
    return np.round(points.astype(np.float64) * (1 << _SHIFT)).astype(np.int32).reshape(-1, 2)


def component_parts(landmarks: np.ndarray) -> list[np.ndarray]:
    gathered = landmarks[_GATHER]
    return [gathered[start:end] for start, end in zip(_CUTS, _CUTS[1:])]


def extended_landmarks(landmarks: np.ndarray, brow_shift: float) -> np.ndarray:
    """The 68 points with the brows moved up, as faceswap's ``extended`` mask moves them: each
    brow point away from the top of the eye below it by ``brow_shift`` of their distance. The
    eye's top runs from a point a quarter of the way from the eye's outer corner to the jaw."""
    points = np.asarray(landmarks, dtype=np.float64).copy()
    left_quarter = points[36] + (points[0] - points[36]) / 4  # halfway to the midpoint, as faceswap
    right_quarter = points[45] + (points[16] - points[45]) / 4
    below_left = np.array([left_quarter, points[36], points[37], points[38], points[39]])
    below_right = np.array([points[42], points[43], points[44], points[45], right_quarter])
    points[17:22] += (points[17:22] - below_left) * brow_shift
    points[22:27] += (points[22:27] - below_right) * brow_shift
    return points


class ComponentsMasker:
    def __init__(self, config: ComponentsConfig) -> None:
        self.config = config

    def mask(self, image: np.ndarray | None, requests: Sequence[MaskRequest]) -> list[np.ndarray]:
        return [fill_parts(r.size, [r.landmarks]) for r in requests]


class ExtendedMasker:
    def __init__(self, config: ExtendedConfig) -> None:
        self.config = config

    def mask(self, image: np.ndarray | None, requests: Sequence[MaskRequest]) -> list[np.ndarray]:
        return [fill_parts(r.size, [r.landmarks, extended_landmarks(r.landmarks, self.config.brow_shift)])
                for r in requests]


class MeshMasker:
    def __init__(self, config: MeshConfig) -> None:
        self.config = config

    def mask(self, image: np.ndarray | None, requests: Sequence[MaskRequest]) -> list[np.ndarray]:
        return [fill_polygon(r.size, r.outline) for r in requests]


def _build(kind: type) -> Any:
    return lambda config, store: kind(config)


@hookimpl
def facekit_maskers() -> list[PluginSpec]:
    return [
        PluginSpec(name="components", kind="masker", factory=_build(ComponentsMasker), config_class=ComponentsConfig,
                   description="faceswap's components: hulls of jaw, cheeks, nose and eye regions (68 points)"),
        PluginSpec(name="extended", kind="masker", factory=_build(ExtendedMasker), config_class=ExtendedConfig,
                   description="faceswap's extended: components with the brows moved up (68 points)"),
        PluginSpec(name="mesh", kind="masker", factory=_build(MeshMasker), config_class=MeshConfig, needs=("outline",),
                   description="the face outline of FaceMesh's 468 points, up to the brows (+aligner=facemesh)"),
    ]
