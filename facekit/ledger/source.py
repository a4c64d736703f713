"""A source's output while a run writes it: its folder and lock, its alignments journal, its
face files, and what it counts. One class for every executor, so a per-face feature written
into the record lands in every run the same way."""
from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from facekit.errors import OutputError, cannot_write
from facekit.fileio import remove_left_temporaries
from facekit.ledger.lock import exclusive_output
from facekit.ledger.photos import photos_to_redo, remove_face_files
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.shard_journal import refuse_other_shards
from facekit.ledger.summary import SUMMARY_FILE, SourceSummary
from facekit.ledger.verify import Verify, frames_to_redo
from facekit.output.alignments import ALIGNMENTS_FILE, VIDEO_ENDED_AT, AlignmentsWriter, last_written_ns, load_alignments
from facekit.output.face_files import DEBUG, REJECTED, FaceWriter
from facekit.output.mask_files import MASK_FOLDER
from facekit.records import FrameRecord

log = logging.getLogger("facekit")


@dataclass(frozen=True)
class LedgerSettings:
    """How every source's ledger of a run writes and resumes: made once from the run's settings
    (``planning.ledger_settings``), whichever executor runs the source."""

    debug: bool  # output.debug: each frame drawn into debug/
    save_rejected: bool  # filter.save_rejected: the rejected faces' crops into rejected/
    save_every: int  # output.save_every: frames between syncs of the journal
    verify: Verify  # resume.verify: how a finished frame's face files are checked
    mask_files: bool  # output.mask_format=file: each face's masks as files, checked too


class SourceLedger:
    """Opens the folder (its lock held until ``close``), resumes its journal (``done``: the
    frames an earlier run finished), writes each finished frame's files then its journal line,
    and on ``close`` folds the journal into ``alignments.json``."""

    def __init__(self, folder: Path, meta: dict[str, Any], settings: LedgerSettings,
                 photos: Sequence[tuple[str, Path]] | None = None) -> None:
        """``photos``: a folder source's (frame name, file) as they are now, so a finished frame
        whose photo changed since is done again (``facekit.ledger.photos``). With
        ``settings.mask_files`` the run writes each face's masks as files too, which a finished
        frame must still have."""
        debug, save_rejected, verify, mask_files = (settings.debug, settings.save_rejected, settings.verify,
                                                    settings.mask_files)
        self.folder = folder
        self._held = ExitStack()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._held.enter_context(exclusive_output(folder))
            refuse_other_shards(folder, meta.get("fingerprint"))  # a Ray run's, stopped before its fold
            written_ns = last_written_ns(folder)  # before this run writes there
            self.alignments = self._held.enter_context(AlignmentsWriter(folder / ALIGNMENTS_FILE, meta,
                                                                        sync_every=settings.save_every))
            self.writer = FaceWriter(folder, debug=debug, save_rejected=save_rejected)  # its folders once accepted
        except BaseException:
            self._held.close()
            raise
        #: what the resume found, said by ``say_what_resumes`` once the run is not refused (a
        #: rerun refused for its settings does no frame again, and so says none will be)
        self.found: list[str] = []
        recorded: dict[str, str] = {}  # each finished frame's photo, by file name: the photo check's, same read

        def faces_noting_photos() -> Iterator[tuple[str, list[dict[str, Any]]]]:
            for name, entry in self.alignments.done_entries():
                recorded[name] = Path(str(entry.get("source", ""))).name
                yield name, entry.get("faces", [])

        redo = frames_to_redo(folder, faces_noting_photos(), verify, mask_files) if self.alignments.done_frames() else set()
        if redo:
            self.found.append(f"{folder}: {len(redo)} finished frame(s) have a face file{' or mask file' if mask_files else ''} "
                              "that is missing or damaged "
                              f"({'size or bytes' if verify == Verify.full else 'size'}); they are done again")
            self.alignments.redo(redo)
        self._stale: list[str] = []  # face files of frames done again, removed when the run first touches the folder
        self._untouched = True  # no frame written, nothing removed yet (a refused run touches nothing)
        self._replaced: set[str] = set()  # frames done again because what they came from changed
        self._rewritten: set[str] = set()  # frames this run wrote
        if photos is not None and recorded:
            self._mark_replaced(photos_to_redo(folder, recorded, photos, written_ns, self.found.append))
        self.done = frozenset(self.alignments.done_frames())
        self._extras_asked = debug, save_rejected
        self.summary = SourceSummary(resumed=len(self.done))
        self.rejects = RejectCounts()

    def say_what_resumes(self) -> None:
        """The warnings of what the resume found (frames done again, photos gone), once."""
        for line in self.found:
            log.warning("%s", line)
        self.found = []
        warn_not_done_again(len(self.done), *self._extras_asked)
        self._extras_asked = False, False

    def replace(self, names: set[str]) -> None:
        """Finished frames to do again because what they were made from changed (a photo, an
        extraction's faces): ``_mark_replaced``."""
        self._mark_replaced(names)
        self.done = frozenset(self.alignments.done_frames())
        self.summary.resumed = len(self.done)

    def _mark_replaced(self, names: set[str]) -> None:
        """Their face files (and mask files) go with this run's first write (a refused run
        writes nothing): they show what is no longer there, a photo with fewer faces would
        leave some behind, and a run stopped before it does those frames again leaves them
        missing, which the next run's face-file check finds (by then the change found here may
        no longer be newer than the journal)."""
        if not names:
            return
        self._replaced |= names
        self._stale += [face["crop"] for name, entry in self.alignments.done_entries() if name in names
                        for face in entry.get("faces", []) if face.get("crop")]
        self.alignments.redo(names)

    def _remove_stale(self) -> None:
        remove_face_files(self.folder, self._stale)
        self._stale = []

    def _touch(self) -> None:
        """What the run's first change to the folder does first: the temporary files a killed run
        left, and the replaced frames' face files, go."""
        if self._untouched:
            self._untouched = False
            remove_killed_writes(self.folder)
            self._remove_stale()

    def _forget_unwritten(self) -> None:
        """A replaced frame whose face files went when the run touched the folder and that this
        run did not write again (its photo no longer decodes, or the run stopped first) leaves the
        alignments file with its entry, which would name files no longer there."""
        if not self._untouched:
            self.alignments.forget(self._replaced - self._rewritten)

    def __enter__(self) -> SourceLedger:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._forget_unwritten()
        self._held.__exit__(*exc_info)  # the error too: a run that failed before its first frame leaves no file

    def write(self, record: FrameRecord) -> None:
        """A finished frame's face files, then its journal line: a frame is journaled only once
        its files are there, so a resumed run never lacks a file its alignments name."""
        self._touch()
        if self._stale:  # frames replaced since the run touched the folder
            self._remove_stale()
        files = [self.folder / relative for relative in record.pending]
        try:
            self.writer.write(record)
            self.alignments.write(record)
            self._rewritten.add(record.frame.name)
        except OSError as exc:  # a full disk, a folder removed or made read-only mid-run
            for path in files:  # no face file without its journal line: the frame is done again
                path.unlink(missing_ok=True)
            raise OutputError(f"{cannot_write(exc, self.folder)}; the "
                              f"frames before {record.frame.name} are saved, so the same command "
                              "resumes once that is fixed") from exc
        self.summary.frames += 1
        self.summary.faces += len(record.faces)
        self.rejects.count(record)

    @property
    def video_ended_early(self) -> bool:
        """Whether an earlier run found the source a video shorter than its header says."""
        return VIDEO_ENDED_AT in self.alignments.earlier_meta

    def note_video_end(self, ended_at: int | None) -> None:
        """A video that ended before its header's frame count (``FrameSource.ended_early_at``):
        how many frames it held goes in the alignments meta, so that a rerun with every one
        done says there is nothing to do rather than reading the video again for no frame."""
        if ended_at is not None:
            self.alignments.meta[VIDEO_ENDED_AT] = ended_at

    def close(self) -> None:
        """Folds the journal into ``alignments.json`` and frees the folder's lock."""
        self._forget_unwritten()
        self._held.close()

    def read_to_its_end(self) -> None:
        """Every frame of the source was read: a replaced photo not written again no longer
        decodes, so even a run that wrote no frame removes its face files and (at the fold) its
        entry, as a new run of the folder would have neither."""
        if self._replaced - self._rewritten:
            self._touch()

    def write_summary(self) -> None:
        self.summary.rejected = self.rejects.as_dict()
        self.summary.write(self.folder)

    def write_missing_summary(self, mode: str) -> None:
        """A rerun with nothing to do writes ``run_summary.json`` where a run stopped between its
        last fold and its summary left none (every later rerun said "nothing to do" and the folder
        never had one): this run's figures, none done, all resumed, the rejects its entries hold."""
        if (self.folder / SUMMARY_FILE).is_file():
            return
        for entry in load_alignments(self.folder / ALIGNMENTS_FILE)["frames"].values():  # folded: the ledger is closed
            self.rejects.count_entry(entry)
        self.summary.mode = mode
        self.write_summary()


def remove_killed_writes(folder: Path) -> None:
    """The temporary files a run killed mid-write left (a face file, a mask, a debug frame), in the
    source's folder and the folders it writes below it: with the lock held, none is this run's.
    Whichever executor wrote them (a Ray worker lost mid-shard leaves them too)."""
    masks = folder / MASK_FOLDER
    below = [folder / REJECTED, folder / DEBUG, *sorted(masks.glob("*/")), *sorted(masks.glob(f"*/{REJECTED}/"))]
    removed = sum(remove_left_temporaries(place) for place in (folder, *below))
    if removed:
        log.info("%s: removed %d temporary file(s) a stopped run left", folder, removed)


def counted(alignments: Path) -> tuple[int, int]:
    """Frames and faces in a finished alignments file (resumed frames included)."""
    try:
        frames = json.loads(alignments.read_text(encoding="utf-8")).get("frames", {})
    except (OSError, ValueError):
        return 0, 0
    return len(frames), sum(len(entry.get("faces", [])) for entry in frames.values())


def warn_not_done_again(frames: int, debug: bool, save_rejected: bool) -> None:
    """``output.debug`` draws, and ``filter.save_rejected`` keeps the rejected crops of, the
    frames a run does; a rerun does not redo finished frames for them: said once, so an empty
    debug/ or rejected/ folder is not a mystery."""
    if not frames:
        return
    if debug:
        log.warning("output.debug=true: %d frame(s) an earlier run finished are not done again, so they get no "
                    "debug image; only this run's frames are drawn (a new output folder draws every frame)", frames)
    if save_rejected:
        log.warning("filter.save_rejected=true: %d frame(s) an earlier run finished are not done again, so their "
                    "rejected faces are in rejected/ only if that run saved them too (a new output folder saves "
                    "every one)", frames)
