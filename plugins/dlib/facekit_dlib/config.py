"""The plugins' config dataclasses: their fields are each plugin's Hydra options and defaults
(``facekit +detector=dlib-hog detector.upsample=2 ...``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HogConfig:
    # dlib doubles the image this many times before scanning. Its HOG window is 80x80 px, so 0
    # finds faces of about 80 px and up, 1 (face_recognition's default) about 40 px and up, at
    # about four times the cost per doubling.
    upsample: int = 1
    # Added to the detector's SVM threshold (dlib's ``adjust_threshold``): below 0 finds more
    # faces, and more false ones.
    adjust_threshold: float = 0.0
    # The image is shrunk to this longest side first (before upsampling), which bounds time and
    # memory on large photos; 0 keeps the full size. Faces under ~40 px at that scale are lost.
    max_size: int = 1280


@dataclass
class CnnConfig:
    # dlib's MMOD CNN runs on the CPU in the dlib-bin wheels (no CUDA) and costs about 4 s per
    # megapixel on two cores, so each image is resized to this longest side first: large photos
    # are shrunk, small ones enlarged. The network finds faces from about 80 px at the size it
    # sees, so 800 keeps faces down to a tenth of the longest side. 0 leaves images as they are.
    longest_side: int = 800
    upsample: int = 0  # doublings after resizing; each quadruples the time
    score_threshold: float = 0.0  # MMOD confidence below which a detection is dropped


@dataclass
class ShapeConfig:
    # 1: dlib's predictor once, on the detection box. dlib trained it on its own HOG detector's
    # boxes, which are tighter than most detectors' (YuNet's include the forehead); 2 runs it a
    # second time on the box a HOG detection of the first pass's face would have had, so the
    # result depends less on which detector drew the box.
    passes: int = 2


@dataclass
class ResNetConfig:
    # dlib's ``num_jitters``: embed this many randomly jittered copies and average them (0 or 1:
    # the face once, deterministic). dlib reports slightly better accuracy at 100x the time.
    num_jitters: int = 0
    # Margin around the face in the 150x150 chip the network sees, as dlib's default.
    padding: float = 0.25
