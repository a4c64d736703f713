"""Shards of a source give exactly the frames a whole read gives: names, numbers and pixels."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import require_data
from facekit.media.sampling import Sampling
from facekit.media.shards import FILES, VIDEO, shard_frames, shards_of
from facekit.media.sources import open_input


def _read(frames) -> list[tuple[str, int, str]]:
    return [(f.name, f.index, hashlib.sha1(f.image.tobytes()).hexdigest()) for f in frames]


@pytest.mark.parametrize("clip", ["short_hamilton_clip.mp4", "faceswap_test.mp4"])
@pytest.mark.parametrize("sampling", [Sampling(), Sampling(every_n=7), Sampling(fps=5.0, start=1.0, end=6.5)],
                         ids=["every-frame", "every-7th", "fps-start-end"])
def test_video_shards_together_give_every_frame_of_a_straight_decode_once(clip: str, sampling: Sampling) -> None:
    source = open_input(require_data() / "video" / clip, sampling=sampling)
    whole = _read(source.frames())
    for size in (13, 60):  # 13 cuts between keyframes, so most shards start on a frame that needs a seek back
        sharded = shards_of(source, size, 10)
        assert {s.kind for s in sharded.shards} == {VIDEO} and len(sharded.shards) >= sharded.frames // size
        assert _read(f for shard in sharded.shards for f in shard_frames(shard, sampling)) == whole


def test_a_video_cut_at_sample_end_has_no_shard_past_it() -> None:
    source = open_input(require_data() / "video" / "short_hamilton_clip.mp4", sampling=Sampling(end=2.0))
    sharded = shards_of(source, 20, 10)
    assert sharded.shards[-1].last == sharded.frames == len(list(source.frames()))


def test_folder_shards_are_groups_of_files_named_as_in_the_whole_folder(tmp_path: Path) -> None:
    people = require_data() / "images" / "people" / "p01"
    photos = sorted(people.glob("*.jpg"))
    for name, photo in zip(["other.jpg", "same.jpeg", "same.jpg"], photos):  # the two "same" files fall in two groups
        (tmp_path / name).write_bytes(photo.read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    source = open_input(tmp_path)
    whole = _read(source.frames())
    sharded = shards_of(source, 500, 3)
    assert [s.kind for s in sharded.shards] == [FILES, FILES]
    skipped: dict[str, str] = {}
    assert _read(f for shard in sharded.shards for f in shard_frames(shard, Sampling(), skipped)) == whole
    assert [Path(p).name for p in skipped] == ["broken.jpg"]
