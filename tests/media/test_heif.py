"""HEIF photos (iPhone .heic): decoded by libheif, upright by their irot transform, found by
content whatever their suffix, and a damaged one is skipped by name like any other bad file.
The files are encoded by the test itself with pillow-heif's x265 encoder."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cli_helpers import load_json, run_facekit
from conftest import SCENES, require_data
from facekit.media.heif import decoded_heif, is_avif, is_heif
from facekit.media.sources import decoded_image

pillow_heif = pytest.importorskip("pillow_heif")


def _portrait() -> np.ndarray:
    require_data()
    image = cv2.imread(str(SCENES / "obama.jpg"))
    return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # 455x569: a quick encode


def _heic(image: np.ndarray, path: Path, orientation: int = 1) -> Path:
    """``image`` (BGR) as HEIC; an EXIF ``orientation`` other than 1 becomes the file's irot/imir,
    as a phone writes it (pillow-heif passes it to libheif's encoder)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    pillow_heif.from_bytes("RGB", (rgb.shape[1], rgb.shape[0]), rgb.tobytes()).save(
        path, quality=92, exif=exif.tobytes())
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("heif")
    portrait = _portrait()
    _heic(portrait, folder / "upright.heic")
    # stored turned a quarter left, with the transform that turns it back right for viewing
    _heic(cv2.rotate(portrait, cv2.ROTATE_90_COUNTERCLOCKWISE), folder / "turned.heic", orientation=6)
    encoded = (folder / "upright.heic").read_bytes()
    (folder / "renamed.jpg").write_bytes(encoded)  # an export tool kept the iPhone's bytes
    (folder / "cut.heic").write_bytes(encoded[: len(encoded) // 3])
    return folder


def test_decoded_upright_in_three_channels(photos: Path) -> None:
    portrait = _portrait()
    upright, why = decoded_image(photos / "upright.heic")
    assert why is None and upright.shape == portrait.shape and upright.dtype == np.uint8
    assert cv2.PSNR(upright, portrait) > 35  # HEVC at quality 92, BGR order kept
    turned, _ = decoded_image(photos / "turned.heic")
    assert turned.shape == portrait.shape  # irot applied: as a viewer shows it
    assert cv2.PSNR(turned, portrait) > 35


def test_found_by_content_and_a_damaged_file_says_why(photos: Path) -> None:
    data = (photos / "renamed.jpg").read_bytes()
    assert is_heif(data) and not is_heif((SCENES / "obama.jpg").read_bytes())
    assert not is_heif(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")  # an MP4 is not a photo
    image, why = decoded_heif(data[: len(data) // 3])
    assert image is None and why.startswith("the HEIF decoder failed (")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_folder_with_heic_photos(photos: Path, tmp_path: Path, workers: str) -> None:
    out = tmp_path / "out"
    result = run_facekit(f"input={photos}", f"output={out}", "runner.progress=false", f"runner.workers={workers}",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames = load_json(out / "alignments.json")["frames"]
    assert sorted(frames) == ["renamed", "turned", "upright"]
    upright, turned = (np.array(frames[name]["faces"][0]["landmarks"]) for name in ("upright", "turned"))
    assert np.abs(turned - upright).mean() < 3.0  # the same face in the same place, as a viewer shows it
    assert frames["renamed"]["faces"][0]["landmarks"] == frames["upright"]["faces"][0]["landmarks"]
    said = " ".join(result.stderr.split())
    assert "skipped" in said and "cut.heic: the HEIF decoder failed" in said
    assert load_json(out / "run_summary.json")["skipped"] == 1


def test_avif_decodes_upright(tmp_path: Path) -> None:
    """AVIF lists the generic HEIF brand too, but libheif here has no AV1 decoder: Pillow
    decodes it and applies its irot (OpenCV, which also decodes AVIF, ignored it: sideways)."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    portrait = _portrait()
    rgb = Image.fromarray(cv2.cvtColor(portrait, cv2.COLOR_BGR2RGB))
    rgb.save(tmp_path / "upright.avif", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Pillow writes it as the file's irot
    rgb.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.avif", quality=90, exif=exif.tobytes())
    data = (tmp_path / "turned.avif").read_bytes()
    assert b"mif1" in data[:64] and b"irot" in data and is_avif(data) and not is_heif(data)
    for name in ("upright", "turned"):
        image, why = decoded_image(tmp_path / f"{name}.avif")
        assert why is None and image.shape == portrait.shape and cv2.PSNR(image, portrait) > 33, name
    image, why = decoded_image(_cut(tmp_path / "turned.avif"))
    assert image is None and why.startswith("the AVIF decoder failed (")


def _cut(path: Path) -> Path:
    cut = path.with_name(f"cut_{path.name}")
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    return cut
