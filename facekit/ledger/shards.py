"""A source's ledger when its frames are cut into shards that Ray workers run apart: each shard
writes its face files and its own journal (``ShardLedger``), and the driver, holding the source's
folder, checks what an earlier run finished (``earlier_shards``) and folds the finished journals
into the alignments file (``fold_shards``). The same face writer, reject counts, settings
(``LedgerSettings``), face-file checks and temporaries' cleanup as a local source's
``SourceLedger``: only the journal is cut in pieces."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from facekit.errors import FacekitError, OutputError, cannot_write
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.shard_journal import SHARDS_DIR, ShardJournalWriter, finished, frame_lines
from facekit.ledger.source import LedgerSettings, remove_killed_writes
from facekit.media.shards import Shard
from facekit.output.alignments import (ALIGNMENTS_FILE, AlignmentsWriter, checked_alignments_meta, journal_line,
                                       journal_meta, journal_path)
from facekit.output.differences import differences_named, same_fingerprint
from facekit.output.face_files import FaceWriter
from facekit.records import FrameRecord


@dataclass
class ShardCounts:
    """What a shard wrote: what its worker reports, and what the driver checks it finds."""

    frames: int = 0
    faces: int = 0
    frame_names: list[str] = field(default_factory=list)  # in its journal, in order
    rejected: RejectCounts = field(default_factory=RejectCounts)


class ShardLedger:
    """One shard's output, written by a worker: each finished frame's face files, then its line in
    the shard's journal, which lands under its final name only at ``commit``. On ``abandon`` (a
    plugin's failure, a full disk) the journal and the face files this shard landed go: an
    abandoned journal would not name them."""

    def __init__(self, output: Path, shard: Shard, fingerprint: Any, books: LedgerSettings) -> None:
        self.output = output
        self.writer = FaceWriter(output, debug=books.debug, save_rejected=books.save_rejected)
        self._journal = ShardJournalWriter(output, shard, fingerprint)
        self._written: list[str] = []
        self.counts = ShardCounts()

    def write(self, record: FrameRecord) -> None:
        self._written.extend(record.pending)
        try:
            self.writer.write(record)
            self._journal.write(journal_line(record))
        except OSError as exc:  # a full disk, a folder removed or made read-only mid-run
            raise OutputError(cannot_write(exc, self.output)) from exc
        self.counts.frames += 1
        self.counts.frame_names.append(record.frame.name)
        self.counts.faces += len(record.faces)
        self.counts.rejected.count(record)

    def commit(self) -> None:
        try:
            self._journal.commit()
        except OSError as exc:
            raise OutputError(cannot_write(exc, self.output)) from exc

    def abandon(self) -> None:
        self._journal.abandon()
        for relative in self._written:
            try:
                (self.output / relative).unlink(missing_ok=True)
            except OSError:
                pass  # a folder gone with the disk: nothing left to remove


def earlier_shards(output: Path, meta: dict[str, Any], shards: Sequence[Shard], books: LedgerSettings,
                   frames_of: Callable[[Shard], Sequence[str]] | None = None) -> set[int]:
    """An alignments file or shard journal there from other settings is refused with one line
    before any shard runs (a collection marks that source failed and goes on). The numbers of
    the shards an earlier run finished, each checked once (``resume.verify=full`` reads every face
    file); ``frames_of``: the frames each shard must hold, where known before it runs (a re-crop's)."""
    path = output / ALIGNMENTS_FILE
    journal = journal_path(path)  # a local run's, killed before its fold: its frames are its settings' too
    for where, found_meta in ((path, checked_alignments_meta(path) if path.exists() else None),
                              (journal, journal_meta(journal))):
        if found_meta is None:
            continue
        found = found_meta.get("fingerprint")
        wanted = json.loads(json.dumps(meta.get("fingerprint")))
        if not same_fingerprint(found, wanted):  # masks task=mask added are refused too: a fold rewrites every frame
            raise FacekitError(f"{where} was written with other settings ({differences_named(found_meta, wanted)}); "
                               f"rerun with those settings to resume it, choose another output folder, or delete it "
                               f"(and {SHARDS_DIR}) there to start over")
    fingerprint = meta.get("fingerprint")
    return {shard.number for shard in shards
            if finished(output, shard, fingerprint, books.verify, frames_of(shard) if frames_of else None,
                        books.mask_files, retry_skipped=frames_of is None)}  # a re-crop's holds only its frames


def fold_shards(output: Path, meta: dict[str, Any], shards: Sequence[Shard], books: LedgerSettings,
                kept: set[int]) -> int:
    """The source's finished shards, in order, into its alignments file (atomically, by
    ``AlignmentsWriter``); a failed shard's frames are simply absent until a rerun. Returns the
    frames of the ``kept`` shards (an earlier run's: resumed)."""
    resumed = 0
    with AlignmentsWriter(output / ALIGNMENTS_FILE, meta, sync_every=books.save_every) as alignments:
        alignments.rewrite_in_order()  # after what a fold stopped by a full disk left in the journal
        for shard in shards:
            if finished(output, shard, meta.get("fingerprint"), books.verify, mask_files=books.mask_files):
                for line in frame_lines(output, shard):
                    alignments.write_line(line)
                    resumed += shard.number in kept
    remove_killed_writes(output)  # what a lost worker was writing when it died; its shard ran again
    for stray in (output / SHARDS_DIR).glob(".*.tmp"):
        stray.unlink(missing_ok=True)
    return resumed
