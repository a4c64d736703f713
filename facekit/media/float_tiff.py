"""TIFFs of floating-point samples (32- or 64-bit: scans, HDR renders, scientific cameras).

OpenCV's colour decode refuses them ("can not handle images with 32-bit samples") but decodes
them unchanged, as floats, which ``display_bgr`` brings to 8 bits. They are recognised from the
first image directory's SampleFormat tag before decoding, so OpenCV's refusal is never printed:
in a folder run that line would otherwise land in the file's warning as if the photo were
damaged. An unchanged decode applies no orientation tag; OpenCV applies none to 8-bit TIFFs
either, so both kinds come out alike.
"""
from __future__ import annotations

import struct

import numpy as np

_SAMPLE_FORMAT = 339  # TIFF tag; value 3 is IEEE floating point
_IEEE_FLOAT = 3
_SHORT = 3  # the tag's field type (2 bytes a value)


def is_float_tiff(data: np.ndarray | bytes) -> bool:
    """Whether the bytes are a TIFF (classic or BigTIFF) whose first image has float samples."""
    head = bytes(data[:16])
    if len(head) < 16 or head[:2] not in (b"II", b"MM"):
        return False
    order = "<" if head[:2] == b"II" else ">"
    (version,) = struct.unpack_from(order + "H", head, 2)
    big = version == 43
    if version not in (42, 43):
        return False
    # classic: 2-byte entry count, 12-byte entries with a 4-byte value; BigTIFF: 8, 20 and 8.
    # An entry is tag, type, count, then its values if they fit in the value field, else their offset.
    count_format, entry_size, word = ("Q", 20, "Q") if big else ("H", 12, "I")
    word_size = struct.calcsize(word)
    (ifd,) = struct.unpack_from(order + word, head, 8 if big else 4)
    try:
        (entries,) = struct.unpack_from(order + count_format, data, ifd)
        first = ifd + struct.calcsize(count_format)
        for index in range(min(entries, 4096)):
            entry = first + index * entry_size
            tag, kind = struct.unpack_from(order + "HH", data, entry)
            if tag != _SAMPLE_FORMAT:
                continue
            if kind != _SHORT:
                return False
            (values,) = struct.unpack_from(order + word, data, entry + 4)
            field_at = entry + 4 + word_size
            at = field_at if 2 * values <= word_size else struct.unpack_from(order + word, data, field_at)[0]
            (sample_format,) = struct.unpack_from(order + "H", data, at)
            return sample_format == _IEEE_FLOAT
    except struct.error:  # a directory past the end of a cut file: OpenCV will say what is wrong
        return False
    return False


def display_bgr(image: np.ndarray) -> np.ndarray:
    """A float image (gray, BGR or BGRA, as OpenCV decodes it unchanged) as 8-bit BGR. Float
    samples are display values, 0 black and 1 white, as image editors read float TIFFs; an image
    that goes above 1 (HDR, or floats holding 0-255 or 0-65535) is scaled by its own maximum
    instead of clipped to white. NaN and infinities become black."""
    import cv2

    image = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    brightest = float(image.max()) if image.size else 0.0
    scale = 255.0 / brightest if brightest > 1.0 else 255.0
    image = np.clip(image * np.float32(scale) + np.float32(0.5), 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] >= 3:
        return np.ascontiguousarray(image[:, :, :3])  # alpha and extra samples dropped
    gray = image if image.ndim == 2 else np.ascontiguousarray(image[:, :, 0])
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
