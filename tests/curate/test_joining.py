"""Clusters of one person joined across shots, never two faces of one frame: on vectors built
to show each rule, and on the clip, where one singer fills seven shots."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cli_helpers import load_json
from curate_helpers import CLIP, curate, extract, require_data
from facekit.curate.joining import join_distance, joined_clusters, split_where_together

FAR_BOXES = np.array([[0, 0, 10, 10], [100, 0, 110, 10], [200, 0, 210, 10], [300, 0, 310, 10]], dtype=float)


def _unit(*angles: float) -> np.ndarray:
    """Unit vectors in a plane, ``angles`` in degrees: cosine distance 1 - cos(difference)."""
    radians = np.radians(angles)
    return np.stack([np.cos(radians), np.sin(radians), np.zeros_like(radians)], axis=1)


def test_clusters_whose_means_are_close_are_joined_and_far_ones_are_not() -> None:
    unit = _unit(0, 2, 30, 32, 120, 122)  # means 30 degrees apart (0.13), the third 90 beyond
    labels = np.array([0, 0, 1, 1, 2, 2])
    frames = ["a", "b", "c", "d", "e", "f"]
    boxes = np.repeat(FAR_BOXES[:1], 6, axis=0)
    joined = joined_clusters(labels, unit, frames, boxes, max_distance=0.2)
    assert joined.tolist() == [0, 0, 0, 0, 1, 1]
    assert joined_clusters(labels, unit, frames, boxes, max_distance=0.1).tolist() == [0, 0, 1, 1, 2, 2]


def test_two_faces_of_one_frame_never_end_in_one_cluster() -> None:
    unit = _unit(0, 1, 10, 11)
    labels = np.array([0, 0, 1, 1])
    apart = joined_clusters(labels, unit, ["f1", "f2", "f1", "f3"], FAR_BOXES, max_distance=0.5)
    assert apart.tolist() == [0, 0, 1, 1]  # faces 0 and 2 share frame f1 at boxes far apart
    twice = FAR_BOXES.copy()
    twice[2] = [1, 1, 10, 11]  # the detector found face 0 again: one face, not two people
    assert joined_clusters(labels, unit, ["f1", "f2", "f1", "f3"], twice, max_distance=0.5).tolist() == [0, 0, 0, 0]


def test_a_cluster_holding_two_people_of_one_frame_is_split_between_them() -> None:
    """Average linkage knows no frames: two people 25 degrees apart (0.09), seen together in each
    of four frames, were one cluster. Split, each is a cluster of their own; a cluster whose
    faces never share a frame, and the same face found twice in one frame, stay whole."""
    unit = _unit(0, 1, 2, 3, 25, 26, 27, 28, 90, 91)
    frames = ["f1", "f2", "f3", "f4", "f1", "f2", "f3", "f4", "g1", "g2"]
    boxes = np.array([FAR_BOXES[0]] * 4 + [FAR_BOXES[2]] * 4 + [FAR_BOXES[0]] * 2)
    labels = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    split = split_where_together(labels, unit, frames, boxes, distance=0.3, min_size=2)
    assert split.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    twice = boxes.copy()
    twice[4:8] = [1, 1, 10, 11]  # the detector's second box on the first face: one person
    assert split_where_together(labels, unit, frames, twice, distance=0.3, min_size=2).tolist() == labels.tolist()
    one = split_where_together(labels, unit, frames, boxes, distance=0.3, min_size=5)  # parts below the size: unclustered
    assert one.tolist() == [-1] * 8 + [0, 0]


def test_a_ban_carries_over_to_the_joined_cluster() -> None:
    """A and B join; C shares a frame with B, so C cannot join A+B even where it is close to A."""
    unit = _unit(0, 0, 8, 8, 4, 4)
    labels = np.array([0, 0, 1, 1, 2, 2])
    frames = ["x", "y", "z", "w", "z", "v"]  # face 4 (C) and face 2 (B) share frame z
    joined = joined_clusters(labels, unit, frames, FAR_BOXES[[0, 0, 1, 1, 2, 2]], max_distance=0.05)
    assert joined[0] == joined[2] != joined[4] or joined[0] == joined[4] != joined[2]


def test_the_join_distance_follows_the_identity_plugin() -> None:
    cosine = SimpleNamespace(metric="cosine", default_threshold=0.6)  # the two fields a PluginSpec gives
    euclidean = SimpleNamespace(metric="euclidean", default_threshold=0.6)
    assert join_distance(cosine, None) == pytest.approx(0.55 * 0.6)
    assert join_distance(euclidean, None) == 0.0  # its 0.6 is on its own vectors' scale, not unit ones
    assert join_distance(euclidean, 0.1) == 0.1
    assert join_distance(cosine, 0.0) == 0.0 and join_distance(None, None) == 0.0


@pytest.fixture(scope="module")
def whole_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every second frame of the whole clip: a singer in seven shots, then an audience of six."""
    require_data()
    return extract(tmp_path_factory.mktemp("whole_clip"), CLIP, "sample.every_n=2")


def _singer_clusters(document: dict) -> set[int]:
    """Clusters of the large faces of frames 83-211, where the singer is the one person seen."""
    return {face["cluster"] for face in document["faces"]
            if 83 <= int(face["frame"].rsplit("_", 1)[1]) <= 211 and face["face_px"] >= 100}


@pytest.mark.slow
def test_the_singers_shots_make_one_cluster_and_the_audience_stay_apart(whole_clip: Path, tmp_path: Path) -> None:
    unjoined = load_json(curate(tmp_path, whole_clip, "curate.cluster=true", "curate.join=0", out="apart")
                         / "curation.json")
    assert len(_singer_clusters(unjoined) - {-1}) == 1  # his shots match: one cluster before any joining
    document = load_json(curate(tmp_path, whole_clip, "curate.cluster=true") / "curation.json")
    singer = _singer_clusters(document)
    assert len(singer - {-1}) == 1
    clustered = [face for face in document["faces"] if face["cluster"] >= 0]
    assert sum(face["cluster"] in singer for face in clustered) >= 60
    audience = [face for face in clustered if int(face["frame"].rsplit("_", 1)[1]) >= 212]
    by_frame: dict[str, list[int]] = {}
    for face in audience:
        by_frame.setdefault(face["frame"], []).append(face["cluster"])
    people_per_frame = [len(set(clusters)) for clusters in by_frame.values()]
    assert max(people_per_frame) >= 5 and not set(singer) & {face["cluster"] for face in audience}


def test_a_face_followed_through_neighbouring_frames_joins_its_clusters_and_one_link_does_not() -> None:
    """A dim face's vectors wander (means 60 degrees apart, far past the join distance), but the
    face is followed from frame 2 to 3 and 3 to 4 of one video: one person. One link alone (a
    cut putting someone else in the same place) is not enough."""
    from facekit.curate.joining import followed_faces

    unit = _unit(0, 10, 50, 60)
    labels = np.array([0, 0, 1, 1])
    boxes = np.repeat(FAR_BOXES[:1], 4, axis=0)
    frames = [("v", 1), ("v", 2), ("v", 3), ("v", 4)]
    followed = followed_faces(frames, unit, boxes, match_distance=0.637)
    assert followed == [(0, 1), (1, 2), (2, 3)]  # neighbouring frames, same place, within the match distance
    keys = [f"v{n}" for _, n in frames]
    assert joined_clusters(labels, unit, keys, boxes, 0.1, followed).tolist() == [0, 0, 1, 1]  # only (1, 2) links the two clusters
    assert joined_clusters(labels, unit, keys, boxes, 0.1, [(1, 2)]).tolist() == [0, 0, 1, 1]
    assert joined_clusters(labels, unit, keys, boxes, 0.1, [(1, 2), (0, 3)]).tolist() == [0, 0, 0, 0]
    assert followed_faces(frames, unit, boxes, match_distance=0.01) == []


def test_a_euclidean_plugins_match_distance_is_read_at_its_vectors_length() -> None:
    """Two vectors of length L a euclidean distance d apart are d²/(2L²) apart in cosine distance."""
    from types import SimpleNamespace

    from facekit.curate.embeddings import typical_length
    from facekit.curate.joining import cluster_distance

    dlib_like = SimpleNamespace(metric="euclidean", default_threshold=0.6)
    assert cluster_distance(dlib_like) == pytest.approx(0.18)
    assert cluster_distance(dlib_like, 1.5) == pytest.approx(0.08)
    assert cluster_distance(SimpleNamespace(metric="cosine", default_threshold=0.637), 1.5) == 0.637
    vectors = np.array([[1.5, 0.0], [0.0, 1.4], [np.nan, np.nan], [0.0, 1.6]])
    assert typical_length(vectors) == pytest.approx(1.5)
    assert typical_length(np.zeros((0, 0))) == 1.0
