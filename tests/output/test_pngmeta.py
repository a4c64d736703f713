"""facekit's PNG writer: pixels that OpenCV and Pillow decode unchanged, text chunks read back by
facekit and by Pillow."""
from __future__ import annotations

import hashlib
import io
import json
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from cli_helpers import load_json, run_facekit
from conftest import DATA, SCENES, require_data
from facekit.output.pngmeta import (FACE_KEY, FRAME_KEY, LANDMARKS_KEY, SOURCE_KEY, encode_png, face_text,
                             read_png_head_text, read_png_text)

TEXT = {"facekit:frame": "clip_000042", "facekit:face": "1", "note": "Zoë — 顔 🙂"}


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_round_trip_with_non_ascii_values(image, tmp_path):
    data = encode_png(image, TEXT)
    assert read_png_text(data) == TEXT
    path = tmp_path / "face.png"
    path.write_bytes(data)
    assert read_png_text(path) == read_png_text(str(path)) == TEXT


def test_pixels_are_untouched(image):
    decoded = cv2.imdecode(np.frombuffer(encode_png(image, TEXT), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, image)


def test_pillow_reads_the_chunks(image):
    with Image.open(io.BytesIO(encode_png(image, TEXT))) as png:
        png.load()  # verifies every chunk's CRC on the way
        assert png.text == TEXT
        np.testing.assert_array_equal(np.asarray(png)[..., ::-1], image)


def test_reads_text_that_pillow_writes(image):
    info = PngImagePlugin.PngInfo()
    info.add_text("plain", "tEXt value")
    info.add_text("squeezed", "zTXt value " * 20, zip=True)
    info.add_itxt("wide", "iTXt ✓", zip=True)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", pnginfo=info)
    assert read_png_text(buffer.getvalue()) == {"plain": "tEXt value", "squeezed": "zTXt value " * 20,
                                                "wide": "iTXt ✓"}


def test_no_text_and_grayscale(image):
    gray = image[..., 0]
    data = encode_png(gray, {})
    assert read_png_text(data) == {}
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED), gray)


@pytest.mark.parametrize("key", ["", "k" * 80, "nul\0key", "ключ"])
def test_bad_keys_are_refused(image, key):
    with pytest.raises(ValueError):
        encode_png(image, {key: "value"})


def test_corrupt_files_are_refused(image):
    data = bytearray(encode_png(image, TEXT))
    with pytest.raises(ValueError, match="signature"):
        read_png_text(b"GIF89a" + bytes(data[6:]))
    data[data.index(b"clip_000042")] ^= 0xFF  # inside a text chunk
    with pytest.raises(ValueError, match="CRC"):
        read_png_text(bytes(data))


def test_the_head_reader_refuses_a_text_chunk_that_fails_its_crc(image, tmp_path):
    """One flipped byte in a text chunk's value: the head reader, which stops at the pixels, still
    checks each chunk it reads, so damaged text is refused rather than indexed."""
    data = bytearray(encode_png(image, TEXT))
    path = tmp_path / "face.png"
    path.write_bytes(data)
    assert read_png_head_text(path) == TEXT
    data[data.index(b"clip_000042")] ^= 0x01  # "clip" -> "blip": still text, still a PNG's shape
    path.write_bytes(data)
    with pytest.raises(ValueError, match="fails its CRC"):
        read_png_head_text(path)


def test_chunks_sit_before_iend_with_valid_crcs(image):
    data = encode_png(image, {"k": "v"})
    assert data.endswith(b"\0\0\0\0IEND" + zlib.crc32(b"IEND").to_bytes(4, "big"))
    assert data.index(b"IHDR") < data.index(b"iTXt") < data.index(b"IDAT") < data.index(b"IEND")


def test_alpha_and_a_real_face_round_trip(image):
    """BGRA keeps its alpha; a smooth real photo (where the "up" filter matters) decodes exactly,
    in OpenCV and in Pillow, and compresses to well under the raw pixels."""
    bgra = np.dstack([image, image[..., 1]])
    decoded = cv2.imdecode(np.frombuffer(encode_png(bgra, {}), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded, bgra)
    photo = cv2.imread(str(SCENES / "obama.jpg"))
    if photo is None:
        pytest.skip("shared test data not found")
    data = encode_png(photo, TEXT)
    np.testing.assert_array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), photo)
    with Image.open(io.BytesIO(data)) as png:
        np.testing.assert_array_equal(np.asarray(png)[..., ::-1], photo)
    assert len(data) < photo.size * 0.8


def test_the_bytes_follow_the_pixels_not_where_they_lie_in_memory(image):
    """A crop cut from a larger frame, one at an odd address and one whose rows run backwards
    give the bytes of the same pixels held alone: an encoder whose vector code read its input's
    alignment would make crop_sha256 depend on where a worker's allocator put the crop."""
    photo = cv2.imread(str(SCENES / "obama.jpg"))
    if photo is None:
        pytest.skip("shared test data not found")
    for channels in (3, 4, 1):
        pixels = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA) if channels == 4 else photo
        pixels = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY) if channels == 1 else pixels
        crop = np.ascontiguousarray(pixels[37:37 + 161, 53:53 + 157])
        expected = encode_png(crop, TEXT)
        odd = np.frombuffer(bytearray(crop.nbytes + 1), np.uint8)[1:].reshape(crop.shape)
        odd[...] = crop
        backwards = np.ascontiguousarray(crop[::-1])[::-1]
        for held in (pixels[37:37 + 161, 53:53 + 157], odd, backwards):
            assert encode_png(held, TEXT) == expected, channels


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 2), np.uint8)])
def test_other_pixel_formats_are_refused(bad):
    with pytest.raises(ValueError, match="8-bit"):
        encode_png(bad, {})


def test_face_text_carries_frame_face_and_landmarks(image):
    landmarks = np.random.default_rng(1).uniform(0, 500, (68, 2))
    text = face_text("clip_000042", 2, landmarks, source="vidéo.mp4")
    back = read_png_text(encode_png(image, text))
    assert back[FRAME_KEY] == "clip_000042" and back[FACE_KEY] == "2" and back[SOURCE_KEY] == "vidéo.mp4"
    np.testing.assert_allclose(json.loads(back[LANDMARKS_KEY]), landmarks, atol=0.005)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 frames of the Hamilton clip (2-3 faces a frame), written again as a video."""
    require_data()
    capture = cv2.VideoCapture(str(DATA / "video" / "short_hamilton_clip.mp4"))
    path = tmp_path_factory.mktemp("clip") / "hamilton_12.mp4"
    writer = None
    for _ in range(12):
        ok, image = capture.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, image.shape[1::-1])
        writer.write(image)
    writer.release()
    capture.release()
    return path


@pytest.mark.parametrize("workers", [0, 2], ids=["threads", "worker_processes"])
@pytest.mark.parametrize("kind", ["photos", "video"])
def test_face_files_of_a_cli_run_carry_their_alignments_entry(kind: str, workers: int, short_clip: Path,
                                                              tmp_path: Path) -> None:
    """Every face file the CLI writes carries, in its PNG text, its frame, its face index, its
    source and its 68 landmarks exactly as its alignments entry holds them (both rounded to the
    same decimals), whether the faces were made on threads or in worker processes; every face
    file has its entry and every kept face its file."""
    source = SCENES if kind == "photos" else short_clip
    out = tmp_path / "faces"
    result = run_facekit(f"input={source}", f"output={out}", "runner.progress=false", "runner.mode=parallel",
                         f"runner.workers={workers}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_json(out / "run_summary.json")["workers"] == workers  # worker processes did run (or did not)

    entries = {}  # face file -> (frame, face index, source, landmarks, sha256)
    for name, frame in load_json(out / "alignments.json")["frames"].items():
        for index, face in enumerate(frame["faces"]):
            assert face.get("keep", True) and face["crop"] == f"{name}_{index}.png", (name, index)
            assert len(face["landmarks"]) == 68
            entries[face["crop"]] = (name, str(index), frame["source"], face["landmarks"], face["crop_sha256"])
    assert len(entries) >= 20  # 33 faces in the photos, 25 in the 12 frames
    assert any(index != "0" for _, index, *_ in entries.values())  # frames with several faces
    files = sorted(str(path.relative_to(out)) for path in out.rglob("*.png"))
    assert files == sorted(entries)

    for file, (frame, index, source_text, landmarks, sha256) in entries.items():
        data = (out / file).read_bytes()
        text = read_png_text(data)
        assert (text[FRAME_KEY], text[FACE_KEY], text[SOURCE_KEY]) == (frame, index, source_text), file
        assert json.loads(text[LANDMARKS_KEY]) == landmarks, file
        assert hashlib.sha256(data).hexdigest() == sha256, file


def _encoded_in_a_child(crops: list[np.ndarray]) -> list[bytes]:
    return [encode_png(crop, TEXT) for crop in crops]


def test_face_files_are_the_same_bytes_on_every_encoding_thread_and_process() -> None:
    """Identical pixels give identical file bytes: encoded again, on other threads and in a
    fresh process (a worker or a Ray node), so ``crop_sha256`` can be compared across runs.
    The crops are real faces: deflate's choices depend on the data."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    import facekit

    capture = cv2.VideoCapture(str(require_data() / "video" / "short_hamilton_clip.mp4"))
    extractor, crops = facekit.Extractor(), []
    while len(crops) < 120 and (frame := capture.read()[1]) is not None:
        crops.extend(face.crop for face in extractor.extract(frame))
    first = [encode_png(crop, TEXT) for crop in crops]
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda crop: encode_png(crop, TEXT), crops)) == first
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_encoded_in_a_child, crops).result() == first
