"""``task=extract``: input in, aligned faces and an alignments file out; resumes a stopped run."""
from __future__ import annotations

import json
import logging
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
from facekit.engine.gpu import StageNeed, free_gpu_memory_mb, plan_passes_for_gpu
from facekit.media.sources import open_input
from facekit.models.store import ModelStore, default_cache_dir
from facekit.output.face_files import FaceWriter
from facekit.faces.stages import FaceStages
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.spec import PluginKind
from facekit.app.references import reference_embeddings
from facekit.plugin.registry import PluginRegistry
from facekit.engine.runner import Pass, Runner, per_record, plan_passes
from facekit.app.tasks.settings import cache_is_on, check_settings, filter_is_set, job_output_dir
from facekit.engine.threads import Stage
from facekit.records import FrameRecord
from facekit.engine.workers import WorkerPlan, choose_workers

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")
decisions = logging.getLogger("facekit.decisions")  # goes to facekit.log only (conf/hydra/job_logging)

SUMMARY_FILE = "run_summary.json"  # counts and timings of the last run (bench/extract.py reads it)


def run_extract(cfg: DictConfig, registry: PluginRegistry) -> None:
    check_settings(cfg)
    output = job_output_dir(cfg)
    source = open_input(cfg.input, exclude=output)
    cache_root = Path(cfg.models.cache_dir).expanduser() if cfg.models.cache_dir else default_cache_dir()
    store = ModelStore(registry.models, cache_dir=cache_root, offline=bool(cfg.models.offline))
    stages = FaceStages(
        _load(cfg, registry, store, "detector"), _load(cfg, registry, store, "aligner"),
        _load(cfg, registry, store, "identity") if filter_is_set(cfg) else None,
        size=cfg.output.size, padding=cfg.output.padding,
    )
    fingerprint = [p.fingerprint() for p in stages.plugins()]
    analysis_folder = cache_root / "analysis"

    with ExitStack() as stack:
        cache = None
        if cache_is_on(cfg):
            cache = stack.enter_context(
                AnalysisCache(analysis_folder, content_key(source.files, fingerprint)).locked())
        face_filter = _identity_filter(cfg, stages, ReferenceCache(analysis_folder) if cache else None, fingerprint)
        writer = FaceWriter(output, debug=bool(cfg.output.debug), save_rejected=bool(cfg.filter.save_rejected))
        finish = per_record("encode", _Finisher(stages, face_filter, writer))
        cached = cache.load() if cache is not None else None
        workers = None
        gpu_plan = None
        if cached is None:
            specs = [p.spec for p in stages.plugins()]
            needs = [StageNeed(name, p.spec.name, p.gpu_memory_mb) for name, p in stages.stage_plugins()]
            gpu_plan = plan_passes_for_gpu(cfg.runner.mode, needs, free_gpu_memory_mb(), cfg.runner.gpu_margin_mb)
            for warning in gpu_plan.warnings:
                log.warning(warning)
            log.info(gpu_plan.decision)
            mode = gpu_plan.mode
            workers = choose_workers(cfg.runner.workers, specs, mode, len(source))
            if workers is None:
                stages.load_models()
            else:
                stages.ensure_weights()  # each worker builds its own models from them
            passes = plan_passes(stages, gpu_plan.passes, finish=[finish])
        else:
            mode = "cached"
            passes = [Pass("from the analysis cache", [_restore_stage(stages, cached), finish])]
        log.info("%s: %d frame(s); %s; %s", source.path, len(source),
                 ", ".join(f"{p.spec.kind} {p.spec.name}" for p in stages.plugins()),
                 f"{mode} passes" + (f" in {workers} worker processes" if workers else ""))

        stack.enter_context(_exclusive(output))
        alignments = stack.enter_context(
            AlignmentsWriter(output / ALIGNMENTS_FILE, _meta(cfg, stages, face_filter), sync_every=cfg.output.save_every))
        done = frozenset(alignments.done_frames())
        if done:
            log.info("resuming: %d frame(s) already done", len(done))
        analysis = stack.enter_context(cache.writing()) if cache is not None and cached is None and not done else None

        rejected = 0

        def sink(record: FrameRecord) -> None:
            nonlocal rejected
            if analysis is not None:
                analysis.add(record)
            try:
                writer.write(record)
                alignments.write(record)
            except OSError as exc:  # a full disk, a folder removed or made read-only mid-run
                raise OutputError(f"cannot write {exc.filename or output}: {exc.strerror or exc}; the "
                                  f"frames before {record.frame.name} are saved, so the same command "
                                  "resumes once that is fixed") from exc
            rejected += sum(not face.keep for face in record.faces)

        plan = WorkerPlan(workers, counters=[stages.model_s], prepare=[stages.load_models]) if workers else None
        runner = Runner(passes, queue_size=cfg.runner.queue_size, progress=bool(cfg.runner.progress), workers=plan,
                        queue_mb=cfg.runner.queue_mb)
        summary = runner.run(source, sink, done)
        if analysis is not None:
            analysis.commit()
    report = {**summary.as_dict(), "model_s": stages.model_s, "mode": mode,
              "gpu": gpu_plan.as_dict() if gpu_plan is not None else None}
    atomic_write_bytes(output / SUMMARY_FILE, json.dumps(report, indent=2).encode())
    log.info("done: %s; alignments in %s", summary.line(), output / ALIGNMENTS_FILE)
    if face_filter is not None:
        log.info("filter: %d face(s) rejected (reasons in %s and the alignments file)",
                 rejected, output / "facekit.log")
    if summary.skipped:
        log.warning("%d file(s) skipped: %s", summary.skipped, ", ".join(islice(source.skipped, 10)))


def _identity_filter(cfg: DictConfig, stages: FaceStages, refs_cache: ReferenceCache | None,
                     fingerprint: Any) -> IdentityFilter | None:
    if stages.identity is None:
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
class _Finisher:
    """The last stage of a pass: judge each face, crop and encode the ones that get a file, drop
    the frame's pixels. Judging first spares the crops of rejected faces nobody will see.
    A class rather than a closure, so that it travels to worker processes."""

    stages: FaceStages
    face_filter: IdentityFilter | None
    writer: FaceWriter

    def __call__(self, record: FrameRecord) -> None:
        if self.face_filter is not None:
            _judge(record, self.face_filter)
        self.stages.crop(record, [face for face in record.faces if self.writer.writes(face)])
        self.writer.encode(record)
        record.frame.image = None


def _judge(record: FrameRecord, face_filter: IdentityFilter) -> None:
    for index, face in enumerate(record.faces):
        decision = face_filter.decide(face.embedding)
        face.keep, face.reason, face.distance = decision.keep, decision.reason, decision.distance
        if not decision.keep:
            decisions.info("rejected %s face %d: %s", record.frame.name, index, decision.reason)


def _restore_stage(stages: FaceStages, cached: dict[str, dict[str, Any]]) -> Stage:
    """Faces from the analysis cache, re-cropped at this job's size: no model runs."""
    def restore(batch: list[FrameRecord]) -> None:
        for record in batch:
            entry = cached.get(record.frame.name)
            if entry is None:
                raise FacekitError(f"the analysis cache has no frame {record.frame.name}; "
                                   "set cache.enabled=false or delete the cache entry")
            record.height, record.width = record.frame.image.shape[:2]
            record.faces = restore_faces(entry)
            stages.normalise(record)

    return Stage("restore", restore)


def _load(cfg: DictConfig, registry: PluginRegistry, store: ModelStore, kind: PluginKind) -> LoadedPlugin:
    node = cfg.get(kind)
    if node is None:
        return load_plugin(registry, store, kind, cfg.default_plugins[kind], None)
    options = OmegaConf.to_container(node, resolve=True)
    return load_plugin(registry, store, kind, options.pop("name"), options)


def _meta(cfg: DictConfig, stages: FaceStages, face_filter: IdentityFilter | None) -> dict[str, Any]:
    """What produced the file. ``fingerprint`` holds what must match for a rerun to resume."""
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
    return meta


@contextmanager
def _exclusive(output: Path) -> Iterator[None]:
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
