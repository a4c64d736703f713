"""TIFFs of float samples: recognised from their directory, decoded to 8 bits, faces found."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cli_helpers import load_json, run_facekit
from conftest import SCENES, require_data
from facekit.media.float_tiff import display_bgr, is_float_tiff
from facekit.media.sources import decoded_image


def _tiff(pixels: np.ndarray, order: str, big: bool) -> bytes:
    """An uncompressed RGB TIFF of float32 or uint8 ``pixels`` written field by field, in byte
    ``order`` ("<" or ">"), classic or BigTIFF: its SampleFormat values (3 shorts) sit behind an
    offset in a classic TIFF and inline in a BigTIFF, so both reading paths are taken."""
    height, width, _ = pixels.shape
    floats = pixels.dtype == np.float32
    body = pixels.astype(order + ("f4" if floats else "u1")).tobytes()
    bits, sample_format = (32, 3) if floats else (8, 1)
    word, entry_size, count_format = ("Q", 20, "Q") if big else ("I", 12, "H")
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [bits] * 3), (259, 3, [1]), (262, 3, [2]),
            (273, 4, [0]), (277, 3, [3]), (278, 4, [height]), (279, 4, [len(body)]), (284, 3, [1]),
            (339, 3, [sample_format] * 3)]
    header = (b"II" if order == "<" else b"MM") + struct.pack(order + "H", 43 if big else 42)
    header += struct.pack(order + "HHQ", 8, 0, 16) if big else struct.pack(order + "I", 8)
    ifd_end = len(header) + struct.calcsize(count_format) + entry_size * len(tags) + struct.calcsize(word)
    entries, extra = [], b""
    for tag, kind, values in tags:
        packed = struct.pack(order + ("H" if kind == 3 else "I") * len(values), *values)
        if tag == 273:  # the pixels follow every out-of-line value
            packed = None
        entries.append((tag, kind, len(values), packed))
    pixels_at = ifd_end + sum(len(p) for *_, p in entries if p is not None and len(p) > struct.calcsize(word))
    ifd = struct.pack(order + count_format, len(entries))
    for tag, kind, count, packed in entries:
        if packed is None:
            packed = struct.pack(order + "I", pixels_at)
        if len(packed) <= struct.calcsize(word):
            value = packed.ljust(struct.calcsize(word), b"\0")
        else:
            value = struct.pack(order + word, ifd_end + len(extra))
            extra += packed
        ifd += struct.pack(order + "HH" + word, tag, kind, count) + value
    return header + ifd + struct.pack(order + word, 0) + extra + body


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("big", [False, True], ids=["classic", "bigtiff"])
def test_float_samples_are_recognised_and_decode_as_a_viewer_shows_them(tmp_path: Path, order: str, big: bool) -> None:
    rng = np.random.default_rng(5)
    rgb = rng.random((6, 5, 3), dtype=np.float32)
    path = tmp_path / "floats.tif"
    path.write_bytes(_tiff(rgb, order, big))
    assert is_float_tiff(path.read_bytes())
    image, why = decoded_image(path)
    assert why is None
    expected = np.round(rgb[:, :, ::-1] * 255).astype(np.uint8)  # BGR, 0..1 -> 0..255
    assert np.array_equal(image, expected)

    eight_bit = (rgb * 255).astype(np.uint8)
    assert not is_float_tiff(_tiff(eight_bit, order, big))


def test_other_files_are_not_taken_for_float_tiffs() -> None:
    require_data()
    portrait = cv2.imread(str(SCENES / "obama.jpg"))
    assert not is_float_tiff((SCENES / "obama.jpg").read_bytes())
    assert not is_float_tiff(cv2.imencode(".tiff", portrait)[1].tobytes())
    assert not is_float_tiff(cv2.imencode(".tiff", portrait.astype(np.uint16) * 257)[1].tobytes())
    floats = cv2.imencode(".tiff", portrait.astype(np.float32) / 255)[1].tobytes()
    assert is_float_tiff(floats)
    # cut files, and a directory past the end, are left to the decoder to refuse
    assert not any(is_float_tiff(floats[:cut]) for cut in (0, 4, 12))
    assert not is_float_tiff(floats[:4] + struct.pack("<I", len(floats) + 100) + floats[8:])


def test_images_above_one_are_scaled_by_their_maximum_and_nan_is_black() -> None:
    hdr = np.array([[[0.0, 2.0, 8.0], [np.nan, np.inf, 4.0]]], np.float32)
    assert display_bgr(hdr).tolist() == [[[0, 64, 255], [0, 0, 128]]]
    gray = np.array([[0.0, 0.5], [1.0, 1.5]], np.float32)
    assert display_bgr(gray)[:, :, 0].tolist() == [[0, 85], [170, 255]]
    assert display_bgr(np.zeros((2, 2, 4), np.float64)).shape == (2, 2, 3)  # alpha dropped


@pytest.fixture(scope="module")
def float_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portrait as 8-bit JPEG and as float TIFFs: 0..1 RGB, 0..1 gray (Pillow's mode F),
    HDR (0..40) and 0..255 floats."""
    require_data()
    folder = tmp_path_factory.mktemp("floats")
    portrait = cv2.imread(str(SCENES / "obama.jpg"))
    cv2.imwrite(str(folder / "eight_bit.png"), portrait)
    unit = portrait.astype(np.float32) / 255
    cv2.imwrite(str(folder / "unit.tif"), unit)
    cv2.imwrite(str(folder / "hdr.tif"), unit * 40)
    cv2.imwrite(str(folder / "byte_range.tiff"), portrait.astype(np.float32))
    Image.fromarray(cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255).save(folder / "gray.tif")
    return folder


@pytest.mark.parametrize("workers", [0, 2])
def test_a_folder_of_float_tiffs_gives_the_faces_of_the_8_bit_photo(float_folder: Path, tmp_path: Path,
                                                                     workers: int) -> None:
    out = tmp_path / "faces"
    result = run_facekit(f"input={float_folder}", f"output={out}", "runner.progress=false",
                         f"runner.workers={workers}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = " ".join(result.stderr.split())
    assert "0 skipped" in log and "WARNING" not in log, log
    assert "32-bit samples" not in log  # OpenCV's refusal is never printed
    frames = load_json(out / "alignments.json")["frames"]
    assert sorted(frames) == ["byte_range", "eight_bit", "gray", "hdr", "unit"]
    reference = np.array(frames["eight_bit"]["faces"][0]["landmarks"])
    for name in ("unit", "hdr", "byte_range", "gray"):
        assert len(frames[name]["faces"]) == 1, name
        error = np.abs(np.array(frames[name]["faces"][0]["landmarks"]) - reference).mean()
        assert error < (3.0 if name == "gray" else 1.0), (name, error)
