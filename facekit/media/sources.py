"""Reads the input: one image, a folder of images, or a video, as a stream of named frames."""
from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from facekit.media.decoder_output import DecoderOutput, python_stderr_apart
from facekit.errors import FacekitError
from facekit.media.float_tiff import display_bgr, is_float_tiff
from facekit.media.heif import SUFFIXES as HEIF_SUFFIXES, decoded_avif, decoded_heif, is_avif, is_heif
from facekit.media.sampling import FramePicker, Sampling, fixed_frame_ms, stream_times_ms
from facekit.records import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm",
                            ".gif",  # a GIF gives its first frame (OpenCV 4.11+; older ones skip it with a warning)
                            ".avif",  # Pillow's and OpenCV's wheels are built with libavif (facekit.media.heif)
                            *HEIF_SUFFIXES})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # PNG spec 5.2
#: An input that names a list of sources starts with it: ``input=@sources.txt``.
LIST_PREFIX = "@"
#: What a list file is usually called: such an input without the prefix gets a hint.
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})


@dataclass
class FrameSource:
    """A re-readable input: serial runs read it once per pass."""

    path: Path
    kind: str  # "image" | "folder" | "video"
    files: list[Path] = field(default_factory=list)
    frame_count: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why, in the order met
    _warned: set[str] = field(default_factory=set, repr=False)
    #: Set while image files decode here on threads with fd 2 free to catch (see facekit.media.decoder_output)
    decoder_output: DecoderOutput | None = field(default=None, repr=False)
    #: Which of a video's frames are read (facekit.media.sampling); images ignore it
    sampling: Sampling = field(default_factory=Sampling)
    video_fps: float = 0.0  # the header's frame rate (0: none given)
    _times_ms: list[float] | None = field(default=None, repr=False)  # sample.fps: the stream's timestamps
    #: A video whose read ended before the header's frame count: the frames it held (set by a
    #: read that got to its end), which a rerun's ``all_done`` takes instead of the header's count
    ended_early_at: int | None = None

    def __len__(self) -> int:
        """The frames a read gives: for a sampled video, as many as the sampling keeps (from
        the header, so about that many; exact for ``sample.fps``)."""
        picker = self._picker()
        if picker is None:
            return self.frame_count
        if picker.expected is not None:
            return picker.expected
        return self.sampling.expected(self.frame_count, self.video_fps)

    def frames(self, skip: frozenset[str] | set[str] = frozenset(), decode: bool = True) -> Iterator[Frame]:
        """Decoded frames in order; frames named in ``skip`` are passed over without decoding
        where the format allows, and unreadable ones are warned about and left out.

        ``decode=False``: image files come as frames holding only their ``path``, for worker
        processes to decode (``load_pixels``); the one who finds a file unreadable reports it
        with ``unreadable``. Video frames are always decoded here, in order."""
        if self.kind == "video":
            yield from self._video_frames(skip)
        else:
            yield from self._image_frames(skip, decode)

    def all_done(self, done: frozenset[str] | set[str], ended_early: bool = False) -> bool:
        """Whether every frame is in ``done``, so a rerun has nothing to do. Read only when
        ``done`` holds as many frames as the source gives (a video is then grabbed through, as
        a rerun that resumes would), so a resume that has work left pays nothing for it; or,
        with ``ended_early`` (an earlier read found the video shorter than its header says),
        grabbed through whatever ``done`` holds."""
        if not done or (len(done) < len(self) and not ended_early):
            return False
        return next(self.frames(skip=done, decode=False), None) is None

    def among(self, done: frozenset[str] | set[str]) -> int:
        """How many of ``done`` are this source's frames: a folder's photos deleted since an
        earlier run keep their entries, which are not this run's to count as resumed. A video's
        frames are named by number, so all of them are (a replaced video is refused)."""
        if self.kind == "video" or not done:
            return len(done)
        return len(done & set(frame_names(self.files)))

    def unreadable(self, path: str | Path, why: str, said: Sequence[str] = ()) -> None:
        """Warns about an image file that does not decode (why, and what the decoder printed,
        where that was caught); the run's summary counts it."""
        self._skip(path, why + (f" ({'; '.join(said)})" if said else ""))

    def damaged(self, path: str | Path, said: Sequence[str]) -> None:
        """Warns about an image file that decoded although its decoder reported damage."""
        self._warn_once(f"{path}: decoded despite damage, some pixels may be wrong ({'; '.join(said)})")

    def _image_frames(self, skip: frozenset[str] | set[str], decode: bool) -> Iterator[Frame]:
        for index, (path, name) in enumerate(zip(self.files, frame_names(self.files))):
            if name in skip:
                continue
            frame = Frame(name=name, source=utf8_text(path), index=index, path=str(path))
            if decode:
                why, said = load_pixels_caught(frame, self.decoder_output)
                if why is not None:
                    self.unreadable(path, why, said)
                    continue
                if said:
                    self.damaged(path, said)
            yield frame

    def _video_frames(self, skip: frozenset[str] | set[str]) -> Iterator[Frame]:
        """Frames named by their number in decoding order. A damaged stretch in the middle of
        a video makes a few grabs fail and decoding then goes on from the next good frame, so
        reading stops only after ``MAX_FAILED_GRABS`` failures in a row: a few damaged bytes
        must not end a long job. A grab that fails once every frame the header counts is read is
        the end (1,000 more cost 13-19 ms a video, a third of a run over 1,000 short clips).
        Grabbing (decoding) every frame, skipped or not, keeps the numbering the same on a rerun that resumes.

        A file cut short fails a grab at the cut and then still gives the frames its decoder
        held: failed grabs with no frame missing. The last frame's timestamp tells that apart
        from a stretch passed over (``_frames_missing``), so a truncated file is reported as one.

        A sampled video (``self.sampling``) is numbered the same way: frames it leaves out are
        grabbed but never retrieved (converted to BGR), and reading stops at the first frame at
        or past ``sample.end``."""
        import cv2

        capture = video_capture(self.path)
        stem, source = utf8_text(self.path.stem), utf8_text(self.path)
        fps = capture.get(cv2.CAP_PROP_FPS)
        picker = self._picker()
        # sampled by time: an AVI's frame N is at N - 1 frame periods, not where FFmpeg guesses
        step_ms = fixed_frame_ms(self.path) if picker is not None else None
        number = failed = damaged = kept = 0
        last_ms = 0.0
        ended = False  # at sample.end, before the video's own end
        try:
            while failed < MAX_FAILED_GRABS:
                if not capture.grab():
                    if number == self.frame_count > 0:  # every frame its header counts: the end, not damage
                        break
                    failed += 1
                    continue
                if failed:
                    damaged, failed = damaged + 1, 0
                number += 1
                last_ms = capture.get(cv2.CAP_PROP_POS_MSEC) if step_ms is None else (number - 1) * step_ms
                if picker is not None and picker.past_end(last_ms):
                    ended = True
                    break
                name = f"{stem}_{number:06d}"
                if name in skip or (picker is not None and not picker.keep(number, last_ms)):
                    continue
                kept += 1
                ok, image = capture.retrieve()
                if ok and image is not None:
                    yield Frame(name=name, source=source, index=number, image=image)
                else:
                    self._skip(f"{self.path} frame {number}", "decoded but could not be converted to BGR")
        finally:
            capture.release()
        if number == 0:
            self._skip(self.path, "the video holds no decodable frame")
            return
        if picker is not None and kept == 0 and not skip:
            self._warn_once(f"{self.path}: none of the {number} frame(s) read matches the sampling "
                            f"({self.sampling.describe()})")
        if damaged and _frames_missing(number, last_ms, fps) != 0:
            of = f" of {self.frame_count}" if self.frame_count else ""  # some containers give no count
            self._warn_once(f"{self.path}: {damaged} damaged stretch(es) passed over; decoded {number}{of} "
                            "frames, numbered in decoding order")
        elif number < self.frame_count and not ended and not self._count_was_an_estimate(number):
            self.ended_early_at = number
            self._warn_once(f"{self.path} ended after {number} of {self.frame_count} frames: the file is "
                            "truncated or damaged")

    def _count_was_an_estimate(self, decoded: int) -> bool:
        """Whether a video that ended before its header's frame count holds no more frames than
        were decoded: Matroska and WebM headers give no count, and OpenCV estimates one from the
        duration and the average rate, far off for a variable rate (60 frames read as 108). The
        packets, read without decoding, tell; only then is the file called truncated."""
        times, stopped = stream_times_ms(self.path)
        if stopped is not None or not times or len(times) > decoded:
            return False
        lasts_s = _container_duration_s(self.path)  # a file cut short keeps its header's duration
        step_s = (times[-1] - times[0]) / 1000 / max(1, len(times) - 1)
        return lasts_s is None or times[-1] / 1000 + 2 * step_s + 0.1 >= lasts_s

    def _picker(self) -> FramePicker | None:
        """A fresh picker for one read of a sampled video; None when every frame is read. The
        stream's timestamps (``sample.fps``) are scanned once, at the first read."""
        if self.kind != "video" or not self.sampling.active:
            return None
        if self.sampling.fps is not None and self._times_ms is None:
            self._times_ms, stopped = stream_times_ms(self.path, self.sampling.end)
            if stopped:
                self._warn_once(f"{self.path}: {stopped}; sample.fps keeps no frame after that")
        return self.sampling.picker(self._times_ms)

    def _skip(self, what: str | Path, why: str) -> None:
        what = utf8_text(what)
        if what not in self.skipped:  # serial runs read the source once per pass
            log.warning("skipped %s: %s", what, why)
            self.skipped[what] = why

    def _warn_once(self, message: str) -> None:
        """Serial runs read the source once per pass; each warning is said once."""
        message = utf8_text(message)
        if message not in self._warned:
            log.warning("%s", message)
            self._warned.add(message)


def _frames_missing(decoded: int, last_ms: float, fps: float) -> int | None:
    """How many frames before the last decoded one were never decoded: the frame at ``last_ms``
    is frame ``last_ms * fps / 1000 + 1`` of the file. None where timestamps cannot tell (no
    frame rate, or a last frame no later than the first)."""
    if fps <= 0 or (decoded > 1 and last_ms <= 0):
        return None
    return round(last_ms * fps / 1000) + 1 - decoded


def load_pixels(frame: Frame) -> str | None:
    """Decodes the image file a frame came with: None when that worked (or there was nothing to
    decode), else why it could not."""
    if frame.image is not None or frame.path is None:
        return None
    frame.image, why = decoded_image(Path(frame.path))
    return why


def load_pixels_caught(frame: Frame, output: DecoderOutput | None) -> tuple[str | None, list[str]]:
    """``load_pixels``, and what the decoder printed, when ``output`` is there to catch it."""
    if output is None:
        return load_pixels(frame), []
    with output.caught() as said:
        why = load_pixels(frame)
    return why, said


def read_image(path: Path) -> np.ndarray | None:
    """A BGR uint8 image as a viewer shows it (EXIF rotation applied), or None if unreadable."""
    return decoded_image(path)[0]


def decoded_image_caught(path: Path) -> tuple[np.ndarray | None, str | None, list[str]]:
    """``decoded_image``, and what the decoder printed meanwhile (libjpeg's "Corrupt JPEG data:
    ..."), caught for a warning that names the file, not left on the terminal unnamed. For a
    file read on its own, outside a run's frames (a photo given alone, a reference photo)."""
    with python_stderr_apart(), DecoderOutput().caught() as said:
        image, why = decoded_image(path)
    return image, why, said


def decoded_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """The image as ``read_image`` gives it, or None and why not. Nothing a file holds raises:
    a PNG whose header claims 100000x100000 pixels (a decompression bomb, a few hundred bytes)
    made OpenCV raise, and one such file ended a whole run.

    ``imdecode`` on bytes read by Python handles non-ASCII paths on every platform.
    """
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    if data.size == 0:
        return None, "an empty file"
    if is_heif(data):
        return decoded_heif(data)
    if is_avif(data) and (avif := decoded_avif(data)) is not None:
        return avif
    floats = is_float_tiff(data)
    try:
        image = cv2.imdecode(_without_png_color_profile(data), cv2.IMREAD_UNCHANGED if floats else cv2.IMREAD_COLOR)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            return None, ("more pixels than OpenCV decodes in one image (2^30; the environment variable "
                          "OPENCV_IO_MAX_IMAGE_PIXELS raises that limit)")
        return None, f"the decoder failed ({str(exc).strip().splitlines()[-1]})"
    except MemoryError:
        return None, "too large to decode in the memory there is"
    if image is None or not image.size:
        return None, "not a readable image"
    return (display_bgr(image) if floats else image), None


def _without_png_color_profile(data: np.ndarray) -> np.ndarray:
    """A PNG file's bytes without its iCCP chunks (anything else unchanged). OpenCV never
    applies colour profiles, but libpng checks them and prints a line to stderr for each one it
    dislikes ("libpng warning: iCCP: known incorrect sRGB profile", common in PNGs from the
    web), which buries facekit's own warnings in a folder of thousands. iCCP comes before the
    first IDAT (PNG spec 5.6), so only the headers before the pixels are read."""
    if data.size < len(PNG_SIGNATURE) or data[:len(PNG_SIGNATURE)].tobytes() != PNG_SIGNATURE:
        return data
    profiles, offset = [], len(PNG_SIGNATURE)
    while offset + 12 <= data.size:
        length, kind = struct.unpack_from(">I4s", data, offset)
        if kind in (b"IDAT", b"IEND"):
            break
        if kind == b"iCCP":
            profiles.append((offset, offset + 12 + length))
        offset += 12 + length
    if not profiles:
        return data
    kept, start = [], 0
    for begin, end in profiles:
        kept.append(data[start:begin])
        start = end
    kept.append(data[start:])
    return np.concatenate(kept)


def frame_names(files: list[Path]) -> list[str]:
    """Each file's stem, made unique: files that share a stem (``a.jpg``, ``a.png``) add their
    suffix (``a_jpg``, ``a_png``), and a name that still repeats (``a.JPG`` beside ``a.jpg``, or
    ``a_jpg.bmp`` beside both) gets a number (``a_jpg_2``): two frames of one name would write
    one face file. Linear in the files (counting each stem's repeats per file took 15 s at
    30,000 photos and grew with the square)."""
    stems = [utf8_text(p.stem) for p in files]
    repeats = Counter(stems)
    names: list[str] = []
    taken: set[str] = set()
    for stem, path in zip(stems, files):
        name = f"{stem}_{utf8_text(path.suffix.lstrip('.').lower())}" if repeats[stem] > 1 else stem
        unique, number = name, 1
        while unique in taken:
            number += 1
            unique = f"{name}_{number}"
        taken.add(unique)
        names.append(unique)
    return names


#: Bytes read from each end of a video for its signature: enough to tell two encodes apart,
#: little beside decoding the whole file.
SIGNATURE_BYTES = 64 * 1024


def video_signature(path: Path) -> str:
    """A video's content, told from another's without reading it whole: sha256 (16 hex digits)
    of its size and its first and last ``SIGNATURE_BYTES``. A resumed run compares it, so a
    video replaced under the same name is not taken for the one whose frames are done."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        digest.update(str(size).encode())
        digest.update(handle.read(SIGNATURE_BYTES))
        handle.seek(max(0, size - SIGNATURE_BYTES))
        digest.update(handle.read(SIGNATURE_BYTES))
    return digest.hexdigest()[:16]


def utf8_text(text: str | Path) -> str:
    """A path or name as text that UTF-8 can hold, for frame names, logs, PNG text and JSON.
    A file name that is not UTF-8 (Latin-1 names from old archives, on Linux) reaches Python
    with each stray byte as a lone surrogate, which no UTF-8 writer takes: those become %XX
    (the byte), other lone surrogates %uXXXX. Valid names come back unchanged; the file itself
    is still opened by its real name."""
    text = str(text)
    if not any("\ud800" <= ch <= "\udfff" for ch in text):
        return text
    return "".join(f"%{ord(ch) - 0xDC00:02X}" if "\udc80" <= ch <= "\udcff" else
                   f"%u{ord(ch):04X}" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def from_utf8_text(text: str) -> str:
    """``utf8_text`` undone: each %XX of a byte from 80 to FF, and each %uXXXX of a surrogate,
    back to the lone surrogate a file name that is not UTF-8 holds (an actual "%E9" in a name
    reads as that byte, so a caller tries the text as written first)."""
    return re.sub(r"%([89A-F][0-9A-F])|%u(D[89A-F][0-9A-F]{2})",
                  lambda m: chr(0xDC00 + int(m[1], 16)) if m[1] else chr(int(m[2], 16)), text)


def existing_input(path: str | Path) -> Path:
    """The input's path, or a one-line error when nothing is there."""
    source = Path(path).expanduser()
    if not source.exists():
        raise FacekitError(f"input {str(source)!r} does not exist")
    return source


def open_input(path: str | Path, exclude: Path | None = None, sampling: Sampling | None = None,
               in_collection: bool = False) -> FrameSource:
    """The input as a frame source; ``exclude`` (the output folder) is never read back as input.
    ``sampling`` chooses a video's frames; an image or a folder of them ignores it. A folder
    ``in_collection`` is one source of a tree, whose videos and subfolders the collection reads
    as sources of their own: only the files nobody reads are named as not read."""
    source = existing_input(path)
    if source.is_dir():
        listing = _listing(source, exclude)
        files, others = listing.images, listing.left(in_collection)
        if not files:
            raise FacekitError(f"input folder {str(source)!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                               + (f"; it holds {others}" if others else ""))
        if others:  # HEIC photos from a phone, say: nobody should lose them without a word
            log.info("%s: not read (%s): %s", utf8_text(source),
                     "not images or videos by their suffix" if in_collection else
                     "not images by their suffix, or subfolders, which a folder run does not enter", others)
        folder = FrameSource(source, "folder", files, len(files))
        for path in listing.odd:
            folder._skip(path, not_a_file(path))
        return folder
    suffix = source.suffix.lower()
    if suffix in VIDEO_SUFFIXES | IMAGE_SUFFIXES and not source.is_file():  # opened, a FIFO blocks for ever
        raise FacekitError(f"input {str(source)!r} is {not_a_file(source)}")
    if suffix in VIDEO_SUFFIXES:
        count, fps = _video_header(source)
        if sampling is not None and sampling.start is not None:  # whichever executor opens it
            _check_start_within(source, sampling.start, count / fps if fps > 0 else 0.0)
        return FrameSource(source, "video", [source], count, sampling=sampling or Sampling(), video_fps=fps)
    if suffix in IMAGE_SUFFIXES:
        return FrameSource(source, "image", [source], 1)
    listing = f"; a list of videos and folders, one a line, is read as input={LIST_PREFIX}{source}" \
        if suffix in LIST_SUFFIXES else ""
    raise FacekitError(
        f"input {str(source)!r} is neither an image nor a video (by its suffix {suffix or '(none)'!r}){listing}"
    )


@dataclass
class _Listing:
    """What a folder run finds directly in its folder (hidden entries and the output folder left
    out): image files; entries with an image's name that are not files; other files and
    subfolders, which it does not read."""

    images: list[Path] = field(default_factory=list)
    odd: list[Path] = field(default_factory=list)
    other_files: list[Path] = field(default_factory=list)
    subfolders: list[Path] = field(default_factory=list)

    def left(self, in_collection: bool = False) -> str:
        """'3 .cr2, 1 .mp4, 2 subfolders': the files not read by suffix, most first, then the
        subfolders (one per person is a common layout); empty when nothing was left. A
        collection reads the videos and subfolders itself, so only other files are named."""
        others = [path for path in self.other_files
                  if not (in_collection and path.suffix.lower() in VIDEO_SUFFIXES)]
        counts = Counter(path.suffix.lower() or "(no suffix)" for path in others)
        named = [f"{count} {suffix}" for suffix, count in counts.most_common()]
        if self.subfolders and not in_collection:
            named.append(f"{len(self.subfolders)} subfolder{'s' if len(self.subfolders) > 1 else ''}")
        return ", ".join(named)


def _listing(folder: Path, exclude: Path | None) -> _Listing:
    """One pass over the folder; ``os.scandir`` knows each entry's type without a stat call, which
    counts in folders of a hundred thousand frames."""
    excluded = exclude.resolve() if exclude is not None else None
    listing = _Listing()
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):  # as a collection's walk: macOS's ._IMG_1.jpg beside IMG_1.jpg is no photo
                continue
            path, is_image = Path(entry.path), Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
            if entry.is_dir() and excluded is not None and path.resolve() == excluded:
                continue
            if is_image:
                (listing.images if entry.is_file() else listing.odd).append(path)
            elif entry.is_dir():
                listing.subfolders.append(path)
            elif entry.is_file():
                listing.other_files.append(path)
    return listing


def not_a_file(path: Path) -> str:
    """Why a path with an image's or a video's name is passed over without being opened (a FIFO would block)."""
    if path.is_dir():
        return "a folder, not an image"
    if path.is_symlink() and not path.exists():
        return f"a broken link (to {utf8_text(os.readlink(path))!r})"
    return "not a regular file (a pipe, socket or device)"


#: Failed grabs in a row after which a video is taken to have ended. Damage costs about one
#: failed grab per two damaged packets (a 200 KB random stretch in the 614 KB Hamilton clip: 91),
#: and past the real end a failed grab takes about 10 us, so a generous limit is cheap.
MAX_FAILED_GRABS = 1000


def video_capture(path: Path) -> Any:
    """``cv2.VideoCapture`` with FFmpeg's own decoder messages off (dozens of lines a damaged
    packet); facekit's warning says what was skipped. Setting ``OPENCV_FFMPEG_LOGLEVEL`` before
    the first video opens brings them back.

    Frames come turned as the header's display matrix says, as players show them: phones store
    portrait video sideways with such a rotation, and YuNet finds a third fewer sideways faces."""
    import cv2

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read once, at the first open
    with _opencv_path(path) as name:
        capture = cv2.VideoCapture(name)
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # OpenCV's FFmpeg default too; said, not assumed
    return capture


@contextmanager
def _opencv_path(path: Path) -> Iterator[str]:
    """``path`` as OpenCV can take it. OpenCV takes a path as UTF-8 text, and a name that is not
    UTF-8 (a Latin-1 name from an old disk or archive, which Python holds with surrogates) ended
    the process in a segmentation fault. Such a file is opened through a symbolic link with a
    plain name, removed once the file is open (the decoder holds it open by then)."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        yield name
        return
    with tempfile.TemporaryDirectory(prefix="facekit-") as folder:
        link = Path(folder) / f"video{path.suffix.encode('ascii', 'replace').decode('ascii')}"
        link.symlink_to(path.resolve())
        yield str(link)


def _check_start_within(path: Path, start_s: float, average_s: float) -> None:
    """Refuses a ``sample.start`` after the video's last frame, by the frames' own times (read
    from the packets, no frame decoded): the header's count over its average rate falls short of
    a variable-rate video, and so may the container's duration (0.51 s for frames to 1.0 s)."""
    times, _ = stream_times_ms(path)
    last_s = times[-1] / 1000 if times else average_s
    if last_s and start_s > last_s:  # a collection's other sources go on without it
        raise FacekitError(f"sample.start={start_s:g} s is past the end of {path} (its last frame is at {last_s:.3g} s)")


def _container_duration_s(path: Path) -> float | None:
    """How long the container's header says the video runs from its first frame, in seconds
    (None: it gives no duration). Matroska's duration counts from 0, so a file whose first frame
    is at 2.5 s (cut with its times kept, a recorded live stream) reads 2.5 s longer than it plays."""
    import av

    try:
        with av.open(str(path)) as container:
            if container.duration is None:
                return None
            return (container.duration - max(0, container.start_time or 0)) / av.time_base
    except av.error.FFmpegError:
        return None


def _video_header(path: Path) -> tuple[int, float]:
    """The frame count and frame rate the video's header gives (0 where it gives none)."""
    import cv2

    capture = video_capture(path)
    try:
        if not capture.isOpened():
            raise FacekitError(f"input {str(path)!r} {_why_not_a_video(path)}")
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), max(0.0, float(capture.get(cv2.CAP_PROP_FPS)))
    finally:
        capture.release()


def _why_not_a_video(path: Path) -> str:
    """Why OpenCV could not open ``path``, as far as PyAV can tell: a file with sound and no
    picture (an audio-only .mp4) is not "damaged"."""
    try:
        import av

        with av.open(str(path)) as container:
            kinds = sorted({stream.type for stream in container.streams})
            if kinds and not container.streams.video:
                return f"holds no video stream (only {', '.join(kinds)})"
    except Exception:  # noqa: BLE001 - PyAV's many errors all mean: the general answer below
        pass
    return "cannot be opened as a video (truncated, damaged, or a codec OpenCV lacks)"
