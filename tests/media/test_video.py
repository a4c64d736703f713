"""A real video through the CLI: frame naming, serial vs parallel, progress, resume after a stop."""
from __future__ import annotations

import re
import signal
import struct
import subprocess
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from cli_helpers import (ctrl_c_default, facekit_process, file_hashes, load_json, run_facekit, stop_with,
                         wait_for_frames)
from conftest import DATA, Extraction, require_data

VIDEO = DATA / "video" / "faceswap_test.mp4"


def _decoded_frame_count() -> int:
    """Ground truth from OpenCV itself, not from the container's header."""
    capture = cv2.VideoCapture(str(VIDEO))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def _text(stderr: str) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(stderr.split())


class Run:
    def __init__(self, out: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.out, self.result = out, result
        assert result.returncode == 0, result.stderr
        self.alignments = load_json(out / "alignments.json")
        self.files = file_hashes(out, "*.png")


def _own_home(work: Path) -> dict[str, str]:
    """A model and analysis cache of the run's own: a run must never be served another's results
    (the point here is to compare what serial and parallel passes compute)."""
    return {"FACEKIT_HOME": str(work / "facekit_home")}


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Serial passes with the progress bars on (the default)."""
    require_data()
    work = tmp_path_factory.mktemp("serial")
    out = work / "faces"
    return Run(out, run_facekit(f"input={VIDEO}", f"output={out}", "runner.mode=serial", cwd=work,
                                env=_own_home(work)))


@pytest.fixture(scope="module")
def parallel(extraction: Callable[..., Extraction]) -> Run:
    """One parallel pass in two worker processes, the run ``test_workers`` compares threads with."""
    require_data()
    run = extraction(f"input={VIDEO}", "runner.mode=parallel", "runner.workers=2")
    return Run(run.out, run.result)


def test_every_frame_is_named_and_recorded(serial: Run) -> None:
    count = _decoded_frame_count()
    assert count == 91
    frames = serial.alignments["frames"]
    assert list(frames) == [f"faceswap_test_{n:06d}" for n in range(1, count + 1)]
    for number, (name, frame) in enumerate(frames.items(), start=1):
        assert frame["index"] == number, name
        assert (frame["width"], frame["height"]) == (426, 240), name
        assert Path(frame["source"]).name == VIDEO.name
        for i, face in enumerate(frame["faces"]):
            assert face["crop"] == f"{name}_{i}.png"
            assert len(face["landmarks"]) == 68
    # one talking head throughout: a face in (nearly) every frame, never two
    faces = [len(f["faces"]) for f in frames.values()]
    assert max(faces) == 1 and sum(faces) >= 0.9 * count
    crops = {face["crop"] for f in frames.values() for face in f["faces"]}
    assert crops == set(serial.files)
    assert not (serial.out / "alignments.json.journal").exists()


def _sideways_phone_video(dest: Path) -> Path:
    """VIDEO as a phone stores a portrait recording: the pixels turned a quarter left, and the
    track header's display matrix (ISO 14496-12 tkhd) telling players to turn them a quarter right."""
    capture = cv2.VideoCapture(str(VIDEO))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while (frame := capture.read()[1]) is not None:
        frames.append(cv2.rotate(frame, cv2.ROTATE_90_COUNTERCLOCKWISE))
    capture.release()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    data = bytearray(dest.read_bytes())
    (moov,) = [box for box in _boxes(data, 0, len(data)) if box[2] == b"moov"]
    for start, size, kind in _boxes(data, moov[0] + 8, moov[0] + moov[1]):
        if kind == b"trak":
            (tkhd,) = [box for box in _boxes(data, start + 8, start + size) if box[2] == b"tkhd"]
            version = data[tkhd[0] + 8]
            matrix = tkhd[0] + 12 + (20 if version == 0 else 32) + 16  # past times, ids, layer, volume
            struct.pack_into(">9i", data, matrix, 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    dest.write_bytes(data)
    return dest


def _boxes(data: bytearray, start: int, end: int) -> list[tuple[int, int, bytes]]:
    """(offset, size, type) of the MP4 boxes between ``start`` and ``end``."""
    found = []
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        found.append((start, size, kind))
        start += size
    return found


@pytest.mark.slow
def test_a_phone_video_stored_sideways_is_read_upright(tmp_path: Path, parallel: Run) -> None:
    """Phones store portrait video sideways with a rotation in the header; frames, faces and
    landmarks are those of the video as players show it (sideways, YuNet finds a third fewer)."""
    video = _sideways_phone_video(tmp_path / "phone.mp4")
    out = tmp_path / "faces"
    run = Run(out, run_facekit(f"input={video}", f"output={out}", "runner.progress=false", cwd=tmp_path))
    frames = run.alignments["frames"]
    assert len(frames) == 91 and all((f["width"], f["height"]) == (426, 240) for f in frames.values())
    upright = parallel.alignments["frames"]
    faces = sum(len(f["faces"]) for f in frames.values())
    assert faces >= 0.95 * sum(len(f["faces"]) for f in upright.values())
    for name, frame in frames.items():  # the same face where the upright video has it
        theirs = upright[name.replace("phone", "faceswap_test")]["faces"]
        if frame["faces"] and theirs:
            np.testing.assert_allclose(frame["faces"][0]["box"], theirs[0]["box"], atol=8)


def test_serial_and_parallel_give_identical_results(serial: Run, parallel: Run) -> None:
    assert parallel.alignments["frames"] == serial.alignments["frames"]  # boxes, landmarks, crop hashes
    assert parallel.files == serial.files  # the face files, byte for byte
    assert "serial passes" in _text(serial.result.stderr)
    assert "parallel passes" in _text(parallel.result.stderr)


def test_summary_names_frames_and_faces(serial: Run, parallel: Run) -> None:
    faces = sum(len(f["faces"]) for f in serial.alignments["frames"].values())
    for run in (serial, parallel):
        match = re.search(r"done: (\d+) frames?, (\d+) faces?", _text(run.result.stderr))
        assert match, run.result.stderr
        assert (int(match[1]), int(match[2])) == (91, faces)


def test_progress_bars_name_each_pass(serial: Run, parallel: Run) -> None:
    text = _text(serial.result.stderr)
    assert "pass 1 of 2: detect" in text and "pass 2 of 2: align" in text
    assert text.index("pass 1 of 2: detect") < text.index("pass 2 of 2: align")
    assert "91/91" in text
    assert "pass 1 of" not in _text(parallel.result.stderr)  # runner.progress=false: no bars


def test_rerun_into_the_same_folder_resumes(serial: Run) -> None:
    # FACEKIT_HOME is this test's own (conftest): what resumes is the output folder, not a cache
    result = run_facekit(f"input={VIDEO}", f"output={serial.out}", "runner.mode=serial",
                         "runner.progress=false", cwd=serial.out.parent)
    assert result.returncode == 0, result.stderr
    text = _text(result.stderr)
    assert "nothing to do: 91 frames already done" in text
    assert load_json(serial.out / "alignments.json") == serial.alignments
    assert file_hashes(serial.out, "*.png") == serial.files


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"], ids=["threads", "workers"])
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_keeps_finished_frames_and_resumes(tmp_path: Path, parallel: Run, stop: int,
                                                           workers: str) -> None:
    """Ctrl-C or SIGTERM after a few frames are journaled: the run exits as interrupted, keeping
    every frame journaled before the signal; the rerun does only the rest and ends with the same
    result as an uninterrupted run. With threads and with worker processes (which ignore both
    signals and are told to stop). Only a hang fails on time (``HANG_S``), never a slow stop."""
    out = tmp_path / "faces"
    journal = out / "alignments.json.journal"
    with facekit_process(f"input={VIDEO}", f"output={out}", "runner.mode=parallel", "runner.progress=false",
                         "runner.queue_size=1", f"runner.workers={workers}",
                         cwd=tmp_path, preexec=ctrl_c_default) as process:  # FACEKIT_HOME: this test's own
        before = wait_for_frames(process, out, 3)
        stderr = stop_with(process, stop)
    assert process.returncode == 128 + stop, f"the run was not interrupted (exit {process.returncode}): {stderr}"
    assert "interrupted" in stderr and "Traceback" not in stderr

    partial = load_json(out / "alignments.json")  # the journal was folded into the file on the way out
    done = len(partial["frames"])
    assert list(partial["frames"])[:len(before)] == before and done < 91
    assert not journal.exists()
    for name, frame in partial["frames"].items():
        assert frame == parallel.alignments["frames"][name], name

    result = run_facekit(f"input={VIDEO}", f"output={out}", "runner.mode=parallel", "runner.progress=false",
                         f"runner.workers={workers}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = _text(result.stderr)
    assert f"resuming: {done} frame(s) already done" in text
    assert f"done: {91 - done} frames" in text
    assert load_json(out / "alignments.json")["frames"] == parallel.alignments["frames"]
    assert file_hashes(out, "*.png") == parallel.files


def test_a_garbled_line_mid_journal_is_named_and_only_its_frame_is_done_again(tmp_path: Path, parallel: Run) -> None:
    """A run killed (SIGKILL) after 40 frames leaves its journal; a line in its middle is then
    overwritten with garbage. The rerun names that line in one warning, keeps every frame before
    and after it, does that frame alone again, and ends equal to an uninterrupted run."""
    out = tmp_path / "faces"
    args = (f"input={VIDEO}", f"output={out}", "runner.mode=parallel", "runner.progress=false")
    with facekit_process(*args, "runner.queue_size=1", cwd=tmp_path) as process:
        wait_for_frames(process, out, 40)
        process.kill()  # the whole session goes on the way out: nothing folds the journal
    journal = out / "alignments.json.journal"
    lines = journal.read_bytes().split(b"\n")[:-1]  # whole lines only: the kill may have torn the last
    middle = len(lines) // 2  # 0-based: the header is line 1, this is line middle + 1
    lines[middle] = lines[middle][:40] + b"\xff\x00 garbled \x00" + lines[middle][60:]
    journal.write_bytes(b"\n".join(lines) + b"\n")

    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = _text(result.stderr)
    kept = len(lines) - 2  # the header and the garbled line left out
    assert text.count(f"line {middle + 1} is damaged: its frame is done again; the {kept} whole frame "
                      "line(s) around it are kept") == 1, text
    assert f"resuming: {kept} frame(s) already done" in text and f"done: {91 - kept} frames" in text, text
    assert load_json(out / "alignments.json")["frames"] == parallel.alignments["frames"]
    assert file_hashes(out, "*.png") == parallel.files


def test_a_video_file_with_sound_and_no_picture_is_named_as_such(tmp_path: Path) -> None:
    """An audio-only .mp4 was "truncated, damaged, or a codec OpenCV lacks"."""
    import av

    from facekit.errors import FacekitError
    from facekit.media.sources import open_input

    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for n in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, n * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(FacekitError, match=r"voice.mp4' holds no video stream \(only audio\)"):
        open_input(path)
