"""Crop centerings: which part of the head an aligned crop holds, and where its centre lies.

faceswap's three names, with facekit's own geometry (the unit square of ``MEAN_FACE_68``; see
``facekit.imaging.geometry``):

- ``legacy``: today's crop, ``geometry.alignment_matrix``: the unit square (brows to chin)
  centred, ``padding`` of the crop left on each side. Its centre sits near the nose, so a turned
  or tilted head drifts out of the crop's middle.
- ``face``: the whole face, forehead and hairline included: a crop a fifth wider than legacy's
  (the unit square spans 0.8 of legacy's share), centred on a point of the skull midway between
  hairline and chin, 0.9 of an eye span behind the nose tip, so it follows the head rather than
  the nose as the head turns.
- ``head``: the whole head, hair, ears and some neck, for head swaps: the unit square spans 0.6
  of legacy's share, centred on the middle of the skull (eye level, 1.3 eye spans behind the
  nose tip).

The centres are points of ``MEAN_FACE_3D_68`` projected by the head's fitted pose
(``measures.fitted_projection``), in the unit square's frame, so they move with yaw and pitch as
the skull does. The face and head centres differ by 0.41 model units, which projects to at most
about 0.25 of the unit square however the head turns, while a head crop reaches 0.30 beyond a
face crop on each side at the default padding: a head crop holds the face crop (a test checks
it on every shared portrait). Every centering keeps the same rotation and scale per
pixel of ``size`` as legacy's shrunk by its span, so crops of one face at two centerings differ
by a zoom and a shift only.
"""
from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from facekit.imaging.geometry import (DEFAULT_PADDING, alignment_matrix, checked_crop, mean_face_fit,
                                      transform_points)
from facekit.imaging.measures import fitted_projection

Centering = Literal["legacy", "face", "head"]
CENTERINGS: tuple[str, ...] = get_args(Centering)
DEFAULT_CENTERING = "legacy"

#: The unit square's side in the crop, as a share of legacy's at the same padding (faceswap's
#: extract ratios give 0.8 and 0.6 too: 0.5 and 0.375 of the crop against legacy's 0.625).
SPAN = {"legacy": 1.0, "face": 0.8, "head": 0.6}

#: Each centre as a point of ``MEAN_FACE_3D_68`` (eye span 1, nose tip at the origin, y down, z
#: away from the camera). Face: y -0.25 lands halfway between hairline (unit y about -0.2) and
#: chin (1.0) on an upright face, unit y 0.40; head: y -0.35 at eye level, the skull's middle
#: from crown to chin, unit y 0.35; z: the skull's middle is about 1.3 eye spans behind the nose.
ANCHORS = {"face": np.array([0.0, -0.25, 0.9]), "head": np.array([0.0, -0.35, 1.3])}


def check_centering(centering: str) -> str:
    if centering not in CENTERINGS:
        raise ValueError(f"centering is one of {', '.join(CENTERINGS)}, got {centering!r}")
    return centering


def centering_matrix(landmarks68: np.ndarray, size: int, padding: float = DEFAULT_PADDING,
                     centering: str = DEFAULT_CENTERING) -> np.ndarray:
    """The (2, 3) similarity from source pixels to a crop of ``size`` pixels at ``centering``.
    Legacy is ``alignment_matrix`` itself, so its crops stay byte for byte what they were."""
    if check_centering(centering) == "legacy":
        return alignment_matrix(landmarks68, size, padding=padding)
    points = checked_crop(landmarks68, padding)
    to_unit = mean_face_fit(points)
    centre = centering_centre(transform_points(points, to_unit), centering)
    span = size * (1 - 2 * padding) * SPAN[centering]
    unit_to_crop = np.array([[span, 0, size / 2 - span * centre[0]],
                             [0, span, size / 2 - span * centre[1]],
                             [0, 0, 1]])
    return (unit_to_crop @ to_unit)[:2]


def centering_centre(unit_points: np.ndarray, centering: str) -> np.ndarray:
    """Where a face or head crop is centred, in the unit square's frame, from the 68 points
    already aligned to it."""
    return fitted_projection(unit_points).project(ANCHORS[centering])

