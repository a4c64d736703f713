"""Curation of the clip's first 90 frames (2-3 faces a frame, two shots): near-duplicates of
neighbouring frames go and every identity keeps faces; the best N per identity span its widest
yaw; a sorted folder is in order; all of it the same on a second run."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_helpers import load_json
from curate_helpers import curate, shared_extraction, tree_digest

pytestmark = pytest.mark.slow  # the Hamilton clip extracted, embedded and curated

SETTINGS = ("curate.cluster=true", "curate.dedupe=0.15", "curate.best=3", "curate.sort=yaw")


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    clip = shared_extraction("clip", tmp_path_factory)
    result = curate(tmp_path_factory.mktemp("curated"), clip, *SETTINGS)
    return result, load_json(result / "curation.json")


def _duplicates(document: dict) -> list[tuple[dict, dict, float]]:
    """(dropped face, the face it duplicates, distance) for every near-duplicate."""
    by_name = {face["face"]: face for face in document["faces"]}
    found = []
    for face in document["faces"]:
        match = re.fullmatch(r"duplicate of (\S+) \(distance ([0-9.]+)\)", face["reason"] or "")
        if match:
            found.append((face, by_name[match.group(1)], float(match.group(2))))
    return found


def test_dedupe_drops_look_alike_neighbouring_frames_and_keeps_the_sharpest(curated: tuple[Path, dict]) -> None:
    _, document = curated
    pairs = _duplicates(document)
    assert len(pairs) > 20
    for dropped, kept, distance in pairs:
        assert kept["reason"] is None or not kept["reason"].startswith("duplicate")  # a keeper is never a duplicate
        assert dropped["cluster"] == kept["cluster"] and distance <= 0.15  # printed to 3 decimals
        assert dropped["sharpness"] <= kept["sharpness"]
        assert abs(dropped["yaw"] - kept["yaw"]) <= 10
    frame_gaps = [abs(int(d["frame"].rsplit("_", 1)[1]) - int(k["frame"].rsplit("_", 1)[1])) for d, k, _ in pairs]
    assert sum(gap <= 2 for gap in frame_gaps) > len(pairs) / 2  # mostly the next frames of one shot


def test_every_identity_keeps_faces_and_at_most_n(curated: tuple[Path, dict]) -> None:
    result, document = curated
    clusters = [entry for entry in document["clusters"] if entry["cluster"] >= 0]
    assert len(clusters) >= 2
    for entry in clusters:
        assert 1 <= entry["kept"] <= 3
        assert len(list((result / entry["folder"]).iterdir())) == entry["kept"]


def test_best_n_spans_the_widest_yaw_of_each_identity(curated: tuple[Path, dict]) -> None:
    _, document = curated
    for entry in document["clusters"]:
        if entry["cluster"] < 0:
            continue
        candidates = [f for f in document["faces"] if f["cluster"] == entry["cluster"]
                      and (f["kept"] or f["reason"].startswith("not among best"))]
        kept = [f for f in candidates if f["kept"]]
        assert len(kept) == min(3, len(candidates))
        if len(kept) >= 2:
            assert min(f["yaw"] for f in kept) == min(f["yaw"] for f in candidates)
            assert max(f["yaw"] for f in kept) == max(f["yaw"] for f in candidates)
    assert any(f["reason"] == "not among best 3" for f in document["faces"])


def test_the_sorted_folder_runs_from_turned_right_to_turned_left(curated: tuple[Path, dict]) -> None:
    result, document = curated
    files = sorted((result / "sorted_yaw").iterdir())
    kept = {f["result"].split("/", 1)[1]: f for f in document["faces"] if f["kept"]}
    assert len(files) == len(kept) == document["sorted"]["faces"]
    assert [p.name[:5] for p in files] == [f"{n:04d}_" for n in range(1, len(files) + 1)]
    yaws = [kept[p.name[5:]]["yaw"] for p in files]
    assert yaws == sorted(yaws)


def test_curating_the_clip_twice_gives_the_same_result(curated: tuple[Path, dict], tmp_path: Path,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    result, _ = curated
    again = curate(tmp_path, shared_extraction("clip", tmp_path_factory), *SETTINGS)
    assert tree_digest(again) == tree_digest(result)


def test_no_cluster_holds_two_people_of_one_frame(curated: tuple[Path, dict], tmp_path_factory) -> None:
    """Average linkage knows no frames: faces 0 and 1 of frame 51, boxes far apart, were one
    cluster with a dozen more such pairs."""
    _, document = curated
    boxes = {face["crop"]: face["box"] for frame in load_json(shared_extraction("clip", tmp_path_factory)
                                                              / "alignments.json")["frames"].values()
             for face in frame["faces"] if face.get("crop")}
    together: dict[tuple, list[str]] = {}
    for face in document["faces"]:
        if face["cluster"] is not None and face["cluster"] >= 0:
            together.setdefault((face["source"], face["frame"], face["cluster"]), []).append(face["face"])
    apart = [(a, b) for faces in together.values() for i, a in enumerate(faces) for b in faces[i + 1:]
             if _disjoint(boxes[a], boxes[b])]
    assert apart == []


def _disjoint(first: list[float], second: list[float]) -> bool:
    return min(first[2], second[2]) <= max(first[0], second[0]) or min(first[3], second[3]) <= max(first[1], second[1])
