"""A shard's journal: its frames' alignments entries, in a file of its own in the source's
output folder, that exists under its final name only once the shard has finished.

A worker writes the journal under a temporary name, fsyncs it and renames it into place at the
shard's end, so a journal there is a finished shard whatever happened to its worker (a node
killed mid-shard leaves only a temporary file, which the next run of that shard replaces). A
rerun keeps every shard whose journal is there; the driver folds them, in shard order, into the
source's ``alignments.json``. The header records the settings' fingerprint, so shards of two
settings never fold together. The last line counts the frame lines before it: a journal without
it (cut short after it landed, or written before journals had one) is set aside and its shard
runs again, and so is one with a damaged line or a wrong count, found when a run reads every line
to decide which shards it keeps (one found so later, when it is folded, is refused).

A worker's report that its shard finished is not proof that its files reached the folder the
driver folds from (a node that writes to a folder of its own, a journal removed or cut short
since): ``missing_from`` compares the journal and the face files it names with the frames the
worker reported, and ``set_aside`` moves a journal that falls short out of the way, kept, so
that the shard counts as not finished and runs again.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

from facekit.fileio import fsync_dir
from facekit.errors import FacekitError
from facekit.ledger.photos import photos_to_redo, remove_face_files
from facekit.ledger.verify import Verify, frames_to_redo
from facekit.media.shards import FILES, Shard
from facekit.output.alignments import ALIGNMENTS_FILE, journal_line_name
from facekit.output.differences import fingerprint_differences, same_fingerprint

log = logging.getLogger("facekit")

SHARDS_DIR = ".facekit-shards"
#: The key of a journal's last line, ``{"end": {"frames": N}}``: N frame lines come before it.
END_KEY = "end"
#: Added to the name of a journal that falls short of what its worker reported: no longer a finished shard.
INCOMPLETE_SUFFIX = ".incomplete"


def shard_journal(output: Path, shard: Shard) -> Path:
    return output / SHARDS_DIR / f"{shard.number:06d}.jsonl"


class ShardJournalWriter:
    """Frame lines into a temporary file; ``commit`` lands it whole under the shard's name."""

    def __init__(self, output: Path, shard: Shard, fingerprint: Any) -> None:
        self.path = shard_journal(output, shard)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        self._file: BinaryIO = open(self.temp, "xb")
        header = {"shard": {"number": shard.number, "kind": shard.kind, "first": shard.first, "last": shard.last},
                  "fingerprint": fingerprint}
        if shard.kind == FILES:  # a shard is its place in the folder: which photos it held tells a later run
            header["shard"]["names"] = list(shard.names)
        self._file.write((json.dumps(header, ensure_ascii=False) + "\n").encode("utf-8"))
        self.frames = 0

    def write(self, line: bytes) -> None:
        self._file.write(line)
        self.frames += 1

    def commit(self) -> None:
        self._file.write((json.dumps({END_KEY: {"frames": self.frames}}) + "\n").encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp, self.path)
        fsync_dir(self.path.parent)

    def abandon(self) -> None:
        self._file.close()
        self.temp.unlink(missing_ok=True)


def finished(output: Path, shard: Shard, fingerprint: Any, verify: Verify = Verify.size,
             frames: Sequence[str] | None = None, mask_files: bool = False, retry_skipped: bool = False) -> bool:
    """Whether an earlier run finished ``shard`` with these settings; a journal of other
    settings is refused with one line, as the alignments file's own check does. A journal
    without its end line, one with a damaged line (named, as is what it should hold and what it
    holds), one naming a face file that is missing or damaged (``verify``, as a local rerun
    checks its files) or a mask file that is missing (``mask_files``), one of a files shard some
    of whose photos could not be read when it ran (``retry_skipped``: an earlier run's, as a local
    rerun tries a source's skipped photos again; not the fold's of the shard that just ran), or
    one of other frames than ``frames`` (when the shard's frames are known
    beforehand: a re-crop's, those its extraction holds there now), is set aside (a warning says
    so), and the shard runs again: a shard is the unit that runs again."""
    path = shard_journal(output, shard)
    try:
        with path.open("rb") as journal:
            header = json.loads(journal.readline())
            whole = _end_count(_last_line(journal)) is not None
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        raise FacekitError(f"{path} is damaged ({exc}); delete it to run that shard again") from None
    wanted = json.loads(json.dumps(fingerprint))
    if not same_fingerprint(header.get("fingerprint"), wanted):
        raise FacekitError(_other_settings(path.parent, header.get("fingerprint"), wanted))
    damage = None if whole else " has no end line (it was cut short)"
    if whole and (elsewhere := _cut_otherwise(header.get("shard", {}), shard)) is not None:
        damage = elsewhere
    held: dict[str, dict[str, Any]] = {}  # each frame's entry: the photo check's, from the same read
    try:
        damaged = frames_to_redo(output, _frame_faces(path, held), verify, mask_files) if whole else set()
    except _Damaged as exc:
        damage = f" is damaged: {exc}"
    else:
        if damaged:
            damage = (f": {len(damaged)} finished frame(s) have a face file{' or mask file' if mask_files else ''} "
                      "that is missing or damaged")
        elif frames is not None and set(held) != set(frames):
            damage = (f" holds {len(held)} frame(s) where its extraction holds {len(frames)} now (the extraction "
                      "went on since)")
        elif shard.kind == FILES:
            damage = _other_photos(output, path, shard, header.get("shard", {}).get("names"), held, retry_skipped)
    if damage is not None:
        log.warning("%s%s; it is kept as %s%s and shard %s runs again", path, damage, path.name, INCOMPLETE_SUFFIX,
                    shard.label)
        set_aside(output, shard)
    return damage is None


def refuse_other_shards(output: Path, fingerprint: Any) -> None:
    """A run on this machine into a folder where a Ray run stopped before its first fold (shard
    journals, no alignments.json yet) is refused when those shards were written with other
    settings, before it writes: its face files would replace theirs under the same names, and
    the shards would refuse every later Ray run. (Once folded, the alignments file is what a
    rerun is checked against: ``task=mask`` may have added masks to it since.)"""
    folder = output / SHARDS_DIR
    if (output / ALIGNMENTS_FILE).exists() or not folder.is_dir():
        return
    wanted = json.loads(json.dumps(fingerprint))
    for path in sorted(folder.glob("*.jsonl")):
        try:
            with path.open("rb") as journal:
                header = json.loads(journal.readline())
        except (OSError, ValueError):
            continue  # a damaged journal: its shard runs again, as a Ray rerun would find
        if isinstance(header, dict) and not same_fingerprint(header.get("fingerprint"), wanted):
            raise FacekitError(_other_settings(folder, header.get("fingerprint"), wanted))


def _other_settings(folder: Path, found: Any, wanted: Any) -> str:
    return (f"{folder} holds shards written with other settings ({fingerprint_differences(found, wanted)}); rerun "
            f"with those settings to resume them, choose another output folder, or delete {SHARDS_DIR} there (and "
            "alignments.json) to start over")


def _cut_otherwise(recorded: dict[str, Any], shard: Shard) -> str | None:
    """Why a journal under ``shard``'s number is of another cut of the source (None: the same):
    with another ``runner.shard_frames`` (or ``files_per_shard``), shard 3 covers other frames, and
    taking its journal for them left the frames between the two cuts out, saying nothing was left
    to do. A journal written before its header recorded the cut is taken as the same."""
    if "first" not in recorded:
        return None
    held = (recorded.get("kind"), recorded.get("first"), recorded.get("last"))
    if held == (shard.kind, shard.first, shard.last):
        return None
    what = "files" if shard.kind == FILES else "frames"
    offset = 1 if shard.kind == FILES else 0  # file positions are 0-based, as labels name them 1-based
    return (f" covers {recorded.get('kind')} {what} {held[1] + offset}-{held[2] + offset} of another cut of the "
            f"source (runner.shard_frames or runner.files_per_shard changed since)")


def _other_photos(output: Path, path: Path, shard: Shard, names: list[str] | None,
                  held: dict[str, dict[str, Any]], retry_skipped: bool) -> str | None:
    """Why a files shard's finished journal (``held``: its frames' entries) no longer holds the
    shard's photos as they are now (None: it does), as a local rerun checks a folder's photos:
    the folder gained or lost photos, so the shard now covers others (``names``: the ones it
    held, None in journals written before they were recorded), or one of its photos changed
    since the journal landed, or (``retry_skipped``) some of its photos could not be read when it
    ran. A changed photo's face files go with it: the photo now in its place may have fewer
    faces."""
    recorded = {name: Path(str(entry.get("source", ""))).name for name, entry in held.items()}
    if (list(names) != list(shard.names)) if names is not None else not set(recorded) <= set(shard.names):
        return " holds other photos than its place in the folder holds now (photos were added or removed since)"
    if retry_skipped and len(recorded) < len(shard.names):
        return (f" holds {len(recorded)} of its {len(shard.names)} photos (the others could not be read then; they "
                "are tried again)")
    photos = list(zip(shard.names, map(Path, shard.files)))
    changed = photos_to_redo(output, recorded, photos, path.stat().st_mtime_ns, say=lambda line: None)
    if not changed:
        return None
    remove_face_files(output, [face["crop"] for name in changed for face in held[name].get("faces", [])
                               if face.get("crop")])
    return f": {len(changed)} of its photos changed since (replaced, or another file has the name now)"


def _frame_faces(path: Path, held: dict[str, dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(frame name, its face entries) of each frame line of a shard journal, each frame's whole
    entry noted in ``held`` as it goes; ``_Damaged`` at a line that is not what its end line counts."""
    for line in _frame_lines_of(path):
        frame = json.loads(line)
        held[frame["name"]] = frame["frame"]
        yield frame["name"], frame["frame"].get("faces", [])


def frame_lines(output: Path, shard: Shard) -> Iterator[bytes]:
    """The finished shard's frame lines, as its worker wrote them; a journal whose lines are not
    what its end line counts is refused (its frames are not all there), naming what it should
    hold and what it holds."""
    path = shard_journal(output, shard)
    try:
        yield from _frame_lines_of(path)
    except _Damaged as exc:
        raise FacekitError(f"{path} is damaged: {exc}; delete it to run that shard again") from None


class _Damaged(Exception):
    """What a journal should hold, and what it holds instead."""


def _frame_lines_of(path: Path) -> Iterator[bytes]:
    count = 0
    with path.open("rb") as journal:
        journal.readline()  # the header
        found = "no end line"
        for number, line in enumerate(journal, start=2):
            if journal_line_name(line) is None:
                ended = _end_count(line)
                if ended == count:
                    return
                found = (f"an end line counting {ended}" if ended is not None
                         else f"line {number}, which is neither a frame nor its end line")
                break
            count += 1
            yield line
        counted = _end_count(_last_line(journal))
    should = f"{counted} frame line(s) then its end line" if counted is not None else \
        "its frame lines then an end line counting them (its last line is not one)"
    raise _Damaged(f"it should hold {should}, but holds {count} whole frame line(s), then {found}")


def missing_from(output: Path, shard: Shard, frame_names: Sequence[str]) -> str | None:
    """What of the finished shard is not in ``output`` as this machine sees it, though its worker
    reported ``frame_names`` written: its journal, frames of it, or face files the journal names
    (each stat'ed: a face file lands whole by rename, so one that is there is whole); None when
    everything is there."""
    path = shard_journal(output, shard)
    where = f"{SHARDS_DIR}/{path.name}"
    names: list[str] = []
    absent: list[str] = []
    ended: int | None = None
    try:
        with path.open("rb") as journal:
            journal.readline()  # the header
            for line in journal:
                name = journal_line_name(line)
                if name is None:
                    ended = _end_count(line)
                    break  # the end line, or a line cut off: the frames before it are what it holds
                names.append(name)
                absent.extend(face["crop"] for face in json.loads(line)["frame"].get("faces", ())
                              if face.get("crop") and not (output / face["crop"]).is_file())
    except FileNotFoundError:
        return f"its journal {where} is missing"
    except (OSError, ValueError) as exc:
        return f"its journal {where} cannot be read ({exc})"
    if names != list(frame_names):
        held = set(names)
        lacking = [name for name in frame_names if name not in held]
        return (f"its journal {where} holds {len(names)} of the {len(frame_names)} frames it reported"
                + (f" (the first missing: {lacking[0]})" if lacking else ""))
    if ended != len(names):
        return f"its journal {where} does not end with the count of its {len(names)} frames (it was cut short)"
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        return f"face file {absent[0]}{more}, named in its journal {where}, is missing"
    return None


def set_aside(output: Path, shard: Shard) -> None:
    """Renames the shard's journal (if there) with ``INCOMPLETE_SUFFIX``: kept for a person to
    look at, no longer a finished shard, so the next run runs it again."""
    path = shard_journal(output, shard)
    try:
        os.replace(path, path.with_name(path.name + INCOMPLETE_SUFFIX))
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def _last_line(journal: BinaryIO) -> bytes:
    """The journal's last line (read from its end: a finished journal's end line is short)."""
    size = journal.seek(0, os.SEEK_END)
    journal.seek(max(0, size - 4096))
    return journal.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]


def _end_count(line: bytes) -> int | None:
    """The frames an end line counts; None for any other line."""
    try:
        record = json.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None
    end = record.get(END_KEY) if isinstance(record, dict) else None
    frames = end.get("frames") if isinstance(end, dict) else None
    return frames if isinstance(frames, int) and not isinstance(frames, bool) else None


