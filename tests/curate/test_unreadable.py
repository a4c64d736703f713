"""A face file that is there but cannot be decoded (cut short, overwritten) is dropped by
curation with the reason ``unreadable``, counted among the dropped, and placed nowhere."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import load_json
from curate_helpers import PEOPLE, clusters_csv, curate, extract
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
    assert entry["kept"] is False and entry["reason"] == "unreadable" and entry["cluster"] is None, entry
    assert clusters_csv(result)[entry["face"]] is None  # not "unclustered": clustering never saw it
    assert document["counts"]["dropped"].get("unreadable") == 1, document["counts"]
    assert not any(path.name == "p01_img1_0.png" for path in result.rglob("*.png"))


def test_faces_rejected_at_extraction_have_no_cluster_not_even_unclustered(tmp_path: Path) -> None:
    """Their files are there (``filter.save_rejected``), so curation lists them, dropped with
    extraction's reason; clustering never takes them, so they are not counted unclustered."""
    require_data()
    extracted = extract(tmp_path, PEOPLE / "p01", "quality.min_face_px=100000", "filter.save_rejected=true")
    result = curate(tmp_path, extracted, "curate.cluster=true")
    document = load_json(result / "curation.json")
    assert document["faces"] and all(face["reason"].startswith("rejected at extraction") and face["cluster"] is None
                                      for face in document["faces"]), document["faces"]
    assert document["clusters"] == [], document["clusters"]
    assert document["counts"]["dropped"] == {"rejected_at_extraction": len(document["faces"])}
    assert set(clusters_csv(result).values()) == {None}


def test_a_missing_face_file_is_counted_as_no_face_file_and_every_entry_has_the_measures(tmp_path: Path) -> None:
    """A face whose file is nowhere under the input is dropped with its own kind in the counts
    (documented in docs/curation.md), and each face's entry carries every measure its alignments
    entry held: head pose in full (roll too) and the fit error."""
    require_data()
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted((PEOPLE / "p01").glob("*.jpg"))[:3]:
        shutil.copy(photo, photos / photo.name)
    extracted = extract(tmp_path, photos)
    (extracted / "img1_0.png").unlink()
    document = load_json(curate(tmp_path, extracted, "curate.sort=yaw") / "curation.json")
    assert document["counts"]["dropped"] == {"no_face_file": 1}, document["counts"]
    frames = load_json(extracted / "alignments.json")["frames"]
    assert len(document["faces"]) == sum(len(frame["faces"]) for frame in frames.values()) >= 3
    for entry in document["faces"]:
        face = frames[entry["frame"]]["faces"][entry["index"]]
        assert [entry[key] for key in ("yaw", "pitch", "roll")] == [face["pose"][key] for key in ("yaw", "pitch", "roll")]
        assert [entry[key] for key in ("sharpness", "face_px", "misalignment")] == \
            [face[key] for key in ("sharpness", "face_px", "misalignment")], entry


def test_stored_embeddings_are_used_only_where_the_identity_plugin_s_options_are_this_run_s(tmp_path: Path) -> None:
    """A curation with other options for the identity plugin clustered the vectors extraction
    stored with the old ones, without a word (another model size would give other vectors)."""
    from curate_helpers import curate_run

    require_data()
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sorted((PEOPLE / "p01").glob("*.jpg"))[:3]:
        shutil.copy(photo, photos / photo.name)
    extracted = extract(tmp_path, photos, "output.embeddings=true")
    same = curate_run(tmp_path, extracted, "curate.cluster=true", out="same")
    assert same.returncode == 0 and "embedding " not in same.stderr, same.stderr  # all stored, all used
    other = curate_run(tmp_path, extracted, "curate.cluster=true", "identity.antialias=false", out="other")
    assert other.returncode == 0, other.stderr
    assert "embedding 3 face file(s) with identity sface (0 stored)" in other.stderr, other.stderr
