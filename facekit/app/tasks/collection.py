"""``task=extract`` over a collection: a tree or a list of sources, each written into its own
folder exactly as a separate run of it would be, so each resumes on its own.

The plugins are built once for the whole collection. A run reads every source through one runner
(``collection_stream``), so its worker processes start once, not once per source; a sweep's job
(whose analysis cache is per source) and a serial run read each source through the single-input
path instead. ``collection.json`` in the output folder lists every source met so far with its
state, rewritten atomically as sources finish, and tells a rerun which sources are done (those
are not reopened). A rerun with other settings finds no source done, so each source's own
fingerprint check refuses it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from omegaconf import DictConfig, OmegaConf

from facekit.app.tasks.collection_progress import CollectionProgress
from facekit.app.tasks.collection_stream import CollectionStream, StreamSettings, alignments_name, counted, opens
from facekit.app.tasks.extract import (Finisher, build_stages, execute, gpu_plan, identity_filter, plan_run,
                                       report)
from facekit.app.tasks.listing import ListedAhead
from facekit.app.tasks.settings import cache_is_on, job_output_dir, sampling, selection
from facekit.engine.runner import Runner, per_record, plan_passes
from facekit.engine.workers import FRAMES_PER_WORKER, WorkerPlan, choose_workers, usable_cores
from facekit.errors import FacekitError, StageError
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.fileio import atomic_write_bytes
from facekit.media.collection import COLLECTION_FILE, Source, sources_of
from facekit.output.alignments import ALIGNMENTS_FILE
from facekit.output.face_files import FaceWriter
from facekit.plugin.registry import PluginRegistry

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter

log = logging.getLogger("facekit")

DONE, PARTIAL, FAILED = "done", "partial", "failed"
SAVE_EVERY_S = 2.0


@dataclass
class CollectionState:
    """What ``collection.json`` holds: one entry per source, by its path in the collection."""

    path: Path
    input: str
    settings: dict[str, Any] = field(default_factory=dict)  # what the sources' outputs depend on
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    earlier: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last run's entries
    saved_at: float = float("-inf")  # time.monotonic() of the last write
    run: dict[str, Any] = field(default_factory=dict)  # the last run's frames, seconds, frames/s
    lock: threading.Lock = field(default_factory=threading.Lock)  # the reader opens sources, the sink ends them

    @classmethod
    def load(cls, path: Path, input_value: str, settings: dict[str, Any]) -> CollectionState:
        """The last run's entries count only when it had the same settings: with other plugins
        or sampling no source is done, and each one's own fingerprint check refuses it."""
        state = cls(path, input_value, settings)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("settings") == settings:
                state.earlier = {entry["source"]: entry for entry in document.get("sources", [])}
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is damaged (%s); every source is run again (each resumes from its journal)", path, exc)
        return state

    def was_done(self, source: Source) -> bool:
        entry = self.earlier.get(source.rel)
        return entry is not None and entry.get("state") == DONE and entry.get("output") == source.output

    def set(self, source: Source, state: str, force: bool = False, **details: Any) -> None:
        with self.lock:
            self.sources[source.rel] = {"source": source.rel, "path": str(source.path), "kind": source.kind,
                                        "output": source.output, "state": state, **details}
        self.save(force)

    def keep_earlier(self, source: Source) -> None:
        """A source done by an earlier run keeps that run's entry."""
        with self.lock:
            self.sources[source.rel] = self.earlier[source.rel]
        self.save(force=False)

    def counts(self) -> Counter[str]:
        return Counter(entry["state"] for entry in list(self.sources.values()))

    def save(self, force: bool = True) -> None:
        """Rewrites the file; unless ``force``d, at most every ``SAVE_EVERY_S``: rewriting it after
        each of 10,000 short sources would cost O(sources²). A state it has not caught up with
        costs nothing but a reopen: a source missing or partial there resumes from its journal."""
        with self.lock:
            if not force and time.monotonic() - self.saved_at < SAVE_EVERY_S:
                return
            self.saved_at = time.monotonic()
            document = {"input": self.input, "settings": self.settings, "counts": dict(self.counts()),
                        **({"run": self.run} if self.run else {}), "sources": list(self.sources.values())}
            atomic_write_bytes(self.path, json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"))


def run_collection(cfg: DictConfig, registry: PluginRegistry) -> None:
    """Every source of the collection; a source that cannot be read is named, marked failed and
    counted, and the run goes on. Exit code 2 (a FacekitError) only when no source could be
    processed."""
    root_out = job_output_dir(cfg)
    root_out.mkdir(parents=True, exist_ok=True)
    state = CollectionState.load(root_out / COLLECTION_FILE, str(cfg.input), collection_settings(cfg))
    stages = build_stages(cfg, registry)  # the models load once, for every source
    listing = ListedAhead(sources_of(Path(str(cfg.input)).expanduser(), selection(cfg), exclude=root_out))
    progress = CollectionProgress(enabled=bool(cfg.runner.progress), listing=listing)
    begun = time.perf_counter()
    try:
        with progress.shown():
            if cache_is_on(cfg):  # a sweep: each source replays its own analysis cache entry
                for source in listing:
                    _run_source(cfg, registry, stages, source, root_out, state, progress)
            else:
                _run_streamed(cfg, stages, listing, root_out, state, progress)
    finally:
        listing.stop()
        state.run = {"frames": progress.frames, "seconds": round(time.perf_counter() - begun, 3),
                     "busy_s": round(progress.busy_s, 3), "frames_per_s": round(progress.busy_rate(), 2)}
        state.save()
    _report(cfg, state, progress)


def _run_streamed(cfg: DictConfig, stages: FaceStages, sources: Iterable[Source], root_out: Path,
                  state: CollectionState, progress: CollectionProgress) -> None:
    """Every source through one runner: the models load, and the worker processes start, once.
    A GPU plan of more than one pass (a serial run) reads each source on its own instead, since
    a pass over the whole collection would hold every frame's faces until the next pass."""
    plan = gpu_plan(cfg, stages)
    for warning in plan.warnings:
        log.warning(warning)
    log.info(plan.decision)
    quality = QualityFilter.from_config(cfg.get("quality"))
    face_filter = identity_filter(cfg, stages, None, None)
    if len(plan.passes) > 1:
        for source in sources:
            _run_source(cfg, None, stages, source, root_out, state, progress, face_filter=face_filter)
        return
    workers = choose_workers(cfg.runner.workers, [p.spec for p in stages.plugins()], plan.mode,
                             frames=FRAMES_PER_WORKER * usable_cores())  # a collection is taken to be long
    if workers is None:
        stages.load_models()
    else:
        stages.ensure_weights()  # each worker builds its own models from them
    encoder = FaceWriter(root_out, debug=bool(cfg.output.debug), save_rejected=bool(cfg.filter.save_rejected),
                         create=False)
    passes = plan_passes(stages, plan.passes, finish=[per_record("encode", Finisher(stages, face_filter, encoder,
                                                                                    quality))])
    settings = StreamSettings(cfg, stages, face_filter, quality, sampling(cfg), root_out, plan.mode, workers or 0)
    stream = CollectionStream(settings, sources, state, progress)
    log.info("collection: %s; %s passes%s", ", ".join(f"{p.spec.kind} {p.spec.name}" for p in stages.plugins()),
             plan.mode, f" in {workers} worker processes, started once" if workers else "")
    while True:
        runner = Runner(passes, queue_size=cfg.runner.queue_size, progress=False, queue_mb=cfg.runner.queue_mb,
                        workers=WorkerPlan(workers, counters=[stages.model_s], prepare=[stages.load_models])
                        if workers else None)
        try:
            progress.busy_s += runner.run(stream, stream.sink).seconds  # type: ignore[arg-type]  # a FrameSource in all it uses
        except StageError as exc:
            if stream.restart(exc):
                continue  # that source failed; a new runner takes up the rest
            stream.stop(f"stopped: {exc}")
            raise
        except KeyboardInterrupt:
            stream.stop("interrupted; the same command resumes it")
            raise
        except BaseException as exc:
            stream.stop(f"stopped: {exc}")
            raise
        stream.finish()
        return


def _report(cfg: DictConfig, state: CollectionState, progress: CollectionProgress) -> None:
    """The closing lines: sources by state, the failed and partial ones named; exit code 2 when
    no source was processed."""
    counts = state.counts()
    log.info("collection: %d source(s): %s; %d frames at %.1f frames/s; states in %s", sum(counts.values()),
             ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none", progress.frames,
             progress.busy_rate(), state.path)
    for kind in (FAILED, PARTIAL):
        named = [entry["source"] for entry in state.sources.values() if entry["state"] == kind]
        if named:
            log.warning("%s: %s%s", kind, ", ".join(named[:10]), f" and {len(named) - 10} more" if len(named) > 10 else "")
    if not counts[DONE]:
        failed = [e for e in state.sources.values() if e["state"] == FAILED]
        raise FacekitError(f"no source of {cfg.input} could be processed ({len(failed)} failed"
                           + (f"; the first: {failed[0]['source']}: {failed[0]['reason']}" if failed else "")
                           + ")")


def _run_source(cfg: DictConfig, registry: PluginRegistry | None, stages: FaceStages, source: Source,
                root_out: Path, state: CollectionState, progress: CollectionProgress,
                face_filter: IdentityFilter | None = None) -> None:
    """One source through the single-input path, into its own folder (a sweep's job, whose
    analysis cache is per source, or a serial run)."""
    number = progress.met_source()
    if not opens(source, state, progress):
        return
    output = root_out / source.output
    source_cfg = cfg.copy()
    source_cfg.input = str(source.path)
    log.info("source %d: %s -> %s", number, source.rel, output)
    alignments = alignments_name(source)
    try:
        output.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            state.set(source, PARTIAL, alignments=alignments)
            plan = plan_run(source_cfg, registry, held, stages=stages, output=output, face_filter=face_filter)
            progress.opened_source(source.rel, len(plan.source))
            summary, rejected = execute(plan, held)
        report(plan, summary, rejected)
        progress.frames += summary.frames
        progress.busy_s += summary.seconds
    except KeyboardInterrupt:
        state.set(source, PARTIAL, force=True, alignments=alignments, reason="interrupted; the same command resumes it")
        raise
    except (FacekitError, OSError) as exc:
        reason = str(exc) if isinstance(exc, FacekitError) else f"{exc.strerror or exc}"
        log.warning("source %s failed: %s", source.rel, reason)
        state.set(source, FAILED, reason=reason)
        progress.finished_source()
        return
    frames, faces = counted(output / ALIGNMENTS_FILE)
    state.set(source, DONE, frames=frames, faces=faces, alignments=alignments)
    progress.finished_source()


#: Keys that do not change what a source's folder holds (where it goes, how fast, what is logged).
_NOT_SETTINGS = ("task", "input", "runner", "models", "cache", "collection")


def collection_settings(cfg: DictConfig) -> dict[str, Any]:
    """The config less ``_NOT_SETTINGS`` and ``output.dir`` / ``output.save_every``: a done
    source is skipped on a rerun only when these are equal."""
    settings = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(settings, dict)
    for key in _NOT_SETTINGS:
        settings.pop(key, None)
    for key in ("dir", "save_every"):
        settings.get("output", {}).pop(key, None)
    return json.loads(json.dumps(settings, default=str))


__all__ = ["COLLECTION_FILE", "run_collection"]
