"""``task=extract``: input in, aligned faces and an alignments file out; resumes a stopped run."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator

from filelock import FileLock, Timeout

from omegaconf import DictConfig, OmegaConf

from facekit import geometry
from facekit.alignments import AlignmentsWriter
from facekit.errors import ConfigError, FacekitError
from facekit.gpu import MODES, choose_mode, free_gpu_memory_mb
from facekit.media import open_input
from facekit.models.store import ModelStore
from facekit.output import FaceWriter
from facekit.pipeline import FaceStages, LoadedPlugin, load_plugin
from facekit.plugin import PluginKind
from facekit.registry import PluginRegistry
from facekit.runner import Runner, plan_passes

log = logging.getLogger("facekit")

ALIGNMENTS_FILE = "alignments.json"


def run_extract(cfg: DictConfig, registry: PluginRegistry) -> None:
    check_settings(cfg)
    output = Path(cfg.output.dir).expanduser()
    source = open_input(cfg.input, exclude=output)
    store = ModelStore(registry.models, cache_dir=_path_or_none(cfg.models.cache_dir),
                       offline=bool(cfg.models.offline) or os.environ.get("FACEKIT_OFFLINE") == "1")
    detector = _load(cfg, registry, store, "detector")
    aligner = _load(cfg, registry, store, "aligner")
    stages = FaceStages(detector, aligner, size=cfg.output.size, padding=cfg.output.padding)
    mode = choose_mode(cfg.runner.mode, [detector.spec, aligner.spec], free_gpu_memory_mb(),
                       cfg.runner.gpu_margin_mb)
    log.info("%s: %d frame(s); detector %s, aligner %s, %s passes",
             source.path, len(source), detector.spec.name, aligner.spec.name, mode)

    writer = FaceWriter(output, debug=bool(cfg.output.debug))
    meta = _meta(cfg, detector, aligner)
    with _exclusive(output), \
            AlignmentsWriter(output / ALIGNMENTS_FILE, meta, sync_every=cfg.output.save_every) as alignments:
        done = frozenset(alignments.done_frames())
        if done:
            log.info("resuming: %d frame(s) already done", len(done))

        def sink(record) -> None:
            writer.write(record)
            alignments.write(record)

        runner = Runner(plan_passes(stages, mode), queue_size=cfg.runner.queue_size,
                        progress=bool(cfg.runner.progress))
        summary = runner.run(source, sink, done)
    log.info("done: %s; alignments in %s", summary.line(), output / ALIGNMENTS_FILE)
    if summary.skipped:
        log.warning("%d file(s) skipped: %s", summary.skipped, ", ".join(source.skipped[:10]))


def check_settings(cfg: DictConfig) -> None:
    """Catch the common mistakes with one line each, before any model loads."""
    if not cfg.input:
        raise ConfigError("input is required: facekit input=<image, folder or video> output=<folder>")
    if not isinstance(cfg.output.size, int) or cfg.output.size <= 0:
        raise ConfigError(f"output.size must be a positive whole number of pixels, got {cfg.output.size!r}")
    if cfg.output.padding is not None and not 0 <= float(cfg.output.padding) < 0.5:
        raise ConfigError(f"output.padding is a fraction of the crop per side, in [0, 0.5); got {cfg.output.padding!r}")
    if not isinstance(cfg.output.save_every, int) or cfg.output.save_every <= 0:
        raise ConfigError(f"output.save_every must be a positive whole number, got {cfg.output.save_every!r}")
    if cfg.runner.mode not in MODES:
        raise ConfigError(f"runner.mode={cfg.runner.mode!r}; choose one of: {', '.join(MODES)}")
    if not isinstance(cfg.runner.queue_size, int) or cfg.runner.queue_size <= 0:
        raise ConfigError(f"runner.queue_size must be a positive whole number, got {cfg.runner.queue_size!r}")


def _load(cfg: DictConfig, registry: PluginRegistry, store: ModelStore, kind: PluginKind) -> LoadedPlugin:
    node = cfg.get(kind)
    if node is None:
        name = cfg.default_plugins[kind]
        return load_plugin(registry, store, kind, name, None)
    options = OmegaConf.to_container(node, resolve=True)
    return load_plugin(registry, store, kind, options.pop("name"), options)


def _meta(cfg: DictConfig, detector: LoadedPlugin, aligner: LoadedPlugin) -> dict[str, Any]:
    """What produced the file. ``fingerprint`` holds what must match for a rerun to resume."""
    from dataclasses import asdict

    padding = geometry.DEFAULT_PADDING if cfg.output.padding is None else float(cfg.output.padding)
    plugins = {
        "detector": {"name": detector.spec.name, "config": asdict(detector.config)},
        "aligner": {"name": aligner.spec.name, "config": asdict(aligner.config)},
    }
    return {
        "input": str(cfg.input),
        "plugins": plugins,
        "output": {"size": cfg.output.size, "padding": padding},
        "fingerprint": {"input": str(Path(cfg.input).resolve()), "plugins": plugins,
                        "size": cfg.output.size, "padding": padding},
    }


@contextmanager
def _exclusive(output: Path) -> Iterator[None]:
    """One run per output folder: two writers would interleave one journal."""
    lock = FileLock(output / ".facekit.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FacekitError(f"another facekit run is writing to {output}; wait for it or choose another output") from None
    try:
        yield
    finally:
        lock.release()


def _path_or_none(value: Any) -> Path | None:
    return Path(value).expanduser() if value else None
