"""``task=extract`` with ``runner=ray``: a single input or a collection, every source cut into
shards that run on a Ray cluster (``facekit.cluster``), each source into its own folder with the
alignments file and face files a local run of it writes.

The settings decide here, as for a local run (plugins, identity filter and its references,
quality limits, sampling, the alignments meta), so a source's output folder is the same
whichever runner made it; ``collection.json`` is kept as ``run_collection`` keeps it.
"""
from __future__ import annotations

import json
import logging
import pickle
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from facekit.app.tasks.collection import DONE, FAILED, PARTIAL, CollectionState, _counted, _settings
from facekit.app.tasks.extract import SUMMARY_FILE, _exclusive, _identity_filter, _meta, build_stages
from facekit.app.tasks.settings import is_collection_input, job_output_dir, sampling, selection
from facekit.cluster.driver import ClusterPlan, SourceJob, SourceOutcome, run_shards
from facekit.cluster.resources import local_gpu_memory_mb, worker_count, worker_resources
from facekit.cluster.session import import_ray, ray_session
from facekit.cluster.shared_output import check_shared_output
from facekit.errors import ConfigError, FacekitError
from facekit.faces.quality import QualityFilter
from facekit.fileio import atomic_write_bytes
from facekit.media.collection import COLLECTION_FILE, Source, sources_of
from facekit.media.shards import shards_of
from facekit.media.sources import open_input
from facekit.output.alignments import ALIGNMENTS_FILE
from facekit.plugin.registry import PluginRegistry

log = logging.getLogger("facekit")

RAY_SUMMARY_FILE = "ray_summary.json"  # the whole run's figures, beside collection.json (bench/ray.py reads it)


def run_on_cluster(cfg: DictConfig, registry: PluginRegistry) -> None:
    """Plans every source, runs their shards on the cluster, reports; exit code 2 (a
    FacekitError) when a single input's shard failed, or when no source of a collection is done."""
    import_ray(private=cfg.runner.address is None)  # a missing Ray is one line, before any model loads
    _check(cfg)
    root = job_output_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    chosen = sampling(cfg)
    quality = QualityFilter.from_config(cfg.get("quality"))
    stages = build_stages(cfg, registry)
    stages.ensure_weights()  # each worker builds its own models from them
    face_filter = _identity_filter(cfg, stages, None, [p.fingerprint() for p in stages.plugins()])
    collection = is_collection_input(cfg)
    state = CollectionState.load(root / COLLECTION_FILE, str(cfg.input), _settings(cfg)) if collection else None
    sources: dict[str, Source] = {}
    jobs: list[SourceJob] = []

    def plan_source(key: str, path: Path, output: Path, source_cfg: DictConfig) -> None:
        source = open_input(path, exclude=output, sampling=chosen)
        sharded = shards_of(source, int(cfg.runner.shard_frames), int(cfg.runner.files_per_shard))
        jobs.append(SourceJob(key, output, _meta(source_cfg, stages, face_filter, source, quality), sharded.shards,
                              sharded.frames, int(cfg.output.save_every)))

    if state is None:
        plan_source(str(cfg.input), Path(str(cfg.input)).expanduser(), root, cfg)
    else:
        for source in sources_of(Path(str(cfg.input)).expanduser(), selection(cfg), exclude=root):
            if source.failed is not None:
                log.warning("source %s failed: %s", source.rel, source.failed)
                state.set(source, FAILED, reason=source.failed)
            elif state.was_done(source):
                state.sources[source.rel] = state.earlier[source.rel]
            else:
                source_cfg = cfg.copy()
                source_cfg.input = str(source.path)
                try:
                    plan_source(source.rel, source.path, root / source.output, source_cfg)
                except (FacekitError, OSError) as exc:
                    reason = str(exc) if isinstance(exc, FacekitError) else f"{exc.strerror or exc}"
                    log.warning("source %s failed: %s", source.rel, reason)
                    state.set(source, FAILED, reason=reason)
                    continue
                sources[source.rel] = source
                state.set(source, PARTIAL, alignments=_alignments_name(source))
    log.info("%s: %d source(s) to run in %d shard(s) on Ray", cfg.input, len(jobs), sum(len(j.shards) for j in jobs))
    outcomes: list[SourceOutcome] = []

    def source_done(outcome: SourceOutcome) -> None:
        outcomes.append(outcome)
        _write_summary(outcome)
        if state is not None:
            source = sources[outcome.job.key]
            frames, faces = _counted(outcome.job.output / ALIGNMENTS_FILE)
            if outcome.failures:
                state.set(source, PARTIAL, force=True, alignments=_alignments_name(source),
                          reason=f"{len(outcome.failures)} shard(s) failed: {outcome.failures[0]}", frames=frames,
                          faces=faces)
            else:
                state.set(source, DONE, alignments=_alignments_name(source), frames=frames, faces=faces)

    try:
        with ExitStack() as held:
            held.enter_context(_exclusive(root))
            ray = held.enter_context(ray_session(cfg.runner.address, bool(cfg.runner.verbose)))
            check_shared_output(ray, root)
            plan = _cluster_plan(cfg, ray, stages, face_filter, quality, chosen, sum(len(j.shards) for j in jobs))
            totals = run_shards(ray, plan, jobs, source_done)
    finally:
        if state is not None:
            state.save()
    log.info("done on Ray: %s", totals.line())
    figures = {"frames": totals.frames, "faces": totals.faces, "seconds": round(totals.seconds, 3),
               "frames_per_s": round(totals.frames / totals.seconds, 2) if totals.seconds else 0.0,
               "shards": totals.shards, "kept_shards": totals.kept, "failed_shards": totals.failed,
               "nodes": len(totals.nodes), "workers": plan.workers}
    atomic_write_bytes(root / RAY_SUMMARY_FILE, json.dumps(figures, indent=2).encode())
    _report(cfg, outcomes, state)


def _check(cfg: DictConfig) -> None:
    runner = cfg.runner
    for key in ("shard_frames", "files_per_shard"):
        if not isinstance(runner[key], int) or runner[key] < 1:
            raise ConfigError(f"runner.{key} must be a whole number, 1 or more, got {runner[key]!r}")
    if runner.cpus_per_task is None or runner.cpus_per_task <= 0:
        raise ConfigError(f"runner.cpus_per_task must be a positive number of CPUs, got {runner.cpus_per_task!r}")
    if runner.actors is not None and runner.actors < 1:
        raise ConfigError(f"runner.actors must be 1 or more (null: as many as the cluster holds), got {runner.actors!r}")
    if runner.gpu_memory_mb is not None and runner.gpu_memory_mb < 1:
        raise ConfigError(f"runner.gpu_memory_mb must be a positive number of MB, got {runner.gpu_memory_mb!r}")


def _cluster_plan(cfg: DictConfig, ray: Any, stages: Any, face_filter: Any, quality: Any, chosen: Any,
                  shards: int) -> ClusterPlan:
    """Each worker's resources from what its plugins report, and as many workers as fit."""
    available = ray.cluster_resources()
    cpus, gpus = float(available.get("CPU", 0)), float(available.get("GPU", 0))
    gpu_memory = cfg.runner.gpu_memory_mb or local_gpu_memory_mb()
    resources = worker_resources(sum(p.gpu_memory_mb for p in stages.plugins()), float(cfg.runner.cpus_per_task),
                                 gpu_memory, gpus)
    count = worker_count(cfg.runner.actors, resources, cpus, gpus, max(1, shards))
    log.info("Ray: %d worker(s), %s (cluster: %g CPUs, %g GPUs)", count, resources.why, cpus, gpus)
    payload = pickle.dumps((stages, face_filter, quality))
    return ClusterPlan(payload, resources, count, chosen, debug=bool(cfg.output.debug),
                       save_rejected=bool(cfg.filter.save_rejected), progress=bool(cfg.runner.progress))


def _write_summary(outcome: SourceOutcome) -> None:
    """``run_summary.json`` of the source's folder, as a local run leaves one."""
    figures = {"frames": outcome.frames, "faces": outcome.faces, "seconds": round(outcome.seconds, 3),
               "frames_per_s": round(outcome.frames / outcome.seconds, 2) if outcome.seconds else 0.0,
               "mode": "ray", "shards": len(outcome.job.shards), "kept_shards": outcome.kept,
               "failed_shards": outcome.failures, "skipped": len(outcome.skipped), "nodes": dict(outcome.nodes),
               "rejected": dict(sorted(outcome.rejected.items()))}
    atomic_write_bytes(outcome.job.output / SUMMARY_FILE, json.dumps(figures, indent=2).encode())


def _report(cfg: DictConfig, outcomes: list[SourceOutcome], state: CollectionState | None) -> None:
    failures = [failure for outcome in outcomes for failure in outcome.failures]
    rejected = sum((outcome.rejected for outcome in outcomes), start=type(outcomes[0].rejected)()) if outcomes else {}
    if rejected:
        log.info("filter: %d face(s) rejected (%s)", sum(rejected.values()),
                 ", ".join(f"{kind} {count}" for kind, count in sorted(rejected.items())))
    if state is None:
        if failures:
            raise FacekitError(f"{len(failures)} shard(s) failed; the first: {failures[0]}; the finished shards are "
                               "kept, and the same command runs the failed ones again")
        return
    counts = state.counts()
    log.info("collection: %d source(s): %s; states in %s", sum(counts.values()),
             ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none", state.path)
    if not counts[DONE]:
        raise FacekitError(f"no source of {cfg.input} could be processed"
                           + (f"; the first failure: {failures[0]}" if failures else ""))


def _alignments_name(source: Source) -> str:
    return f"{source.output}/{ALIGNMENTS_FILE}" if source.output != "." else ALIGNMENTS_FILE
