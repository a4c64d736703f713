"""``task=extract`` on this machine: every source of the input, a single file or flat folder
being a collection of one (``sources``), each written into its own folder exactly as a separate
run of it would be, so each resumes on its own.

The plugins are built once for the whole run. A collection reads every source through one
pipeline (``collection_stream``), so its worker processes start once, not once per source. A
source alone, a sweep's job (whose analysis cache is per source) and a serial run read each source
through ``source_run`` instead, whose pipeline shows the source's own frames. ``collection.json``
in a collection's output folder lists every source met so far with its state, rewritten atomically
as sources finish, and tells a rerun which sources are done (those are not reopened). A rerun with
other settings is refused as a whole before anything is written.
"""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from omegaconf import DictConfig

from facekit.app.tasks.collection_progress import CollectionProgress
from facekit.app.tasks.collection_stream import CollectionStream, StreamSettings
from facekit.app.tasks.acceptance import accept_run
from facekit.app.tasks.idle import say_nothing_to_do
from facekit.app.tasks.planning import build_stages, face_encoder, gpu_plan, identity_filter, ledger_settings
from facekit.app.tasks.source_run import execute, plan_run, refuse_nothing_read, report
from facekit.app.tasks.source_step import report_collection, run_source_step
from facekit.app.tasks.sources import RunSources
from facekit.app.tasks.listing import ListedAhead
from facekit.app.tasks.settings import cache_is_on, job_output_dir, sampling
from facekit.engine.pipeline import Pipeline, per_record, plan_passes
from facekit.engine.cores import FRAMES_PER_WORKER, choose_workers, usable_cores
from facekit.engine.gpu import PassPlan
from facekit.engine.workers import WorkerPlan
from facekit.errors import StageError
from facekit.faces.finisher import Finisher
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.ledger.collection_state import CollectionState, save_unless_failing
from facekit.ledger.run_folder import RunFolder
from facekit.media.collection import Source
from facekit.plugin.registry import PluginRegistry

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")



def run_local(cfg: DictConfig, registry: PluginRegistry) -> None:
    """Every source of the input. A collection's source that cannot be read is named, marked
    failed and counted, and the run goes on: exit code 2 (a FacekitError) only when no source
    could be processed. A source alone fails as its source fails."""
    root_out = job_output_dir(cfg)
    with RunFolder(root_out) as run:  # one run in this folder; nothing written until it is accepted
        sources = RunSources.of(cfg, root_out)
        stages = build_stages(cfg, registry)  # the models load once, for every source
        if sources.alone:  # its input is opened and its models loaded before the run is accepted
            _run_source(cfg, registry, stages, next(sources.listing()), sources, CollectionProgress(enabled=False),
                        accepted=lambda: accept_run(cfg, run))
            return
        stages.ensure_weights()
        face_filter = identity_filter(cfg, stages, None, None)  # a reference that fails refuses the run
        accept_run(cfg, run)
        state = sources.state
        listing = ListedAhead(sources.listing())
        taken, done_frames = _done_before(listing, state)
        if done_frames is not None:
            listing.stop()
            say_nothing_to_do(done_frames, ledger_settings(cfg))
            return
        queued = chain(taken, listing)
        progress = CollectionProgress(enabled=bool(cfg.runner.progress), listing=listing)
        begun = time.perf_counter()
        try:
            with progress.shown():
                if cache_is_on(cfg):  # a sweep: each source replays its own analysis cache entry
                    for source in queued:
                        _run_source(cfg, registry, stages, source, sources, progress, face_filter=face_filter)
                else:
                    _run_streamed(cfg, stages, face_filter, queued, sources, progress)
        finally:
            listing.stop()
            state.run = progress.figures(time.perf_counter() - begun)
            save_unless_failing(state)
    report_collection(state, str(cfg.input),
                      figures=f"; {progress.frames} frames at {progress.busy_rate():.1f} frames/s", list_unfinished=True)


def _done_before(listing: Iterable[Source], state: CollectionState) -> tuple[list[Source], int | None]:
    """The sources taken from the listing up to the first that has work left (or failed), and,
    when an earlier run did every one, their frames: a rerun with nothing to do says so in one
    line rather than starting worker processes and drawing a bar for no frame."""
    taken: list[Source] = []
    for source in listing:
        taken.append(source)
        if source.failed is not None or not state.was_done(source):
            return taken, None
    if not taken:
        return taken, None
    return taken, sum(int(state.earlier[source.rel].get("frames", 0)) for source in taken)


def _run_streamed(cfg: DictConfig, stages: FaceStages, face_filter: IdentityFilter | None, listing: Iterable[Source],
                  sources: RunSources, progress: CollectionProgress) -> None:
    """Every source through one pipeline: the models load, and the worker processes start, once.
    A GPU plan of more than one pass (a serial run) reads each source on its own instead, since
    a pass over the whole collection would hold every frame's faces until the next pass."""
    plan = gpu_plan(cfg, stages)
    for warning in plan.warnings:
        log.warning(warning)
    log.info(plan.decision)
    quality = QualityFilter.from_config(cfg.get("quality"))
    if len(plan.passes) > 1:
        for source in listing:
            _run_source(cfg, None, stages, source, sources, progress, face_filter=face_filter, gpu=plan)
        return
    root_out, state = sources.root, sources.state
    workers = choose_workers(cfg.runner.workers, [p.spec.gpu_memory_mb for p in stages.plugins()], plan.mode,
                             frames=FRAMES_PER_WORKER * usable_cores())  # a collection is taken to be long
    if workers is None:
        stages.load_models()
    else:
        stages.ensure_weights()  # each worker builds its own models from them
    encoder = face_encoder(cfg, root_out)
    passes = plan_passes(stages.steps(), plan.passes, finish=[per_record("encode", Finisher(stages, face_filter, encoder,
                                                                                    quality))])
    settings = StreamSettings(cfg, stages, face_filter, quality, sampling(cfg), root_out, plan.mode, workers or 0)
    stream = CollectionStream(settings, listing, state, progress)
    log.info("collection: %s; %s passes%s", ", ".join(f"{p.spec.kind} {p.spec.name}" for p in stages.plugins()),
             plan.mode, f" in {workers} worker processes, started once" if workers else "")
    while True:
        pipeline = Pipeline(passes, queue_size=cfg.runner.queue_size, progress=False, queue_mb=cfg.runner.queue_mb,
                        workers=WorkerPlan(workers, counters=[stages.model_s], prepare=[stages.load_models])
                        if workers else None)
        try:
            pipeline.run(stream, stream.sink)  # type: ignore[arg-type]  # a FrameSource in all it uses
        except BaseException as exc:
            progress.busy_s += pipeline.summary.seconds  # a stopped run's rate in collection.json is its own too
            if isinstance(exc, StageError) and stream.restart(exc):
                continue  # that source failed; a new pipeline takes up the rest
            interrupted = isinstance(exc, KeyboardInterrupt)
            stream.stop("interrupted; the same command resumes it" if interrupted else f"stopped: {exc}",
                        blamed=not interrupted)
            raise
        progress.busy_s += pipeline.summary.seconds
        stream.finish()
        return


def _run_source(cfg: DictConfig, registry: PluginRegistry | None, stages: FaceStages, source: Source,
                sources: RunSources, progress: CollectionProgress, face_filter: IdentityFilter | None = None,
                accepted: Callable[[], None] | None = None, gpu: PassPlan | None = None) -> None:
    """One source through ``source_run``, into its own folder: a source alone, a sweep's job
    (whose analysis cache is per source) or a serial run. ``accepted`` is called once its last
    check has passed (a source alone: the run is accepted then)."""
    def work(number: int, output: Path, held: ExitStack) -> Callable[[], None]:
        plan = plan_run(cfg, registry, held, stages=stages, output=output, face_filter=face_filter,
                        input_value=sources.named(source), in_collection=not sources.alone, gpu=gpu)
        progress.opened_source(number, source.rel, len(plan.source))
        summary, ledger = execute(plan, held, accepted=accepted)

        def closing() -> None:
            report(plan, summary, ledger)
            progress.frame_done(number, summary.frames)
            progress.busy_s += summary.seconds
            refuse_nothing_read(plan, summary, sources.alone)

        return closing

    run_source_step(sources, source, progress, work)


__all__ = ["run_local"]
