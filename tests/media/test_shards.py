"""Shards of a source give exactly the frames a whole read gives: names, numbers and pixels."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import require_data
from facekit.media.sampling import Sampling
from facekit.media.shards import FILES, VIDEO, WHOLE, shard_frames, shards_of
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


def _textured_vfr_video(path: Path) -> Path:
    """H.264 with B-frames in MP4 at a variable frame rate (bursts and gaps), each frame a
    coloured gradient with noise, so that any difference in decoding or colour conversion
    (chroma upsampling, rounding) shows in the pixels."""
    import fractions

    import av
    import numpy as np

    rng = np.random.default_rng(3)
    times_ms = [0, 40, 70, 150, 160, 170, 400, 410, 700, 1000, 1010, 1500]
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, ms in enumerate(times_ms):
            image = np.empty((240, 320, 3), np.float32)
            image[..., 0] = ramp[None, :]
            image[..., 1] = ramp[:240, None] * (i + 1) % 256
            image[..., 2] = 255 - ramp[None, :]
            image += rng.normal(0, 25, image.shape)
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="bgr24")
            frame.pts, frame.time_base = ms, fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_a_variable_rate_video_decodes_to_the_same_pixels_in_shards_as_in_a_local_run(tmp_path: Path) -> None:
    """Local runs decode with OpenCV and Ray's shards with PyAV: every frame of a made
    variable-frame-rate video (textured, so conversion differences show) is equal both ways, as
    every frame of the shared videos is (above)."""
    video = _textured_vfr_video(tmp_path / "vfr.mp4")
    source = open_input(video)
    whole = _read(source.frames())
    assert len(whole) == 12
    for size in (1, 5):
        sharded = shards_of(source, size, 10)
        assert _read(f for shard in sharded.shards for f in shard_frames(shard, Sampling())) == whole


def _textured_video(path: Path, codec: str, frames: int = 40) -> Path:
    """``frames`` textured frames at 25 fps in ``path``'s container (by its suffix)."""
    import av
    import numpy as np

    rng = np.random.default_rng(5)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = 12
        for i in range(frames):
            image = np.clip(rng.normal(128, 40, (240, 320, 3)) + i * 3, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize(("name", "codec"), [("clip.ts", "libx264"), ("clip.mpg", "mpeg2video")])
def test_a_container_without_an_index_is_one_shard_read_whole_giving_every_frame(tmp_path: Path, name: str,
                                                                                 codec: str) -> None:
    """MPEG-TS and MPEG-PS have no index: a seek lands near its target by bitrate, and every
    shard of such a video failed ("was not where seeking put it"). Read whole, it is a local read."""
    source = open_input(_textured_video(tmp_path / name, codec))
    whole = _read(source.frames())
    assert len(whole) == 40
    sharded = shards_of(source, 10, 10)
    assert [s.kind for s in sharded.shards] == [WHOLE]
    assert _read(f for shard in sharded.shards for f in shard_frames(shard, Sampling())) == whole


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"], ids=["h264-b-frames", "mpeg4"])
def test_an_avi_is_sampled_by_its_frame_period_and_its_shards_give_a_whole_reads_frames(tmp_path: Path,
                                                                                        codec: str) -> None:
    """An AVI keeps no frame times: FFmpeg guesses them from the frames' order, off by the
    decoder's delay with B-frames (H.264's). sample.fps kept frames 5, 10, ... of a 25 frames/s
    AVI, never the first, and its shards' frames carried guessed times no packet had."""
    source_path = _textured_video(tmp_path / "clip.avi", codec)
    for sampling, numbers in ((Sampling(fps=5.0), range(1, 41, 5)), (Sampling(fps=5.0, start=0.4), range(11, 41, 5)),
                              (Sampling(), range(1, 41))):
        source = open_input(source_path, sampling=sampling)
        whole = _read(source.frames())
        assert [index for _, index, _ in whole] == list(numbers), (codec, sampling)
        sharded = shards_of(source, 10, 10)
        assert _read(f for shard in sharded.shards for f in shard_frames(shard, sampling)) == whole, (codec, sampling)
    means = [float(f.image.mean()) for f in open_input(source_path).frames()]
    assert means == sorted(means)  # frame N is the Nth shown: each is brighter than the one before


def test_a_damaged_stretch_is_passed_over_in_shards_as_a_whole_read_passes_it_over(tmp_path: Path) -> None:
    """Packets the decoder refuses failed the shard, and so its source on every rerun on Ray,
    where a local run warns and goes on. Shards now give as many frames as the whole read; the
    frames before the damage are the same frames under the same names (after it, a whole read
    numbers frames in decoding order, a shard by their place in the stream)."""
    data = bytearray((require_data() / "video" / "faceswap_test.mp4").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20_000] = bytes(20_000)
    clip = tmp_path / "damaged.mp4"
    clip.write_bytes(bytes(data))
    source = open_input(clip)
    whole = _read(source.frames())
    assert len(whole) < 91 and source.skipped == {}  # the whole read passes the stretch over
    for size in (13, 91):
        sharded = shards_of(source, size, 10)
        assert {s.kind for s in sharded.shards} == {VIDEO}
        frames = _read(f for shard in sharded.shards for f in shard_frames(shard, Sampling()))
        assert len(frames) == len(whole), size
        first_lost = next(n for n, (name, _, _) in enumerate(frames, start=1) if name != f"damaged_{n:06d}")
        assert frames[:first_lost - 1] == whole[:first_lost - 1] and first_lost > 20, size


def _trimmed_without_reencoding(path: Path, frames: int = 60, cut: int = 5) -> Path:
    """The shared clip's first ``frames`` packets copied as ``ffmpeg -ss -c copy`` writes a trim:
    the ``cut`` frames before the cut are kept (the frames after need them to decode) and an edit
    list marks them discarded; players and OpenCV show ``frames - cut``."""
    import av

    with av.open(str(require_data() / "video" / "short_hamilton_clip.mp4")) as clip:
        stream = clip.streams.video[0]
        packets = [p for p in clip.demux(stream) if p.size][:frames]
        offset = sorted(p.pts for p in packets)[cut]
        with av.open(str(path), "w") as out:
            copy = out.add_stream_from_template(stream)
            for packet in packets:
                packet.pts -= offset
                packet.dts -= offset
                packet.stream = copy
                out.mux(packet)
    return path


@pytest.mark.parametrize("sampling", [Sampling(), Sampling(fps=5.0)], ids=["every-frame", "fps"])
def test_a_video_trimmed_without_reencoding_gives_its_shown_frames_alike_in_shards_and_a_whole_read(
        tmp_path: Path, sampling: Sampling, caplog: pytest.LogCaptureFixture) -> None:
    """Its discarded frames were counted as frames from the packets: shards named every frame 5
    too late and the first shard failed ("frame 1 was not where seeking put it"), a local run
    called the file truncated, and sample.fps left out its first frame."""
    video = _trimmed_without_reencoding(tmp_path / "trimmed.mp4")
    source = open_input(video, sampling=sampling)
    whole = _read(source.frames())
    names = [name for name, _, _ in whole]
    assert names == ([f"trimmed_{n:06d}" for n in range(1, 56)] if sampling.fps is None else
                     [f"trimmed_{n:06d}" for n in range(1, 56, 6)])
    sharded = shards_of(source, 20, 10)
    assert {s.kind for s in sharded.shards} == {VIDEO}
    assert _read(f for shard in sharded.shards for f in shard_frames(shard, sampling)) == whole
    assert "truncated" not in caplog.text


def test_a_matroska_video_whose_first_frame_is_late_is_not_called_truncated(tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Matroska's duration counts from 0: a file whose frames start at 2.5 s (cut with its times
    kept, a recorded live stream) read as 105 frames, and its 30 as "truncated or damaged"."""
    import fractions

    import av
    import numpy as np

    path = tmp_path / "late.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(30):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * k, np.uint8), format="rgb24")
            frame.pts, frame.time_base = 2500 + 33 * k, fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert len(list(open_input(path).frames())) == 30
    assert "truncated" not in caplog.text
