"""Which frames of a video a run reads: every Nth, a steady rate by the stream's timestamps, and
a stretch of time (``sample.*``). Images ignore sampling.

Frames keep their numbers in the video (``clip_000121`` is the 121st frame decoded whatever the
sampling), so a face always maps back to its frame. A frame left out is grabbed (decoded by
FFmpeg, which a video's later frames need) but never converted to BGR pixels, and reading stops
at the first frame past ``end``.

``every_n`` counts frames: 1, N+1, 2N+1, ... from the video's first frame. ``fps`` counts time:
for each moment ``origin + k / fps`` (``origin`` is ``start``, else the first frame's time) the
frame whose timestamp is nearest is kept, so a variable-frame-rate video (a phone's) is sampled
evenly in time, which frame numbers cannot do. Choosing the nearest frame needs the next frame's
timestamp before the current frame's pixels are given up, so ``fps`` reads the timestamps first,
from the container's packets alone (PyAV's demuxer: no decoding, about 2 ms for a 275-frame clip).
The two together are refused (``facekit.app.tasks.settings``): each alone says how densely to
sample, and a frame count on top of a rate (or the other way round) has no single meaning.
"""
from __future__ import annotations

import bisect
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: ``HH:MM:SS`` with optional fraction; ``MM:SS`` too (the hours may be left out, as players show them).
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_time(value: Any) -> float | None:
    """Seconds from ``12.5``, ``"12.5"``, ``"00:01:02.5"`` or ``"01:02.5"``; None for None.
    Raises ValueError, with what was given, for anything else (a negative time included)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        clock = _CLOCK.match(text)
        try:
            if clock is not None:
                hours, minutes, rest = clock.groups()
                if int(minutes) >= 60 or float(rest) >= 60:
                    raise ValueError(f"{text!r}: minutes and seconds run to 59")
                seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(rest)
            else:
                seconds = float(text)
        except ValueError as exc:
            raise ValueError(str(exc) if clock is not None else f"{text!r} is not a time") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a time from the start of the video")
    return seconds


@dataclass(frozen=True)
class Sampling:
    """The ``sample`` node, checked (``start``/``end`` in seconds). The default reads every frame."""

    every_n: int = 1
    fps: float | None = None
    start: float | None = None
    end: float | None = None

    @property
    def active(self) -> bool:
        return self.every_n != 1 or self.fps is not None or self.start is not None or self.end is not None

    def fingerprint(self) -> dict[str, Any] | None:
        """What the alignments file and the analysis cache record of it; None when every frame is read,
        so runs without sampling keep the fingerprint they always had."""
        if not self.active:
            return None
        return {"every_n": self.every_n, "fps": self.fps, "start": self.start, "end": self.end}

    def describe(self) -> str:
        """'every 5th frame from 12.5 s to 20 s', for the log."""
        parts = []
        if self.every_n != 1:
            parts.append(f"every {_ordinal(self.every_n)} frame")
        if self.fps is not None:
            parts.append(f"{self.fps:g} frame(s) a second")
        if self.start is not None:
            parts.append(f"from {self.start:g} s")
        if self.end is not None:
            parts.append(f"to {self.end:g} s")
        return " ".join(parts) if parts else "every frame"

    def picker(self, times_ms: list[float] | None) -> FramePicker:
        """A fresh picker for one read of the video; ``times_ms`` (``stream_times_ms``) is needed for ``fps``."""
        return FramePicker(self, _rate_picks(self, times_ms) if self.fps is not None else None, times_ms)

    def expected(self, frame_count: int, fps: float) -> int:
        """About how many frames a read keeps, from the header's frame count and rate (for the
        progress bar and the choice of worker processes, never for which frames are kept)."""
        if not self.active:
            return frame_count
        begin = 0 if self.start is None or fps <= 0 else math.ceil(self.start * fps)
        finish = frame_count if self.end is None or fps <= 0 else min(frame_count, math.ceil(self.end * fps))
        return len(range(begin + (-begin) % self.every_n, finish, self.every_n))  # 0-based numbers kept


class FramePicker:
    """Says of each frame, in decoding order, whether it is kept, from its number and timestamp."""

    def __init__(self, sampling: Sampling, picks: set[int] | None, times_ms: list[float] | None) -> None:
        self.sampling = sampling
        self._picks = picks  # indexes into times_ms of the frames fps keeps
        self._times = times_ms or []
        self._start_ms = None if sampling.start is None else sampling.start * 1000
        self._end_ms = None if sampling.end is None else sampling.end * 1000
        self._taken: set[int] = set()

    def past_end(self, ms: float) -> bool:
        """True from the first frame at or after ``end``: nothing after it is kept."""
        return self._end_ms is not None and ms >= self._end_ms

    def keep(self, number: int, ms: float) -> bool:
        """Frame ``number`` (1-based) with timestamp ``ms``."""
        if (number - 1) % self.sampling.every_n:
            return False
        if self._start_ms is not None and ms < self._start_ms:
            return False
        if self.past_end(ms):
            return False
        if self._picks is None:
            return True
        index = _nearest(self._times, ms)
        # the decoder's timestamp is the demuxer's (both FFmpeg); a frame whose time the scan never
        # saw (past a stretch it could not read) is left out rather than guessed at
        if index is None or abs(self._times[index] - ms) > 0.5 or index not in self._picks or index in self._taken:
            return False
        self._taken.add(index)
        return True

    @property
    def expected(self) -> int | None:
        """How many frames ``fps`` keeps (None without it)."""
        return None if self._picks is None else len(self._picks)


def _rate_picks(sampling: Sampling, times_ms: list[float] | None) -> set[int]:
    """Indexes into ``times_ms`` (sorted) of the frames nearest ``origin + k / fps`` for each k,
    among the frames between ``start`` and ``end``; the earlier frame on a tie. A rate above the
    video's keeps every frame once."""
    assert sampling.fps is not None
    times = times_ms or []
    low = 0 if sampling.start is None else bisect.bisect_left(times, sampling.start * 1000)
    high = len(times) if sampling.end is None else bisect.bisect_left(times, sampling.end * 1000)
    if low >= high:
        return set()
    origin = times[low] if sampling.start is None else sampling.start * 1000
    # A step below the shortest gap between frames picks what that gap does (a moment nearest each
    # frame): sample.fps=1e12 took a step per picosecond of the video.
    gaps = [later - earlier for earlier, later in zip(times[low:high - 1], times[low + 1:high]) if later > earlier]
    if not gaps:  # one moment in range: its frame (the earliest of any sharing it)
        return {low}
    step = max(1000 / sampling.fps, min(gaps))
    picks, k = set(), 0
    while (target := origin + k * step) <= times[high - 1]:
        index = _nearest(times, target, low, high)
        assert index is not None
        picks.add(index)
        k += 1
    return picks


def _nearest(times: list[float], ms: float, low: int = 0, high: int | None = None) -> int | None:
    """The index in ``times[low:high]`` (sorted) of the time nearest ``ms``; the earlier on a tie."""
    high = len(times) if high is None else high
    if low >= high:
        return None
    at = bisect.bisect_left(times, ms, low, high)
    if at == low:
        return low
    if at == high:
        return high - 1
    return at if times[at] - ms < ms - times[at - 1] else at - 1


def stream_times_ms(path: Path, until_s: float | None = None) -> tuple[list[float], str | None]:
    """The presentation times of the video's frames in ms from the stream's start, sorted, as
    OpenCV's ``CAP_PROP_POS_MSEC`` gives them (both read FFmpeg's timestamps: ``(pts - start_time)
    * time_base``), read from the packets alone with PyAV, no frame decoded; up to ``until_s``
    (packets come in decoding order, and a packet's decoding time is never after its
    presentation time, so the first packet decoded after ``until_s`` ends the scan). Also what
    stopped the scan early, if something did (a damaged stretch): frames after it are not kept."""
    import av

    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            base, start = float(stream.time_base), stream.start_time or 0
            step_ms = _fixed_frame_ms(container)
            for packet in container.demux(stream):
                if not shown(packet):
                    continue
                times.append(len(times) * step_ms if step_ms is not None else (packet.pts - start) * base * 1000)
                if until_s is not None and packet.dts is not None and (packet.dts - start) * base > until_s:
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        return sorted(times), f"its timestamps could be read only to {max(times, default=0) / 1000:g} s ({exc})"
    return sorted(times), None


def shown(packet: Any) -> bool:
    """Whether a demuxed packet is a frame the decoder gives, as OpenCV and players show them:
    not the demuxer's closing empty packet, nor one an edit list discards (a video trimmed
    without re-encoding, as ``ffmpeg -ss -c copy`` and phones' "Trim" write it, keeps the frames
    before its cut, marked discard, for the key frame they need)."""
    return packet.pts is not None and bool(packet.size) and not packet.is_discard


#: FFmpeg's names of the containers that keep no time for each frame: every frame lasts one frame
#: period. An AVI's "timestamps" are FFmpeg's guesses from the frames' order in the file, which for
#: a codec with B-frames (H.264, MPEG-4 ASP) are off by the decoder's delay: OpenCV gave the first
#: frame of a 25 frames/s AVI 80 ms, and ``sample.fps`` left it out.
_UNTIMED_CONTAINERS = frozenset({"avi"})


def fixed_frame_ms(path: Path) -> float | None:
    """The time between frames (ms) of a video whose container keeps no frame times, where
    frame N (1-based) is at (N - 1) times that; None for one whose frames carry their own times
    (or that cannot be opened: the read says why)."""
    import av

    try:
        with av.open(str(path)) as container:
            return _fixed_frame_ms(container)
    except (av.error.FFmpegError, IndexError):
        return None


def _fixed_frame_ms(container: Any) -> float | None:
    if not set(container.format.name.split(",")) & _UNTIMED_CONTAINERS or not container.streams.video:
        return None
    rate = container.streams.video[0].average_rate or container.streams.video[0].guessed_rate
    return 1000 / float(rate) if rate else None


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def checked_sampling(every_n: Any = 1, fps: Any = None, start: Any = None, end: Any = None) -> Sampling:
    """The ``sample`` settings checked, one ValueError for each mistake, for the CLI and the
    library alike. ``every_n`` and ``fps`` are refused together: each says how densely to
    sample, one in frames and one in time. Times are seconds or ``HH:MM:SS[.mmm]``."""
    if isinstance(every_n, bool) or not isinstance(every_n, int) or every_n < 1:
        raise ValueError(f"sample.every_n must be a whole number of frames, 1 or more (1: every frame), got {every_n!r}")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf):
        raise ValueError(f"sample.fps must be a positive number of frames a second, got {fps!r}")
    if fps is not None and every_n != 1:
        raise ValueError(f"sample.every_n={every_n} and sample.fps={fps:g} both say how densely to sample; set one of them")
    times = {}
    for key, value in (("start", start), ("end", end)):
        try:
            times[key] = parse_time(value)
        except ValueError as exc:
            raise ValueError(f"sample.{key}: {exc}; give seconds (12.5) or HH:MM:SS[.mmm]") from None
    if times["end"] is not None and times["end"] <= 0:  # reading stops at the first frame at or past it
        raise ValueError(f"sample.end={times['end']:g} s keeps no frame; give a time after the start (or null: "
                         "to the end)")
    if times["start"] is not None and times["end"] is not None and not times["start"] < times["end"]:
        raise ValueError(f"sample.start ({times['start']:g} s) must come before sample.end ({times['end']:g} s)")
    return Sampling(every_n=every_n, fps=None if fps is None else float(fps), start=times["start"], end=times["end"])
