"""Per-face measures from the 68 points and the frame: head pose, size, fit error, sharpness.

Plain functions of points, matrices and pixels (no records), so filters, sweeps and curation
all judge a face by the same numbers; ``facekit.faces.stages`` computes them once per face.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from facekit.imaging.geometry import DEFAULT_PADDING, INNER, MEAN_FACE_68, alignment_matrix, umeyama, warp_face

#: The side of the crop sharpness is measured on: a fixed size (and the default padding), so one
#: ``quality.min_sharpness`` means the same at any ``output.size`` and ``output.padding``.
SHARPNESS_SIZE = 128

#: The well-known six-point 3D face (millimetre-like units; as in OpenCV's head-pose examples),
#: written in camera axes: x to the image's right, y down, z away from the camera, nose tip at
#: the origin, so a frontal face solves to the identity rotation. Rows pair with ``POSE_POINTS``.
POSE_MODEL = np.array([
    [0.0, 0.0, 0.0],         # nose tip (30)
    [0.0, 330.0, 65.0],      # chin (8)
    [-225.0, -170.0, 135.0],  # outer corner of the eye on the image's left (36)
    [225.0, -170.0, 135.0],   # outer corner of the eye on the image's right (45)
    [-150.0, 150.0, 125.0],  # mouth corner on the image's left (48)
    [150.0, 150.0, 125.0],   # mouth corner on the image's right (54)
])
POSE_POINTS = [30, 8, 36, 45, 48, 54]


def head_pose(landmarks68: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees: ``cv2.solvePnP`` of the six points against ``POSE_MODEL``,
    with a pinhole camera whose focal length is the frame's longer side (a normal lens; the
    photos carry no calibration) and whose centre is the frame's.

    Conventions, as a person looking at the image sees the face:
    - yaw > 0: the face turns to its own left (the nose points to the image's right);
    - pitch > 0: the face looks up (the nose points to the image's top);
    - roll > 0: the head tips to its own left shoulder (clockwise in the image).
    A mirror image flips the signs of yaw and roll and keeps pitch.
    """
    points = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)[POSE_POINTS]
    focal = float(max(width, height))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    # started from a frontal face at the distance the eye corners' span gives: six points can
    # also fit a face seen from behind, which an unguided solve sometimes lands on
    span = max(float(np.linalg.norm(points[3] - points[2])), 1e-6)
    depth = focal * float(POSE_MODEL[3, 0] - POSE_MODEL[2, 0]) / span
    rvec = np.zeros((3, 1))
    tvec = np.array([[(points[0, 0] - width / 2) * depth / focal], [(points[0, 1] - height / 2) * depth / focal],
                     [depth]])
    ok, rvec, _ = cv2.solvePnP(POSE_MODEL, points, camera, np.zeros(4), rvec, tvec, useExtrinsicGuess=True,
                               flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return math.nan, math.nan, math.nan
    rotation = cv2.Rodrigues(rvec)[0]
    # rotation = Rz(roll) @ Ry(y) @ Rx(x) in camera axes (y down): a turn about +y sends the nose
    # to the image's left and one about +x sends it down, hence the minus signs
    about_y = math.degrees(math.asin(-np.clip(rotation[2, 0], -1.0, 1.0)))
    about_x = math.degrees(math.atan2(rotation[2, 1], rotation[2, 2]))
    about_z = math.degrees(math.atan2(rotation[1, 0], rotation[0, 0]))
    return -about_y, -about_x, about_z


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
