"""Text inside PNG files, so a face crop says where it came from even apart from its alignments.

The PNG is assembled here: OpenCV cannot write text chunks, and its encoder was four times
slower. Values go in iTXt chunks (UTF-8: file names and paths need not be ASCII); reading also
accepts tEXt and zTXt, which other tools write.
"""
from __future__ import annotations

import json
import struct
import zlib
from os import PathLike
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
from zlib_ng import zlib_ng

from facekit.output.alignments import rounded
from facekit.output.masks import masks_to_dict
from facekit.records import StoredMask

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GRAY_DEFLATE_LEVEL = 1  # zlib-ng's fastest: see ``_gray_png``

#: Keys of the text a face crop carries (see ``face_text``).
FRAME_KEY = "facekit:frame"
FACE_KEY = "facekit:face"
SOURCE_KEY = "facekit:source"
LANDMARKS_KEY = "facekit:landmarks"
MASKS_KEY = "facekit:masks"  # only when the face has masks: {name: stored mask} (facekit.output.masks)


def encode_png(image: np.ndarray, text: dict[str, str]) -> bytes:
    """``image`` (8-bit gray, BGR or BGRA, as OpenCV holds it) as PNG bytes with each ``text``
    item in an iTXt chunk ahead of the pixels.

    Crops are written by the thousand and PNG encoding was the costliest part of writing, so
    the file is assembled here: colour pixels by ``_colour_png``, gray ones by ``_gray_png``,
    the text chunks put in after the header. Identical pixels give identical bytes
    (``crop_sha256`` is compared across runs, threads, worker processes and Ray nodes).
    """
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise ValueError(f"PNG crops are 8-bit gray, BGR or BGRA, not {image.dtype} of shape {image.shape}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        png = _gray_png(image.reshape(image.shape[:2]))
    else:
        png = _colour_png(cv2.cvtColor(image, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA))
    after_header = len(SIGNATURE) + _HEADER_CHUNK_BYTES
    return b"".join([png[:after_header], *(_chunk(b"iTXt", _itxt(key, value)) for key, value in text.items()),
                     png[after_header:]])


def _colour_png(rgb: np.ndarray) -> bytes:
    """An RGB or RGBA image as a PNG file, by fpng: every row "up"-filtered and deflated in one
    pass with its own fixed Huffman tables, a pure function of the pixels (its SIMD paths only
    subtract rows and sum checksums). On the clip's 256 px faces it takes 0.25 ms a face against
    zlib-ng level 1's 0.53 ms (and ISA-L's 0.37, which is not deterministic: intel/isa-l issue
    #140), for files of 59 KB against 74 (ISA-L 51); bench/extract.py --deflate. Its version is
    pinned: another may encode otherwise. It writes a private ancillary chunk (fdEC) that its
    own decoder reads and every other decoder skips."""
    import fpng  # here: its package imports Pillow (50 ms), which a run that writes no face never needs

    png = fpng.from_ndarray(np.ascontiguousarray(rgb))
    if not png.startswith(SIGNATURE):  # fpng answers an image it cannot encode with no bytes
        raise ValueError(f"fpng could not encode an image of shape {rgb.shape}")
    return png


def _gray_png(gray: np.ndarray) -> bytes:
    """A gray image (fpng takes 3 or 4 channels only) as a PNG file, deflated by zlib-ng at
    level 1, its fastest; deterministic for the pinned version."""
    return up_filtered_png(gray, lambda rows: zlib_ng.compress(rows, GRAY_DEFLATE_LEVEL))


def up_filtered_png(pixels: np.ndarray, deflate: Callable[[np.ndarray], bytes]) -> bytes:
    """An 8-bit image (gray, RGB or RGBA, in PNG's channel order) as a PNG file: every row with
    the "up" filter (one NumPy subtraction), the rows deflated by ``deflate`` (a zlib stream)."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), np.uint8)
    filtered[:, 0] = _FILTER_UP  # on the first row "up" subtracts a row of zeros
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join([SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", deflate(filtered)), _chunk(b"IEND", b"")])


_FILTER_UP = 2
_HEADER_CHUNK_BYTES = 25  # IHDR: length, type, 13 bytes, CRC
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # gray, RGB, RGBA


def read_png_text(source: str | PathLike | bytes) -> dict[str, str]:
    """Every tEXt, zTXt and iTXt item of a PNG file or PNG bytes (the last wins on a repeated key)."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    text = {}
    for kind, body, _ in _chunks(data):
        if kind in _TEXT_DECODERS:
            key, value = _TEXT_DECODERS[kind](body)
            text[key] = value
    return text


def face_text(frame_name: str, face_index: int, landmarks: np.ndarray,
              source: str | None = None, masks: dict[str, StoredMask] | None = None) -> dict[str, str]:
    """The text a face crop carries: its frame, its index there and its 68 landmarks (JSON,
    source pixels, rounded as in the alignments file), enough to find its entry again or
    rebuild it when the crop has been moved apart from the alignments file; and its masks,
    as the alignments file stores them, so a face file alone carries them too."""
    text = {FRAME_KEY: frame_name, FACE_KEY: str(face_index),
            LANDMARKS_KEY: json.dumps(rounded(landmarks), separators=(",", ":"))}
    if source is not None:
        text[SOURCE_KEY] = source
    if masks:
        text[MASKS_KEY] = json.dumps(masks_to_dict(masks), separators=(",", ":"))
    return text


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes, int]]:
    """(type, body, offset of the chunk's length field) for each chunk, CRCs checked."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file (bad signature)")
    offset = len(SIGNATURE)
    while offset + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        if len(body) != length or zlib.crc32(kind + body) != crc:
            raise ValueError(f"corrupt PNG: chunk {kind!r} at byte {offset} is truncated or fails its CRC")
        yield kind, body, offset
        if kind == b"IEND":
            return
        offset += 12 + length
    raise ValueError("corrupt PNG: no IEND chunk")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _keyword(key: str) -> bytes:
    """PNG keywords are 1-79 Latin-1 characters without NUL (PNG spec 11.3.4.2)."""
    try:
        encoded = key.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"PNG text key {key!r} must be Latin-1 (non-Latin-1 text goes in values)") from None
    if not 1 <= len(encoded) <= 79 or b"\0" in encoded:
        raise ValueError(f"PNG text key {key!r} must be 1-79 characters without NUL")
    return encoded


def _itxt(key: str, value: str) -> bytes:
    """Uncompressed iTXt: keyword NUL, flag 0, method 0, language "" NUL, translated keyword "" NUL."""
    return _keyword(key) + b"\0" + b"\0\0" + b"\0" + b"\0" + value.encode("utf-8")


def _read_text(body: bytes) -> tuple[str, str]:
    key, _, value = body.partition(b"\0")
    return key.decode("latin-1"), value.decode("latin-1")


def _read_ztxt(body: bytes) -> tuple[str, str]:
    key, _, rest = body.partition(b"\0")
    return key.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")


def _read_itxt(body: bytes) -> tuple[str, str]:
    key, _, rest = body.partition(b"\0")
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    _translated, _, value = rest.partition(b"\0")
    return key.decode("latin-1"), (zlib.decompress(value) if compressed else value).decode("utf-8")


_TEXT_DECODERS = {b"tEXt": _read_text, b"zTXt": _read_ztxt, b"iTXt": _read_itxt}


def read_png_head_text(path: str | PathLike) -> dict[str, str]:
    """The text items of a PNG file read up to its first IDAT chunk, without the pixels: facekit
    writes its text ahead of them, so indexing a folder of face files reads a few hundred bytes
    of each rather than the whole file. Raises ValueError for a file that is not a whole PNG head."""
    text = {}
    with open(path, "rb") as handle:
        if handle.read(len(SIGNATURE)) != SIGNATURE:
            raise ValueError("not a PNG file (bad signature)")
        while True:
            head = handle.read(8)
            if len(head) < 8:
                raise ValueError("corrupt PNG: it ends before its pixels")
            length, kind = struct.unpack(">I4s", head)
            if kind in (b"IDAT", b"IEND"):
                return text
            body = handle.read(length)
            crc = handle.read(4)
            if len(body) != length or len(crc) != 4 or zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
                raise ValueError(f"corrupt PNG: chunk {kind!r} is truncated or fails its CRC")
            if kind in _TEXT_DECODERS:
                key, value = _TEXT_DECODERS[kind](body)
                text[key] = value
