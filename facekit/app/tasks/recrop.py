"""``task=recrop input=EXTRACTION output=NEW``: new face files and alignments at another size,
padding or centering, from the landmarks an extraction stored and the source frames, with no
detector or aligner run.

Each source is read and written as extraction does it, through the same ledger (folder, lock,
journal, face files, fold, ``run_summary.json``) and the same last stage (``Finisher``): only
the model stages are replaced, by ``RestoredStages``. So a re-crop resumes like an extraction,
a collection's re-crop keeps ``collection.json`` by the collection's rules (a source that cannot
be found is named and failed, the others go on; exit code 2 only when none is done), and
``runner=ray`` runs its shards on the cluster.
"""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig

from facekit.app.tasks.acceptance import accept_run
from facekit.app.tasks.idle import say_nothing_to_do
from facekit.app.tasks.earlier import (Earlier, EarlierRuns, EarlierSource, read_earlier, recrop_meta, recrop_stages,
                                      sampling_of)
from facekit.app.tasks.collection_progress import CollectionProgress
from facekit.app.tasks.planning import face_encoder, source_ledger
from facekit.app.tasks.settings import (check_crop, check_output_folder, check_output_named, face_and_frame_choices,
                                        job_output_dir)
from facekit.app.tasks.source_step import SourceWork, report_collection, run_source_step
from facekit.engine.cores import choose_workers
from facekit.engine.pipeline import Pass, Pipeline, RunSummary, per_record
from facekit.engine.workers import WorkerPlan
from facekit.engine.threads import Stage
from facekit.errors import ConfigError, FacekitError
from facekit.faces.finisher import Finisher
from facekit.ledger.collection_state import refuse_another_kind, save_unless_failing
from facekit.ledger.run_folder import RunFolder
from facekit.ledger.source import SourceLedger
from facekit.media.sources import open_input, utf8_text
from facekit.output.alignments import ALIGNMENTS_FILE, load_alignments
from facekit.plugin.registry import PluginRegistry
from facekit.records import FrameRecord

log = logging.getLogger("facekit")


def run_recrop(cfg: DictConfig, registry: PluginRegistry) -> None:
    earlier = check_recrop(cfg)
    if cfg.runner.get("executor") == "ray":
        from facekit.app.tasks.recrop_ray import recrop_on_ray

        recrop_on_ray(cfg, earlier)
    else:
        _recrop_here(cfg, earlier)


def check_recrop(cfg: DictConfig) -> Earlier:
    """Every check that can refuse a re-crop, before its output folder is touched."""
    if not cfg.input:
        raise ConfigError("input is required: facekit task=recrop input=<an extraction's output folder> output=<folder>")
    check_output_named(cfg)
    check_crop(cfg)
    if list(cfg.output.masks) or str(cfg.output.mask_format) != "none" or cfg.get("masker") is not None:
        raise ConfigError("task=recrop keeps the stored masks and makes none: leave out output.masks, "
                          "output.mask_format and +masker, then run task=mask input=<the re-crop> for new ones")
    named = [f"+{kind}" for kind in ("detector", "aligner", "identity") if cfg.get(kind) is not None]
    if named:
        raise ConfigError(f"task=recrop runs no model: it cuts again the faces the extraction found, with the landmarks "
                          f"it stored; leave out {', '.join(named)} (extract again to use other plugins)")
    unused = face_and_frame_choices(cfg)
    if unused:
        raise ConfigError(f"task=recrop cuts the faces and frames the extraction kept, again: {', '.join(unused)} "
                          "would not apply; leave them out (task=curate filters an extraction's faces; extract "
                          "again to sample or filter anew)")
    folder = Path(str(cfg.input)).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"input {str(cfg.input)!r} is not a folder: give task=recrop an extraction's output folder")
    output = job_output_dir(cfg)
    if output.resolve() == folder.resolve():
        raise ConfigError(f"output {str(output)!r} is the extraction itself; choose a new folder for the re-crop")
    if folder.resolve() in output.resolve().parents:  # its faces would be counted as the extraction's
        raise ConfigError(f"output {str(output)!r} is inside the extraction {str(folder)!r}, where curation and "
                          "task=mask would take its faces for the extraction's; choose a folder outside it")
    check_output_folder(output, folder)
    moved = Path(str(cfg.recrop.sources)).expanduser() if cfg.recrop.sources else None
    if moved is not None and not moved.is_dir():
        raise ConfigError(f"recrop.sources={cfg.recrop.sources!r} is not a folder")
    earlier = read_earlier(folder, moved)
    refuse_another_kind(output, earlier.collection)  # a re-crop of one kind into the other's folder mixes them
    if not earlier.collection and earlier.sources[0].missing:
        raise FacekitError(f"source {earlier.sources[0].rel}: {earlier.sources[0].missing}")
    return earlier


def _meta(cfg: DictConfig, earlier: dict, source: EarlierSource) -> dict:
    return recrop_meta(earlier, source, cfg.output.size, cfg.output.padding, str(cfg.output.centering))


def _recrop_here(cfg: DictConfig, earlier: Earlier) -> None:
    """Every source on this machine, each a step as an extraction's source is (``source_step``):
    one that cannot be found or read is named, marked failed, and the others go on; exit code 2
    only when none is done. A single source is a collection of one and fails as its source fails."""
    root = job_output_dir(cfg)
    with RunFolder(root) as run:
        sources = EarlierRuns.of_earlier(cfg, root, earlier)
        progress = CollectionProgress(enabled=False)  # each source's pipeline shows its own frames
        if sources.alone:  # the run is accepted once its source's ledger is open, its last check
            source = next(sources.listing())
            run_source_step(sources, source, progress,
                            _recrop_work(cfg, sources.source(source.rel), root, accepted=lambda: accept_run(cfg, run)))
            return
        accept_run(cfg, run)
        begun = time.perf_counter()
        try:
            for source in sources.listing():
                run_source_step(sources, source, progress,
                                _recrop_work(cfg, sources.source(source.rel), root, progress=progress))
        finally:
            sources.state.run = progress.figures(time.perf_counter() - begun)  # as an extraction's collection.json
            save_unless_failing(sources.state)
    report_collection(sources.state, str(cfg.input), label="recrop", verb="re-cropped")


def _recrop_work(cfg: DictConfig, source: EarlierSource, root: Path, accepted: Callable[[], None] | None = None,
                 progress: CollectionProgress | None = None) -> SourceWork:
    """The re-crop of one earlier source, as ``run_source_step`` runs it (its frames and time
    counted in a collection's ``progress``)."""
    def work(number: int, output: Path, held: ExitStack) -> Callable[[], None]:
        summary, ledger = recrop_source(cfg, source, root, held, accepted)
        if summary is not None and progress is not None:
            progress.frame_done(number, summary.frames)
            progress.busy_s += summary.seconds
        return (lambda: _nothing_to_do(ledger)) if summary is None else (lambda: _report(summary, ledger))

    return work


def _nothing_to_do(ledger: SourceLedger) -> None:
    say_nothing_to_do(len(ledger.done))
    ledger.write_missing_summary("recrop")


def recrop_source(cfg: DictConfig, source: EarlierSource, root: Path, held: ExitStack,
                  accepted: Callable[[], None] | None = None) -> tuple[RunSummary | None, SourceLedger]:
    """One source into ``root / source.output`` through its ledger, resuming what an earlier
    re-crop finished; ``accepted`` is called once the ledger is open (the last check). No
    summary when an earlier re-crop finished every frame: nothing is read, decoded or written."""
    stages = recrop_stages(cfg, [source])
    key = utf8_text(source.path)
    document = load_alignments(source.alignments)
    stages.hold(key, document["frames"])  # read once, here
    output = root / source.output
    frames = open_input(source.path, exclude=output, sampling=sampling_of(document["meta"]))
    ledger = held.enter_context(source_ledger(cfg, output, _meta(cfg, document["meta"], source)))
    ledger.replace(_extracted_again(output, ledger, document["frames"]))
    if accepted is not None:
        accepted()
    if ledger.done and ledger.done.issuperset(document["frames"]):
        return None, ledger
    if ledger.done:
        log.info("resuming: %d frame(s) already done", len(ledger.done))
    writer = face_encoder(cfg, output)
    restore = stages.steps()[0]
    passes = [Pass("recrop", [Stage(restore.name, restore.work, restore.batch_size),
                              per_record("encode", Finisher(stages, None, writer))])]
    log.info("%s: re-crop of %d frame(s) from %s at %d px, %s centering", source.path, len(document["frames"]),
             source.alignments, cfg.output.size, cfg.output.centering)
    # cropping and encoding are the work: on the CPU's cores, as an extraction's stages are
    workers = choose_workers(cfg.runner.workers, [], "parallel", len(document["frames"]) - len(ledger.done))
    pipeline = Pipeline(passes, queue_size=cfg.runner.queue_size, progress=bool(cfg.runner.progress),
                        queue_mb=cfg.runner.queue_mb, workers=WorkerPlan(workers) if workers else None)
    written: set[str] = set()

    def sink(record: FrameRecord) -> None:
        ledger.write(record)
        written.add(record.frame.name)

    summary = pipeline.run(frames, sink, _Unstored(ledger.done, document["frames"]))  # type: ignore[arg-type]
    missing = [name for name in document["frames"] if name not in ledger.done and name not in written]
    if missing:
        _say_not_found(source, missing, len(document["frames"]), found=bool(written or ledger.done))
        summary.skipped += len(missing)
    ledger.summary.skipped, ledger.summary.seconds, ledger.summary.mode = summary.skipped, summary.seconds, "recrop"
    ledger.summary.workers, ledger.summary.start_s = summary.workers, summary.start_s
    ledger.summary.stage_s, ledger.summary.sink_s = summary.stage_s, summary.sink_s
    return summary, ledger


def _extracted_again(output: Path, ledger: SourceLedger, stored: dict[str, Any]) -> set[str]:
    """The frames an earlier re-crop finished whose faces the extraction holds otherwise now (it
    was run again: other boxes or landmarks, more or fewer faces): they are cut again. Frames
    it holds no more are said, and kept, as an extraction keeps a removed photo's."""
    if not ledger.done:
        return set()
    changed, gone = set(), 0
    for name, entry in ledger.alignments.done_entries():
        now = stored.get(name)
        if now is None:
            gone += 1
        elif _faces_found(entry) != _faces_found(now):
            changed.add(name)
    if changed:
        log.warning("%s: %d re-cropped frame(s) whose faces the extraction holds otherwise now (it ran again); they "
                    "are cut again", output, len(changed))
    if gone:
        log.warning("%s: %d re-cropped frame(s) the extraction holds no more; their entries and face files are kept",
                    output, gone)
    return changed


def _faces_found(entry: dict[str, Any]) -> list[tuple[Any, Any]]:
    return [(face.get("box"), face.get("landmarks")) for face in entry.get("faces", [])]


def _say_not_found(source: EarlierSource, missing: list[str], stored: int, found: bool) -> None:
    """Frames the extraction stored that its source no longer gives (a file gone from a folder,
    a video cut shorter) are named and counted as skipped; when none is found at all, the source
    is not the one extracted, and the re-crop of it fails."""
    named = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    if not found:
        raise FacekitError(f"{source.path}: none of the {stored} frame(s) that {source.alignments} holds is found "
                           f"there ({named}); is it the source that was extracted? If that one moved, "
                           "recrop.sources=DIR names the folder it is in now")
    log.warning("%s: %d of the %d frame(s) that %s holds are not found there, left out: %s", source.path,
                len(missing), stored, source.alignments, named)


class _Unstored:
    """The frames a read passes over: those done by an earlier re-crop, and those extraction
    never finished (no faces stored to restore). ``len`` counts the done ones, as resumed."""

    def __init__(self, done: frozenset[str], stored: dict) -> None:
        self.done, self.stored = done, stored

    def __contains__(self, name: object) -> bool:
        return name in self.done or name not in self.stored

    def __len__(self) -> int:
        return len(self.done)


def _report(summary: RunSummary, ledger: SourceLedger) -> None:
    ledger.write_summary()
    log.info("done: %s; alignments in %s", summary.line(), ledger.folder / ALIGNMENTS_FILE)
