"""One source as a step of a run on this machine, and a collection's closing lines: the same for
an extraction's and a re-crop's sources, so a source's states move one way whichever task runs it.

A source that failed to be listed, or that an earlier run finished, is named and passed over.
While it runs its state is ``partial``; an error marks it ``failed`` with the reason and the
run goes on (a source alone fails the run instead: its error is the run's); an interruption
leaves it ``partial``, which the same command resumes; when it ends it is ``done`` with its
frame and face counts.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from facekit.app.tasks.collection_progress import CollectionProgress
from facekit.app.tasks.collection_stream import opens
from facekit.app.tasks.sources import RunSources
from facekit.errors import FacekitError, failure_reason
from facekit.fileio import missing_folders, remove_empty_folders
from facekit.ledger.collection_state import CollectionState, alignments_name
from facekit.ledger.source import counted
from facekit.ledger.states import SourceState
from facekit.ledger.summary import rejects_in, skipped_in
from facekit.media.collection import Source
from facekit.output.alignments import ALIGNMENTS_FILE

log = logging.getLogger("facekit")

#: A source's work: given its number in the run, its output folder and a stack that closes its
#: ledger (the alignments fold) when the work is over, it runs the source and returns what is
#: said once that stack is closed (``run_summary.json`` and the closing lines).
SourceWork = Callable[[int, Path, ExitStack], Callable[[], None]]


def run_source_step(sources: RunSources, source: Source, progress: CollectionProgress, work: SourceWork) -> None:
    """``source`` through ``work`` into its folder, its state kept in ``sources.state``."""
    state = sources.state
    number = progress.met_source()
    if not opens(source, state, progress):
        return
    output = sources.root / source.output
    if not sources.alone:
        log.info("source %d: %s -> %s", number, source.rel, output)
    alignments = alignments_name(source)
    made = missing_folders(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            state.set(source, SourceState.PARTIAL, alignments=alignments)
            closing = work(number, output, held)
        closing()
    except KeyboardInterrupt:
        state.set(source, SourceState.PARTIAL, alignments=alignments,
                  reason="interrupted; the same command resumes it")
        raise
    except (FacekitError, OSError) as exc:
        if sources.alone:
            raise
        remove_empty_folders(made)  # a source that could not open leaves no empty folder
        reason = failure_reason(exc)
        log.warning("source %s failed: %s", source.rel, reason)
        state.set(source, SourceState.FAILED, reason=reason)
        progress.finished_source(number)
        return
    if not sources.alone:
        mark_ended(sources, source, output)
    progress.finished_source(number)


def mark_ended(sources: RunSources, source: Source, output: Path) -> None:
    """A collection's source that ran to its end: ``done`` with its frame and face counts (and
    the files it could not decode, which a rerun tries again), or ``partial`` where
    ``sources.unfinished`` says why it is not done yet (said once, here)."""
    frames, faces = counted(output / ALIGNMENTS_FILE)
    why = sources.unfinished(source)
    if why is None:
        skipped = skipped_in(output)
        sources.state.set(source, SourceState.DONE, alignments=alignments_name(source), frames=frames, faces=faces,
                          **({"skipped": skipped} if skipped else {}))  # in the order a streamed run writes them
        return
    log.warning("source %s: %s", source.rel, why)
    sources.state.set(source, SourceState.PARTIAL, frames=frames, faces=faces,
                      alignments=alignments_name(source), reason=why)


def report_collection(state: CollectionState, named: str, label: str = "collection", verb: str = "processed",
                      figures: str = "", first_failure: str | None = None, list_unfinished: bool = False) -> None:
    """The closing lines: sources by state (``figures`` after them), and with ``list_unfinished``
    the failed and partial ones named again (a long streamed run's lines about them are far up);
    exit code 2 (a FacekitError) when no source is done, naming the first failure (a failed
    source's reason, or ``first_failure`` where the executor knows a closer one). Sources that ran
    to their end partial, and no failure, are not one: a re-crop of an extraction that is not
    finished is partial until it is, as the warnings above said."""
    counts = state.counts()
    log.info("%s: %d source(s): %s%s; states in %s", label, sum(counts.values()),
             ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none", figures, state.path)
    if state.kept_earlier:  # one line, not one a source: a rerun of 4,000 sources to do one said 4,000
        log.info("%d source(s) done by an earlier run, not reopened", state.kept_earlier)
    if state.path is not None:  # what the filters dropped, as a single source's run says it
        done = [entry for entry in state.sources.values() if entry["state"] == SourceState.DONE and entry.get("output")]
        rejected = rejects_in(state.path.parent / entry["output"] for entry in done)
        if rejected:
            log.info("filter: %d face(s) rejected over %d done source(s) (%s; reasons in facekit.log and each "
                     "source's alignments file)", sum(rejected.values()), len(done),
                     ", ".join(f"{kind} {count}" for kind, count in sorted(rejected.items())))
    gone = [rel for rel in state.earlier if rel not in state.sources] if list_unfinished else []
    if gone:  # as a folder's run says of a photo gone: its entry no more, its files kept
        log.warning("%d source(s) of the last run are not in the input now (removed, renamed, or left out by "
                    "collection.include/exclude): %s%s; their folders are kept, and collection.json lists them no "
                    "more", len(gone), ", ".join(gone[:10]), f" and {len(gone) - 10} more" if len(gone) > 10 else "")
    for kind in (SourceState.FAILED, SourceState.PARTIAL) if list_unfinished else ():
        listed = [entry["source"] for entry in state.sources.values() if entry["state"] == kind]
        if listed:
            log.warning("%s: %s%s", kind, ", ".join(listed[:10]), f" and {len(listed) - 10} more" if len(listed) > 10 else "")
    failed = [entry for entry in state.sources.values() if entry["state"] == SourceState.FAILED]
    if not counts[SourceState.DONE] and (failed or first_failure or not counts[SourceState.PARTIAL]):
        first = first_failure or (f"{failed[0]['source']}: {failed[0]['reason']}" if failed else None)
        raise FacekitError(f"no source of {named} could be {verb} ({len(failed)} failed"
                           + (f"; the first: {first}" if first else "") + ")")
