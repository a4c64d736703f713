"""Masks for faces: each masker plugin named in ``output.masks`` draws one mask a face, in the
face's own crop at the stored size, kept as faceswap keeps them (``facekit.records.StoredMask``).

The same ``MaskMaker`` runs at the end of every extraction chain (``FaceStages.finish``: local
threads, worker processes, Ray workers, the analysis cache's replay) and in ``task=mask`` on an
existing output, so a mask added later equals one made while extracting.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from facekit.imaging import geometry
from facekit.imaging.centering import DEFAULT_CENTERING, centering_matrix
from facekit.output.mask_files import encode_mask_file, mask_file_path, with_alpha
from facekit.plugin.loading import LoadedPlugin
from facekit.records import MATRIX_DECIMALS, Face, FrameRecord, MaskRequest, StoredMask

DEFAULT_MASK_SIZE = 128
MASK_FORMATS = ("none", "alpha", "file")


@dataclass
class MaskMaker:
    """The maskers of a run, the stored size, and how masks go beside the face files
    (``none``: only in alignments.json and the face PNG's text; ``alpha``: the face file's alpha
    channel, the first mask; ``file``: ``masks/<name>/<face file>`` at the face file's size)."""

    plugins: list[LoadedPlugin] = field(default_factory=list)
    size: int = DEFAULT_MASK_SIZE
    file_format: str = "none"

    @property
    def names(self) -> list[str]:
        return [plugin.spec.name for plugin in self.plugins]

    @property
    def needs_image(self) -> bool:
        """Whether any masker reads the frame's pixels (a landmark masker does not)."""
        return any("image" in plugin.spec.needs for plugin in self.plugins)

    @property
    def needs_outline(self) -> bool:
        return any("outline" in plugin.spec.needs for plugin in self.plugins)

    def before_encode(self, faces: Sequence[Face]) -> None:
        """``alpha``: each cropped face's first mask becomes its crop's alpha channel."""
        if self.file_format == "alpha" and self.plugins:
            for face in faces:
                if face.crop is not None and self.names[0] in face.masks:
                    face.crop = with_alpha(face.crop, face.masks[self.names[0]])

    def after_encode(self, record: FrameRecord, crop_size: int) -> None:
        """``file``: each face file's masks as grey PNGs of its size, ``masks/<name>/<face file>``,
        landed with the face files."""
        if self.file_format != "file":
            return
        for face in record.faces:
            if face.crop_file is not None:
                for name, mask in face.masks.items():
                    record.pending[mask_file_path(name, face.crop_file)] = encode_mask_file(mask, crop_size)

    def make(self, image: np.ndarray | None, faces: Sequence[Face], crop_matrices: Sequence[np.ndarray],
             crop_size: int, only: LoadedPlugin | None = None) -> None:
        """Each masker's mask (``only``'s, when given) of each face, stored on the face by the
        masker's name. A face's mask square is its crop (``crop_matrices``: frame -> crop
        pixels) at ``self.size``."""
        if not self.plugins or not faces:
            return
        requests = [request_for(face, matrix, crop_size, self.size) for face, matrix in zip(faces, crop_matrices)]
        for plugin in self.plugins if only is None else [only]:
            if "outline" in plugin.spec.needs and any(r.outline is None for r in requests):
                raise ValueError(f"masker {plugin.spec.name!r} needs the face outline an aligner traces "
                                 "while extracting: facemesh, the default aligner, records it when this masker is named "
                                 f"in output.masks then (extract with 'output.masks=[{plugin.spec.name}]')")
            pixels = list(plugin.model.mask(image if "image" in plugin.spec.needs else None, requests))
            if len(pixels) != len(requests):
                raise ValueError(f"{len(pixels)} mask(s) for {len(requests)} face(s); a masker returns one a face")
            for face, request, mask in zip(faces, requests, pixels):
                face.masks[plugin.spec.name] = StoredMask(checked_mask(mask, self.size, plugin.spec.name),
                                                          request.matrix, centering_of(face))

    def make_for_record(self, record: FrameRecord, faces: Sequence[Face], crop_size: int,
                        only: LoadedPlugin | None = None) -> None:
        """``make`` for faces that carry their crop matrix (``FaceStages.normalise`` made it)."""
        self.make(record.frame.image, faces, [face.matrix for face in faces], crop_size, only)


def mask_matrix(crop_matrix: np.ndarray, crop_size: int, size: int) -> np.ndarray:
    """Frame -> mask pixels: the crop's matrix scaled from ``crop_size`` to ``size``, pixel
    centres kept (crop pixel x covers [x - 0.5, x + 0.5]). Rounded as stored (a crop's matrix
    is): masks are drawn with the rounded matrix, so the stored one is the one used."""
    return np.round(geometry.rescaled_matrix(crop_matrix, crop_size, size), MATRIX_DECIMALS)


def request_for(face: Face, crop_matrix: np.ndarray, crop_size: int, size: int) -> MaskRequest:
    matrix = mask_matrix(crop_matrix, crop_size, size)
    outline = None if face.outline is None else exactly_transformed(face.outline, matrix)
    return MaskRequest(size, matrix, exactly_transformed(face.landmarks, matrix), outline)


def exactly_transformed(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``points`` through a 2x3 affine, element by element: a BLAS product may round
    differently with the arrays' memory alignment, and one ulp moves a hull's edge pixel, so
    the same face would get another mask from a stored copy of its landmarks."""
    points = np.asarray(points, dtype=np.float64)
    x, y = points[:, 0], points[:, 1]
    return np.stack([matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2],
                     matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]], axis=1)


def checked_mask(mask: np.ndarray, size: int, name: str) -> np.ndarray:
    """A masker's answer as stored: uint8, size x size (a float mask in [0, 1] is scaled)."""
    mask = np.asarray(mask)
    if mask.shape != (size, size):
        raise ValueError(f"masker {name!r} returned a mask of shape {mask.shape}, not ({size}, {size})")
    if mask.dtype != np.uint8:  # a pixel that is not a number is 0 (one NaN made max NaN: the mask went unscaled)
        values = np.nan_to_num(mask.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        mask = np.clip(np.round(values * (255 if values.max(initial=0) <= 1 else 1)), 0, 255)
    return np.ascontiguousarray(mask, dtype=np.uint8)


def crop_matrices(faces: Sequence[Face], crop_size: int, padding: float) -> list[np.ndarray]:
    """Each face's crop matrix from its stored landmarks and centering, as extraction made it:
    ``task=mask`` reads no frame for landmark masks."""
    return [centering_matrix(face.landmarks, crop_size, padding, centering_of(face)) for face in faces]


def centering_of(face: Face) -> str:
    """The centering of the crop a face's masks are drawn in: its own (faces stored before
    centerings existed were cropped at legacy's)."""
    return face.centering or DEFAULT_CENTERING
