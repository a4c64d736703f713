"""The records that flow through the pipeline: one per frame, faces added stage by stage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

#: How finely records are stored (alignments file, analysis cache) and so computed: landmarks,
#: boxes and 5 points are source pixels, and 0.01 px is finer than any aligner.
PIXEL_DECIMALS = 2
SCORE_DECIMALS = 4
#: Identity vectors are unit length; 5 decimals keep distances exact to about 1e-5.
EMBEDDING_DECIMALS = 5
#: Per-face measures (degrees, pixels, Laplacian variance) are stored to 0.01; misalignment is
#: in units of the mean face's square, so it keeps 4 decimals (SCORE_DECIMALS).
MEASURE_DECIMALS = 2
#: A crop's matrix: 1e-6 of a pixel per source pixel stays under 0.01 px across a 10,000 px frame.
MATRIX_DECIMALS = 6


@dataclass
class Detection:
    """A detector's output for one face, in source-image pixels.

    ``points5`` are (x, y) in the order: eye on the image's left, eye on the image's right,
    nose tip, mouth corner on the image's left, mouth corner on the image's right.
    """

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float
    points5: np.ndarray | None = None  # shape (5, 2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees (see ``facekit.imaging.measures.head_pose`` for the signs): yaw > 0
    the face turns to its own left, pitch > 0 it looks up, roll > 0 it tips clockwise."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class MaskRequest:
    """What a masker gets for one face: a ``size`` square whose pixels ``matrix`` maps the frame
    to (2x3, frame pixels -> mask pixels: warp the frame with it to see what the mask covers),
    and the face's 68 landmarks and outline (when its aligner traced one) already in that
    square's pixels."""

    size: int
    matrix: np.ndarray
    landmarks: np.ndarray  # (68, 2), mask pixels
    outline: np.ndarray | None = None  # (n, 2) closed polygon, mask pixels


@dataclass
class StoredMask:
    """A mask as faceswap stores one: uint8 pixels (255 on the face) at a stored size, the
    matrix from frame pixels to those pixels, and the centering of the crop it was made in."""

    pixels: np.ndarray  # (size, size) uint8
    matrix: np.ndarray  # 2x3: frame pixels -> mask pixels
    centering: str = "legacy"
    encoded: dict | None = field(default=None, repr=False, compare=False)  # its JSON form, made once


@dataclass
class Face:
    """One face as it moves through align, normalise, embed, filter and write."""

    detection: Detection
    landmarks: np.ndarray | None = None  # shape (68, 2), iBUG-300W order, source pixels
    matrix: np.ndarray | None = None  # 2x3 similarity: source pixels -> aligned crop pixels
    centering: str | None = None  # which crop ``matrix`` makes: legacy | face | head (facekit.imaging.centering)
    crop: np.ndarray | None = None  # aligned face image (BGR, output.size square)
    crop_file: str | None = None
    crop_sha256: str | None = None
    crop_bytes: int | None = None  # the face file's size: a resumed run checks the file against it
    embedding: np.ndarray | None = None  # identity vector, only with a filter or output.embeddings
    #: the identity plugin that made ``embedding`` (None: not known, as for one read back from
    #: alignments.json): a vector is only comparable in its own plugin's metric
    embedded_by: str | None = None
    keep: bool = True
    reason: str | None = None  # why the filter rejected it
    distance: float | None = None  # the number the filter's threshold was applied to
    # measures, computed once (FaceStages.normalise) and stored; the quality filter reads them
    pose: Pose | None = None
    face_px: float | None = None  # side of the fitted mean-face square, source pixels
    misalignment: float | None = None  # mean distance of the aligned inner points from the mean face
    sharpness: float | None = None  # variance of the Laplacian of a 128 px grey aligned crop
    outline: np.ndarray | None = None  # (n, 2) face outline, source pixels, when a masker asked the aligner for it
    masks: dict[str, StoredMask] = field(default_factory=dict)  # by masker name (output.masks)


@dataclass
class Frame:
    """A decoded frame: ``name`` is unique within a run and names its face files."""

    name: str
    source: str
    index: int
    image: np.ndarray | None = None  # BGR uint8, dropped after the last stage that needs it
    path: str | None = None  # an image file not decoded yet: a worker process decodes it (see media.load_pixels)


@dataclass
class FrameRecord:
    """Everything known about one frame; the alignments file holds one per frame."""

    frame: Frame
    width: int = 0
    height: int = 0
    faces: list[Face] = field(default_factory=list)
    pending: dict[str, bytes] = field(default_factory=dict)  # encoded files (relative path) to write


@dataclass
class OneByOne:
    """A batch handed to ``work`` record by record; a class, not a closure, so that a stage
    travels to a worker process."""

    work: Callable[[FrameRecord], None]

    def __call__(self, batch: list[FrameRecord]) -> None:
        for record in batch:
            self.work(record)
