"""A source cut into shards: the unit one cluster worker takes, reruns after a failure, and a
rerun keeps once it is finished. A video's shard is a range of its frame numbers; a folder's, a
group of its files.

A shard must give exactly the frames, names and pixels a whole read gives
(``FrameSource.frames``), so that shards run anywhere fold into the file a local run writes.
OpenCV's ``CAP_PROP_POS_FRAMES`` is not exact on every codec, so a video shard is read with
PyAV: seek to the keyframe at or before the shard's first frame, decode forward, and drop the
frames before it. A frame's number comes from its timestamp's place among the stream's
timestamps (read from the packets, no decoding), which is the order OpenCV hands frames out
in; a frame that does not sit where its number says (a seek that landed late, a stream whose
timestamps repeat) fails the shard rather than renumbering. PyAV converts to BGR with the same
swscale call OpenCV makes (bicubic), so pixels match too.

A video that cannot be cut safely (timestamps that could not be read to the end, a display
rotation, which OpenCV applies and PyAV leaves to its caller, a container without an index to
seek by) becomes one shard read by ``FrameSource`` itself: slower on a cluster, never different.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from facekit.errors import FacekitError
from facekit.media.sampling import Sampling, shown, stream_times_ms
from facekit.media.sources import FrameSource, frame_names, open_input, utf8_text
from facekit.records import Frame

log = logging.getLogger(__name__)

VIDEO, FILES, WHOLE = "video", "files", "whole"


@dataclass(frozen=True)
class Shard:
    """One shard of one source. ``first``/``last`` (inclusive) are frame numbers for a video
    shard (1-based, as frame names have them) and file positions (0-based) for a files shard."""

    source: str  # the source's path
    number: int  # 0-based, in the source's order: the alignments file folds shards in it
    kind: str  # VIDEO | FILES | WHOLE
    first: int = 0
    last: int = 0
    files: tuple[str, ...] = ()  # FILES: the paths, and each one's frame name (unique over the folder)
    names: tuple[str, ...] = ()
    pts: tuple[int, ...] = ()  # VIDEO: its frames' timestamps (the stream's time base), in frame order

    @property
    def label(self) -> str:
        """'clip.mp4 frames 501-1000', for messages."""
        name = Path(self.source).name
        if self.kind == VIDEO:
            return f"{name} frames {self.first}-{self.last}"
        if self.kind == FILES:
            return f"{name} files {self.first + 1}-{self.last + 1}"
        return name


@dataclass
class ShardedSource:
    """A source's shards, and how many frames they hold in all (before sampling)."""

    path: Path
    shards: list[Shard] = field(default_factory=list)
    frames: int = 0


def shards_of(source: FrameSource, shard_frames: int, files_per_shard: int) -> ShardedSource:
    """``source`` cut into shards of at most ``shard_frames`` video frames or ``files_per_shard``
    files. A video's shards stop at ``sample.end``: frames past it are never read."""
    if source.kind != "video":
        names = frame_names(source.files)
        shards = [Shard(str(source.path), number, FILES, start, min(start + files_per_shard, len(names)) - 1,
                        tuple(str(p) for p in source.files[start:start + files_per_shard]),
                        tuple(names[start:start + files_per_shard]))
                  for number, start in enumerate(range(0, len(names), files_per_shard))]
        return ShardedSource(source.path, shards, len(names))
    pts, times_ms = _stream_timestamps(source.path)
    if not pts or _rotated(source.path):
        return ShardedSource(source.path, [Shard(str(source.path), 0, WHOLE)], len(source))
    end_ms = None if source.sampling.end is None else source.sampling.end * 1000
    count = len(pts) if end_ms is None else bisect.bisect_left(times_ms, end_ms)  # frames before sample.end
    shards = [Shard(str(source.path), number, VIDEO, first, min(first + shard_frames - 1, count),
                    pts=tuple(pts[first - 1:first - 1 + shard_frames][:count - first + 1]))
              for number, first in enumerate(range(1, count + 1, shard_frames))]
    return ShardedSource(source.path, shards, count)


#: FFmpeg's names of the containers whose seeks land where asked (an index, or cues, to seek by):
#: MP4/MOV, Matroska/WebM, AVI, ASF (WMV) and FLV. MPEG-TS and MPEG-PS (.ts, .mpg) have none, so
#: a seek lands near its target by bitrate, and such a video is read whole.
_INDEXED_CONTAINERS = frozenset({"mov", "mp4", "matroska", "webm", "avi", "asf", "flv"})


def _stream_timestamps(path: Path) -> tuple[list[int], list[float]]:
    """Every frame's presentation timestamp, sorted (frame N has the Nth), and the same in ms
    from the stream's start, from the packets alone (no decoding); read once, by the driver, so
    a shard never scans the whole file. Empty where the scan fails part-way (a damaged stretch)
    or the container has no index to seek by: such a video is not cut."""
    import av

    try:
        with av.open(str(path)) as container:
            if not set(container.format.name.split(",")) & _INDEXED_CONTAINERS:
                return [], []
            stream = container.streams.video[0]
            if "avi" in container.format.name.split(",") and stream.codec_context.has_b_frames:
                return [], []  # decoded frames carry FFmpeg's guessed times, not their packets' (sampling.py)
            base, start = float(stream.time_base), stream.start_time or 0
            pts = sorted(p.pts for p in container.demux(stream) if shown(p))
    except (av.error.FFmpegError, IndexError):
        return [], []
    return pts, [(value - start) * base * 1000 for value in pts]


def shard_frames(shard: Shard, sampling: Sampling, skipped: dict[str, str] | None = None) -> Iterator[Frame]:
    """The shard's frames, decoded, exactly as a whole read of its source gives them. Image
    files that do not decode are left out and named in ``skipped`` with the reason."""
    if shard.kind == VIDEO:
        yield from _video_frames(shard, sampling)
        return
    if shard.kind == FILES:  # the group alone, under the names and positions it has in the folder
        source = FrameSource(Path(shard.source), "folder", [Path(p) for p in shard.files], len(shard.files))
        frames = _renamed(source.frames(), shard)
    else:
        source = open_input(shard.source, sampling=sampling)
        frames = source.frames()
    yield from frames
    if skipped is not None:
        skipped.update(source.skipped)


def _renamed(frames: Iterator[Frame], shard: Shard) -> Iterator[Frame]:
    """A group's frames under the names and positions they have in the whole folder (a stem
    shared by files of two groups is made unique over the folder, not the group)."""
    by_path = {path: (shard.first + offset, name) for offset, (path, name) in enumerate(zip(shard.files, shard.names))}
    for frame in frames:
        frame.index, frame.name = by_path[frame.path]
        yield frame


def _video_frames(shard: Shard, sampling: Sampling) -> Iterator[Frame]:
    import av

    path = Path(shard.source)
    stem, source = utf8_text(path.stem), utf8_text(path)
    times_ms = stream_times_ms(path, sampling.end)[0] if sampling.fps is not None else None
    picker = sampling.picker(times_ms) if sampling.active else None
    number_of = {pts: number for number, pts in enumerate(shard.pts, start=shard.first)}
    damage = _Damage()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base, origin = float(stream.time_base), stream.start_time or 0
        expected = shard.first
        for frame in _decoded_from(container, stream, shard.pts, origin, damage):
            if frame.pts is None or frame.pts < shard.pts[0]:
                continue  # before the shard: decoded only to reach it
            number = number_of.get(frame.pts)
            if number is None and damage.packets:
                continue  # past the shard's last frame, or a timestamp the damaged stretch garbled
            if number is not None and number > expected and damage.packets:  # frames a damaged stretch took
                damage.lost += number - expected
                expected = number
            if number != expected:
                raise FacekitError(f"{source}: frame {expected} was not where seeking put it (got {number}); "
                                   "this video cannot be cut into shards")
            expected += 1
            ms = (frame.pts - origin) * base * 1000
            if picker is not None and picker.past_end(ms):
                return
            if picker is None or picker.keep(number, ms):
                image = frame.to_ndarray(format="bgr24", interpolation="BICUBIC")  # as OpenCV's swscale call
                yield Frame(name=f"{stem}_{number:06d}", source=source, index=number, image=image)
            if number >= shard.last:
                break
    if expected <= shard.last and not damage.packets:
        raise FacekitError(f"{source}: decoding stopped at frame {expected - 1}, before the shard's last ({shard.last})")
    if damage.packets:
        lost = damage.lost + max(0, shard.last + 1 - expected)
        log.warning("%s: %d damaged packet(s) passed over in frames %d-%d; %d frame(s) of them not decoded",
                    source, damage.packets, shard.first, shard.last, lost)


@dataclass
class _Damage:
    """What a shard's decoding passed over: packets the decoder refused, and the frames lost with them."""

    packets: int = 0
    lost: int = 0


def _decoded(container, stream, damage: _Damage) -> Iterator:
    """``container.decode(stream)`` (the same frames: it decodes packet by packet too) that goes
    on past a packet the decoder refuses, as a whole read does: a few damaged bytes must not
    fail the shard, on every rerun, where a local run passes them over."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            damage.packets += 1


def _decoded_from(container, stream, pts: tuple[int, ...], origin: int, damage: _Damage) -> Iterator:
    """Decoded frames from a keyframe at or before the shard's first frame: the seek goes to the
    keyframe before its timestamp; should the first frame it gives be a later one (a keyframe
    whose decoding time is earlier than frames shown before it), it seeks again from further
    back, in steps growing fourfold, down to the stream's start."""
    first = pts[0]
    gap = max(1, (pts[-1] - first) // max(1, len(pts) - 1))  # about one frame, in the stream's time base
    back = 0
    while True:
        target = max(origin, first - back * gap)
        container.seek(target, stream=stream, backward=True, any_frame=False)
        frames = _decoded(container, stream, damage)
        head = next(frames, None)
        if head is None:
            return
        if head.pts is None or head.pts <= first or target == origin:
            yield head
            yield from frames
            return
        back = max(1, back * 4)


def _rotated(path: Path) -> bool:
    """Whether the video's display matrix turns its frames (phones' portrait video)."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0), None)
        return frame is not None and bool(getattr(frame, "rotation", 0))
