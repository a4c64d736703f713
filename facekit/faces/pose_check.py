"""How head pose holds on real portraits, with no hand-labelled angles: a mirror image must read
the yaw negated and the same pitch, a copy turned in the image plane must read that much more
roll, and a frontal portrait a small yaw.

Shared by ``bench/pose.py`` (which prints the figures) and the pose tests (which hold them to the
acceptance bars), so both measure exactly the same thing. Each portrait stands for one face: the
one nearest the image's centre (a portrait's subject; a stranger cut by the edge is not it), and
in each copy the face nearest where that one went.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from facekit.media.sources import read_image

if TYPE_CHECKING:
    from facekit.faces.extractor import Extractor
    from facekit.records import Face

ROLL_DEG = 20.0  # the in-plane turn of the rotated copy, clockwise
#: The shared data's single-face scene portraits, beside every photo of its people set
SCENE_PORTRAITS = ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama-240p.jpg", "obama_small.jpg",
                   "32bit.png")
#: The portraits whose subject turns away (by eye); every other one faces the camera
TURNED = ("people/p05/img61.jpg", "scenes/obama2.jpg", "scenes/32bit.png")


def shared_portraits(images: Path) -> list[tuple[str, Path]]:
    """(name, path) of every portrait under the shared data's ``images`` folder."""
    people = sorted((images / "people").glob("*/*.jpg"))
    return ([(path.relative_to(images).as_posix(), path) for path in people]
            + [(f"scenes/{name}", images / "scenes" / name) for name in SCENE_PORTRAITS])


@dataclass(frozen=True)
class PortraitPoses:
    """(yaw, pitch, roll) of one portrait's subject in the photo and in its two copies; None
    where the copy shows no face."""

    name: str
    photo: tuple[float, float, float]
    mirrored: tuple[float, float, float] | None
    rotated: tuple[float, float, float] | None

    @property
    def mirrored_yaw_error(self) -> float:
        return np.inf if self.mirrored is None else abs(self.mirrored[0] + self.photo[0])

    @property
    def mirrored_pitch_error(self) -> float:
        return np.inf if self.mirrored is None else abs(self.mirrored[1] - self.photo[1])

    @property
    def roll_error(self) -> float:
        return np.inf if self.rotated is None else abs(self.rotated[2] - self.photo[2] - ROLL_DEG)


def portrait_poses(path: Path, extractor: Extractor, name: str | None = None) -> PortraitPoses | None:
    """The three poses of ``path``'s subject, or None when the photo shows no face."""
    image = read_image(path)
    height, width = image.shape[:2]
    subject = _nearest(extractor.extract(image), np.array([width / 2, height / 2]))
    if subject is None:
        return None
    centre = subject.landmarks.mean(axis=0)
    mirror = _nearest(extractor.extract(np.ascontiguousarray(image[:, ::-1])),
                      np.array([width - 1 - centre[0], centre[1]]))
    turned, matrix = rotated(image, ROLL_DEG)
    turn = _nearest(extractor.extract(turned), matrix @ np.array([centre[0], centre[1], 1.0]))
    return PortraitPoses(name or path.name, _angles(subject), None if mirror is None else _angles(mirror),
                         None if turn is None else _angles(turn))


def rotated(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned clockwise by ``degrees`` on a canvas that holds all of it (edges
    replicated), and the 2x3 matrix that maps its pixels there."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -degrees, 1.0)  # OpenCV: positive is anticlockwise
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(height * sin + width * cos), int(height * cos + width * sin))
    matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
    return cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REPLICATE), matrix


def summary(results: Sequence[PortraitPoses], frontal: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """(median, mean, largest) of each error over ``results``; frontal yaw over the names in ``frontal``."""
    errors = {"mirrored yaw": [r.mirrored_yaw_error for r in results],
              "mirrored pitch": [r.mirrored_pitch_error for r in results],
              f"{ROLL_DEG:g}-degree roll": [r.roll_error for r in results],
              "frontal |yaw|": [abs(r.photo[0]) for r in results if r.name in frontal]}
    return {key: (float(np.median(values)), float(np.mean(values)), float(np.max(values)))
            for key, values in errors.items() if values}


def _nearest(faces: list[Face], point: np.ndarray) -> Face | None:
    found = [face for face in faces if face.landmarks is not None and face.pose is not None]
    return min(found, key=lambda face: float(np.linalg.norm(face.landmarks.mean(axis=0) - point)), default=None)


def _angles(face: Face) -> tuple[float, float, float]:
    return face.pose.yaw, face.pose.pitch, face.pose.roll  # type: ignore[union-attr]
