"""What the driver checks of a shard's journal, without a cluster: a shard its worker reported
finished against the frames reported and the face files it names, and a journal an earlier run
left against the count of frames its end line gives."""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from facekit.ledger.shard_journal import (INCOMPLETE_SUFFIX, ShardJournalWriter, finished, frame_lines, missing_from,
                                           set_aside, shard_journal)
from facekit.errors import FacekitError
from facekit.media.shards import FILES, VIDEO, Shard
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


def _lines(output: Path) -> list[bytes]:
    return shard_journal(output, SHARD).read_bytes().splitlines(keepends=True)


def test_a_finished_journal_ends_with_the_count_of_its_frames_and_folds_exactly_those(tmp_path: Path) -> None:
    _finished_shard(tmp_path)
    lines = _lines(tmp_path)
    assert lines[-1] == b'{"end": {"frames": 3}}\n' and len(lines) == 5  # header, 3 frames, end
    assert finished(tmp_path, SHARD, {"size": 256})
    assert list(frame_lines(tmp_path, SHARD)) == lines[1:4]


@pytest.mark.parametrize("kept", [slice(0, 4), slice(0, 3)], ids=["end-line-gone", "last-frame-and-end-line-gone"])
def test_a_journal_cut_short_at_a_line_is_set_aside_with_a_warning_and_its_shard_runs_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, kept: slice) -> None:
    """Cut where a line ends, no frame line is damaged: only the missing end line tells."""
    _finished_shard(tmp_path)
    path = shard_journal(tmp_path, SHARD)
    cut = b"".join(_lines(tmp_path)[kept])
    path.write_bytes(cut)
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(tmp_path, SHARD, {"size": 256})
    assert "has no end line" in caplog.text and "frames 1-3 runs again" in caplog.text, caplog.text
    assert not path.exists() and path.with_name(f"000000.jsonl{INCOMPLETE_SUFFIX}").read_bytes() == cut


def test_a_shard_reported_finished_whose_journal_lost_its_end_line_is_not_all_there(tmp_path: Path) -> None:
    _finished_shard(tmp_path)
    shard_journal(tmp_path, SHARD).write_bytes(b"".join(_lines(tmp_path)[:-1]))
    assert missing_from(tmp_path, SHARD, NAMES) == (
        "its journal .facekit-shards/000000.jsonl does not end with the count of its 3 frames (it was cut short)")


def test_a_journal_missing_a_frame_before_its_end_line_is_refused_when_folded_and_set_aside_when_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _finished_shard(tmp_path)
    lines = _lines(tmp_path)
    path = shard_journal(tmp_path, SHARD)
    path.write_bytes(b"".join(lines[:2] + lines[3:]))  # frame 2 taken out: its end line is whole
    found = ("is damaged: it should hold 3 frame line(s) then its end line, but holds 2 whole frame line(s), then "
             "an end line counting 3")
    with pytest.raises(FacekitError) as refused:
        list(frame_lines(tmp_path, SHARD))
    assert str(refused.value) == f"{path} {found}; delete it to run that shard again"
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(tmp_path, SHARD, {"size": 256})  # only reading every line tells
    assert caplog.messages == [f"{path} {found}; it is kept as 000000.jsonl{INCOMPLETE_SUFFIX} and shard clip.mp4 "
                               "frames 1-3 runs again"]


def test_a_damaged_line_in_a_50_frame_journal_is_refused_with_the_50_it_should_hold_and_the_9_before_it(
        tmp_path: Path) -> None:
    shard = Shard(source="clip.mp4", number=0, kind=VIDEO, first=1, last=50)
    journal = ShardJournalWriter(tmp_path, shard, {"size": 256})
    for index in range(1, 51):
        journal.write(journal_line(FrameRecord(Frame(name=f"clip_{index:06d}", source="clip.mp4", index=index),
                                               width=64, height=48, faces=[])))
    journal.commit()
    path = shard_journal(tmp_path, shard)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[10] = lines[10][:20] + b"\0" * 10 + lines[10][30:]  # line 11, the tenth frame: a power cut's garbage
    path.write_bytes(b"".join(lines))
    with pytest.raises(FacekitError) as refused:
        list(frame_lines(tmp_path, shard))
    assert str(refused.value) == (
        f"{path} is damaged: it should hold 50 frame line(s) then its end line, but holds 9 whole frame line(s), "
        "then line 11, which is neither a frame nor its end line; delete it to run that shard again")


def test_a_finished_journal_with_a_damaged_line_is_set_aside_naming_that_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Its end line is whole, so only reading every line tells; a shard is what runs again."""
    _finished_shard(tmp_path)
    path = shard_journal(tmp_path, SHARD)
    lines = _lines(tmp_path)
    lines[2] = lines[2][:20] + b"\0" * 10 + lines[2][30:]  # line 3, the second frame
    damaged = b"".join(lines)
    path.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(tmp_path, SHARD, {"size": 256})
    assert caplog.messages == [
        f"{path} is damaged: it should hold 3 frame line(s) then its end line, but holds 1 whole frame line(s), "
        f"then line 3, which is neither a frame nor its end line; it is kept as 000000.jsonl{INCOMPLETE_SUFFIX} "
        "and shard clip.mp4 frames 1-3 runs again"]
    assert not path.exists() and path.with_name(f"000000.jsonl{INCOMPLETE_SUFFIX}").read_bytes() == damaged


def test_a_journal_written_with_other_settings_is_refused_in_one_line_and_kept(tmp_path: Path) -> None:
    """Shards of two settings never fold together: a journal whose fingerprint differs is not a
    finished shard of this run, nor is it set aside and run again over the other settings' files."""
    _finished_shard(tmp_path)
    held = shard_journal(tmp_path, SHARD).read_bytes()
    with pytest.raises(FacekitError, match="holds shards written with other settings") as refused:
        finished(tmp_path, SHARD, {"size": 512})
    assert "\n" not in str(refused.value)
    assert "(output.size: 256 there, 512 now); rerun with those settings to resume them" in str(refused.value)
    assert shard_journal(tmp_path, SHARD).read_bytes() == held
    assert finished(tmp_path, SHARD, {"size": 256})


def test_a_journal_of_another_cut_of_the_video_is_set_aside_and_its_shard_runs_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """runner.shard_frames changed between runs: shard 0 covers frames 1-10 now, and its journal
    of frames 1-3 was taken as finished, so the rerun said nothing was left with frames 4-10 never
    done. The cut is not a setting of the output (the fingerprint's): the shard runs again."""
    _finished_shard(tmp_path)
    wider = Shard(source="clip.mp4", number=0, kind=VIDEO, first=1, last=10)
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(tmp_path, wider, {"size": 256})
    assert "covers video frames 1-3 of another cut of the source (runner.shard_frames" in caplog.text
    assert not shard_journal(tmp_path, wider).exists()
    assert shard_journal(tmp_path, wider).with_name(f"000000.jsonl{INCOMPLETE_SUFFIX}").exists()


def test_a_journal_of_fewer_frames_than_the_shard_must_hold_runs_again(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A re-crop's shard knows its frames beforehand (its extraction's there): one re-cropped
    before the extraction went on holds fewer, and was kept as finished."""
    _finished_shard(tmp_path)
    assert finished(tmp_path, SHARD, {"size": 256}, frames=NAMES)
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(tmp_path, SHARD, {"size": 256}, frames=[*NAMES, "clip_000004"])
    assert "holds 3 frame(s) where its extraction holds 4 now" in caplog.text


def _photos_shard(folder: Path, names: list[str], output: Path) -> Shard:
    """A files shard of ``names`` (one photo each in ``folder``), finished into ``output`` with one face a frame."""
    files = tuple(str(folder / f"{name}.jpg") for name in names)
    for file in files:
        if not Path(file).exists():
            Path(file).write_bytes(b"jpeg of " + file.encode())
    shard = Shard(source=str(folder), number=0, kind=FILES, first=0, last=len(names) - 1, files=files,
                  names=tuple(names))
    output.mkdir(exist_ok=True)
    journal = ShardJournalWriter(output, shard, {"size": 256})
    for index, (name, file) in enumerate(zip(names, files)):
        face = Face(Detection((1.0, 2.0, 30.0, 40.0), 0.9), crop_file=f"{name}_0.png", crop_sha256="0" * 64)
        (output / face.crop_file).write_bytes(b"png")
        journal.write(journal_line(FrameRecord(Frame(name=name, source=file, index=index), width=64, height=48,
                                               faces=[face])))
    journal.commit()
    return shard


def test_a_files_shard_whose_place_in_the_folder_holds_other_photos_now_runs_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A photo added before the shard's (or one removed) moves every later photo to another
    shard: the journal of the photos the shard held is no finished shard of the photos it holds."""
    photos, out = tmp_path / "photos", tmp_path / "faces"
    photos.mkdir()
    shard = _photos_shard(photos, ["b", "c"], out)
    assert finished(out, shard, {"size": 256})
    (photos / "a.jpg").write_bytes(b"a new photo")
    now = Shard(source=str(photos), number=0, kind=FILES, first=0, last=1,
                files=(str(photos / "a.jpg"), str(photos / "b.jpg")), names=("a", "b"))
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(out, now, {"size": 256})
    assert "holds other photos than its place in the folder holds now" in caplog.text, caplog.text
    assert not shard_journal(out, now).exists()


def test_a_files_shard_with_a_photo_replaced_since_runs_again_without_that_photos_face_files(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    photos, out = tmp_path / "photos", tmp_path / "faces"
    photos.mkdir()
    shard = _photos_shard(photos, ["a", "b"], out)
    written = max(os.stat(photos / name).st_ctime_ns for name in ("a.jpg", "b.jpg"))
    os.utime(shard_journal(out, shard), ns=(written, written))  # the journal landed after both photos
    time.sleep(0.05)  # past the clock's tick
    (photos / "b.jpg").write_bytes(b"another photo under b's name")
    with caplog.at_level(logging.WARNING, logger="facekit"):
        assert not finished(out, shard, {"size": 256})
    assert "1 of its photos changed since" in caplog.text, caplog.text
    assert (out / "a_0.png").exists() and not (out / "b_0.png").exists()


def test_a_files_shard_journal_from_before_it_named_its_photos_is_kept_while_they_are_the_shards(
        tmp_path: Path) -> None:
    photos, out = tmp_path / "photos", tmp_path / "faces"
    photos.mkdir()
    shard = _photos_shard(photos, ["a", "b"], out)
    path = shard_journal(out, shard)
    lines = path.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    del header["shard"]["names"]
    path.write_bytes((json.dumps(header) + "\n").encode() + b"".join(lines[1:]))
    assert finished(out, shard, {"size": 256})
    other = Shard(source=str(photos), number=0, kind=FILES, first=0, last=1,
                  files=(str(photos / "a.jpg"), str(photos / "c.jpg")), names=("a", "c"))
    assert not finished(out, other, {"size": 256})
