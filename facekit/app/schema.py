"""The typed schema of facekit's top-level config, registered in Hydra's ConfigStore.

These dataclasses give the types only: every value is ``MISSING`` here and comes from the YAML
files in conf/ (config.yaml, runner/default.yaml), which hold the defaults and the comments a
user reads. So Hydra itself refuses ``output.size=abc`` or ``runner.mode=fast`` with the key in
its message, which the CLI prints as one line. Checks of a value that a type cannot express (a
positive size, a padding below 0.5, ``cache.enabled``) stay in
``facekit.app.tasks.settings.check_settings``, ``runner.workers`` among them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from facekit.ledger.verify import Verify

#: The name config.yaml's defaults list starts with.
SCHEMA_NAME = "facekit_schema"


class Task(StrEnum):
    """``task=``: the keys of ``facekit.app.tasks.TASKS`` (a test keeps the two equal)."""

    extract = "extract"
    plugins = "plugins"
    curate = "curate"


class RunnerMode(StrEnum):
    """``runner.mode=``: the modes ``facekit.engine.gpu.plan_passes_for_gpu`` takes (a test
    keeps them equal to its ``MODES``). A StrEnum, so the value compares and prints as the word."""

    auto = "auto"
    serial = "serial"
    parallel = "parallel"


@dataclass
class OutputSchema:
    dir: str = MISSING
    size: int = MISSING
    padding: Optional[float] = MISSING
    debug: bool = MISSING
    save_every: int = MISSING
    embeddings: bool = MISSING


@dataclass
class DefaultPluginsSchema:
    detector: str = MISSING
    aligner: str = MISSING
    identity: str = MISSING


@dataclass
class FilterSchema:
    refs: List[str] = MISSING
    nrefs: List[str] = MISSING
    threshold: Optional[float] = MISSING
    save_rejected: bool = MISSING


@dataclass
class QualitySchema:
    min_face_px: Optional[float] = MISSING
    max_yaw: Optional[float] = MISSING
    max_pitch: Optional[float] = MISSING
    max_roll: Optional[float] = MISSING
    min_sharpness: Optional[float] = MISSING
    max_misalignment: Optional[float] = MISSING
    max_faces: Optional[int] = MISSING


@dataclass
class CacheSchema:
    #: ``auto``, true or false: no OmegaConf type holds a word and a boolean (an Enum refuses
    #: the boolean that ``cache.enabled=true`` parses to), so check_settings checks the value.
    enabled: Any = MISSING


@dataclass
class ModelsSchema:
    offline: bool = MISSING
    cache_dir: Optional[str] = MISSING


@dataclass
class RunnerSchema:
    mode: RunnerMode = MISSING
    queue_size: int = MISSING
    queue_mb: int = MISSING
    gpu_margin_mb: int = MISSING
    progress: bool = MISSING
    #: ``auto`` or a whole number: OmegaConf 2.3 has no Union, so check_settings checks it.
    workers: Any = MISSING
    # runner=ray's keys (conf/runner/ray.yaml); None under runner=default, which has none of them
    engine: Optional[str] = None
    address: Optional[str] = None
    cpus_per_task: Optional[float] = None
    gpu_memory_mb: Optional[int] = None
    actors: Optional[int] = None
    shard_frames: Optional[int] = None
    files_per_shard: Optional[int] = None
    verbose: Optional[bool] = None


@dataclass
class ResumeSchema:
    verify: Verify = MISSING


@dataclass
class SampleSchema:
    every_n: int = MISSING
    fps: Optional[float] = MISSING
    #: seconds (12.5) or ``HH:MM:SS[.mmm]``: a string here (OmegaConf turns 12.5 into "12.5"),
    #: read by check_settings (facekit.media.sampling.parse_time)
    start: Optional[str] = MISSING
    end: Optional[str] = MISSING


@dataclass
class CollectionSchema:
    recursive: bool = MISSING
    include: List[str] = MISSING
    exclude: List[str] = MISSING


class CurateSort(StrEnum):
    """``curate.sort=``: the keys of ``facekit.curate.ordering.SORTS``."""

    yaw = "yaw"
    pitch = "pitch"
    sharpness = "sharpness"
    face_px = "face_px"
    identity = "identity"


@dataclass
class CurateSchema:
    cluster: bool = MISSING
    dedupe: Optional[float] = MISSING
    dedupe_pose: float = MISSING
    best: Optional[int] = MISSING
    sort: Optional[CurateSort] = MISSING
    copy: bool = MISSING
    min_cluster_size: Optional[int] = MISSING
    join: Optional[float] = MISSING


@dataclass
class FacekitSchema:
    task: Task = MISSING
    input: Optional[str] = MISSING
    output: OutputSchema = field(default_factory=OutputSchema)
    default_plugins: DefaultPluginsSchema = field(default_factory=DefaultPluginsSchema)
    filter: FilterSchema = field(default_factory=FilterSchema)
    quality: QualitySchema = field(default_factory=QualitySchema)
    cache: CacheSchema = field(default_factory=CacheSchema)
    models: ModelsSchema = field(default_factory=ModelsSchema)
    runner: RunnerSchema = field(default_factory=RunnerSchema)
    sample: SampleSchema = field(default_factory=SampleSchema)
    resume: ResumeSchema = field(default_factory=ResumeSchema)
    collection: CollectionSchema = field(default_factory=CollectionSchema)
    curate: CurateSchema = field(default_factory=CurateSchema)
    # Added with +detector=NAME etc.: each plugin's own node (its YAML in conf/, or its config
    # dataclass through cli.register_plugin_configs); None when the run names none.
    detector: Optional[Any] = None
    aligner: Optional[Any] = None
    identity: Optional[Any] = None


def register_schema() -> None:
    """Puts the schema in Hydra's ConfigStore, where config.yaml's defaults list finds it."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=FacekitSchema)
