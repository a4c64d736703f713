"""Per-face measures from the 68 points and the frame: head pose, size, fit error, sharpness.

Plain functions of points, matrices and pixels (no records), so filters, sweeps and curation
all judge a face by the same numbers; ``facekit.faces.stages`` computes them once per face.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facekit.imaging.face3d import MEAN_FACE_3D_68
from facekit.imaging.geometry import DEFAULT_PADDING, INNER, MEAN_FACE_68, alignment_matrix, umeyama, warp_face

#: The side of the crop sharpness is measured on: a fixed size (and the default padding), so one
#: ``quality.min_sharpness`` means the same at any ``output.size`` and ``output.padding``.
SHARPNESS_SIZE = 128

#: Residuals (of a point from the fitted model) beyond this share of the outer-eye-corner span
#: count less in the pose fit, as Huber's loss weighs them: a misplaced point (a jaw lost in a
#: beard, a brow under hair) cannot pull the whole head round.
ROBUST_SHARE = 0.06
ROBUST_ROUNDS = 10


def head_pose(landmarks68: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees: the rotation of ``MEAN_FACE_3D_68`` whose scaled
    orthographic projection best fits all 68 points (a weak-perspective camera: a face is shallow
    beside its distance from the lens, and no photo carries its focal length), by iteratively
    reweighted least squares with ROBUST_SHARE. Sixty-eight points average out the few percent
    of landmark noise that six points against a six-point model turned into 5-8 degrees.

    Conventions, as a person looking at the image sees the face:
    - yaw > 0: the face turns to its own left (the nose points to the image's right);
    - pitch > 0: the face looks up (the nose points to the image's top);
    - roll > 0: the head tips to its own left shoulder (clockwise in the image).
    A mirror image flips the signs of yaw and roll and keeps pitch.
    """
    points = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
    if not np.isfinite(points).all():
        return math.nan, math.nan, math.nan
    rows = fitted_projection(points).rows
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    # rotation = Rz(roll) @ Ry(y) @ Rx(x) in camera axes (y down): a turn about +y sends the nose
    # to the image's left and one about +x sends it down, hence the minus signs
    about_y = math.degrees(math.asin(-np.clip(rotation[2, 0], -1.0, 1.0)))
    about_x = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    about_z = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return -about_y, -about_x, about_z


@dataclass(frozen=True)
class Projection:
    """A scaled orthographic view of ``MEAN_FACE_3D_68`` fitted to 68 image points: a model
    point ``X`` lands at ``seen_centre + scale * rows @ (X - model_centre)``."""

    rows: np.ndarray  # (2, 3), orthonormal: the first two rows of the head's rotation
    scale: float  # image units per model unit
    model_centre: np.ndarray  # (3,)
    seen_centre: np.ndarray  # (2,)

    def project(self, point: np.ndarray) -> np.ndarray:
        return self.seen_centre + self.scale * self.rows @ (np.asarray(point, dtype=np.float64) - self.model_centre)


def fitted_projection(points: np.ndarray) -> Projection:
    """The mean 3D face's projection fitted to ``points`` (68, 2) by iteratively reweighted
    least squares with ROBUST_SHARE: head pose reads its rotation, the crop centerings
    (``facekit.imaging.centering``) project points of the skull with it."""
    limit = ROBUST_SHARE * max(float(np.linalg.norm(points[45] - points[36])), 1e-6)
    weights = np.ones(68)
    for _ in range(ROBUST_ROUNDS):
        projection, residual = _weighted_projection(points, weights)
        weights = np.minimum(1.0, limit / np.maximum(residual, 1e-12))
    return projection


def _weighted_projection(points: np.ndarray, weights: np.ndarray) -> tuple[Projection, np.ndarray]:
    """(the projection, each point's residual in pixels): the weighted least-squares 2x3 map of
    the centred model onto the centred points, made the nearest scaled pair of orthonormal rows."""
    share = weights / weights.sum()
    model_centre, seen_centre = share @ MEAN_FACE_3D_68, share @ points
    model = MEAN_FACE_3D_68 - model_centre
    seen = points - seen_centre
    root = np.sqrt(weights)[:, None]
    linear = np.linalg.lstsq(model * root, seen * root, rcond=None)[0].T
    u, singular, vt = np.linalg.svd(linear, full_matrices=False)
    rows = u @ vt
    residual = np.linalg.norm(model @ (singular.mean() * rows).T - seen, axis=1)
    return Projection(rows, float(singular.mean()), model_centre, seen_centre), residual


def face_px(landmarks68: np.ndarray) -> float:
    """The face's size in source pixels: the side of the mean face's unit square (about brows to
    chin, and the jaw's width) as fitted to the inner points. Unlike a detector's box it does
    not depend on the detector, and unlike the eye distance it shrinks little as the head turns."""
    to_unit = umeyama(np.asarray(landmarks68, dtype=np.float64)[INNER], MEAN_FACE_68[INNER])
    return float(1.0 / math.sqrt(abs(np.linalg.det(to_unit[:2, :2]))))


def misalignment(landmarks68: np.ndarray) -> float:
    """How far the inner points sit from the mean face once aligned (faceswap's "distance"):
    their mean distance from ``MEAN_FACE_68`` after the same fit as the crop's, in units of the
    mean face's square (0.01 is 1% of the face). Large for a turned, distorted or misplaced fit."""
    points = np.asarray(landmarks68, dtype=np.float64)[INNER]
    to_unit = umeyama(points, MEAN_FACE_68[INNER])
    aligned = points @ to_unit[:2, :2].T + to_unit[:2, 2]
    return float(np.linalg.norm(aligned - MEAN_FACE_68[INNER], axis=1).mean())


def sharpness(image: np.ndarray, landmarks68: np.ndarray) -> float:
    """The variance of the Laplacian of the grey aligned face, cut at ``SHARPNESS_SIZE`` pixels
    with the default padding whatever the run's crop: higher is sharper, and a blurred or
    upscaled face scores low. Measured on its own small crop, not the run's, so it is the same
    number at every ``output.size`` and a rejected face needs no full-size crop."""
    matrix = alignment_matrix(landmarks68, SHARPNESS_SIZE, padding=DEFAULT_PADDING)
    crop = warp_face(image, matrix, SHARPNESS_SIZE)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
