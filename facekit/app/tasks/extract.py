"""``task=extract``: input in, aligned faces and an alignments file out; resumes a stopped run."""
from __future__ import annotations

import json
import logging
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf

from facekit.imaging import geometry
from facekit.output.alignments import ALIGNMENTS_FILE, AlignmentsWriter
from facekit.sweep.cache import AnalysisCache, ReferenceCache, content_key, restore_faces
from facekit.errors import ConfigError, FacekitError, OutputError
from facekit.fileio import atomic_write_bytes
from facekit.engine.gpu import PassPlan, StageNeed, free_gpu_memory_mb, plan_passes_for_gpu
from facekit.media import FrameSource, open_input
from facekit.models.store import ModelStore, default_cache_dir
from facekit.output.face_files import FaceWriter
from facekit.faces.quality import QualityFilter, reason_kind
from facekit.faces.stages import FaceStages
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.spec import PluginKind
from facekit.app.references import reference_embeddings
from facekit.plugin.registry import PluginRegistry
from facekit.engine.runner import Pass, Runner, RunSummary, per_record, plan_passes
from facekit.app.tasks.settings import (cache_is_on, check_settings, filter_is_set, identity_is_needed,
                                        is_collection_input, job_output_dir, sampling)
from facekit.engine.threads import Stage
from facekit.records import FrameRecord
from facekit.engine.workers import WorkerPlan, choose_workers

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")

SUMMARY_FILE = "run_summary.json"  # counts and timings of the last run (bench/extract.py reads it)


def run_extract(cfg: DictConfig, registry: PluginRegistry) -> None:
    """Build the run plan, run it, report."""
    check_settings(cfg)
    if cfg.runner.get("engine") == "ray":  # runner=ray: every source's shards on a Ray cluster
        from facekit.app.tasks.cluster import run_on_cluster

        run_on_cluster(cfg, registry)
        return
    if is_collection_input(cfg):  # a tree or a list of sources: each runs as below, one after another
        from facekit.app.tasks.collection import run_collection

        run_collection(cfg, registry)
        return
    with ExitStack() as held:  # the analysis cache's lock and the output folder's, until the end
        plan = plan_run(cfg, registry, held)
        summary, rejected = execute(plan, held)
    report(plan, summary, rejected)


@dataclass
class RunPlan:
    """Everything decided before the first frame: input, plugins, filter, passes and processes."""

    cfg: DictConfig
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


def plan_run(cfg: DictConfig, registry: PluginRegistry | None, held: ExitStack, stages: FaceStages | None = None,
             output: Path | None = None, face_filter: IdentityFilter | None = None) -> RunPlan:
    """Opens the input, loads the plugins and the filter, and chooses passes and processes (or
    the analysis cache's replay, when it holds this input). Models load here, so a missing
    weights file fails before the output folder is touched. A collection passes the ``stages``
    (and ``face_filter``) it built once, and each source's ``output`` folder."""
    output = job_output_dir(cfg) if output is None else output
    quality = QualityFilter.from_config(cfg.get("quality"))  # its limits checked before any model loads
    chosen = sampling(cfg)
    source = open_input(cfg.input, exclude=output, sampling=chosen)
    if source.kind != "video" and chosen.active:
        log.info("sample.* chooses a video's frames; %s is not a video, so every image is read", source.path)
    cache_root = _cache_root(cfg)
    if stages is None:
        assert registry is not None, "plan_run needs the registry or the stages"
        stages = build_stages(cfg, registry)
    fingerprint = [p.fingerprint() for p in stages.plugins()]
    cache = None
    if cache_is_on(cfg):
        # a sampled run's entry holds only its frames: it has a key of its own (an unsampled run's key is as before)
        sampled = [] if source.sampling.fingerprint() is None else [{"sample": source.sampling.fingerprint()}]
        cache = held.enter_context(AnalysisCache(cache_root / "analysis",
                                                 content_key(source.files, fingerprint + sampled)).locked())
    if face_filter is None:
        face_filter = identity_filter(cfg, stages, ReferenceCache(cache_root / "analysis") if cache else None,
                                      fingerprint)
    writer = FaceWriter(output, debug=bool(cfg.output.debug), save_rejected=bool(cfg.filter.save_rejected))
    finish = per_record("encode", Finisher(stages, face_filter, writer, quality))
    plan = RunPlan(cfg, output, source, stages, face_filter, writer, [], "cached", cache=cache,
                   cached=cache.load() if cache is not None else None, quality=quality)
    if plan.cached is not None:
        plan.passes = [Pass("from the analysis cache", [_replay_stage(stages, plan.cached), finish])]
    else:
        plan.gpu_plan = gpu_plan(cfg, stages)
        plan.mode = plan.gpu_plan.mode
        plan.workers = choose_workers(cfg.runner.workers, [p.spec for p in stages.plugins()], plan.mode, len(source))
        if plan.workers is None:
            stages.load_models()
        else:
            stages.ensure_weights()  # each worker builds its own models from them
        for warning in plan.gpu_plan.warnings:  # after loading: a plugin's error stays the only line
            log.warning(warning)
        log.info(plan.gpu_plan.decision)
        plan.passes = plan_passes(stages, plan.gpu_plan.passes, finish=[finish])
    log.info("%s: %d frame(s)%s; %s; %s", source.path, len(source),
             f" ({source.sampling.describe()})" if source.sampling.active else "",
             ", ".join(f"{p.spec.kind} {p.spec.name}" for p in stages.plugins()),
             f"{plan.mode} passes" + (f" in {plan.workers} worker processes" if plan.workers else ""))
    return plan


def gpu_plan(cfg: DictConfig, stages: FaceStages) -> PassPlan:
    """Which stages share a pass, from the GPU memory each step's plugin reports."""
    needs = [StageNeed(step.name, step.plugin.spec.name, step.plugin.gpu_memory_mb) for step in stages.steps()]
    return plan_passes_for_gpu(cfg.runner.mode, needs, free_gpu_memory_mb(), cfg.runner.gpu_margin_mb)


def execute(plan: RunPlan, held: ExitStack) -> tuple[RunSummary, Counter[str]]:
    """Runs the passes into the output folder, resuming what an earlier run finished; the
    summary and how many faces the filters rejected, by reason (``reason_kind``)."""
    cfg, output = plan.cfg, plan.output
    held.enter_context(exclusive_output(output))
    alignments = held.enter_context(AlignmentsWriter(output / ALIGNMENTS_FILE,
                                                     alignments_meta(cfg, plan.stages, plan.face_filter, plan.source,
                                                           plan.quality),
                                                     sync_every=cfg.output.save_every))
    done = frozenset(alignments.done_frames())
    if done:
        log.info("resuming: %d frame(s) already done", len(done))
    fresh = plan.cache is not None and plan.cached is None and not done
    analysis = held.enter_context(plan.cache.writing()) if fresh else None
    rejected: Counter[str] = Counter()

    def sink(record: FrameRecord) -> None:
        if analysis is not None:
            analysis.add(record)
        write_record(record, plan.writer, alignments)
        rejected.update(reason_kind(face.reason) for face in record.faces if not face.keep)

    workers = None
    if plan.workers:
        workers = WorkerPlan(plan.workers, counters=[plan.stages.model_s], prepare=[plan.stages.load_models])
    runner = Runner(plan.passes, queue_size=cfg.runner.queue_size, progress=bool(cfg.runner.progress),
                    workers=workers, queue_mb=cfg.runner.queue_mb)
    summary = runner.run(plan.source, sink, done)
    if analysis is not None:
        analysis.commit()
    return summary, rejected


def write_record(record: FrameRecord, writer: FaceWriter, alignments: AlignmentsWriter) -> None:
    """A finished frame's face files, then its alignments entry: a frame is journaled only once
    its files are there, so a resumed run never lacks a file its alignments name."""
    try:
        writer.write(record)
        alignments.write(record)
    except OSError as exc:  # a full disk, a folder removed or made read-only mid-run
        raise OutputError(f"cannot write {exc.filename or writer.folder}: {exc.strerror or exc}; the "
                          f"frames before {record.frame.name} are saved, so the same command "
                          "resumes once that is fixed") from exc


def report(plan: RunPlan, summary: RunSummary, rejected: Counter[str]) -> None:
    """``run_summary.json`` (with the rejects counted by reason: ``identity`` or the quality
    measure) and the closing lines."""
    output = plan.output
    figures = {**summary.as_dict(), "model_s": plan.stages.model_s, "mode": plan.mode,
               "gpu": plan.gpu_plan.as_dict() if plan.gpu_plan is not None else None,
               "rejected": dict(sorted(rejected.items()))}
    atomic_write_bytes(output / SUMMARY_FILE, json.dumps(figures, indent=2).encode())
    log.info("done: %s; alignments in %s", summary.line(), output / ALIGNMENTS_FILE)
    if plan.face_filter is not None or plan.quality is not None:
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(rejected.items()))
        log.info("filter: %d face(s) rejected%s (reasons in %s and the alignments file)",
                 sum(rejected.values()), f" ({counts})" if counts else "",
                 job_output_dir(plan.cfg) / "facekit.log")  # Hydra's log: a collection's is at its top
    if summary.skipped:
        log.warning("%d file(s) skipped: %s", summary.skipped, ", ".join(islice(plan.source.skipped, 10)))


def identity_filter(cfg: DictConfig, stages: FaceStages, refs_cache: ReferenceCache | None,
                     fingerprint: Any) -> IdentityFilter | None:
    if stages.identity is None or not filter_is_set(cfg):  # output.embeddings alone: stored, not judged
        return None
    from facekit.faces.identity import IdentityFilter

    spec = stages.identity.spec
    threshold = spec.default_threshold if cfg.filter.threshold is None else float(cfg.filter.threshold)
    if threshold is None:
        raise ConfigError(f"identity {spec.name} declares no default threshold; set filter.threshold")
    refs = reference_embeddings(list(cfg.filter.refs), stages, refs_cache, fingerprint)
    nrefs = reference_embeddings(list(cfg.filter.nrefs), stages, refs_cache, fingerprint)
    return IdentityFilter(refs, nrefs, threshold, spec.metric or "cosine")


@dataclass
class Finisher:
    """The last stage of a pass: judge and crop (``FaceStages.finish``), encode the faces that
    get a file, drop the frame's pixels. A class rather than a closure, so that it travels to
    worker processes."""

    stages: FaceStages
    face_filter: IdentityFilter | None
    writer: FaceWriter
    quality: QualityFilter | None = None

    def __call__(self, record: FrameRecord) -> None:
        self.stages.finish(record, self.face_filter, self.writer.writes, self.quality)
        self.writer.encode(record)
        record.frame.image = None


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


def build_stages(cfg: DictConfig, registry: PluginRegistry, with_identity: bool = False) -> FaceStages:
    """The run's plugins by name and config (not built yet: models load on first use), the
    identity plugin only when a filter or ``output.embeddings`` needs embeddings (or
    ``with_identity``: curation embeds face files)."""
    store = ModelStore(registry.models, cache_dir=_cache_root(cfg), offline=bool(cfg.models.offline))
    return FaceStages(_load(cfg, registry, store, "detector"), _load(cfg, registry, store, "aligner"),
                      _load(cfg, registry, store, "identity") if with_identity or identity_is_needed(cfg) else None,
                      size=cfg.output.size, padding=cfg.output.padding)


def _cache_root(cfg: DictConfig) -> Path:
    """The model cache: weights, derived models and the analysis cache."""
    return Path(cfg.models.cache_dir).expanduser() if cfg.models.cache_dir else default_cache_dir()


def _load(cfg: DictConfig, registry: PluginRegistry, store: ModelStore, kind: PluginKind) -> LoadedPlugin:
    node = cfg.get(kind)
    if node is None:
        return load_plugin(registry, store, kind, cfg.default_plugins[kind], None)
    options = OmegaConf.to_container(node, resolve=True)
    return load_plugin(registry, store, kind, options.pop("name"), options)


def alignments_meta(cfg: DictConfig, stages: FaceStages, face_filter: IdentityFilter | None,
          source: FrameSource, quality: QualityFilter | None = None) -> dict[str, Any]:
    """What produced the file. ``fingerprint`` holds what must match for a rerun to resume: a
    sampled video's sampling too (frames of two samplings mixed would be neither), added only
    when set, so an unsampled run resumes the files written before sampling existed."""
    padding = geometry.DEFAULT_PADDING if cfg.output.padding is None else float(cfg.output.padding)
    plugins = {p.spec.kind: {"name": p.spec.name, "config": p.fingerprint()["config"]} for p in stages.plugins()}
    meta: dict[str, Any] = {
        "input": str(cfg.input),
        "plugins": plugins,
        "output": {"size": cfg.output.size, "padding": padding},
    }
    if face_filter is not None:
        meta["filter"] = {"refs": list(cfg.filter.refs), "nrefs": list(cfg.filter.nrefs),
                          "threshold": face_filter.threshold, "metric": face_filter.metric}
    meta["fingerprint"] = {"input": str(Path(cfg.input).resolve()), "plugins": plugins,
                           "size": cfg.output.size, "padding": padding, "filter": meta.get("filter")}
    if (sample := source.sampling.fingerprint()) is not None:
        meta["sample"] = meta["fingerprint"]["sample"] = sample
    if quality is not None:  # only when set, like sample: files from before it still resume
        meta["quality"] = meta["fingerprint"]["quality"] = quality.as_dict()
    if cfg.output.get("embeddings"):  # likewise: a rerun without it would leave later frames without them
        meta["embeddings"] = meta["fingerprint"]["embeddings"] = True
    return meta


@contextmanager
def exclusive_output(output: Path) -> Iterator[None]:
    """One run per output folder: two writers would interleave one journal."""
    lock = FileLock(str(output / ".facekit.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FacekitError(f"another facekit run is writing to {output}; wait for it or choose another output") from None
    try:
        yield
    finally:
        lock.release()
