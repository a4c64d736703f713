"""A collection read as one stream of frames, source after source, through one pipeline.

One pipeline (and so one set of worker processes, started once) takes every source's frames in
turn: the reader opens the next source while the workers are still busy with the last one, so
they never wait for a source to start or end. Each finished frame is routed back to its own
source's output (its face files and alignments journal) by the order frames were handed out,
which the pipeline keeps: ``route`` holds, for every frame in flight, the source it came from, and
an end mark after a source's last frame. A source is folded into its ``alignments.json`` when its
end mark comes up, while later sources are already running.

A plugin failing (or a worker dying) on a frame fails that frame's source only: the sources
opened after it are closed and queued again, and a new pipeline takes up the rest.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from omegaconf import DictConfig

from facekit.app.tasks.collection_progress import CollectionProgress
from facekit.app.tasks.planning import alignments_meta, source_ledger
from facekit.console import quantity
from facekit.errors import FacekitError, failure_reason
from facekit.fileio import missing_folders, remove_empty_folders
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.ledger.collection_state import alignments_name
from facekit.ledger.summary import nothing_read
from facekit.ledger.source import SourceLedger, counted
from facekit.ledger.states import SourceState
from facekit.media import FrameSource, open_input
from facekit.media.collection import Source
from facekit.media.decoder_output import DecoderOutput
from facekit.media.sampling import Sampling
from facekit.output.alignments import ALIGNMENTS_FILE
from facekit.records import Frame, FrameRecord

if TYPE_CHECKING:
    from facekit.ledger.collection_state import CollectionState
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")


@dataclass
class SourceOutput:
    """A source being read and written: its frames and its ledger (folder, lock, journal, face files)."""

    source: Source
    frames: FrameSource
    ledger: SourceLedger
    generation: int  # the stream's generation that opened it (see ``CollectionStream.restart``)
    number: int  # its number in the collection, from 1: the same when a restart opens it again
    opened_at: float = field(default_factory=time.perf_counter)

    @property
    def alignments_name(self) -> str:
        return alignments_name(self.source)

    @property
    def folder(self) -> Path:
        return self.ledger.folder


def opens(source: Source, state: CollectionState, progress: CollectionProgress) -> bool:
    """False for a source that failed to be listed (named and marked failed) or that an earlier
    run finished (kept as it was, not reopened)."""
    if source.failed is not None:
        log.warning("source %s failed: %s", source.rel, source.failed)
        state.set(source, SourceState.FAILED, reason=source.failed)
    elif state.was_done(source):
        log.debug("source %s: done by an earlier run, not reopened", source.rel)  # counted in the closing lines
        state.keep_earlier(source)
    else:
        return True
    progress.finished_source()
    return False


@dataclass(frozen=True)
class _End:
    """In ``route`` after a source's last frame."""

    output: SourceOutput


@dataclass
class StreamSettings:
    """What every source is read and written with."""

    cfg: DictConfig
    stages: FaceStages
    face_filter: IdentityFilter | None
    quality: QualityFilter | None
    sampling: Sampling
    root: Path  # the collection's output folder
    mode: str
    workers: int


class CollectionStream:
    """A ``FrameSource`` to the pipeline (``frames``, ``unreadable``, ``damaged``, ``skipped``)
    whose frames are every source's in turn, and the pipeline's sink, which writes each finished
    frame into its source's folder."""

    kind = "collection"

    def __init__(self, settings: StreamSettings, sources: Iterable[Source], state: CollectionState,
                 progress: CollectionProgress) -> None:
        self.settings, self.state, self.progress = settings, state, progress
        self._sources = iter(sources)
        self._again: deque[tuple[Source, int]] = deque()  # opened by a stream that failed, with their numbers: read first
        self.route: deque[SourceOutput | _End] = deque()
        self.open: list[SourceOutput] = []  # opened and not closed yet, in order
        self.skipped: dict[str, str] = {}
        self.decoder_output: DecoderOutput | None = None  # set by the pipeline on threads
        self.generation = 0
        #: sources whose frames are all written, waiting to be folded on the closer thread: a
        #: fold's fsyncs on the sink's thread would leave the workers idle at every source's end
        self._ended: queue.Queue[SourceOutput | None] = queue.Queue()
        self._closer: threading.Thread | None = None
        self.frames_total = 0
        self.faces_total = 0
        self._failed_write: SourceOutput | None = None  # whose frame the sink could not write
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return 0  # unknown until every source is listed; the collection's own display counts

    # -- the pipeline's source ------------------------------------------------------------------
    def frames(self, skip: frozenset[str] | set[str] = frozenset(), decode: bool = True) -> Iterator[Frame]:
        """Every frame still to do, source by source (``skip`` is per source: its journal's)."""
        generation = self.generation
        for source, number in self._next_sources():
            output = self._open(source, generation, number)
            if output is None:
                continue
            for frame in output.frames.frames(skip=output.ledger.done, decode=decode):
                with self._lock:
                    if generation != self.generation:
                        return  # a failed stream's reader, still running: the next stream reads this
                    self.route.append(output)
                yield frame
            with self._lock:
                if generation != self.generation:
                    return
                self.route.append(_End(output))

    def unreadable(self, path: str, why: str, said: Sequence[str] = ()) -> None:
        """An image file a worker could not decode: its source warns and counts it."""
        self._take().frames.unreadable(path, why, said)
        self._finish_ended()

    def damaged(self, path: str, said: Sequence[str]) -> None:
        with self._lock:
            output = next((o for o in self.route if isinstance(o, SourceOutput)), None)
        if output is not None:
            output.frames.damaged(path, said)

    # -- the pipeline's sink ---------------------------------------------------------------------
    def sink(self, record: FrameRecord) -> None:
        output = self._take()
        try:
            output.ledger.write(record)
        except BaseException:
            self._failed_write = output  # the source a full disk (say) stopped the run in
            raise
        self.frames_total += 1
        self.faces_total += len(record.faces)
        self.progress.frame_done(output.number)
        self._finish_ended()

    def finish(self) -> None:
        """After the pipeline's last frame: every source's end mark is in ``route`` by now."""
        self._finish_ended()
        self._wait_for_closer()
        for output in self._open_ones():  # none, unless a reader stopped early
            self._close(output, SourceState.PARTIAL, reason="not every frame was read; the same command resumes it")

    def restart(self, error: FacekitError) -> bool:
        """After a failed stream: fails the source of the frame it failed on and queues the
        sources opened after it to be read again (each resumes from its journal). False when
        no frame was in flight, so nothing can be blamed and the run must end."""
        self._finish_ended()
        self._wait_for_closer()
        with self._lock:
            self.generation += 1
            failing = next((o for o in self.route if isinstance(o, SourceOutput)), None)
            self.route.clear()
        if failing is None:
            return False
        later = [o for o in self._open_ones() if o is not failing]
        self._close(failing, SourceState.FAILED, reason=str(error))
        for output in later:
            output.ledger.close()
            with self._lock:
                self.open.remove(output)
        self._again.extendleft(reversed([(o.source, o.number) for o in later]))
        log.warning("source %s failed: %s", failing.source.rel, error)
        return True

    def stop(self, reason: str, blamed: bool = True) -> None:
        """Interrupted or ended by an error: every open source keeps what it finished, as partial.
        With ``blamed`` (an error, not Ctrl-C) ``reason`` is the source's whose frame was being
        written or in flight; the others say that source stopped them, not its error as theirs
        (one that wrote nothing read "the frames before h1_000231 are saved")."""
        with self._lock:
            self.generation += 1
        self._wait_for_closer()
        with self._lock:
            culprit = self._failed_write or next((o for o in self.route if isinstance(o, SourceOutput)), None)
        for output in self._open_ones():
            said = reason if not blamed or culprit is None or output is culprit else (
                f"stopped before it ended, when source {culprit.source.rel} stopped the run; the same command "
                "resumes it")
            self._close(output, SourceState.PARTIAL, reason=said)

    # -- sources ----------------------------------------------------------------------------------
    def _next_sources(self) -> Iterator[tuple[Source, int | None]]:
        """Each source to open, with its number when it has one already (opened again after a restart)."""
        while True:
            if self._again:
                yield self._again.popleft()
                continue
            source = next(self._sources, None)
            if source is None:
                return
            yield source, None

    def _open(self, source: Source, generation: int, number: int | None = None) -> SourceOutput | None:
        """Opens a source's frames and output, or marks it failed or done by an earlier run."""
        settings, state = self.settings, self.state
        if number is None:
            number = self.progress.met_source()
        if not opens(source, state, self.progress):
            return None
        folder = settings.root / source.output
        made = missing_folders(folder)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            spelled = state.spelled(source)  # as the run it resumes named it
            frames = open_input(spelled, exclude=folder, sampling=settings.sampling, in_collection=True)
            frames.decoder_output = self.decoder_output
            meta = alignments_meta(settings.cfg, str(spelled), settings.stages, settings.face_filter, frames,
                                   settings.quality)
            ledger = source_ledger(settings.cfg, folder, meta, frames)
        except (FacekitError, OSError) as exc:
            remove_empty_folders(made)  # a source that could not open leaves no empty folder
            reason = failure_reason(exc)
            log.warning("source %s failed: %s", source.rel, reason)
            state.set(source, SourceState.FAILED, reason=reason)
            self.progress.finished_source(number)
            return None
        done = frames.among(ledger.done)  # a photo removed since keeps its entry, not this run's to count
        output = SourceOutput(source, frames, ledger, generation, number)
        with self._lock:
            if generation != self.generation:
                ledger.close()
                return None
            self.open.append(output)
        state.set(source, SourceState.PARTIAL, alignments=output.alignments_name)
        todo = max(0, len(frames) - done)
        log.info("source %d: %s -> %s: %d frame(s)%s%s", number, source.rel, folder, len(frames), f" ({frames.sampling.describe()})" if frames.sampling.active else "",
                 f"; resuming: {done} frame(s) already done" if done else "")
        self.progress.opened_source(number, source.rel, todo)
        return output

    # -- routing ----------------------------------------------------------------------------------
    def _take(self) -> SourceOutput:
        """The source of the next frame to come back (end marks before it close their sources)."""
        self._finish_ended()
        with self._lock:
            entry = self.route.popleft()
        assert isinstance(entry, SourceOutput)
        return entry

    def _finish_ended(self) -> None:
        """Hands the closer each source whose end mark is next in ``route``: all its frames are written."""
        while True:
            with self._lock:
                if not self.route or not isinstance(self.route[0], _End):
                    return
                ended = self.route.popleft()
            assert isinstance(ended, _End)
            if self._closer is None:
                self._closer = threading.Thread(target=self._close_ended, name="close sources", daemon=True)
                self._closer.start()
            self._ended.put(ended.output)

    def _close_ended(self) -> None:
        while (output := self._ended.get()) is not None:
            try:
                self._close(output, SourceState.DONE)
            except BaseException as exc:  # noqa: BLE001 - a source's fold must not end the closer
                log.warning("source %s not closed: %s: %s", output.source.rel, type(exc).__name__, exc)

    def _wait_for_closer(self) -> None:
        """Every source handed to the closer is folded and recorded."""
        if self._closer is not None:
            self._ended.put(None)
            self._closer.join()
            self._closer = None

    def _open_ones(self) -> list[SourceOutput]:
        with self._lock:
            return list(self.open)

    def _close(self, output: SourceOutput, state: SourceState, reason: str | None = None) -> None:
        """Folds the source's alignments, writes its ``run_summary.json`` and records its state."""
        with self._lock:
            if output in self.open:
                self.open.remove(output)
        summary = output.ledger.summary
        summary.skipped = len(output.frames.skipped)
        summary.seconds = time.perf_counter() - output.opened_at
        summary.workers, summary.mode = self.settings.workers, self.settings.mode
        self.skipped.update(output.frames.skipped)
        output.ledger.note_video_end(output.frames.ended_early_at)
        if state == SourceState.DONE and (unread := nothing_read(output.source.kind, summary.frames, summary.resumed,
                                                                    summary.skipped)) is not None:
            state, reason = SourceState.FAILED, unread  # a rerun tries its files again
            log.warning("source %s failed: %s", output.source.rel, unread)
        try:
            if state == SourceState.DONE:
                output.ledger.read_to_its_end()
            output.ledger.close()
            output.ledger.write_summary()
        except (FacekitError, OSError) as exc:  # a full disk: the journal keeps its frames, so it resumes
            if state == SourceState.DONE:
                log.warning("source %s not folded: %s", output.source.rel, exc)
            state, reason = SourceState.PARTIAL, reason or str(exc)
        details: dict[str, object] = {"alignments": output.alignments_name}
        if state == SourceState.DONE:
            frames, faces = counted(output.folder / ALIGNMENTS_FILE)
            details.update(frames=frames, faces=faces)
            log.info("source %s done: %s, %s (%d already done, %d skipped)", output.source.rel,
                     quantity(summary.frames, "frame"), quantity(summary.faces, "face"), summary.resumed, summary.skipped)
            if summary.skipped:
                log.warning("%d file(s) skipped in %s", summary.skipped, output.source.rel)
                details["skipped"] = summary.skipped  # a rerun reopens the source to try them again
        else:
            details["reason"] = reason or state
        self.state.set(output.source, state, **details)
        self.progress.finished_source(output.number)
