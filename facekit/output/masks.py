"""A stored mask as JSON holds it, in alignments.json and in the face PNG's text (faceswap's
layout: the uint8 pixels zlib-compressed, the stored size, the matrix from the frame to the
mask, the centering of the crop it was drawn in, and how to resample it onto the frame)."""
from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np
from zlib_ng import zlib_ng

from facekit.records import StoredMask

#: zlib's level, fixed, in zlib-ng (pinned, as for the face PNGs: facekit.output.pngmeta): for a
#: given version the same pixels give the same bytes, so identical runs give identical alignments
#: files. Its streams are plain zlib streams; level 1 is its cheapest (level 6 took four times
#: as long for 200 fewer bytes a mask).
ZLIB_LEVEL = 1


def mask_to_dict(mask: StoredMask) -> dict[str, Any]:
    """``data``: base64 of zlib(pixels row by row); ``affine``: frame pixels -> mask pixels
    (``cv2.warpAffine(mask, affine, (w, h), flags=WARP_INVERSE_MAP | interpolation)`` lays it
    on the frame); ``interpolation``: area when the face is smaller in the frame than the mask,
    else cubic (faceswap's rule)."""
    if mask.encoded is None:  # once: the alignments entry and the face file's text hold the same
        size = int(mask.pixels.shape[0])
        matrix = np.asarray(mask.matrix, dtype=np.float64)
        scale_squared = abs(matrix[0, 0] * matrix[1, 1] - matrix[0, 1] * matrix[1, 0])  # mask px per frame px, squared
        data = zlib_ng.compress(np.ascontiguousarray(mask.pixels).tobytes(), ZLIB_LEVEL)
        mask.encoded = {"data": base64.b64encode(data).decode("ascii"), "size": size, "affine": matrix.tolist(),
                        "centering": mask.centering, "interpolation": "area" if scale_squared > 1 else "cubic"}
    return mask.encoded


def mask_from_dict(entry: dict[str, Any]) -> StoredMask:
    size = int(entry["size"])
    pixels = np.frombuffer(zlib.decompress(base64.b64decode(entry["data"])), np.uint8)
    if pixels.size != size * size:
        raise ValueError(f"a stored mask holds {pixels.size} pixels, not {size} x {size}")
    return StoredMask(pixels.reshape(size, size).copy(), np.asarray(entry["affine"], dtype=np.float64),
                      str(entry.get("centering", "legacy")))


def masks_to_dict(masks: dict[str, StoredMask]) -> dict[str, dict[str, Any]]:
    return {name: mask_to_dict(mask) for name, mask in masks.items()}


def masks_from_dict(entries: dict[str, Any] | None) -> dict[str, StoredMask]:
    return {name: mask_from_dict(entry) for name, entry in (entries or {}).items()}
