"""Frame sampling of a video (``sample.every_n``, ``sample.fps``, ``sample.start``/``end``):
which frames are read, that they keep their numbers in the video, that frames left out are
never converted to pixels, and that a rerun with other sampling is refused."""
from __future__ import annotations

import fractions
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

import facekit.media.sources as sources
from cli_helpers import file_hashes, load_json, run_facekit
from conftest import DATA, SCENES, require_data
from facekit.app.schema import SampleSchema, register_schema
from facekit.app.tasks.settings import sampling
from facekit.errors import ConfigError, FacekitError
from facekit.media import Sampling, open_input

CLIP = DATA / "video" / "short_hamilton_clip.mp4"  # 275 frames at 29.97 a second
CLIP_FRAMES = 275
#: The presentation times (ms) of the variable-frame-rate video the tests make: bursts and gaps
#: that a frame rate cannot describe, chosen so that no requested time falls halfway between two.
VFR_MS = [0, 40, 70, 150, 160, 170, 400, 410, 700, 1000]


def _names(stem: str, numbers: Any) -> list[str]:
    return [f"{stem}_{n:06d}" for n in numbers]


def _vfr_video(path: Path, times_ms: list[int] = VFR_MS) -> Path:
    """H.264 (with B-frames: decoding order is not presentation order) in MP4, one frame at each
    time of ``times_ms``; frame ``i`` (0-based) is flat grey at ``20 * i``, so its pixels say which
    frame was decoded."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, ms in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 20 * i, np.uint8), format="bgr24")
            frame.pts, frame.time_base = ms, fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def vfr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _vfr_video(tmp_path_factory.mktemp("vfr") / "vfr.mp4")


class CountingCapture:
    """``cv2.VideoCapture`` that counts its grabs and retrieves (conversions to BGR pixels)."""

    def __init__(self, capture: Any, counts: dict[str, int]) -> None:
        self._capture, self.counts = capture, counts

    def grab(self) -> bool:
        self.counts["grab"] += 1
        return self._capture.grab()

    def retrieve(self, *args: Any) -> Any:
        self.counts["retrieve"] += 1
        return self._capture.retrieve(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._capture, name)


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Grabs and retrieves of every video the test reads through facekit.media."""
    counted = {"grab": 0, "retrieve": 0}
    opened = sources.video_capture
    monkeypatch.setattr(sources, "video_capture", lambda path: CountingCapture(opened(path), counted))
    return counted


def _read(path: Path, sampling: Sampling, foretold: bool = True) -> list[tuple[int, Any]]:
    """(number, pixels) of each frame a read of ``path`` gives; with ``foretold``, checks that
    ``len`` said how many (it reckons ``start`` and ``end`` by the header's frame rate, which a
    variable-rate video's frames do not keep)."""
    source = open_input(path, sampling=sampling)
    frames = [(frame.index, frame.image) for frame in source.frames()]
    if foretold:
        assert len(source) == len(frames)
    return frames


# --- which frames, read directly -------------------------------------------------------------

def test_every_n_keeps_frames_1_n_plus_1_and_never_retrieves_the_others(counts: dict[str, int]) -> None:
    require_data()
    numbers = [number for number, _ in _read(CLIP, Sampling(every_n=5))]
    assert numbers == list(range(1, CLIP_FRAMES + 1, 5))  # 1, 6, ..., 271
    # every frame grabbed (decoded), then one failed grab: every frame the header counts was read,
    # so it is the end, not damage (1,000 more were tried, 13-19 ms a video)
    assert counts == {"grab": CLIP_FRAMES + 1, "retrieve": 55}


def test_fps_keeps_the_frame_nearest_each_requested_time_of_a_variable_rate_video(
        vfr: Path, counts: dict[str, int]) -> None:
    """10 a second asks for 0, 100, ..., 1000 ms: the nearest frames are those at 0, 70, 170,
    400 (nearest to both 300 and 400, kept once), 410, 700 (600, 700 and 800) and 1000 (900 and
    1000). Frame numbers from the average rate (19.5 a second) would pick others."""
    frames = _read(vfr, Sampling(fps=10))
    assert [number for number, _ in frames] == [1, 3, 6, 7, 8, 9, 10]
    for number, image in frames:  # the pixels are those of the frame at that time
        assert abs(float(image.mean()) - 20 * (number - 1)) < 4, number
    assert counts == {"grab": len(VFR_MS) + 1, "retrieve": 7}


def test_fps_keeps_the_earlier_frame_when_two_are_equally_near_a_requested_time(tmp_path: Path) -> None:
    """20 a second asks for 0, 50, 100 and 150 ms: 50 lies halfway between the frames at 40 and
    60 ms, 150 between those at 140 and 160; the earlier of each pair is kept."""
    video = _vfr_video(tmp_path / "ties.mp4", [0, 40, 60, 100, 140, 160])
    frames = _read(video, Sampling(fps=20))
    assert [number for number, _ in frames] == [1, 2, 4, 5]
    for number, image in frames:
        assert abs(float(image.mean()) - 20 * (number - 1)) < 4, number


def test_fps_above_the_video_rate_keeps_every_frame_once(vfr: Path) -> None:
    assert [number for number, _ in _read(vfr, Sampling(fps=1000))] == list(range(1, len(VFR_MS) + 1))


def test_a_rate_far_above_the_video_rate_keeps_every_frame_once_without_a_step_a_moment(vfr: Path) -> None:
    """1e12 a second asked for a moment each picosecond of the video (hours for one clip), and a
    library caller's infinite rate for a moment each 0 ms, for ever."""
    everything = list(range(1, len(VFR_MS) + 1))
    assert [number for number, _ in _read(vfr, Sampling(fps=1e12))] == everything
    assert [number for number, _ in _read(vfr, Sampling(fps=math.inf, start=0.05))] == everything[2:]


def test_fps_counts_its_steady_times_from_start(vfr: Path) -> None:
    """From 0.15 s at 4 a second: 150, 400, 650 and 900 ms: the frames at 150, 400, 700 and 1000."""
    assert [number for number, _ in _read(vfr, Sampling(fps=4, start=0.15))] == [4, 7, 9, 10]


def test_start_and_end_cut_by_time_and_reading_stops_at_the_end(vfr: Path, counts: dict[str, int]) -> None:
    """From 0.15 s up to 0.41 s, not included: the frames at 150, 160, 170 and 400 ms. The frame
    at 410 ms is grabbed to learn its time, and nothing after it."""
    frames = _read(vfr, Sampling(start=0.15, end=0.41), foretold=False)
    assert [number for number, _ in frames] == [4, 5, 6, 7]
    assert counts == {"grab": 8, "retrieve": 4}


def test_every_n_counts_from_the_first_frame_of_the_video_whatever_the_start() -> None:
    """From 2 s (frame 61 is the first at or after it, at 2.002 s) to 3 s (frame 91, at 3.003 s,
    is the first left out): every 5th frame of the video in between."""
    require_data()
    numbers = [number for number, _ in _read(CLIP, Sampling(every_n=5, start=2, end=3))]
    assert numbers == [61, 66, 71, 76, 81, 86]
    assert [number for number, _ in _read(CLIP, Sampling(every_n=7, start=2, end=3))] == [64, 71, 78, 85]


def test_sampled_frames_are_the_same_pixels_as_in_an_unsampled_read() -> None:
    require_data()
    every = dict(_read(CLIP, Sampling()))
    for number, image in _read(CLIP, Sampling(every_n=30, start=1)):
        np.testing.assert_array_equal(image, every[number])


def test_a_start_after_the_video_ends_is_refused_by_its_own_length_not_the_average_rates(vfr: Path) -> None:
    """10 frames over 1 s at an average 19.5 a second: 0.51 s by the header's rate. A start at 0.6 s
    keeps the frames at 0.7 and 1.0 s; one at 5 s is refused before any frame is read."""
    with pytest.raises(FacekitError, match=r"sample.start=5 s is past the end of .*vfr.mp4 \(its last frame is at 1 s\)"):
        open_input(vfr, sampling=Sampling(start=5))
    assert [number for number, _ in _read(vfr, Sampling(start=0.6), foretold=False)] == [9, 10]


def test_images_ignore_sampling(data: Path) -> None:
    source = open_input(SCENES, sampling=Sampling(every_n=5, start=1))
    assert len(source) == len(source.files) and not source.sampling.active
    assert len(list(source.frames(decode=False))) == len(source.files)


# --- the settings ----------------------------------------------------------------------------

def _compose(*overrides: str):
    register_schema()
    with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_the_sample_node_is_typed_and_reads_every_frame_by_default() -> None:
    cfg = _compose()
    assert OmegaConf.get_type(cfg.sample) is SampleSchema
    assert OmegaConf.to_container(cfg.sample) == {"every_n": 1, "fps": None, "start": None, "end": None}
    assert sampling(cfg) == Sampling() and not sampling(cfg).active


@pytest.mark.parametrize(("overrides", "expected"), [
    (["sample.every_n=5"], Sampling(every_n=5)),
    (["sample.fps=2.5"], Sampling(fps=2.5)),
    (["sample.start=12.5", "sample.end=20"], Sampling(start=12.5, end=20)),
    (["sample.start=00:01:02.5", "sample.end=1:03:00"], Sampling(start=62.5, end=3780)),
])
def test_sample_values_as_users_type_them(overrides: list[str], expected: Sampling) -> None:
    assert sampling(_compose(*overrides)) == expected


@pytest.mark.parametrize(("overrides", "expected"), [
    (["sample.every_n=0"], "sample.every_n must be a whole number of frames, 1 or more"),
    (["sample.fps=0"], "sample.fps must be a positive number of frames a second, got 0.0"),
    (["sample.fps=inf"], "sample.fps must be a positive number of frames a second, got inf"),
    (["sample.fps=2", "sample.every_n=5"], "sample.every_n=5 and sample.fps=2 both say how densely to sample; "
                                           "set one of them"),
    (["sample.start=soon"], "sample.start: 'soon' is not a time; give seconds (12.5) or HH:MM:SS[.mmm]"),
    (["sample.end=00:61:00"], "sample.end: '00:61:00': minutes and seconds run to 59"),
    (["sample.start=-1"], "sample.start: '-1' is not a time from the start of the video"),
    (["sample.start=20", "sample.end=00:00:12.5"], "sample.start (20 s) must come before sample.end (12.5 s)"),
    (["sample.end=0"], "sample.end=0 s keeps no frame"),
])
def test_wrong_sample_values_are_refused_in_one_line(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        sampling(_compose(*overrides))
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_wrong_sample_value_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    require_data()
    result = run_facekit(f"input={CLIP}", "sample.every_n=0", f"output={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == (
        "facekit: error: sample.every_n must be a whole number of frames, 1 or more (1: every frame), got 0")
    assert not (tmp_path / "out").exists()


# --- through the command line ----------------------------------------------------------------

class Run:
    def __init__(self, out: Path, *args: str) -> None:
        result = run_facekit(f"input={CLIP}", f"output={out}", "runner.progress=false", *args, cwd=out.parent,
                             env={"FACEKIT_HOME": str(out.parent / "facekit_home")})  # no cache shared between runs
        assert result.returncode == 0, result.stderr
        self.out, self.stderr = out, " ".join(result.stderr.split())
        self.document = load_json(out / "alignments.json")
        self.frames = self.document["frames"]
        self.files = file_hashes(out, "*.png")


@pytest.fixture(scope="module")
def every_frame(tmp_path_factory: pytest.TempPathFactory) -> Run:
    require_data()
    return Run(tmp_path_factory.mktemp("every") / "faces", "runner.workers=0")


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_every_5th_frame_through_the_cli_gives_those_frames_and_their_faces(
        tmp_path: Path, every_frame: Run, workers: int) -> None:
    run = Run(tmp_path / "faces", "sample.every_n=5", f"runner.workers={workers}")
    wanted = _names(CLIP.stem, range(1, CLIP_FRAMES + 1, 5))
    assert list(run.frames) == wanted
    assert ("in 2 worker processes" in run.stderr) == (workers == 2)
    assert "55 frame(s) (every 5th frame)" in run.stderr
    for name in wanted:  # the frame's own number, and its faces as an unsampled run finds them
        assert run.frames[name]["index"] == int(name.rsplit("_", 1)[1])
        assert run.frames[name] == every_frame.frames[name], name
    assert run.files == {name: digest for name, digest in every_frame.files.items()
                         if name.rsplit("_", 1)[0] in wanted}
    assert run.document["meta"]["fingerprint"]["sample"] == {"every_n": 5, "fps": None, "start": None, "end": None}


@pytest.mark.slow
def test_an_unsampled_run_records_no_sampling(every_frame: Run) -> None:
    """So outputs written before sampling existed still resume."""
    assert list(every_frame.frames) == _names(CLIP.stem, range(1, CLIP_FRAMES + 1))
    assert "sample" not in every_frame.document["meta"]
    assert "sample" not in every_frame.document["meta"]["fingerprint"]


def test_fps_through_the_cli_names_the_frames_nearest_the_times(tmp_path: Path, vfr: Path) -> None:
    out = tmp_path / "faces"
    result = run_facekit(f"input={vfr}", f"output={out}", "sample.fps=10", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(load_json(out / "alignments.json")["frames"]) == _names("vfr", [1, 3, 6, 7, 8, 9, 10])


@pytest.mark.slow
def test_a_rerun_with_other_sampling_is_refused_and_the_same_resumes(tmp_path: Path) -> None:
    require_data()
    out = tmp_path / "faces"
    stretch = ("sample.start=00:00:02", "sample.end=3")
    first = Run(out, "sample.every_n=5", *stretch)
    assert list(first.frames) == _names(CLIP.stem, [61, 66, 71, 76, 81, 86])
    refused = run_facekit(f"input={CLIP}", f"output={out}", "sample.every_n=10", *stretch, cwd=tmp_path)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(lines) == 1 and "written with other settings (sample.every_n: 5 there, 10 now)" in lines[0]
    unsampled = run_facekit(f"input={CLIP}", f"output={out}", cwd=tmp_path)
    assert unsampled.returncode != 0 and "sample.every_n: 5 there, 1 now" in unsampled.stderr, unsampled.stderr
    again = Run(out, "sample.every_n=5", *stretch)
    assert "nothing to do: 6 frames already done" in again.stderr and again.frames == first.frames


def test_a_whole_variable_rate_matroska_video_is_not_called_truncated_and_one_cut_short_is(tmp_path: Path) -> None:
    """Matroska gives no frame count: OpenCV's estimate from the duration and the average rate
    called a whole variable-rate file truncated (60 frames against 108). The packets tell."""
    import av

    times = [100 * i for i in range(30)] + [3000 + 20 * i for i in range(30)]
    whole = tmp_path / "whole.mkv"
    noise = np.random.default_rng(0)
    with av.open(str(whole), "w") as container:  # noise, so a cut at 60% still holds whole frames before it
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for ms in times:
            frame = av.VideoFrame.from_ndarray(noise.integers(0, 256, (120, 160, 3), np.uint8), format="bgr24")
            frame.pts, frame.time_base = ms, fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    read = sources.open_input(whole)
    assert read.frame_count > len(times)  # the estimate this is about
    assert len(list(read.frames())) == len(times) and read.ended_early_at is None
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    short = sources.open_input(cut)
    decoded = len(list(short.frames()))
    assert 0 < decoded < len(times) and short.ended_early_at == decoded
