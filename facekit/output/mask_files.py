"""Masks beside the face files (``output.mask_format``): as the face file's alpha channel, or as
a grey PNG of the face file's size under ``masks/<mask name>/``, named as the face file, which
``task=mask mask.import=DIR`` reads back after editing."""
from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from facekit.output.pngmeta import encode_png
from facekit.records import StoredMask

MASK_FOLDER = "masks"


def at_size(mask: StoredMask, size: int) -> np.ndarray:
    """The stored mask resized to a face file's side (area when shrinking, cubic when growing,
    faceswap's choice)."""
    import cv2

    if mask.pixels.shape[0] == size:
        return mask.pixels
    grows = size > mask.pixels.shape[0]
    return cv2.resize(mask.pixels, (size, size), interpolation=cv2.INTER_CUBIC if grows else cv2.INTER_AREA)


def with_alpha(crop: np.ndarray, mask: StoredMask) -> np.ndarray:
    """The BGR face crop with the mask as its alpha channel (BGRA)."""
    import cv2

    bgra = cv2.cvtColor(crop[..., :3], cv2.COLOR_BGR2BGRA)
    bgra[..., 3] = at_size(mask, crop.shape[0])
    return bgra


def mask_file_path(mask_name: str, face_file: str) -> str:
    """``masks/<mask name>/<face file>``, relative to the output folder (a rejected face's file
    keeps its ``rejected/`` part)."""
    return str(PurePosixPath(MASK_FOLDER, mask_name, face_file))


def encode_mask_file(mask: StoredMask, size: int) -> bytes:
    return encode_png(at_size(mask, size), {})
