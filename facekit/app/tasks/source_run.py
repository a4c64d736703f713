"""One source into its folder on this machine, through a pipeline of its own: a single input (a
collection of one), and a collection's source where each source runs on its own (a sweep's job,
whose analysis cache is per source, or a serial run)."""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from omegaconf import DictConfig

from facekit.app.tasks.idle import say_nothing_to_do
from facekit.app.tasks.planning import (alignments_meta, build_stages, cache_root, face_encoder, gpu_plan,
                                        identity_filter, source_ledger)
from facekit.app.tasks.settings import cache_is_on, job_output_dir, sampling
from facekit.engine.gpu import PassPlan
from facekit.engine.pipeline import Pass, Pipeline, RunSummary, per_record, plan_passes
from facekit.engine.threads import Stage
from facekit.engine.cores import choose_workers
from facekit.engine.workers import WorkerPlan
from facekit.errors import FacekitError
from facekit.faces.finisher import Finisher
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.ledger.source import SourceLedger
from facekit.ledger.summary import nothing_read
from facekit.media import FrameSource, open_input
from facekit.media.sources import decoded_image_caught
from facekit.output.alignments import ALIGNMENTS_FILE
from facekit.output.face_files import FaceWriter
from facekit.plugin.registry import PluginRegistry
from facekit.records import FrameRecord
from facekit.sweep.cache import AnalysisCache, ReferenceCache, content_key, restore_faces

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")


@dataclass
class RunPlan:
    """Everything decided before the first frame: input, plugins, filter, passes and processes."""

    cfg: DictConfig
    input: str  # the source as named: the input, or a collection's source's path
    output: Path
    source: FrameSource
    stages: FaceStages
    face_filter: IdentityFilter | None
    writer: FaceWriter
    passes: list[Pass]
    mode: str  # serial | parallel | cached
    workers: int | None = None
    gpu_plan: PassPlan | None = None
    cache: AnalysisCache | None = None
    cached: dict[str, dict[str, Any]] | None = None  # the analysis cache's entry for this input
    quality: QualityFilter | None = None
    notes: list[str] = field(default_factory=list)  # what the run will do: said once there is a frame to do
    nothing_to_do: bool = False  # an earlier run did every frame (set by ``execute``)


def plan_run(cfg: DictConfig, registry: PluginRegistry | None, held: ExitStack, stages: FaceStages | None = None,
             output: Path | None = None, face_filter: IdentityFilter | None = None,
             input_value: str | None = None, in_collection: bool = False, gpu: PassPlan | None = None) -> RunPlan:
    """Opens the input, loads the plugins and the filter, and chooses passes and processes (or
    the analysis cache's replay, when it holds this input). Models load here, so a missing
    weights file fails before the output folder is touched. A collection passes the ``stages``
    (and ``face_filter``, and the ``gpu`` plan, its warnings said) it built once, and each
    source's path and ``output`` folder;
    ``in_collection``: the collection reads the source folder's subfolders and videos itself."""
    output = job_output_dir(cfg) if output is None else output
    input_value = str(cfg.input) if input_value is None else input_value
    quality = QualityFilter.from_config(cfg.get("quality"))  # its limits checked before any model loads
    chosen = sampling(cfg)
    source = open_input(input_value, exclude=output, sampling=chosen, in_collection=in_collection)
    notes: list[str] = []
    if source.kind != "video" and chosen.active:
        notes.append(f"sample.* chooses a video's frames; {source.path} is not a video, so every image is read")
    if stages is None:
        assert registry is not None, "plan_run needs the registry or the stages"
        stages = build_stages(cfg, registry)
    fingerprint = [p.fingerprint() for p in stages.plugins()]
    cache = None
    if cache_is_on(cfg):
        # a sampled run's entry holds only its frames: it has a key of its own (an unsampled run's key is as before)
        sampled = [] if source.sampling.fingerprint() is None else [{"sample": source.sampling.fingerprint()}]
        cache = held.enter_context(AnalysisCache(cache_root(cfg) / "analysis",
                                                 content_key(source.files, fingerprint + sampled)).locked())
    if face_filter is None:
        face_filter = identity_filter(cfg, stages, ReferenceCache(cache_root(cfg) / "analysis") if cache else None,
                                      fingerprint)
    writer = face_encoder(cfg, output)
    finish = per_record("encode", Finisher(stages, face_filter, writer, quality))
    plan = RunPlan(cfg, input_value, output, source, stages, face_filter, writer, [], "cached", cache=cache,
                   cached=cache.load() if cache is not None else None, quality=quality, notes=notes)
    if plan.cached is not None:
        plan.passes = [Pass("from the analysis cache", [_replay_stage(stages, plan.cached), finish])]
    else:
        plan.gpu_plan = gpu if gpu is not None else gpu_plan(cfg, stages)
        plan.mode = plan.gpu_plan.mode
        plan.workers = choose_workers(cfg.runner.workers, [p.spec.gpu_memory_mb for p in stages.plugins()], plan.mode, len(source))
        if plan.workers is None:
            stages.load_models()
        else:
            stages.ensure_weights()  # each worker builds its own models from them
        if gpu is None:  # a collection's plan said its warnings once
            for warning in plan.gpu_plan.warnings:  # after loading: a plugin's error stays the only line
                log.warning(warning)
        notes.append(plan.gpu_plan.decision)
        plan.passes = plan_passes(stages.steps(), plan.gpu_plan.passes, finish=[finish])
    notes.append(f"{source.path}: {len(source)} frame(s)"
                 + (f" ({source.sampling.describe()})" if source.sampling.active else "")
                 + f"; {', '.join(f'{p.spec.kind} {p.spec.name}' for p in stages.plugins())}; {plan.mode} passes"
                 + (f" in {plan.workers} worker processes" if plan.workers else ""))
    return plan


def execute(plan: RunPlan, held: ExitStack, accepted: Callable[[], None] | None = None) -> tuple[RunSummary, SourceLedger]:
    """Runs the passes into the source's ledger, resuming what an earlier run finished;
    ``accepted`` is called once the ledger is open, the last check that can refuse the run."""
    cfg = plan.cfg
    if plan.source.kind == "image" and accepted is not None:  # a photo alone that does not decode: refused whole
        why, said = decoded_image_caught(plan.source.path)[1:]  # its pixels not kept: the run decodes it as a frame
        if why is not None:
            raise FacekitError(f"input {str(plan.source.path)!r}: {why}" + (f" ({'; '.join(said)})" if said else ""))
    ledger = held.enter_context(source_ledger(
        cfg, plan.output, alignments_meta(cfg, plan.input, plan.stages, plan.face_filter, plan.source, plan.quality),
        plan.source))
    if accepted is not None:
        accepted()
    if plan.source.all_done(ledger.done, ended_early=ledger.video_ended_early):
        plan.nothing_to_do = True
        return RunSummary(resumed=plan.source.among(ledger.done)), ledger
    for note in plan.notes:
        log.info(note)
    if resumed := plan.source.among(ledger.done):
        log.info("resuming: %d frame(s) already done", resumed)
    fresh = plan.cache is not None and plan.cached is None and not ledger.done
    analysis = held.enter_context(plan.cache.writing()) if fresh else None

    def sink(record: FrameRecord) -> None:
        if analysis is not None:
            analysis.add(record)
        ledger.write(record)

    workers = None
    if plan.workers:
        workers = WorkerPlan(plan.workers, counters=[plan.stages.model_s], prepare=[plan.stages.load_models])
    pipeline = Pipeline(plan.passes, queue_size=cfg.runner.queue_size, progress=bool(cfg.runner.progress),
                    workers=workers, queue_mb=cfg.runner.queue_mb)
    summary = pipeline.run(plan.source, sink, ledger.done, todo=max(0, len(plan.source) - resumed))
    summary.resumed = ledger.summary.resumed = resumed  # this source's frames: not a deleted photo's entry
    ledger.read_to_its_end()
    ledger.note_video_end(plan.source.ended_early_at)
    if plan.source.kind == "image" and not summary.frames and plan.source.skipped:
        # the input is this one photo: a folder's unreadable file is skipped, a photo alone fails
        path, why = next(iter(plan.source.skipped.items()))
        raise FacekitError(f"input {path!r}: {why}")
    if analysis is not None:
        analysis.commit()
    return summary, ledger


def report(plan: RunPlan, summary: RunSummary, ledger: SourceLedger) -> None:
    """``run_summary.json`` (with the rejects counted by reason: ``identity`` or the quality
    measure) and the closing lines; a run that found every frame done says so in one line and
    leaves the earlier run's summary as it was (writing one only where none is there)."""
    if plan.nothing_to_do:
        say_nothing_to_do(summary.resumed)
        ledger.write_missing_summary(plan.mode)
        return
    figures = ledger.summary
    figures.skipped, figures.seconds, figures.workers = summary.skipped, summary.seconds, summary.workers
    figures.start_s, figures.stage_s, figures.sink_s = summary.start_s, summary.stage_s, summary.sink_s
    figures.model_s, figures.mode = plan.stages.model_s, plan.mode
    figures.gpu = plan.gpu_plan.as_dict() if plan.gpu_plan is not None else None
    ledger.write_summary()
    log.info("done: %s; alignments in %s", summary.line(), plan.output / ALIGNMENTS_FILE)
    if plan.face_filter is not None or plan.quality is not None:
        rejected = ledger.rejects.as_dict()
        counts = ", ".join(f"{kind} {count}" for kind, count in rejected.items())
        log.info("filter: %d face(s) rejected%s (reasons in %s and the alignments file)",
                 sum(rejected.values()), f" ({counts})" if counts else "",
                 job_output_dir(plan.cfg) / "facekit.log")  # Hydra's log: a collection's is at its top
    if summary.skipped:
        log.warning("%d file(s) skipped: %s", summary.skipped, ", ".join(islice(plan.source.skipped, 10)))


def refuse_nothing_read(plan: RunPlan, summary: RunSummary, alone: bool) -> None:
    """A folder of which no file could be read (each skipped, named in a warning) fails: given
    alone, exit 2, as a photo given alone does; a collection's source is ``failed``, and a
    collection none of whose sources is done exits 2. A run that read nothing is no success."""
    reason = nothing_read(plan.source.kind, summary.frames, summary.resumed, summary.skipped)
    if reason is not None:
        raise FacekitError(f"input {str(plan.cfg.input)!r}: {reason}" if alone else reason)


def _replay_stage(stages: FaceStages, cached: dict[str, dict[str, Any]]) -> Stage:
    """The model stages' results from the analysis cache, re-cropped at this job's size: no
    model runs."""
    def replay(batch: list[FrameRecord]) -> None:
        for record in batch:
            entry = cached.get(record.frame.name)
            if entry is None:
                raise FacekitError(f"the analysis cache has no frame {record.frame.name}; "
                                   "set cache.enabled=false or delete the cache entry")
            stages.restore(record, restore_faces(entry))

    return Stage("restore", replay)
