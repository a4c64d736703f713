"""``task=extract`` over a collection: a tree or a list of sources, each run exactly as a single
input is (``plan_run`` / ``execute`` / ``report`` of ``facekit.app.tasks.extract``) into its own
folder, so each source's output equals a separate run of it and resumes on its own.

The plugins are built once for the whole collection and reused by every source; each source
still starts its own worker processes when it gets any (``runner.workers``). ``collection.json``
in the output folder lists every source met so far with its state, rewritten atomically as
sources finish, and tells a rerun which sources are done (those are not reopened). A rerun with
other settings finds no source done, so each source's own fingerprint check refuses it.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from facekit.app.tasks.extract import build_stages, execute, plan_run, report
from facekit.app.tasks.settings import job_output_dir, selection
from facekit.errors import FacekitError
from facekit.faces.stages import FaceStages
from facekit.fileio import atomic_write_bytes
from facekit.media.collection import COLLECTION_FILE, Source, sources_of
from facekit.output.alignments import ALIGNMENTS_FILE
from facekit.plugin.registry import PluginRegistry

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
        self.sources[source.rel] = {"source": source.rel, "path": str(source.path), "kind": source.kind,
                                    "output": source.output, "state": state, **details}
        self.save(force)

    def counts(self) -> Counter[str]:
        return Counter(entry["state"] for entry in self.sources.values())

    def save(self, force: bool = True) -> None:
        """Rewrites the file; unless ``force``d, at most every ``SAVE_EVERY_S``: rewriting it after
        each of 10,000 short sources would cost O(sources²). A state it has not caught up with
        costs nothing but a reopen: a source missing or partial there resumes from its journal."""
        if not force and time.monotonic() - self.saved_at < SAVE_EVERY_S:
            return
        self.saved_at = time.monotonic()
        document = {"input": self.input, "settings": self.settings, "counts": dict(self.counts()), "sources": list(self.sources.values())}
        atomic_write_bytes(self.path, json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"))


def run_collection(cfg: DictConfig, registry: PluginRegistry) -> None:
    """Every source of the collection in turn; a source that cannot be read is named, marked
    failed and counted, and the run goes on. Exit code 2 (a FacekitError) only when no source
    could be processed."""
    root_out = job_output_dir(cfg)
    root_out.mkdir(parents=True, exist_ok=True)
    state = CollectionState.load(root_out / COLLECTION_FILE, str(cfg.input), _settings(cfg))
    stages = build_stages(cfg, registry)  # the models load once, for every source
    try:
        for source in sources_of(Path(str(cfg.input)).expanduser(), selection(cfg), exclude=root_out):
            if source.failed is not None:
                log.warning("source %s failed: %s", source.rel, source.failed)
                state.set(source, FAILED, reason=source.failed)
            elif state.was_done(source):
                log.info("source %s: done by an earlier run, not reopened", source.rel)
                state.sources[source.rel] = state.earlier[source.rel]
                state.save(force=False)
            else:
                _run_source(cfg, registry, stages, source, root_out, state)
    finally:
        state.save()
    counts = state.counts()
    log.info("collection: %d source(s): %s; states in %s", sum(counts.values()),
             ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none", state.path)
    for kind in (FAILED, PARTIAL):
        named = [entry["source"] for entry in state.sources.values() if entry["state"] == kind]
        if named:
            log.warning("%s: %s%s", kind, ", ".join(named[:10]), f" and {len(named) - 10} more" if len(named) > 10 else "")
    if not counts[DONE]:
        failed = [e for e in state.sources.values() if e["state"] == FAILED]
        raise FacekitError(f"no source of {cfg.input} could be processed ({len(failed)} failed"
                           + (f"; the first: {failed[0]['source']}: {failed[0]['reason']}" if failed else "")
                           + ")")


def _run_source(cfg: DictConfig, registry: PluginRegistry, stages: FaceStages, source: Source,
                root_out: Path, state: CollectionState) -> None:
    """One source through the single-input path, into its own folder."""
    output = root_out / source.output
    source_cfg = cfg.copy()
    source_cfg.input = str(source.path)
    log.info("source %d: %s -> %s", len(state.sources) + (source.rel not in state.sources), source.rel, output)
    alignments = f"{source.output}/{ALIGNMENTS_FILE}" if source.output != "." else ALIGNMENTS_FILE
    try:
        output.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            state.set(source, PARTIAL, alignments=alignments)
            plan = plan_run(source_cfg, registry, held, stages=stages, output=output)
            summary, rejected = execute(plan, held)
        report(plan, summary, rejected)
    except KeyboardInterrupt:
        state.set(source, PARTIAL, force=True, alignments=alignments, reason="interrupted; the same command resumes it")
        raise
    except (FacekitError, OSError) as exc:
        reason = str(exc) if isinstance(exc, FacekitError) else f"{exc.strerror or exc}"
        log.warning("source %s failed: %s", source.rel, reason)
        state.set(source, FAILED, reason=reason)
        return
    frames, faces = _counted(output / ALIGNMENTS_FILE)
    state.set(source, DONE, frames=frames, faces=faces, alignments=alignments)


#: Keys that do not change what a source's folder holds (where it goes, how fast, what is logged).
_NOT_SETTINGS = ("task", "input", "runner", "models", "cache", "collection")


def _settings(cfg: DictConfig) -> dict[str, Any]:
    """The config less ``_NOT_SETTINGS`` and ``output.dir`` / ``output.save_every``: a done
    source is skipped on a rerun only when these are equal."""
    settings = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(settings, dict)
    for key in _NOT_SETTINGS:
        settings.pop(key, None)
    for key in ("dir", "save_every"):
        settings.get("output", {}).pop(key, None)
    return json.loads(json.dumps(settings, default=str))


def _counted(alignments: Path) -> tuple[int, int]:
    """Frames and faces in a finished alignments file (resumed frames included)."""
    try:
        frames = json.loads(alignments.read_text(encoding="utf-8")).get("frames", {})
    except (OSError, ValueError):
        return 0, 0
    return len(frames), sum(len(entry.get("faces", [])) for entry in frames.values())


__all__ = ["COLLECTION_FILE", "run_collection"]
