"""Mask files (``output.mask_format=file``) come with the faces curation keeps, at
masks/<mask>/<the face's place in the result>, as extraction lays them out."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import load_json
from curate_helpers import PEOPLE, curate, extract
from conftest import require_data

MASKS = ("components", "extended")


@pytest.fixture(scope="module")
def with_mask_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two people's folders (a collection of two sources), each face with two mask files."""
    require_data()
    photos = tmp_path_factory.mktemp("photos")
    for person in ("p01", "p04"):
        (photos / person).symlink_to(PEOPLE / person)
    return extract(tmp_path_factory.mktemp("extracted"), photos, f"output.masks=[{','.join(MASKS)}]",
                   "output.mask_format=file")


@pytest.mark.parametrize("settings", [[], ["curate.cluster=true", "curate.sort=yaw"], ["curate.copy=true"]],
                         ids=["faces", "clusters-and-sorted", "copies"])
def test_each_kept_face_has_its_mask_files_beside_it_in_the_result(with_mask_files: Path, tmp_path: Path,
                                                                   settings: list[str]) -> None:
    result = curate(tmp_path, with_mask_files, *settings)
    document = load_json(result / "curation.json")
    kept = [face for face in document["faces"] if face["kept"]]
    assert len(kept) >= 4
    places = [face["result"] for face in kept]
    if "sorted" in document:
        folder = document["sorted"]["folder"]
        places += [f"{folder}/{path.name}" for path in (result / folder).iterdir()]
    extracted = {face["result"]: face["file"] for face in kept}
    for place in places:
        face_file = extracted.get(place) or str((result / place).resolve().relative_to(with_mask_files.resolve()))
        source, _, name = face_file.rpartition("/")
        for mask in MASKS:
            linked = result / "masks" / mask / place
            written = with_mask_files / source / "masks" / mask / name
            assert linked.is_file() and linked.read_bytes() == written.read_bytes(), (place, mask)
            assert linked.is_symlink() != ("curate.copy=true" in settings)
    assert sum(1 for path in (result / "masks").rglob("*.png")) == len(places) * len(MASKS)
