"""Text inside PNG files, so a face crop says where it came from even apart from its alignments.

OpenCV cannot write PNG text chunks, so the chunks are spliced into ``cv2.imencode``'s output
before IEND. Values go in iTXt chunks (UTF-8: file names and paths need not be ASCII); reading
also accepts tEXt and zTXt, which other tools write.
"""
from __future__ import annotations

import json
import struct
import zlib
from os import PathLike
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from facekit.alignments import rounded

SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Keys of the text a face crop carries (see ``face_text``).
FRAME_KEY = "facekit:frame"
FACE_KEY = "facekit:face"
SOURCE_KEY = "facekit:source"
LANDMARKS_KEY = "facekit:landmarks"


def encode_png(image: np.ndarray, text: dict[str, str], compression: int = 1) -> bytes:
    """``image`` as PNG bytes with each ``text`` item in an iTXt chunk.

    ``compression`` is OpenCV's PNG level (0-9). Crops are written by the thousand, so the
    settings are the fastest that keep files small: level 1, zlib's RLE strategy, and libpng's
    "up" row filter alone instead of trying every filter on every row. On the Hamilton clip's
    256 px faces (one core): 1.7 ms and 48.7 KB a face, against 4.2 ms and 47.2 KB with all
    filters tried, and 6 ms and 44 KB at level 3.
    """
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, compression,
                                               cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
                                               cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {image.shape} as PNG")
    data = encoded.tobytes()
    iend = next(offset for kind, _, offset in _chunks(data) if kind == b"IEND")
    extra = b"".join(_chunk(b"iTXt", _itxt(key, value)) for key, value in text.items())
    return data[:iend] + extra + data[iend:]


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
              source: str | None = None) -> dict[str, str]:
    """The text a face crop carries: its frame, its index there and its 68 landmarks (JSON,
    source pixels, rounded as in the alignments file), enough to find its entry again or
    rebuild it when the crop has been moved apart from the alignments file."""
    text = {FRAME_KEY: frame_name, FACE_KEY: str(face_index),
            LANDMARKS_KEY: json.dumps(rounded(landmarks), separators=(",", ":"))}
    if source is not None:
        text[SOURCE_KEY] = source
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
