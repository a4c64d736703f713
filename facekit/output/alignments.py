"""The alignments file: one JSON document holding every frame's faces, written without O(n²) saves.

Layout::

    {"format": "facekit-alignments", "version": 1, "meta": {...},
     "frames": {name: {"source", "index", "width", "height",
                       "faces": [{"box", "score", "points5", "landmarks", "crop", "crop_sha256", "crop_bytes",
                                  "centering", "matrix",
                                  "pose": {"yaw", "pitch", "roll"}, "face_px", "misalignment",
                                  "sharpness", optional "embedding", "keep", "reason", "distance",
                                  optional "outline", optional "mask": {name: {...}}}]}}}

The measures (``facekit.imaging.measures``) are absent from files written before they existed;
"outline" and "mask" only when ``output.masks`` asked for them (``facekit.output.masks``).

Rewriting that JSON every N frames costs O(frames²) over a long video, so ``AlignmentsWriter``
appends each finished frame to a JSON Lines journal (``<file>.journal``) and folds journal and
any earlier file into the JSON once, atomically, at ``close``. A rerun reads both to resume.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
from os import PathLike
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, TextIO

import numpy as np

from facekit.fileio import fsync_dir
from facekit.errors import FacekitError, OutputError
from facekit.output.differences import differences_named, masked_since, same_fingerprint
from facekit.output.masks import masks_from_dict, masks_to_dict
from facekit.records import (EMBEDDING_DECIMALS, MATRIX_DECIMALS, MEASURE_DECIMALS, PIXEL_DECIMALS, SCORE_DECIMALS,
                             Detection, Face, Frame, FrameRecord, Pose)

ALIGNMENTS_FILE = "alignments.json"  # in each output folder
FORMAT = "facekit-alignments"
VERSION = 1
JOURNAL_SUFFIX = ".journal"
#: The meta key of a video that ended before its header's frame count: the frames it held
VIDEO_ENDED_AT = "video_ended_at"
POSE_KEYS = ("yaw", "pitch", "roll")

log = logging.getLogger("facekit")


# --- records <-> JSON ------------------------------------------------------------------------

def rounded(values: Any, decimals: int = PIXEL_DECIMALS) -> list:
    """Points or a box as nested lists of rounded floats (short JSON, no NumPy types)."""
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()


def face_to_dict(face: Face) -> dict[str, Any]:
    """One face's alignments entry; "keep"/"reason" only once a filter has judged the face."""
    detection = face.detection
    entry: dict[str, Any] = {
        "box": rounded(detection.box),
        "score": round(float(detection.score), SCORE_DECIMALS),
        "points5": None if detection.points5 is None else rounded(detection.points5),
        "landmarks": None if face.landmarks is None else rounded(face.landmarks),
        "crop": face.crop_file,
        "crop_sha256": face.crop_sha256,
        "crop_bytes": face.crop_bytes,
    }
    if face.matrix is not None:  # the crop's own affine (crop <- frame), so a crop maps back without facekit's mean face
        entry["centering"] = face.centering or "legacy"
        entry["matrix"] = rounded(np.asarray(face.matrix)[:2], MATRIX_DECIMALS)
    if face.pose is not None:
        entry["pose"] = {key: _measure(getattr(face.pose, key)) for key in POSE_KEYS}
    for key, decimals in (("face_px", MEASURE_DECIMALS), ("misalignment", SCORE_DECIMALS),
                          ("sharpness", MEASURE_DECIMALS)):
        if getattr(face, key) is not None:
            entry[key] = _measure(getattr(face, key), decimals)
    if face.embedding is not None:
        entry["embedding"] = rounded(face.embedding, EMBEDDING_DECIMALS)
    if face.distance is not None:
        entry.update(keep=face.keep, reason=face.reason, distance=round(float(face.distance), SCORE_DECIMALS))
    elif not face.keep or face.reason is not None:
        entry.update(keep=face.keep, reason=face.reason)
    if face.outline is not None:
        entry["outline"] = rounded(face.outline)
    if face.masks:
        entry["mask"] = masks_to_dict(face.masks)
    return entry


def face_from_dict(entry: dict[str, Any]) -> Face:
    """A Face from its alignments entry (no image data: crops live in their own files)."""
    points5, landmarks = entry.get("points5"), entry.get("landmarks")
    detection = Detection(box=tuple(float(v) for v in entry["box"]), score=float(entry["score"]),
                          points5=None if points5 is None else np.asarray(points5, dtype=np.float32))
    embedding, distance, pose, outline = entry.get("embedding"), entry.get("distance"), entry.get("pose"), \
        entry.get("outline")
    matrix = entry.get("matrix")
    return Face(detection=detection,
                landmarks=None if landmarks is None else np.asarray(landmarks, dtype=np.float32),
                matrix=None if matrix is None else np.asarray(matrix, dtype=np.float64), centering=entry.get("centering"),
                crop_file=entry.get("crop"), crop_sha256=entry.get("crop_sha256"), crop_bytes=entry.get("crop_bytes"),
                embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
                keep=bool(entry.get("keep", True)), reason=entry.get("reason"),
                distance=None if distance is None else float(distance),
                pose=None if pose is None else Pose(*(_read_measure(pose[key], math.nan) for key in POSE_KEYS)),
                face_px=_read_measure(entry.get("face_px")), misalignment=_read_measure(entry.get("misalignment")),
                sharpness=_read_measure(entry.get("sharpness")),
                outline=None if outline is None else np.asarray(outline, dtype=np.float32),
                masks=masks_from_dict(entry.get("mask")))


def _measure(value: float, decimals: int = MEASURE_DECIMALS) -> float | None:
    """A measure as JSON holds it: rounded, and null for NaN (a pose solve that failed)."""
    value = float(value)
    return round(value, decimals) if np.isfinite(value) else None


def _read_measure(value: Any, missing: float | None = None) -> float | None:
    return missing if value is None else float(value)


def record_to_dict(record: FrameRecord) -> dict[str, Any]:
    """A frame's entry in ``frames`` (its name is the key, so it is not repeated inside)."""
    frame = record.frame
    return {"source": frame.source, "index": int(frame.index), "width": int(record.width),
            "height": int(record.height), "faces": [face_to_dict(face) for face in record.faces]}


def record_from_dict(name: str, entry: dict[str, Any]) -> FrameRecord:
    """A FrameRecord back from ``frames[name]``, without the image."""
    frame = Frame(name=name, source=entry["source"], index=int(entry["index"]))
    return FrameRecord(frame=frame, width=int(entry["width"]), height=int(entry["height"]),
                       faces=[face_from_dict(face) for face in entry["faces"]])


# --- reading ---------------------------------------------------------------------------------

def load_alignments(path: str | PathLike) -> dict[str, Any]:
    """The whole alignments document, its format and version checked."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FacekitError(f"no alignments file at {path}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FacekitError(f"{path} is not a facekit alignments file: it is not valid JSON ({exc})") from None
    _check_header(document, path)
    if not isinstance(document.get("frames"), dict):
        raise FacekitError(f"{path} is damaged: it has no \"frames\" object")
    return document


def load_alignments_meta(path: str | PathLike) -> dict[str, Any]:
    """The ``meta`` of the alignments file at ``path``, its format and version checked: from the
    file's first line, where facekit writes the header (``_dump_document``), so a re-crop of a
    long video does not parse every frame to learn its input; from the whole document when
    the first line is not that (a file another tool wrote or pretty-printed)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            header = _header_line(handle.readline(_HEADER_LINE_MOST), path)
    except OSError:
        header = None
    return header["meta"] if header is not None else load_alignments(path).get("meta") or {}


def checked_alignments_meta(path: str | PathLike) -> dict[str, Any]:
    """The ``meta`` of the alignments file at ``path`` once every frame in it has been checked,
    a line at a time where facekit laid it out (as a rerun reads it), so a damaged file is
    refused before any work, without holding a long video's file whole."""
    return _EarlierFile(Path(path)).meta or {}


def journal_meta(path: str | PathLike) -> dict[str, Any] | None:
    """The ``meta`` in the header of the journal at ``path`` (what a run killed before its fold
    was made with), its format and version checked; None when there is no journal or its
    header does not read (its frames are then done again, as the writer's check says)."""
    try:
        with Path(path).open("rb") as journal:
            header = json.loads(journal.readline(_HEADER_LINE_MOST))
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or not isinstance(header.get("meta"), dict):
        return None
    _check_header(header, Path(path))
    return header["meta"]


#: The longest first line ``load_alignments_meta`` reads: a header is a few KB.
_HEADER_LINE_MOST = 1 << 20


def _header_line(line: bytes, path: Path) -> dict[str, Any] | None:
    """The header ``_dump_document`` writes as a file's first line (the document's opening,
    left open for "frames"), its format and version checked; None when ``line`` is not that."""
    try:
        header = json.loads(line.rstrip().removesuffix(b",") + b"}")
    except ValueError:
        return None
    if not isinstance(header, dict) or set(header) != {"format", "version", "meta"} or not isinstance(header["meta"], dict):
        return None
    _check_header(header, path)
    return header


def journal_path(path: str | PathLike) -> Path:
    """Where the journal of the alignments file at ``path`` lives."""
    path = Path(path)
    return path.with_name(path.name + JOURNAL_SUFFIX)


def last_written_ns(folder: Path) -> int | None:
    """When an earlier run last wrote the folder's alignments file or journal (None: never):
    a photo changed after that is not the one its frame was made from."""
    times = []
    for path in (folder / ALIGNMENTS_FILE, journal_path(folder / ALIGNMENTS_FILE)):
        try:
            times.append(path.stat().st_mtime_ns)
        except OSError:
            continue
    return max(times, default=None)


def _check_header(document: Any, where: Path) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FacekitError(f"{where} is not a facekit alignments file (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if version != VERSION:
        hint = "upgrade facekit to read it" if isinstance(version, int) and version > VERSION else \
            "it is not one this facekit knows"
        raise FacekitError(f"{where} has alignments format version {version!r}; this facekit reads "
                           f"version {VERSION}: {hint}")


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_FRAME_HEAD, _FRAME_MIDDLE, _FRAME_TAIL = '{"name":', ',"frame":', "}\n"
_DECODER = json.JSONDecoder()


def _frame_line(name: str, frame: dict[str, Any]) -> bytes:
    """A journal line: plain JSON, laid out so ``_split_frame_line`` can take it apart without
    parsing the frame (folding a long journal then costs I/O, not a JSON parse per frame)."""
    return f"{_FRAME_HEAD}{_compact(name)}{_FRAME_MIDDLE}{_compact(frame)}{_FRAME_TAIL}".encode("utf-8")


def journal_line(record: FrameRecord) -> bytes:
    """A finished frame as a journal line: what a cluster worker's shard journal holds, and
    ``AlignmentsWriter.write_line`` takes back unchanged."""
    return _frame_line(record.frame.name, record_to_dict(record))


def journal_line_name(line: bytes) -> str | None:
    """The frame's name if ``line`` is a whole, parseable journal line, else None."""
    return _checked_frame_name(line)


def _split_frame_line(line: bytes) -> tuple[str, str] | None:
    """(name, the frame's JSON text) of a line ``_frame_line`` wrote; None for anything else."""
    try:
        text = line.decode("utf-8")
        if not (text.startswith(_FRAME_HEAD) and text.endswith(_FRAME_TAIL)):
            return None
        name, end = _DECODER.raw_decode(text, len(_FRAME_HEAD))
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(name, str) or not text.startswith(_FRAME_MIDDLE, end):
        return None
    return name, text[end + len(_FRAME_MIDDLE):-len(_FRAME_TAIL)]


def _checked_frame_name(line: bytes) -> str | None:
    """The frame's name if ``line`` is a whole, parseable frame entry, else None."""
    split = _split_frame_line(line)
    try:
        return split[0] if split is not None and isinstance(json.loads(split[1]), dict) else None
    except ValueError:
        return None


def _journal_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(offset, line) for each complete line: a crash mid-write leaves a torn last line without
    its newline, which is left out."""
    with path.open("rb") as journal:
        offset = 0
        for line in journal:
            if not line.endswith(b"\n"):
                return
            yield offset, line
            offset += len(line)


def _fold_temp(path: Path, tag: str) -> Path:
    """Where the final file is written before its atomic rename (``tag`` "*" globs them all)."""
    return path.with_name(f".{path.name}.{tag}.tmp")



def _write_atomically(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """``write`` fills a temp file beside ``path``, which is fsynced, then renamed over ``path``."""
    temp = _fold_temp(path, secrets.token_hex(4))
    try:  # open(..., "x"), not mkstemp: the file gets the umask's mode, not 0600
        with open(temp, "xb" if binary else "x", encoding=None if binary else "utf-8") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
        fsync_dir(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# --- writing ---------------------------------------------------------------------------------

class AlignmentsWriter:
    """Writes an alignments file frame by frame: O(1) per frame, atomic at the end, resumable.

    ``meta["fingerprint"]`` holds the settings that decide what a frame's entry looks like
    (detector, aligner, crop size, padding...); frames from a run with another fingerprint are
    never mixed in. Use from one thread (the pipeline's writer stage).

    >>> with AlignmentsWriter(out / "alignments.json", meta) as writer:
    ...     todo = [f for f in frames if f.name not in writer.done_frames()]
    ...     for record in process(todo):
    ...         writer.write(record)
    """

    def __init__(self, path: str | PathLike, meta: dict[str, Any], sync_every: int = 100) -> None:
        if sync_every < 1:
            raise ValueError(f"sync_every must be at least 1, got {sync_every}")
        self.path = Path(path)
        self.journal_path = journal_path(self.path)
        self.meta = json.loads(json.dumps(meta))  # as it will read back: tuples become lists
        self.sync_every = sync_every
        self._done: set[str] = set()
        self._forgotten: set[str] = set()  # left out of the fold (``forget``)
        self._earlier: _EarlierFile | None = None  # the file a rerun extends, read a line at a time
        self._pass_from: int | None = None  # where a pass that writes every frame in order began (``rewrite_in_order``)
        self._unsynced = 0
        self._journaled = False  # frame lines in the journal: an earlier run's or this one's (a fold has work)
        #: The refusal that holds only if this run has frames to do: the file is this run's but for
        #: masks ``task=mask`` added since, which the frames still to do would lack (``masked_since``)
        self.refused_unless_done: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(_fold_temp(self.path, "*").name):  # a fold that was killed
            stale.unlink(missing_ok=True)
        if self.path.exists():
            self._earlier = _EarlierFile(self.path)
            self._check_fingerprint(self._earlier.meta, self.path)
            self._done.update(self._earlier.names)
        self._journal = self._open_journal()

    @property
    def earlier_meta(self) -> dict[str, Any]:
        """The meta of the alignments file this run extends ({} for a first run)."""
        meta = self._earlier.meta if self._earlier is not None else None
        return meta if isinstance(meta, dict) else {}

    def done_frames(self) -> set[str]:
        """Names of the frames already written, by this run or an earlier one."""
        return set(self._done)

    def done_faces(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(frame name, its face entries) of every frame written so far, the latest entry of
        each: what a resumed run checks its face files against."""
        for name, entry in self.done_entries():
            yield name, entry.get("faces", [])

    def done_entries(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(frame name, its entry) of every frame written so far, the latest entry of each."""
        if self._journal is not None:
            self._journal.flush()
        for name, text in self._frames():
            yield name, json.loads(text)

    def redo(self, names: set[str]) -> None:
        """Frames to be written again (their face files are gone or damaged): their next entry,
        appended to the journal, replaces the earlier one when the file is folded."""
        self._done -= names

    def forget(self, names: set[str]) -> None:
        """Frames the fold leaves out: an earlier entry whose face files are gone and that this run
        did not write again (its photo replaced by one that no longer decodes). A run stopped
        before it folds keeps them, and the next one finds their face files missing."""
        if names:
            self._forgotten |= names
            self._done -= names
            self._journaled = True  # the fold has work: the file changes

    def write(self, record: FrameRecord) -> None:
        """Append one finished frame to the journal (flushed now, fsynced every ``sync_every``)."""
        if self._journal is None:
            raise ValueError(f"AlignmentsWriter for {self.path} is closed")
        name = record.frame.name
        self._journal.write(_frame_line(name, record_to_dict(record)))
        self._journal.flush()
        self._done.add(name)
        self._journaled = True
        self._unsynced += 1
        if self._unsynced >= self.sync_every:
            self._sync()

    def rewrite_in_order(self) -> None:
        """Every frame is about to be written again, in the file's order (Ray's fold writes
        every finished shard in shard order): that pass gives the order. Lines an interrupted
        fold left in the journal before it only fill in frames the pass lacks; by the usual rule
        (a frame keeps its first place) they would put the frames they hold first."""
        if self._journal is None:
            raise ValueError(f"AlignmentsWriter for {self.path} is closed")
        self._journal.flush()
        self._pass_from = os.fstat(self._journal.fileno()).st_size  # appends land at the end, whatever tell() says

    def write_line(self, line: bytes) -> None:
        """Append a frame already made into a journal line (``journal_line``), by a worker
        elsewhere: its bytes go in as they are, so the file equals a local run's."""
        if self._journal is None:
            raise ValueError(f"AlignmentsWriter for {self.path} is closed")
        name = _checked_frame_name(line)
        if name is None:
            raise ValueError(f"not a whole journal line: {line[:80]!r}")
        self._journal.write(line)
        self._done.add(name)
        self._journaled = True
        self._unsynced += 1
        if self._unsynced >= self.sync_every:
            self._sync()

    def close(self) -> None:
        """Fold the earlier file and the journal into the final JSON, atomically; then drop the
        journal. If folding fails the journal stays, so nothing finished is lost."""
        if self._journal is None:
            return
        journal, self._journal = self._journal, None
        try:
            with journal:
                os.fsync(journal.fileno())
            if self._journaled or self._earlier is None:  # a rerun that did nothing leaves the file as it was
                self._replace_final()
        except OSError as exc:
            raise OutputError(f"cannot write {self.path} ({exc.strerror or exc}); its frames are kept in "
                              f"{self.journal_path.name}, which the next run in this folder folds in") from exc
        self.journal_path.unlink()  # only now that the final file holds every frame

    def __enter__(self) -> AlignmentsWriter:
        return self

    def __exit__(self, error: type[BaseException] | None, *exc_info: object) -> None:
        if error is not None and self._earlier is None and not self._journaled:
            self._discard()  # nothing to keep: no file must refuse the corrected command's settings
            return
        self.close()  # also after an error: every journaled frame is complete and worth keeping

    def _discard(self) -> None:
        """A run that failed before it finished a frame, in a folder with no earlier frames,
        leaves no alignments file and no journal: either would hold this run's settings, and
        the same command with a mistake mended would be refused for differing from them."""
        if self._journal is None:
            return
        journal, self._journal = self._journal, None
        journal.close()
        self.journal_path.unlink(missing_ok=True)

    # -- journal --

    def _open_journal(self) -> BinaryIO:
        """Open the journal for appending, after taking in what an interrupted run left.

        Every line is checked here, once. A damaged frame line (a power cut's garbage, a bad
        sector) is named by its number in one warning and left out, so its frame is done again;
        the lines before and after it that read back whole are kept. A damaged header leaves no
        line checkable against this run's settings: every frame is done again, and the warning
        says so. The journal is then rewritten without the damaged lines, so from then on it
        holds only whole entries. A torn last line (a crash mid-write) is dropped unannounced.
        """
        good_end, frames, damaged = 0, 0, []
        if self.journal_path.exists():
            for number, (offset, line) in enumerate(_journal_lines(self.journal_path), start=1):
                if offset == 0:
                    try:
                        header = json.loads(line)
                    except ValueError:
                        frames = sum(1 for _ in _journal_lines(self.journal_path)) - 1
                        break
                    _check_header(header, self.journal_path)
                    self._check_fingerprint(header.get("meta"), self.journal_path)
                else:
                    name = _checked_frame_name(line)
                    if name is None:
                        damaged.append(number)
                        continue
                    self._done.add(name)
                    frames += 1
                    self._journaled = True
                good_end = offset + len(line)
        if good_end == 0 and frames:
            log.warning("%s: line 1, its header, is damaged, so its %d frame line(s) cannot be checked against "
                        "this run's settings: every frame is done again", self.journal_path, frames)
        elif damaged:
            log.warning("%s: %s damaged: %s done again; the %d whole frame line(s) around %s are kept",
                        self.journal_path, _lines_named(damaged),
                        "its frame is" if len(damaged) == 1 else "their frames are", frames,
                        "it" if len(damaged) == 1 else "them")
            self._rewrite_journal(leaving_out=set(damaged))
        journal = open(self.journal_path, "ab")
        if not damaged:
            journal.truncate(good_end)
        if good_end == 0:
            journal.write((_compact(self._header()) + "\n").encode("utf-8"))
            journal.flush()
            os.fsync(journal.fileno())
            fsync_dir(self.path.parent)
        return journal

    def _rewrite_journal(self, leaving_out: set[int]) -> None:
        """The journal's whole lines without the ones numbered in ``leaving_out``, put in its
        place atomically (a crash now leaves the old journal, which the next run reads again)."""
        lines = enumerate(_journal_lines(self.journal_path), start=1)
        _write_atomically(self.journal_path, lambda out: out.writelines(
            line for number, (_, line) in lines if number not in leaving_out), binary=True)

    def _header(self) -> dict[str, Any]:
        """What opens both the journal and the final file."""
        return {"format": FORMAT, "version": VERSION, "meta": self.meta}

    def _sync(self) -> None:
        os.fsync(self._journal.fileno())
        self._unsynced = 0

    def _check_fingerprint(self, found_meta: Any, where: Path) -> None:
        found = found_meta.get("fingerprint") if isinstance(found_meta, dict) else None
        wanted = self.meta.get("fingerprint")
        if same_fingerprint(found, wanted):
            return
        refusal = (f"{where} was written with other settings ({differences_named(found_meta, wanted)}); mixing "
                   f"its frames with this run's would give an inconsistent result. Rerun with those settings to "
                   f"resume it, choose another output folder, or delete {self.path.name} and "
                   f"{self.journal_path.name} there to start over.")
        if not masked_since(found_meta, wanted):
            raise FacekitError(refusal)
        self.refused_unless_done = refusal

    # -- the final file --

    def _frames(self) -> Iterator[tuple[str, str]]:
        """(name, frame JSON text) for every frame once: the earlier file's, then the journal's
        (a later entry wins, in the earlier one's place: a frame done again because its face
        file was lost keeps its place). A journal that holds every frame of the earlier file
        (Ray's fold writes every finished shard again, in shard order) gives the order itself.
        Only journal offsets and the earlier file's frame names stay in memory; frames of both
        are copied as text, never parsed again."""
        latest, before_pass = {}, {}
        for offset, line in _journal_lines(self.journal_path):
            split = _split_frame_line(line) if offset else None
            if split is not None:
                in_pass = self._pass_from is None or offset >= self._pass_from
                (latest if in_pass else before_pass)[split[0]] = offset
        latest.update((name, offset) for name, offset in before_pass.items() if name not in latest)
        earlier = self._earlier
        if earlier is not None and latest.keys() >= set(earlier.names):
            earlier = None
        with self.journal_path.open("rb") as journal:
            for name, frame in earlier.frames() if earlier is not None else ():
                if name in latest:
                    journal.seek(latest.pop(name))
                    yield _split_frame_line(journal.readline())
                else:
                    yield name, frame
            for offset in latest.values():
                journal.seek(offset)
                yield _split_frame_line(journal.readline())

    def _replace_final(self) -> None:
        """Readers see the old file or the new one, never half of one."""
        _write_atomically(self.path, self._dump)

    def _dump(self, out: TextIO) -> None:
        _dump_document(out, self._header(), ((name, frame) for name, frame in self._frames()
                                             if name not in self._forgotten))


class _OtherLayout(Exception):
    """An alignments file not laid out as ``_dump_document`` writes one."""


class _EarlierFile:
    """The alignments file a rerun extends. Where facekit wrote it (``_dump_document``: a
    header line, then one frame a line) it is read a line at a time, each frame checked as it
    goes and then dropped, and its frames are copied into the next file as the text they are:
    held whole, an 11,000-frame file of 51 MB took 599 MB of memory (bench/resume_alignments.py).
    A file in another layout (another tool's, or pretty-printed) is read whole, as
    ``load_alignments`` reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._whole: dict[str, Any] | None = None
        try:
            self.meta, self.names = self._scan()
        except _OtherLayout:
            document = load_alignments(path)
            self.meta, self._whole = document.get("meta"), document["frames"]
            self.names = list(self._whole)

    def frames(self) -> Iterator[tuple[str, str]]:
        """(name, the frame's JSON text) of every frame, in the file's order."""
        if self._whole is not None:
            yield from ((name, _compact(frame)) for name, frame in self._whole.items())
            return
        with self.path.open("rb") as handle:
            handle.readline()
            yield from _laid_out_frames(handle)

    def _scan(self) -> tuple[Any, list[str]]:
        """The meta and the frame names, every line checked: a frame that does not parse sends
        the file to ``load_alignments``, which names what is wrong."""
        with self.path.open("rb") as handle:
            header = _header_line(handle.readline(), self.path)
            if header is None:
                raise _OtherLayout
            names = []
            for name, frame in _laid_out_frames(handle):
                try:
                    if not isinstance(json.loads(frame), dict):
                        raise _OtherLayout
                except ValueError:
                    raise _OtherLayout from None
                names.append(name)
        return header["meta"], names


def _laid_out_frames(handle: BinaryIO) -> Iterator[tuple[str, str]]:
    """(name, frame text) for each frame line after the header, as ``_dump_document`` writes
    them; _OtherLayout for anything else, a file cut short included."""
    if handle.readline() != b'"frames": {\n':
        raise _OtherLayout
    for line in handle:
        if line == b"}}\n":
            if handle.read(1):
                raise _OtherLayout
            return
        try:
            text = line.decode("utf-8").removesuffix("\n").removesuffix(",")
            name, end = _DECODER.raw_decode(text)
        except ValueError:  # UnicodeDecodeError included
            raise _OtherLayout from None
        if not isinstance(name, str) or not text.startswith(": ", end):
            raise _OtherLayout
        yield name, text[end + 2:]
    raise _OtherLayout


def _dump_document(out: TextIO, header: dict[str, Any], frames: Iterable[tuple[str, str]]) -> None:
    """The document, one frame a line: streamed, greppable, and diffs stay readable."""
    head = json.dumps(header, ensure_ascii=False)
    out.write(head[:-1] + ',\n"frames": {')  # the header object, left open for "frames"
    separator = "\n"
    for name, frame in frames:
        out.write(f"{separator}{json.dumps(name, ensure_ascii=False)}: {frame}")
        separator = ",\n"
    out.write("\n}}\n")


def write_alignments(path: str | PathLike, document: dict[str, Any]) -> None:
    """A whole alignments document (``load_alignments``'s, changed) written back atomically in
    the layout a run writes: what ``task=mask`` does to an existing output."""
    header = {key: value for key, value in document.items() if key != "frames"}
    frames = ((name, _compact(frame)) for name, frame in document["frames"].items())
    _write_atomically(Path(path), lambda out: _dump_document(out, header, frames))


def _lines_named(numbers: list[int]) -> str:
    """"line 7 is" or "lines 7, 9 and 12 are" (the first ten named, then a count)."""
    if len(numbers) == 1:
        return f"line {numbers[0]} is"
    shown = ", ".join(map(str, numbers[:10]))
    return f"lines {shown} and {len(numbers) - 10} more are" if len(numbers) > 10 else \
        f"lines {shown.rsplit(', ', 1)[0]} and {numbers[-1]} are"
