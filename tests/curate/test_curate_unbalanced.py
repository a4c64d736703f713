"""Curation of real collections that are not the balanced people set: one person alone, five
copies of one photo, and the people set beside a clip whose one person fills hundreds of frames.
Every person of two or more photos keeps a cluster of their own."""
from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from cli_helpers import load_json
from curate_helpers import PEOPLE, clusters_csv, curate, extract, shared_extraction


@pytest.fixture
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_extraction("people", tmp_path_factory)


def _identities(prefix: str = "") -> dict[str, str]:
    with (PEOPLE / "identities.csv").open(encoding="utf-8", newline="") as handle:
        return {f"{prefix}{Path(row['file']).with_suffix('').as_posix()}_0.png": row["identity"]
                for row in csv.DictReader(handle)}


def test_one_persons_photos_are_one_cluster_and_best_three_keeps_three(people: Path, tmp_path: Path) -> None:
    document = load_json(curate(tmp_path, people / "p01", "curate.cluster=true", "curate.best=3") / "curation.json")
    assert len(document["faces"]) == 8
    assert {face["cluster"] for face in document["faces"]} == {0}
    assert sum(face["kept"] for face in document["faces"]) == 3


def test_five_copies_of_one_photo_are_one_cluster_and_dedupe_keeps_one(tmp_path: Path) -> None:
    photos = tmp_path / "copies"
    photos.mkdir()
    for number in range(5):
        shutil.copy(PEOPLE / "p01" / "img1.jpg", photos / f"copy{number}.jpg")
    extracted = extract(tmp_path, photos)
    document = load_json(curate(tmp_path, extracted, "curate.cluster=true", "curate.dedupe=0.1") / "curation.json")
    assert [face["cluster"] for face in document["faces"]] == [0] * 5
    assert sum(face["kept"] for face in document["faces"]) == 1


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_the_people_beside_a_clip_each_keep_a_cluster_of_their_own(people: Path, tmp_path: Path,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    both = tmp_path / "both"
    shutil.copytree(people, both / "people")
    shutil.copytree(shared_extraction("clip", tmp_path_factory), both / "clip")
    clusters, truth = clusters_csv(curate(tmp_path, both, "curate.cluster=true")), _identities("people/")
    assert len(clusters) > 200 and set(truth) <= set(clusters)
    members: dict[int, list[str]] = {}
    for face, person in truth.items():
        if clusters[face] != -1:
            members.setdefault(clusters[face], []).append(person)
    purity = sum(Counter(group).most_common(1)[0][1] for group in members.values()) / sum(map(len, members.values()))
    assert purity >= 0.95
    majorities = {Counter(group).most_common(1)[0][0] for group in members.values()
                  if 2 * Counter(group).most_common(1)[0][1] > len(group)}
    several = {person for person, count in Counter(truth.values()).items() if count >= 2}
    assert several <= majorities
    assert abs(len(members) - len(set(truth.values()))) <= 1
