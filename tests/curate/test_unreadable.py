"""A face file that is there but cannot be decoded (cut short, overwritten) is dropped by
curation with the reason ``unreadable``, counted among the dropped, and placed nowhere."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import load_json
from curate_helpers import PEOPLE, curate, extract
from conftest import require_data


@pytest.mark.parametrize("stored", [False, True], ids=["embedded-from-the-file", "embedding-stored"])
def test_an_unreadable_face_file_is_dropped_as_unreadable(tmp_path: Path, stored: bool) -> None:
    """Also when extraction stored the face's embedding: that vector is of the face it wrote, not
    of the file there now (whose size differs from what extraction wrote, so it is decoded)."""
    require_data()
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in ("p01", "p04"):
        for photo in sorted((PEOPLE / person).glob("*.jpg"))[:3]:
            shutil.copy(photo, photos / f"{person}_{photo.name}")
    extracted = extract(tmp_path, photos, *(["output.embeddings=true"] if stored else []))
    victim = extracted / "p01_img1_0.png"
    victim.write_bytes(victim.read_bytes()[:200])  # its head is whole, its pixels are gone
    result = curate(tmp_path, extracted, "curate.cluster=true")
    document = load_json(result / "curation.json")
    entry = next(face for face in document["faces"] if face["face"].endswith("p01_img1_0.png"))
    assert entry["kept"] is False and entry["reason"] == "unreadable", entry
    assert document["counts"]["dropped"].get("unreadable") == 1, document["counts"]
    assert not any(path.name == "p01_img1_0.png" for path in result.rglob("*.png"))
