"""What the driver checks of a shard its worker reported finished, without a cluster: the journal
in the output folder against the frames reported, and the face files it names."""
from __future__ import annotations

from pathlib import Path

from facekit.cluster.shard_journal import INCOMPLETE_SUFFIX, ShardJournalWriter, finished, missing_from, set_aside, shard_journal
from facekit.media.shards import VIDEO, Shard
from facekit.output.alignments import journal_line
from facekit.records import Detection, Face, Frame, FrameRecord

SHARD = Shard(source="clip.mp4", number=0, kind=VIDEO, first=1, last=3)
NAMES = [f"clip_{n:06d}" for n in range(1, 4)]


def _finished_shard(output: Path) -> None:
    """Shard 0 with three frames of one face each, their face files and its journal, as a worker leaves it."""
    journal = ShardJournalWriter(output, SHARD, {"size": 256})
    for index, name in enumerate(NAMES, start=1):
        face = Face(Detection((1.0, 2.0, 30.0, 40.0), 0.9), crop_file=f"{name}_0.png", crop_sha256="0" * 64)
        (output / face.crop_file).write_bytes(b"png")
        journal.write(journal_line(FrameRecord(Frame(name=name, source="clip.mp4", index=index), width=64, height=48,
                                               faces=[face])))
    journal.commit()


def test_a_journal_with_every_reported_frame_and_its_face_files_is_all_there(tmp_path: Path) -> None:
    _finished_shard(tmp_path)
    assert missing_from(tmp_path, SHARD, NAMES) is None


def test_a_missing_journal_is_named(tmp_path: Path) -> None:
    assert missing_from(tmp_path, SHARD, NAMES) == "its journal .facekit-shards/000000.jsonl is missing"


def test_a_journal_cut_short_at_a_line_or_mid_line_names_the_first_frame_it_lacks(tmp_path: Path) -> None:
    _finished_shard(tmp_path)
    path = shard_journal(tmp_path, SHARD)
    lines = path.read_bytes().splitlines(keepends=True)
    for kept in (b"".join(lines[:2]), b"".join(lines[:3])[:-20]):  # the header and one frame; a line cut off
        path.write_bytes(kept)
        assert missing_from(tmp_path, SHARD, NAMES) == (
            "its journal .facekit-shards/000000.jsonl holds 1 of the 3 frames it reported "
            "(the first missing: clip_000002)")


def test_a_face_file_the_journal_names_but_not_there_is_named(tmp_path: Path) -> None:
    _finished_shard(tmp_path)
    (tmp_path / "clip_000002_0.png").unlink()
    assert missing_from(tmp_path, SHARD, NAMES) == (
        "face file clip_000002_0.png, named in its journal .facekit-shards/000000.jsonl, is missing")


def test_a_journal_set_aside_is_kept_but_no_longer_a_finished_shard(tmp_path: Path) -> None:
    _finished_shard(tmp_path)
    held = shard_journal(tmp_path, SHARD).read_bytes()
    set_aside(tmp_path, SHARD)
    assert not finished(tmp_path, SHARD, {"size": 256})
    assert shard_journal(tmp_path, SHARD).with_name(f"000000.jsonl{INCOMPLETE_SUFFIX}").read_bytes() == held
    set_aside(tmp_path, SHARD)  # nothing there: nothing to do
