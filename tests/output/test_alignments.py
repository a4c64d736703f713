"""The alignments file: JSON round trip, the journal, resuming, atomic writes, fingerprints."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facekit.output.alignments import (FORMAT, VERSION, AlignmentsWriter, checked_alignments_meta, face_from_dict,
                                face_to_dict, journal_line, journal_path, load_alignments, load_alignments_meta,
                                record_from_dict, record_to_dict)
from facekit.errors import FacekitError, OutputError
from facekit.records import Detection, Face, Frame, FrameRecord

META = {"fingerprint": {"detector": "yunet", "aligner": "facemesh", "size": 256, "padding": 0.15},
        "facekit": "0.1.0"}


def make_record(index: int, faces: int = 2, source: str = "clip.mp4") -> FrameRecord:
    rng = np.random.default_rng(index)
    found = []
    for _ in range(faces):
        points5 = rng.uniform(0, 400, (5, 2)).astype(np.float32)
        found.append(Face(Detection((10.123, 20.456, 110.789, 140.001), 0.987654, points5),
                          landmarks=rng.uniform(0, 400, (68, 2)).astype(np.float32),
                          crop_file=f"clip_{index:06d}_0.png", crop_sha256="ab" * 32))
    return FrameRecord(Frame(f"clip_{index:06d}", source, index), width=640, height=360, faces=found)


def write_frames(writer: AlignmentsWriter, indices) -> None:
    for index in indices:
        writer.write(make_record(index))


def crash(writer: AlignmentsWriter) -> None:
    """What a killed process leaves: the journal as written, never folded (handle closed only
    so the test does not leak it)."""
    writer._journal.close()


def temp_files(folder) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --- records <-> JSON ------------------------------------------------------------------------

def test_face_round_trip_rounds_pixels():
    face = make_record(1).faces[0]
    back = face_from_dict(json.loads(json.dumps(face_to_dict(face))))
    assert back.detection.box == (10.12, 20.46, 110.79, 140.0)
    assert back.detection.score == pytest.approx(0.9877)
    np.testing.assert_allclose(back.detection.points5, face.detection.points5, atol=0.006)
    np.testing.assert_allclose(back.landmarks, face.landmarks, atol=0.006)
    assert (back.crop_file, back.crop_sha256) == (face.crop_file, "ab" * 32)
    assert back.keep is True and back.reason is None
    assert "keep" not in face_to_dict(face)


def test_optional_fields():
    face = Face(Detection((0, 0, 1, 1), 0.5), keep=False, reason="distance 0.71 > 0.40")
    entry = face_to_dict(face)
    assert entry["points5"] is None and entry["landmarks"] is None
    assert (entry["keep"], entry["reason"]) == (False, "distance 0.71 > 0.40")
    back = face_from_dict(entry)
    assert back.detection.points5 is None and back.landmarks is None and back.keep is False


def test_record_round_trip():
    record = make_record(7)
    back = record_from_dict("clip_000007", json.loads(json.dumps(record_to_dict(record))))
    assert (back.frame.name, back.frame.source, back.frame.index) == ("clip_000007", "clip.mp4", 7)
    assert (back.width, back.height, len(back.faces)) == (640, 360, 2)


# --- the writer ------------------------------------------------------------------------------

def test_writer_round_trip(tmp_path):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(5))
    document = load_alignments(path)
    assert (document["format"], document["version"], document["meta"]) == (FORMAT, VERSION, META)
    assert list(document["frames"]) == [f"clip_{i:06d}" for i in range(5)]
    assert document["frames"]["clip_000003"] == json.loads(json.dumps(record_to_dict(make_record(3))))
    assert not journal_path(path).exists() and temp_files(tmp_path) == []


def test_the_meta_is_read_from_the_header_line_without_the_frames_and_from_any_other_layout(tmp_path):
    """A file facekit wrote gives its meta from line 1 alone (the frames after it may be
    damaged; a re-crop reads them later and says so); one written pretty-printed, or with the
    keys in another order, gives the same meta from the whole document; a wrong version is
    refused either way."""
    path = tmp_path / "alignments.json"
    meta = {**META, "input": "vidéo, \"quoted\"\nand a new line.mp4"}
    with AlignmentsWriter(path, meta) as writer:
        write_frames(writer, range(3))
    assert load_alignments_meta(path) == meta
    text = path.read_text(encoding="utf-8")
    path.write_text(text.splitlines()[0] + '\n"frames": {"clip_000000": {"sour', encoding="utf-8")
    assert load_alignments_meta(path) == meta
    document = json.loads(text)
    for layout in (json.dumps(document, indent=2), json.dumps({"frames": document["frames"], **document})):
        path.write_text(layout, encoding="utf-8")
        assert load_alignments_meta(path) == meta
    path.write_text(text.replace(f'"version": {VERSION}', f'"version": {VERSION + 1}', 1), encoding="utf-8")
    with pytest.raises(FacekitError, match="version"):
        load_alignments_meta(path)


def test_an_empty_run_still_writes_a_file(tmp_path):
    AlignmentsWriter(tmp_path / "a.json", META).close()
    assert load_alignments(tmp_path / "a.json")["frames"] == {}


def test_journal_survives_a_crash_and_the_rerun_resumes(tmp_path):
    path = tmp_path / "alignments.json"
    crashed = AlignmentsWriter(path, META, sync_every=2)
    write_frames(crashed, range(5))
    crash(crashed)
    assert not path.exists() and journal_path(path).exists()

    with AlignmentsWriter(path, META) as rerun:
        assert rerun.done_frames() == {f"clip_{i:06d}" for i in range(5)}
        write_frames(rerun, [3, 5, 6])  # 3 done again: must not appear twice
    frames = load_alignments(path)["frames"]
    assert sorted(frames) == [f"clip_{i:06d}" for i in range(7)]
    assert not journal_path(path).exists()


def test_a_finished_file_is_extended_by_a_rerun(tmp_path):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(3))
    with AlignmentsWriter(path, META) as writer:
        assert writer.done_frames() == {"clip_000000", "clip_000001", "clip_000002"}
        write_frames(writer, [3])
    assert len(load_alignments(path)["frames"]) == 4


def test_a_torn_last_journal_line_is_ignored(tmp_path):
    path = tmp_path / "alignments.json"
    writer = AlignmentsWriter(path, META)
    write_frames(writer, range(3))
    crash(writer)
    journal = journal_path(path)
    journal.write_bytes(journal.read_bytes()[:-40])  # the crash cut the last line short

    with AlignmentsWriter(path, META) as rerun:
        assert rerun.done_frames() == {"clip_000000", "clip_000001"}
        write_frames(rerun, [2])
    assert sorted(load_alignments(path)["frames"]) == ["clip_000000", "clip_000001", "clip_000002"]


def _garble(journal: Path, *numbers: int) -> None:
    """Lines ``numbers`` (from 1, the header) of the journal overwritten in place by a power cut's garbage."""
    lines = journal.read_bytes().splitlines(keepends=True)
    for number in numbers:
        line = lines[number - 1]
        lines[number - 1] = line[:30] + b"\0" * 20 + line[50:]
    journal.write_bytes(b"".join(lines))


def test_a_damaged_journal_line_is_named_and_only_its_frame_is_done_again(tmp_path, caplog):
    path = tmp_path / "alignments.json"
    writer = AlignmentsWriter(path, META)
    write_frames(writer, range(6))
    crash(writer)
    journal = journal_path(path)
    _garble(journal, 3)  # frame 1, in the middle

    with caplog.at_level("WARNING", logger="facekit"), AlignmentsWriter(path, META) as rerun:
        assert rerun.done_frames() == {f"clip_{i:06d}" for i in (0, 2, 3, 4, 5)}  # those after it kept
        assert b"\0" not in journal.read_bytes()  # from now on it holds only whole entries
        write_frames(rerun, [1])
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{journal}: line 3 is damaged: its frame is done again; the 5 whole frame line(s) "
                        "around it are kept"]
    frames = load_alignments(path)["frames"]
    assert frames == {f"clip_{i:06d}": json.loads(json.dumps(record_to_dict(make_record(i)))) for i in range(6)}


def test_every_damaged_journal_line_is_named_in_one_warning(tmp_path, caplog):
    path = tmp_path / "alignments.json"
    writer = AlignmentsWriter(path, META)
    write_frames(writer, range(6))
    crash(writer)
    _garble(journal_path(path), 2, 5, 7)  # the first frame, one in the middle and the last

    with caplog.at_level("WARNING", logger="facekit"), AlignmentsWriter(path, META) as rerun:
        assert rerun.done_frames() == {f"clip_{i:06d}" for i in (1, 2, 4)}
    assert [r.getMessage() for r in caplog.records] == [
        f"{journal_path(path)}: lines 2, 5 and 7 are damaged: their frames are done again; the 3 whole frame "
        "line(s) around them are kept"]
    assert sorted(load_alignments(path)["frames"]) == [f"clip_{i:06d}" for i in (1, 2, 4)]


def test_a_damaged_journal_header_says_that_every_frame_after_it_is_done_again(tmp_path, caplog):
    """The header holds the settings' fingerprint: without it no frame line can be trusted."""
    path = tmp_path / "alignments.json"
    writer = AlignmentsWriter(path, META)
    write_frames(writer, range(4))
    crash(writer)
    _garble(journal_path(path), 1)

    with caplog.at_level("WARNING", logger="facekit"), AlignmentsWriter(path, META) as rerun:
        assert rerun.done_frames() == set()
        write_frames(rerun, [0])
    assert [r.getMessage() for r in caplog.records] == [
        f"{journal_path(path)}: line 1, its header, is damaged, so its 4 frame line(s) cannot be checked "
        "against this run's settings: every frame is done again"]
    assert list(load_alignments(path)["frames"]) == ["clip_000000"]


def test_a_torn_header_starts_the_journal_afresh(tmp_path):
    path = tmp_path / "alignments.json"
    journal_path(path).write_bytes(b'{"format": "facekit-al')
    with AlignmentsWriter(path, META) as writer:
        assert writer.done_frames() == set()
        write_frames(writer, [0])
    assert list(load_alignments(path)["frames"]) == ["clip_000000"]


def test_saving_appends_to_the_journal_and_leaves_the_json_alone(tmp_path):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(2))
    before = path.stat()
    with AlignmentsWriter(path, META) as writer:
        sizes = []
        for index in range(2, 6):
            writer.write(make_record(index))
            sizes.append(journal_path(path).stat().st_size)
            assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_ino == before.st_ino
        steps = np.diff(sizes)
        assert (steps > 0).all() and steps.max() - steps.min() < 50  # one line a frame, O(1)
    assert path.stat().st_ino != before.st_ino  # replaced once, at close


def test_the_final_file_goes_through_a_temp_file_and_os_replace(tmp_path, monkeypatch):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(2))
    original = path.read_bytes()
    replaced = []
    real_replace = os.replace

    def failing_replace(src, dst):
        replaced.append((os.path.dirname(src), os.path.basename(src), load_alignments(src)))
        raise OSError("disk gone")

    writer = AlignmentsWriter(path, META)
    write_frames(writer, [2])
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"\(disk gone\); its frames are kept in alignments.json.journal"):
        writer.close()
    (folder, name, complete), = replaced  # the temp file was complete before the replace
    assert folder == str(tmp_path) and name.endswith(".tmp") and len(complete["frames"]) == 3
    assert path.read_bytes() == original and temp_files(tmp_path) == []
    assert journal_path(path).exists()  # nothing lost: a rerun folds it

    monkeypatch.setattr(os, "replace", real_replace)
    AlignmentsWriter(path, META).close()
    assert len(load_alignments(path)["frames"]) == 3 and temp_files(tmp_path) == []


def test_closing_after_an_error_keeps_the_finished_frames(tmp_path):
    path = tmp_path / "alignments.json"
    with pytest.raises(RuntimeError):
        with AlignmentsWriter(path, META) as writer:
            write_frames(writer, range(2))
            raise RuntimeError("a stage failed")
    assert len(load_alignments(path)["frames"]) == 2


def test_a_rerun_that_writes_no_frame_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, {**META, "input": "photos"}) as writer:
        write_frames(writer, range(3))
    before, stamp = path.read_bytes(), path.stat().st_mtime_ns
    with AlignmentsWriter(path, {**META, "input": "../elsewhere/photos"}):  # the same settings, named from elsewhere
        pass
    assert path.read_bytes() == before and path.stat().st_mtime_ns == stamp
    assert not journal_path(path).exists()


def test_an_error_before_the_first_frame_leaves_no_file_to_refuse_the_mended_command(tmp_path):
    path = tmp_path / "alignments.json"
    with pytest.raises(RuntimeError):
        with AlignmentsWriter(path, {**META, "fingerprint": {**META["fingerprint"], "size": -1}}):
            raise RuntimeError("a plugin option out of range fails the first frame")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with AlignmentsWriter(path, META) as writer:  # the same command, the option mended: not refused
        write_frames(writer, range(1))
    assert len(load_alignments(path)["frames"]) == 1


def test_an_error_before_the_first_frame_of_a_rerun_keeps_the_earlier_frames(tmp_path):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(2))
    with pytest.raises(RuntimeError):
        with AlignmentsWriter(path, META):
            raise RuntimeError("stopped")
    assert len(load_alignments(path)["frames"]) == 2


@pytest.mark.parametrize("finished", [True, False])
def test_another_fingerprint_is_refused(tmp_path, finished):
    path = tmp_path / "alignments.json"
    writer = AlignmentsWriter(path, META)
    write_frames(writer, range(2))
    writer.close() if finished else crash(writer)
    other = {**META, "fingerprint": {**META["fingerprint"], "aligner": "fan"}}
    with pytest.raises(FacekitError, match='aligner: "facemesh" there, "fan" now\\).*another output folder'):
        AlignmentsWriter(path, other)
    with AlignmentsWriter(path, {**META, "facekit": "0.2.0"}) as same_settings:  # meta may differ
        assert same_settings.done_frames() == {"clip_000000", "clip_000001"}


def test_writing_after_close_is_an_error(tmp_path):
    writer = AlignmentsWriter(tmp_path / "a.json", META)
    writer.close()
    writer.close()  # harmless
    with pytest.raises(ValueError, match="closed"):
        writer.write(make_record(0))


# --- loading ---------------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"format": "faceswap", "version": 1, "frames": {}}', "not a facekit alignments file"),
    ('{"format": "facekit-alignments", "version": 2, "frames": {}}', "version 2.*upgrade facekit"),
    ('{"format": "facekit-alignments", "version": "1", "frames": {}}', "version '1'"),
    ('{"format": "facekit-alignments", "version": 1}', "no \"frames\""),
])
def test_load_refuses_what_it_cannot_read(tmp_path, content, message):
    path = tmp_path / "alignments.json"
    path.write_text(content)
    with pytest.raises(FacekitError, match=message):
        load_alignments(path)
    with pytest.raises(FacekitError):
        AlignmentsWriter(path, META)
    assert not journal_path(path).exists()


def test_load_a_missing_file(tmp_path):
    with pytest.raises(FacekitError, match="no alignments file"):
        load_alignments(tmp_path / "missing.json")


# --- SIGKILL while the final file is written ---------------------------------------------------

KILLED_WRITER = '''
import os
import sys
sys.path[:0] = sys.argv[2].split(os.pathsep)
from test_alignments import META, write_frames
from facekit.output.alignments import AlignmentsWriter

path, start, stop = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])
writer = AlignmentsWriter(path, META, sync_every=1000)
write_frames(writer, range(start, stop))
print("FOLDING", flush=True)
writer.close()
print("FOLDED", flush=True)
'''


@pytest.mark.slow
@pytest.mark.parametrize("delay_ms", [0, 10, 30, 60, 100, 300])
def test_sigkill_while_saving_never_leaves_a_truncated_file(tmp_path, delay_ms):
    """A real child process is killed with SIGKILL at some moment of folding a large journal into
    alignments.json: the file left is the old whole one or the new whole one, and a rerun finds
    every frame the child wrote (from the file or from the journal)."""
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as first:
        write_frames(first, range(10))
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])]), "10", "6000"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "FOLDING"
        time.sleep(delay_ms / 1000)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    frames = load_alignments(path)["frames"]  # whole JSON, whatever moment the kill came at
    assert len(frames) in (10, 6000)
    with AlignmentsWriter(path, META) as rerun:
        assert rerun.done_frames() == {f"clip_{i:06d}" for i in range(6000)}
        assert temp_files(tmp_path) == []  # a killed fold's temp file is cleared away
    assert len(load_alignments(path)["frames"]) == 6000


def test_a_frame_written_again_keeps_its_place_in_the_folded_file(tmp_path):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, [1, 2, 3])
    with AlignmentsWriter(path, META) as writer:
        writer.redo({"clip_000002"})
        write_frames(writer, [2, 4])
    assert list(json.loads(path.read_text())["frames"]) == ["clip_000001", "clip_000002", "clip_000003", "clip_000004"]


def test_a_journal_holding_every_earlier_frame_gives_the_order_of_the_folded_file(tmp_path):
    """Ray's fold writes every finished shard again, in shard order: frames of a shard that
    failed in the earlier run go in their place, not after the earlier file's."""
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, [1, 3])  # the shard holding frame 2 failed
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, [1, 2, 3])
    assert list(json.loads(path.read_text())["frames"]) == ["clip_000001", "clip_000002", "clip_000003"]


def test_a_refusal_names_every_differing_setting_dotted_and_counts_past_five() -> None:
    from facekit.output.differences import setting_differences

    assert setting_differences({"size": 256, "sample": {"every_n": 1, "seed": 0}},
                               {"size": 128, "sample": {"every_n": 5, "seed": 0}}) == \
        "sample.every_n: 1 there, 5 now; size: 256 there, 128 now"
    many = setting_differences({f"k{i}": i for i in range(7)}, {f"k{i}": -i - 1 for i in range(7)})
    assert many.count(" there, ") == 5 and many.endswith("; and 2 more")
    assert setting_differences(None, {"size": 1}) == 'settings: null there, {"size": 1} now'
    # a group set on one side only is named key by key, not as JSON against null
    assert setting_differences({"size": 1, "quality": None}, {"size": 1, "quality": {"max_yaw": 10.0}}) == \
        "quality.max_yaw: unset there, 10.0 now"
    assert setting_differences({"masks": {"size": 128}}, {}) == "masks.size: 128 there, unset now"


def test_a_fingerprint_refusal_names_each_setting_as_the_command_does() -> None:
    """Not where the fingerprint keeps it (``plugins.detector.config.score_threshold``), and a
    key at null on one side (``sample.end``) is no difference from one left unset."""
    from facekit.output.differences import fingerprint_differences

    plugins = {"detector": {"name": "yunet", "config": {"score_threshold": 0.6}}}
    before = {"input": "/v.mp4", "plugins": plugins, "size": 256, "padding": 0.15, "filter": None}
    after = {**before, "plugins": {"detector": {"name": "yunet", "config": {"score_threshold": 0.8}}},
             "centering": "head", "sample": {"every_n": 2, "end": None},
             "masks": {"size": 128, "maskers": {"components": {}}}}
    assert fingerprint_differences(before, after) == (
        "detector.score_threshold: 0.6 there, 0.8 now; output.centering: \"legacy\" there, \"head\" now; "
        "output.mask_size: unset there, 128 now; output.masks: unset there, [\"components\"] now; "
        "sample.every_n: 1 there, 2 now")  # a setting at its default, which the fingerprint leaves out, named at it
    sampled = {**before, "sample": {"every_n": 1, "end": 2.0}}  # sample.end=2: every_n at its default is no difference
    assert fingerprint_differences(sampled, before) == "sample.end: 2.0 there, unset now"
    assert fingerprint_differences(before, {**before, "plugins": {"detector": {"name": "mtcnn", "config": {}}}}) == \
        '+detector: "yunet" there, "mtcnn" now; detector.score_threshold: 0.6 there, unset now'
    # a filter added: its plugin by name, not its options; its photos, not the threshold that came
    # with them (the plugin's default), the metric or the empty nrefs no command sets
    sface = {"name": "sface", "config": {"backend": "litert", "num_threads": 1}}
    filtered = {**before, "plugins": {**plugins, "identity": sface},
                "filter": {"refs": ["/a.jpg"], "nrefs": [], "threshold": 0.637, "metric": "cosine"}}
    assert fingerprint_differences(before, filtered) == (
        '+identity: unset there, "sface" now; filter.refs: unset there, ["/a.jpg"] now')
    # reference photos kept by their content are counted, never shown as digests no one typed
    by_content = {**filtered, "filter": {**filtered["filter"], "refs": ["sha256:" + "0" * 64, "sha256:" + "1" * 64]}}
    assert fingerprint_differences(by_content, before) == (
        '+identity: "sface" there, unset now; filter.refs: 2 reference photo(s) there, unset now')
    assert fingerprint_differences(filtered, {**filtered, "filter": {**filtered["filter"], "threshold": 0.5}}) == \
        "filter.threshold: 0.637 there, 0.5 now"
    # another video is named as the other input alone, not also as one replaced under its name
    one, other = {**before, "source": "1f2e"}, {**before, "input": "/w.mp4", "source": "3c4d"}
    assert fingerprint_differences(one, other) == 'input: "/v.mp4" there, "/w.mp4" now'
    assert fingerprint_differences(one, {**one, "source": "3c4d"}) == \
        'input\'s content (a video replaced under its name): "1f2e" there, "3c4d" now'


def test_a_file_from_before_the_inputs_content_was_kept_still_resumes() -> None:
    """Its fingerprint lacks ``source`` (a video's signature): compared without it; one that
    has it must hold this run's."""
    from facekit.output.differences import same_fingerprint

    before = {"input": "/v.mp4", "size": 256}
    assert same_fingerprint(before, {**before, "source": "ab"})
    assert not same_fingerprint({**before, "source": "cd"}, {**before, "source": "ab"})
    assert not same_fingerprint(before, {**before, "size": 128, "source": "ab"})
    assert not same_fingerprint({**before, "source": "ab"}, before)


def test_a_resumed_run_reads_the_earlier_file_a_line_at_a_time_never_whole(tmp_path, monkeypatch):
    """Opening (the fingerprint and the done frames), the face-file check and the fold read the
    file facekit wrote one frame line at a time: a 100,000-frame file is never held whole."""
    import facekit.output.alignments as alignments

    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(3))
    whole = []
    monkeypatch.setattr(alignments, "load_alignments", lambda p: whole.append(p) or load_alignments(p))
    with AlignmentsWriter(path, META) as writer:
        checked = dict(writer.done_faces())
        write_frames(writer, [3, 1])  # a new frame, and one done again: it keeps its place
    assert sorted(checked) == ["clip_000000", "clip_000001", "clip_000002"]
    assert checked["clip_000001"] == record_to_dict(make_record(1))["faces"]
    assert whole == []
    assert list(load_alignments(path)["frames"]) == ["clip_000000", "clip_000001", "clip_000002", "clip_000003"]


def test_a_pass_that_rewrites_every_frame_gives_the_order_after_an_interrupted_one(tmp_path):
    """Ray's fold writes every finished shard in order; when a full disk stopped an earlier fold,
    its journal holds some shards' frames already (here frames 0, 1 and 4): the new pass's
    order wins, where by the usual rule (first place) frames 2 and 3 would come last."""
    path = tmp_path / "alignments.json"
    first = AlignmentsWriter(path, META)
    for index in (0, 1, 4):
        first.write_line(journal_line(make_record(index)))
    crash(first)
    with AlignmentsWriter(path, META) as writer:
        writer.rewrite_in_order()
        for index in range(5):
            writer.write_line(journal_line(make_record(index)))
    assert list(load_alignments(path)["frames"]) == [f"clip_{i:06d}" for i in range(5)]


@pytest.mark.parametrize("layout", ["indented", "keys reordered"])
def test_an_earlier_file_in_another_layout_is_read_whole_and_extended_the_same(tmp_path, layout):
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(3))
    expected = load_alignments(path)
    document = dict(expected)
    text = json.dumps(document, indent=1) if layout == "indented" else json.dumps({"frames": document.pop("frames"), **document})
    path.write_text(text, encoding="utf-8")
    with AlignmentsWriter(path, META) as writer:
        assert writer.done_frames() == set(expected["frames"])
        assert dict(writer.done_faces())["clip_000002"] == expected["frames"]["clip_000002"]["faces"]
        write_frames(writer, [3])
    again = load_alignments(path)
    assert list(again["frames"]) == [*expected["frames"], "clip_000003"]
    assert all(again["frames"][name] == frame for name, frame in expected["frames"].items())


def test_the_checked_meta_reads_every_frame_line_and_refuses_a_damaged_file(tmp_path, monkeypatch):
    """What a Ray rerun checks before any shard runs: the meta, once every frame parses, read a
    line at a time (never whole) from a file facekit wrote."""
    import facekit.output.alignments as alignments

    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(3))
    whole = []
    monkeypatch.setattr(alignments, "load_alignments", lambda p: whole.append(p) or load_alignments(p))
    assert checked_alignments_meta(path) == META and whole == []
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([*lines[:3], lines[3][:40] + ",\n", *lines[4:]]), encoding="utf-8")
    with pytest.raises(FacekitError, match="not valid JSON"):
        checked_alignments_meta(path)


@pytest.mark.parametrize("damage", ["a frame line cut", "the end cut off"])
def test_an_earlier_file_damaged_between_its_lines_is_refused_as_before(tmp_path, damage):
    """Line by line or whole, a file that is not JSON is refused with the same message: a run
    never folds a damaged frame into its next file."""
    path = tmp_path / "alignments.json"
    with AlignmentsWriter(path, META) as writer:
        write_frames(writer, range(3))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if damage == "a frame line cut":
        lines[3] = lines[3][:40] + ",\n"
    else:
        lines = lines[:-1]
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(FacekitError, match="not valid JSON"):
        AlignmentsWriter(path, META)
