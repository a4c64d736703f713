"""``task=extract`` with ``runner=ray``: a single input or a collection, every source cut into
shards that run on a Ray cluster (``facekit.distributed``), each source into its own folder with the
alignments file and face files a local run of it writes.

The settings decide here, as for a local run (plugins, identity filter and its references,
quality limits, sampling, the alignments meta), so a source's output folder is the same
whichever executor made it; ``collection.json`` is kept as ``run_local`` keeps it, and a single input is a collection of one
(``sources``).
"""
from __future__ import annotations

import json
import logging
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from omegaconf import DictConfig

from facekit.app.tasks.acceptance import accept_run
from facekit.app.tasks.idle import say_nothing_to_do
from facekit.app.tasks.planning import alignments_meta, build_stages, identity_filter, ledger_settings
from facekit.app.tasks.sources import RunSources
from facekit.app.tasks.settings import job_output_dir, sampling
from facekit.app.tasks.source_step import mark_ended, report_collection
from facekit.distributed.driver import (RayPlan, SourceJob, SourceOutcome, check_earlier, fold_finished,
                                        run_shards)
from facekit.distributed.resources import local_gpu_memory_mb, worker_count, worker_resources
from facekit.distributed.session import import_ray, ray_session
from facekit.distributed.shared_output import check_shared_output
from facekit.errors import ConfigError, FacekitError, failure_reason
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.fileio import atomic_write_bytes
from facekit.ledger.collection_state import CollectionState, alignments_name
from facekit.ledger.lock import exclusive_output
from facekit.ledger.run_folder import RunFolder
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.source import counted, warn_not_done_again
from facekit.ledger.states import SourceState
from facekit.ledger.summary import SourceSummary, nothing_read
from facekit.media.collection import Source
from facekit.media.sampling import Sampling
from facekit.media.shards import Shard, shards_of
from facekit.media.sources import FrameSource, open_input
from facekit.output.alignments import ALIGNMENTS_FILE
from facekit.plugin.registry import PluginRegistry

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")

RAY_SUMMARY_FILE = "ray_summary.json"  # the whole run's figures, beside collection.json (bench/ray.py reads it)


def run_on_ray(cfg: DictConfig, registry: PluginRegistry | None,
               sources_for: Callable[[Path], RaySources] | None = None) -> None:
    """Plans every source, runs their shards on the cluster, reports; exit code 2 (a
    FacekitError) when a single input's shard failed, or when no source of a collection is done.
    ``sources_for(output folder)`` gives the sources and the stages they run (a re-crop's);
    by default, the extraction's."""
    import_ray(private=cfg.runner.address is None)  # a missing Ray is one line, before any model loads
    _check(cfg)
    root = job_output_dir(cfg)
    with ExitStack() as held:
        run = held.enter_context(RunFolder(root))  # one run in this folder; nothing written until accepted
        sources = sources_for(root) if sources_for is not None else _extraction_sources(cfg, registry, root)
        with ThreadPoolExecutor(1, thread_name_prefix="facekit-plan") as pool:
            planned = pool.submit(sources.plan)  # sources opened and cut into shards while Ray starts
            sources.decided.wait()  # Ray starts at the first shard to run: a rerun with none starts none
            ray = held.enter_context(ray_session(cfg.runner.address, bool(cfg.runner.verbose))) \
                if sources.to_run else None
            planned.result()
        locked = _hold_source_folders(held, sources.jobs, root, set())  # a run writing one refuses this one
        if ray is None:
            accept_run(cfg, run)
            _hold_source_folders(held, sources.jobs, root, locked, accepted=True)
            held.push(_saved_at_exit(sources.state))
            _without_ray(cfg, sources)
            return
        shards = sum(len(job.shards) for job in sources.jobs)
        check_shared_output(ray, root)
        accept_run(cfg, run)
        _hold_source_folders(held, sources.jobs, root, locked, accepted=True)
        held.push(_saved_at_exit(sources.state))  # before the locks go, so no other run reads it stale
        sources.state.resume_saving()
        log.info("%s: %d source(s) to run in %d shard(s) on Ray", cfg.input, len(sources.jobs), shards)
        plan = _ray_plan(cfg, ray, sources, shards)
        totals = run_shards(ray, plan, sources.jobs, sources.done)
        sources.state.run = {"frames": totals.frames, "seconds": round(totals.seconds, 3),  # as run_local keeps
                             "frames_per_s": round(totals.frames / totals.seconds, 2) if totals.seconds else 0.0}
    log.info("done on Ray: %s", totals.line())
    figures = {**sources.state.run, "faces": totals.faces, "shards": totals.shards, "kept_shards": totals.kept,
               "failed_shards": totals.failed, "nodes": len(totals.nodes), "workers": plan.workers}
    atomic_write_bytes(root / RAY_SUMMARY_FILE, json.dumps(figures, indent=2).encode())
    _report(cfg, sources.outcomes, None if sources.runs.alone else sources.state)
    if sources.unread is not None:
        raise FacekitError(sources.unread)


def _hold_source_folders(held: ExitStack, jobs: Sequence[SourceJob], root: Path, locked: set[Path],
                         accepted: bool = False) -> set[Path]:
    """Each source folder's lock, as a local run's ledger holds it, until the run ends: a local
    run into one of them refuses this run, or is refused while it runs. Before the run is
    accepted, the folders there already, but the output folder itself (``RunFolder`` keeps it
    for this run, and a refused run leaves it as it was); once it is, the others. ``locked``: those
    held so far, added to."""
    for job in jobs:
        if job.output not in locked and (accepted or (job.output != root and job.output.is_dir())):
            job.output.mkdir(parents=True, exist_ok=True)
            held.enter_context(exclusive_output(job.output))
            locked.add(job.output)
    return locked


def _saved_at_exit(state: CollectionState) -> Callable[..., bool]:
    """``collection.json`` saved as the run's ExitStack closes, the error it closes on (a full
    disk, most often) kept as the one the user sees."""
    def save(exc_type: type[BaseException] | None, *_: object) -> bool:
        try:
            state.save()
        except OSError:
            if exc_type is None:
                raise
        return False

    return save


def _extraction_sources(cfg: DictConfig, registry: PluginRegistry | None, root: Path) -> RaySources:
    assert registry is not None, "an extraction needs the plugin registry"
    stages = build_stages(cfg, registry)
    stages.ensure_weights()  # each worker builds its own models from them
    face_filter = identity_filter(cfg, stages, None, [p.fingerprint() for p in stages.plugins()])
    return RaySources(cfg, root, stages, face_filter, QualityFilter.from_config(cfg.get("quality")), sampling(cfg))


@dataclass
class RaySources:
    """The run's sources: each opened, cut into shards and checked against what an earlier run
    left (``plan``), and recorded as it ends (``done``), in ``collection.json`` for a collection."""

    cfg: DictConfig
    root: Path
    stages: FaceStages
    face_filter: IdentityFilter | None
    quality: QualityFilter | None
    sampling: Sampling
    jobs: list[SourceJob] = field(default_factory=list)
    outcomes: list[SourceOutcome] = field(default_factory=list)
    named: dict[str, Source] = field(default_factory=dict)  # the sources by their key
    runs: RunSources = field(init=False)
    to_run: bool = False  # a shard an earlier run did not finish was found
    done_earlier: int = 0  # the frames of a collection's sources done by an earlier run (not planned again)
    decided: threading.Event = field(default_factory=threading.Event)  # set at the first shard to run, or at the end
    unread: str | None = None  # a single input of which no file could be read: the run's error

    def __post_init__(self) -> None:
        self.runs = self.run_sources()
        self.state.pause_saving()  # planning records states; the file is written once the run is accepted

    def run_sources(self) -> RunSources:
        """The sources to plan: the input's (a re-crop's are an earlier output's)."""
        return RunSources.of(self.cfg, self.root)

    @property
    def state(self) -> CollectionState:
        return self.runs.state

    def plan(self) -> None:
        if not self.root.is_dir() or not any(self.root.iterdir()):  # a first run: Ray starts at once
            self.to_run = True
            self.decided.set()
        try:
            self._plan()
        finally:
            self.decided.set()

    def _plan(self) -> None:
        for source in self.runs.listing():
            if source.failed is not None:
                log.warning("source %s failed: %s", source.rel, source.failed)
                self.state.set(source, SourceState.FAILED, reason=source.failed)
            elif self.state.was_done(source):
                self.state.keep_earlier(source)
                self.done_earlier += int(self.state.earlier[source.rel].get("frames", 0))
            else:
                try:
                    self._plan_one(source.rel, self.runs.opened(source), self.root / source.output,
                                   self.runs.named(source))
                except (FacekitError, OSError) as exc:
                    if self.runs.alone:  # a collection of one fails as its source fails
                        raise
                    reason = failure_reason(exc)
                    log.warning("source %s failed: %s", source.rel, reason)
                    self.state.set(source, SourceState.FAILED, reason=reason)
                    continue
                self.named[source.rel] = source
                self.state.set(source, SourceState.PARTIAL, alignments=alignments_name(source))

    def _plan_one(self, key: str, path: Path, output: Path, named: str) -> None:
        """``named``: the source as the alignments meta names it (the input, or a collection's source's path)."""
        source = open_input(path, exclude=output, sampling=self.sampling, in_collection=not self.runs.alone)
        sharded = shards_of(source, int(self.cfg.runner.shard_frames), int(self.cfg.runner.files_per_shard))
        job = SourceJob(key, output, self.meta(key, named, source), sharded.shards, ledger_settings(self.cfg),
                        sharded.frames, self.frames_of(key))
        kept = check_earlier(job)
        self.jobs.append(job)
        if len(kept) < len(job.shards):
            self.to_run = True
            self.decided.set()

    def meta(self, key: str, named: str, source: FrameSource) -> dict[str, Any]:
        """The alignments meta of the source ``key``, whose frames ``source`` reads."""
        return alignments_meta(self.cfg, named, self.stages, self.face_filter, source, self.quality)

    def frames_of(self, key: str) -> Callable[[Shard], Sequence[str]] | None:
        """The frames each shard of the source ``key`` must hold, where known before it runs:
        an extraction's are what decoding finds (None)."""
        return None

    def done(self, outcome: SourceOutcome) -> None:
        """A source's alignments file is folded: its summary, and its state in the collection."""
        self.outcomes.append(outcome)
        _write_summary(outcome)
        source = self.named[outcome.job.key]
        unread = nothing_read(source.kind, outcome.frames, outcome.resumed, len(outcome.skipped))
        if self.runs.alone:
            self.unread = None if unread is None else f"input {str(self.cfg.input)!r}: {unread}"
            return
        if outcome.failures:
            frames, faces = counted(outcome.job.output / ALIGNMENTS_FILE)
            self.state.set(source, SourceState.PARTIAL, alignments=alignments_name(source), frames=frames, faces=faces,
                           reason=f"{len(outcome.failures)} shard(s) failed: {outcome.failures[0]}")
        elif unread is not None:  # a rerun tries its files again
            log.warning("source %s failed: %s", source.rel, unread)
            self.state.set(source, SourceState.FAILED, reason=unread)
        else:
            mark_ended(self.runs, source, outcome.job.output)


def _without_ray(cfg: DictConfig, sources: RaySources) -> None:
    """Every shard was finished by an earlier run: each source is folded (a run stopped before its
    fold leaves that to this one) and, unless a source failed, one line says so; no Ray starts."""
    sources.state.resume_saving()
    fold_finished(sources.jobs, sources.done)
    if not sources.runs.alone and sources.state.counts()[SourceState.FAILED]:
        _report(cfg, sources.outcomes, sources.state)
    else:
        done = sources.done_earlier + sum(counted(job.output / ALIGNMENTS_FILE)[0] for job in sources.jobs)
        say_nothing_to_do(done, ledger_settings(cfg))


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


def _ray_plan(cfg: DictConfig, ray: Any, sources: RaySources, shards: int) -> RayPlan:
    """Each worker's resources from what its plugins report, and as many workers as fit."""
    available = ray.cluster_resources()
    cpus, gpus = float(available.get("CPU", 0)), float(available.get("GPU", 0))
    gpu_memory = cfg.runner.gpu_memory_mb or local_gpu_memory_mb()
    resources = worker_resources(sum(p.gpu_memory_mb for p in sources.stages.plugins()),
                                 float(cfg.runner.cpus_per_task), gpu_memory, gpus)
    count = worker_count(cfg.runner.actors, resources, cpus, gpus, max(1, shards))
    log.info("Ray: %d worker(s), %s (cluster: %g CPUs, %g GPUs)", count, resources.why, cpus, gpus)
    payload = pickle.dumps((sources.stages, sources.face_filter, sources.quality))
    return RayPlan(payload, resources, count, sources.sampling, ledger_settings(cfg), progress=bool(cfg.runner.progress))


def _write_summary(outcome: SourceOutcome) -> None:
    """``run_summary.json`` of the source's folder, in the schema every executor writes."""
    SourceSummary(frames=outcome.frames, faces=outcome.faces, resumed=outcome.resumed, seconds=outcome.seconds,
                  mode="ray", workers=None, skipped=len(outcome.skipped), rejected=outcome.rejected.as_dict(),
                  shards=len(outcome.job.shards), kept_shards=outcome.kept, failed_shards=outcome.failures,
                  nodes=dict(outcome.nodes)).write(outcome.job.output)


def _report(cfg: DictConfig, outcomes: list[SourceOutcome], state: CollectionState | None) -> None:
    failures = [failure for outcome in outcomes for failure in outcome.failures]
    books = ledger_settings(cfg)
    warn_not_done_again(sum(outcome.resumed for outcome in outcomes), books.debug, books.save_rejected)
    if state is None:  # a collection's closing lines say its rejects, over every done source
        rejected = RejectCounts()
        for outcome in outcomes:
            rejected.update(outcome.rejected)
        if rejected:
            log.info("filter: %d face(s) rejected (%s)", sum(rejected.values()),
                     ", ".join(f"{kind} {count}" for kind, count in sorted(rejected.items())))
        if failures:
            raise FacekitError(f"{len(failures)} shard(s) failed; the first: {failures[0]}; the finished shards are "
                               "kept, and the same command runs the failed ones again")
        return
    report_collection(state, str(cfg.input), first_failure=str(failures[0]) if failures else None, list_unfinished=True)


