"""HEIF photos (``.heic``, ``.heif``, ``.hif``): what iPhones and many Android and Canon cameras
save by default, and what OpenCV cannot decode. libheif decodes them, through pillow-heif.

The file is recognised by its content (an ISO-BMFF ``ftyp`` box with a HEIF brand), not its
suffix, so an iPhone photo renamed ``.jpg`` by some export tool is still read. Rotation follows
the HEIF rule: the file's ``irot``/``imir`` transforms are applied (libheif does it) and an EXIF
orientation is not, since it repeats them; applying both would turn the photo twice.

AVIF, HEIF's AV1 sibling, is decoded by Pillow (libavif): OpenCV decodes it too but ignores its
``irot``, so a rotated AVIF came out sideways. Pillow turns ``irot``/``imir`` into an EXIF
orientation, which ``exif_transpose`` applies. Where Pillow has no AVIF support, OpenCV is used.
"""
from __future__ import annotations

import numpy as np

SUFFIXES = frozenset({".heic", ".heif", ".hif"})

#: Major and compatible brands of HEIF still images and sequences (ISO/IEC 23008-12): HEVC-coded,
#: or generic (mif1, msf1).
_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
#: AVIF is HEIF with AV1 inside (its files list mif1 too): OpenCV decodes it, this libheif cannot.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def is_heif(data: np.ndarray | bytes) -> bool:
    """Whether the bytes start with an ``ftyp`` box naming a HEIF brand (major or compatible)
    and no AVIF brand."""
    brands = _brands(data)
    return bool(brands & _BRANDS) and not brands & _AVIF_BRANDS


def is_avif(data: np.ndarray | bytes) -> bool:
    """Whether the bytes start with an ``ftyp`` box naming an AVIF brand."""
    return bool(_brands(data) & _AVIF_BRANDS)


def _brands(data: np.ndarray | bytes) -> set[bytes]:
    """The major and compatible brands of a leading ``ftyp`` box (none if there is none)."""
    head = bytes(data[:64])
    if len(head) < 16 or head[4:8] != b"ftyp":
        return set()
    size = min(int.from_bytes(head[:4], "big"), len(head))
    return {head[8:12]} | {head[i:i + 4] for i in range(16, size - 3, 4)}


def decoded_heif(data: np.ndarray | bytes) -> tuple[np.ndarray | None, str | None]:
    """The primary image as 8-bit BGR, upright, or None and why not (never raises on a bad
    file: one damaged photo must not end a run)."""
    try:
        import pillow_heif
    except ImportError:
        return None, "a HEIF photo, and pillow-heif, which decodes those, is not installed (pip install pillow-heif)"
    try:
        heif = pillow_heif.open_heif(bytes(data) if isinstance(data, np.ndarray) else data,
                                     convert_hdr_to_8bit=True, bgr_mode=True)
        image = np.asarray(heif)  # decodes the primary image
    except MemoryError:
        return None, "too large to decode in the memory there is"
    except (ValueError, EOFError, SyntaxError, RuntimeError, OSError) as exc:  # pillow-heif's documented errors
        return None, f"the HEIF decoder failed ({_first_line(exc)})"
    return _bgr(image, heif.mode), None


def decoded_avif(data: np.ndarray | bytes) -> tuple[np.ndarray | None, str | None] | None:
    """The image as 8-bit BGR, upright by its ``irot``/``imir``, or None and why not; None alone
    when this Pillow cannot decode AVIF (OpenCV is then the fallback)."""
    import io

    import cv2
    from PIL import Image, ImageOps, UnidentifiedImageError, features

    if not features.check("avif"):
        return None
    try:
        with Image.open(io.BytesIO(bytes(data)), formats=["AVIF"]) as opened:
            upright = ImageOps.exif_transpose(opened)
            image = np.asarray(upright.convert("RGBA" if "A" in upright.mode else "RGB"))
    except MemoryError:
        return None, "too large to decode in the memory there is"
    except Image.DecompressionBombError as exc:
        return None, f"more pixels than Pillow decodes in one image ({_first_line(exc)})"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return None, f"the AVIF decoder failed ({_first_line(exc)})"
    return cv2.cvtColor(image, cv2.COLOR_RGBA2BGR if image.shape[2] == 4 else cv2.COLOR_RGB2BGR), None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _bgr(image: np.ndarray, mode: str) -> np.ndarray:
    """Three channels, as OpenCV's IMREAD_COLOR gives every other photo (alpha dropped, gray
    repeated)."""
    import cv2

    if image.ndim == 2 or mode == "L":
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(image)
