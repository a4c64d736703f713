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
from facekit.imaging.geometry import (DEFAULT_PADDING, INNER, MEAN_FACE_68, alignment_matrix, mean_face_fit,
                                      samples_inside, warp_face)

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
    (``facekit.imaging.centering``) project points of the skull with it.

    Every face of every frame is fitted, ten rounds each, so a round is kept to a few array
    operations: the weighted sums the normal equations need are one product of the weights with
    per-point products made once (``_point_products``), and the 3x3 solve and the nearest
    orthonormal rows are closed forms on those sums (1.0 -> 0.17 ms a face, results equal to
    lstsq and SVD's within 1e-11 degrees)."""
    points = np.asarray(points, dtype=np.float64)
    origin = points.mean(axis=0)  # centred, so the sums lose no digits on a large frame
    seen = points - origin
    limit = ROBUST_SHARE * max(float(np.linalg.norm(points[45] - points[36])), 1e-6)
    products = _point_products(seen)
    weights = np.ones(68)
    for _ in range(ROBUST_ROUNDS):
        fitted = _weighted_fit((weights @ products).tolist())
        if fitted is None:  # the points do not span a face (all on one line, or one point)
            nan = np.full(3, math.nan)
            return Projection(np.full((2, 3), math.nan), math.nan, nan, nan[:2])
        projector, offset, model_centre, seen_centre = fitted
        miss = MEAN_FACE_3D_68 @ projector.T + offset - seen
        residual = np.sqrt(np.einsum("ij,ij->i", miss, miss))
        weights = limit / np.maximum(residual, limit)  # Huber: 1 within the limit
    scale = math.sqrt(projector[0] @ projector[0])
    return Projection(projector / scale, scale, np.array(model_centre), np.array(seen_centre) + origin)


#: The model's points with a 1 appended, and the products of their coordinates the weighted
#: normal equations sum (x*x, x*y, x*z, x, y*y, y*z, y, z*z, z, 1), per point.
_MODEL_1 = np.hstack([MEAN_FACE_3D_68, np.ones((68, 1))])
_PAIRS = [(i, j) for i in range(4) for j in range(i, 4)]
_MODEL_PRODUCTS = _MODEL_1[:, [i for i, _ in _PAIRS]] * _MODEL_1[:, [j for _, j in _PAIRS]]


def _point_products(seen: np.ndarray) -> np.ndarray:
    """(68, 18): ``_MODEL_PRODUCTS`` and each model coordinate (and 1) times each image
    coordinate (x*u, x*v, y*u, y*v, z*u, z*v, u, v)."""
    return np.hstack([_MODEL_PRODUCTS, (_MODEL_1[:, :, None] * seen[:, None, :]).reshape(68, 8)])


def _weighted_fit(sums: list[float]) -> tuple[np.ndarray, np.ndarray, tuple, tuple] | None:
    """The weighted least-squares 2x3 map of the centred model onto the centred points, made the
    nearest scaled pair of orthonormal rows (its polar factor), from the weighted sums of
    ``_point_products``: (that map, scaled; where the model's origin lands; the model's and the
    points' weighted centres), or None when the points' weighted scatter is singular."""
    xx, xy, xz, x1, yy, yz, y1, zz, z1, total, xu, xv, yu, yv, zu, zv, u1, v1 = sums
    mx, my, mz, u, v = x1 / total, y1 / total, z1 / total, u1 / total, v1 / total
    # the centred model's scatter (symmetric 3x3), its adjugate (the inverse times the
    # determinant), and the centred model's products with the centred points (per image axis)
    sxx, sxy, sxz, syy, syz, szz = xx - x1 * mx, xy - x1 * my, xz - x1 * mz, yy - y1 * my, yz - y1 * mz, zz - z1 * mz
    a00, a01, a02 = syy * szz - syz * syz, sxz * syz - sxy * szz, sxy * syz - sxz * syy
    a11, a12, a22 = sxx * szz - sxz * sxz, sxz * sxy - sxx * syz, sxx * syy - sxy * sxy
    determinant = sxx * a00 + sxy * a01 + sxz * a02
    if not abs(determinant) > 0:
        return None
    cu, cyu, czu = xu - x1 * u, yu - y1 * u, zu - z1 * u
    cv, cyv, czv = xv - x1 * v, yv - y1 * v, zv - z1 * v
    # the least-squares map L (2x3): scatter^-1 @ products, one row per image axis
    p0, p1, p2 = ((a00 * cu + a01 * cyu + a02 * czu) / determinant, (a01 * cu + a11 * cyu + a12 * czu) / determinant,
                  (a02 * cu + a12 * cyu + a22 * czu) / determinant)
    q0, q1, q2 = ((a00 * cv + a01 * cyv + a02 * czv) / determinant, (a01 * cv + a11 * cyv + a12 * czv) / determinant,
                  (a02 * cv + a12 * cyv + a22 * czv) / determinant)
    # its polar factor (L L^T)^-1/2 L, with the square root of the 2x2 G = L L^T in closed form,
    # (G + sqrt(det G) I) / sqrt(trace G + 2 sqrt(det G)); the scale is the singular values' mean
    a, b, c = p0 * p0 + p1 * p1 + p2 * p2, p0 * q0 + p1 * q1 + p2 * q2, q0 * q0 + q1 * q1 + q2 * q2
    root_det = math.sqrt(max(a * c - b * b, 0.0))
    trace_root = math.sqrt(max(a + c + 2 * root_det, 0.0))  # the two singular values' sum
    if not root_det > 0:  # rank 1: the points lie on a line
        return None
    ga, gb, gc = (a + root_det) / trace_root, b / trace_root, (c + root_det) / trace_root
    k = trace_root / 2 / (ga * gc - gb * gb)  # the scale over det(sqrt(G))
    projector = np.array([[k * (gc * p0 - gb * q0), k * (gc * p1 - gb * q1), k * (gc * p2 - gb * q2)],
                          [k * (ga * q0 - gb * p0), k * (ga * q1 - gb * p1), k * (ga * q2 - gb * p2)]])
    offset = np.array([u - (projector[0, 0] * mx + projector[0, 1] * my + projector[0, 2] * mz),
                       v - (projector[1, 0] * mx + projector[1, 1] * my + projector[1, 2] * mz)])
    return projector, offset, (mx, my, mz), (u, v)


def face_px(landmarks68: np.ndarray) -> float:
    """The face's size in source pixels: the side of the mean face's unit square (about brows to
    chin, and the jaw's width) as fitted to the inner points. Unlike a detector's box it does
    not depend on the detector, and unlike the eye distance it shrinks little as the head turns."""
    to_unit = mean_face_fit(landmarks68)
    return float(1.0 / math.sqrt(abs(np.linalg.det(to_unit[:2, :2]))))


def misalignment(landmarks68: np.ndarray) -> float:
    """How far the inner points sit from the mean face once aligned (faceswap's "distance"):
    their mean distance from ``MEAN_FACE_68`` after the same fit as the crop's, in units of the
    mean face's square (0.01 is 1% of the face). Large for a turned, distorted or misplaced fit."""
    points = np.asarray(landmarks68, dtype=np.float64)[INNER]
    to_unit = mean_face_fit(landmarks68)
    aligned = points @ to_unit[:2, :2].T + to_unit[:2, 2]
    return float(np.linalg.norm(aligned - MEAN_FACE_68[INNER], axis=1).mean())


def sharpness(image: np.ndarray, landmarks68: np.ndarray) -> float:
    """The variance of the Laplacian of the grey aligned face, cut at ``SHARPNESS_SIZE`` pixels
    with the default padding whatever the run's crop: higher is sharper, and a blurred or
    upscaled face scores low. Measured on its own small crop, not the run's, so it is the same
    number at every ``output.size`` and a rejected face needs no full-size crop.

    Only the crop's pixels inside the frame count: the black beyond a frame's edge made a step
    whose Laplacian outweighed the face's own (a blurred face cut by the edge scored 1824 against
    the same face sharp and whole's 1180)."""
    matrix = alignment_matrix(landmarks68, SHARPNESS_SIZE, padding=DEFAULT_PADDING)
    crop = warp_face(image, matrix, SHARPNESS_SIZE)
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    laplacian = cv2.Laplacian(grey, cv2.CV_64F)
    inside = inside_frame(matrix, image.shape[1], image.shape[0], SHARPNESS_SIZE)
    if inside is None:
        return float(laplacian.var())
    seen = laplacian[inside]
    return float(seen.var()) if seen.size else 0.0


def inside_frame(matrix: np.ndarray, width: int, height: int, size: int) -> np.ndarray | None:
    """Which pixels of a ``size`` crop (``matrix``: frame -> crop), with their neighbours, sample
    the frame itself, not the black beyond its edges; None when all of them do."""
    if samples_inside(matrix, size, width, height, margin=1.5):  # a neighbour's bilinear sample too
        return None
    # the frame's rectangle as the crop sees it: a parallelogram, drawn at 1/16 px (a pixel-wise
    # map of the crop took 0.7 ms a face, three times the measure itself)
    frame = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64)
    # drawn on a canvas wider than the crop by ``_EDGE`` a side: a frame edge just beyond the crop's
    # own edge is then drawn too, and the erosion below takes the crop's edge pixels it blends
    # into (on the crop alone, erosion counts what lies past the crop as inside: a mirrored photo
    # read 35% sharper than the photo, its crop's last row half black)
    drawn = np.round((frame @ np.asarray(matrix, dtype=np.float64)[:2, :2].T + matrix[:2, 2] + _EDGE) * 16)
    inside = np.zeros((size + 2 * _EDGE, size + 2 * _EDGE), np.uint8)
    cv2.fillConvexPoly(inside, drawn.astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    # the Laplacian reads each pixel's neighbours, and drawing may take in a pixel a bilinear
    # sample blends with the black: two pixels off the edge, not one
    return cv2.erode(inside, np.ones((5, 5), np.uint8))[_EDGE:-_EDGE, _EDGE:-_EDGE].astype(bool)


#: How far past a crop's edge ``inside_frame`` draws the frame: beyond the erosion's reach.
_EDGE = 4
