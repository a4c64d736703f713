"""The typed schema of facekit's top-level config, registered in Hydra's ConfigStore, and the one
place each key is described.

Every value is ``MISSING`` here and comes from the YAML files in conf/ (config.yaml,
runner/*.yaml), which hold the defaults only. Each key's description is its field's metadata
(``key("...")``): ``facekit --help`` prints it beside the key's default, and a test fails when a
key has none. Hydra itself refuses ``output.size=abc`` or ``runner.mode=fast`` with the key in
its message, which the CLI prints as one line. Checks of a value that a type cannot express (a
positive size, a padding below 0.5, ``cache.enabled``) stay in
``facekit.app.tasks.settings.check_settings``, ``runner.workers`` among them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any, Iterator, List, Optional, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from facekit.imaging.geometry import DEFAULT_PADDING
from facekit.ledger.verify import Verify

#: The name config.yaml's defaults list starts with.
SCHEMA_NAME = "facekit_schema"
#: Where a field's description lives in its metadata.
ABOUT = "about"


def key(about: str, default: Any = MISSING) -> Any:
    """A config key with its one-line description (``facekit --help`` prints it)."""
    return field(default=default, metadata={ABOUT: about})


def node(schema: type, about: str) -> Any:
    """A group of keys (a nested dataclass) with its one-line description."""
    return field(default_factory=schema, metadata={ABOUT: about})

class Task(StrEnum):
    """``task=``: the keys of ``facekit.app.tasks.TASKS`` (a test keeps the two equal)."""

    extract = "extract"
    plugins = "plugins"
    curate = "curate"
    mask = "mask"
    recrop = "recrop"


class CropCentering(StrEnum):
    """``output.centering=``: ``facekit.imaging.centering.CENTERINGS`` (a test keeps them equal)."""

    legacy = "legacy"
    face = "face"
    head = "head"


class MaskFormat(StrEnum):
    """``output.mask_format=``: ``facekit.faces.masks.MASK_FORMATS`` (a test keeps them equal)."""

    none = "none"
    alpha = "alpha"
    file = "file"


class RunnerMode(StrEnum):
    """``runner.mode=``: the modes ``facekit.engine.gpu.plan_passes_for_gpu`` takes (a test
    keeps them equal to its ``MODES``). A StrEnum, so the value compares and prints as the word."""

    auto = "auto"
    serial = "serial"
    parallel = "parallel"


@dataclass
class OutputSchema:
    dir: str = key("the output folder: faces, alignments.json, facekit.log")
    size: int = key("side of each aligned face crop, pixels")
    padding: Optional[float] = key(f"crop margin per side, a fraction of the crop in [0, 0.5) "
                                   f"(null: {DEFAULT_PADDING})")
    centering: CropCentering = key("legacy (today's crop, brows to chin) | face (the whole face, centred on it) | "
                                   "head (the whole head, for head swaps)")
    debug: bool = key("also write each frame with boxes and landmarks drawn, to DIR/debug/")
    save_every: int = key("frames between fsyncs of the alignments journal")
    embeddings: bool = key("store each face's identity embedding in alignments.json, for task=curate "
                           "(runs the identity plugin without a filter)")
    masks: List[str] = key("masker plugins whose mask each face gets: 'output.masks=[components,extended]'")
    mask_size: int = key("side of each stored mask, pixels (faceswap's 128)")
    mask_format: MaskFormat = key("none (masks in alignments.json and each face PNG's text) | alpha (RGBA face "
                                  "files, the first mask) | file (DIR/masks/<mask>/<face file>)")


def _mask_schema() -> type:
    """``mask.import``: a Python keyword, so the dataclass is made with no generated methods
    (they would name the field in code); OmegaConf reads its fields all the same."""
    namespace = {"__annotations__": {"import": Optional[str]},
                 "__doc__": "task=mask's own keys (its masks are output.masks, as in extraction).",
                 "import": key("task=mask: a folder of edited masks, masks/<mask>/<face file> as mask_format=file "
                               "writes them, read back into the output")}
    return dataclass(type("MaskSchema", (), namespace), init=False, repr=False, eq=False)


MaskSchema = _mask_schema()


@dataclass
class DefaultPluginsSchema:
    detector: str = key("the detector when no +detector= is named")
    aligner: str = key("the aligner when no +aligner= is named")
    identity: str = key("the identity model when a filter or embeddings need one and no +identity= is named")


@dataclass
class FilterSchema:
    refs: List[str] = key("photos of people to keep: 'filter.refs=[a.jpg,b.jpg]'")
    nrefs: List[str] = key("photos of people to drop")
    threshold: Optional[float] = key("largest distance that counts as the same person (null: the identity "
                                     "plugin's default)")
    save_rejected: bool = key("also write rejected faces to DIR/rejected/ (quality's rejects too)")


@dataclass
class QualitySchema:
    min_face_px: Optional[float] = key("smallest face, source pixels (side of the fitted mean-face square)")
    max_yaw: Optional[float] = key("largest |yaw|, degrees (turned sideways)")
    max_pitch: Optional[float] = key("largest |pitch|, degrees (looking up or down)")
    max_roll: Optional[float] = key("largest |roll|, degrees (head tilted)")
    min_sharpness: Optional[float] = key("least variance of the Laplacian of a 128 px grey crop (blur scores low)")
    max_misalignment: Optional[float] = key("largest mean distance of the points from the mean face "
                                            "(~0.02-0.03 typical)")
    max_faces: Optional[int] = key("keep only the N largest faces of each frame")


@dataclass
class CacheSchema:
    #: ``auto``, true or false: no OmegaConf type holds a word and a boolean (an Enum refuses
    #: the boolean that ``cache.enabled=true`` parses to), so check_settings checks the value.
    enabled: Any = key("auto: in sweeps (-m), so each input is analysed once; true | false")


@dataclass
class ModelsSchema:
    offline: bool = key("never touch the network (also: FACEKIT_OFFLINE=1)")
    cache_dir: Optional[str] = key("where weights are kept (null: FACEKIT_HOME, else ~/.cache/facekit)")


@dataclass
class RunnerSchema:
    mode: RunnerMode = key("auto | serial | parallel: whether detect and align run at once (auto: from GPU memory)")
    queue_size: int = key("frames in flight between two stages: bounds memory on long videos")
    queue_mb: int = key("and at most this many MB of decoded frames in flight (one frame always may go)")
    gpu_margin_mb: int = key("free GPU memory kept beyond what the plugins report, for mode=auto")
    progress: bool = key("show a progress bar for each pass")
    #: ``auto`` or a whole number: OmegaConf 2.3 has no Union, so check_settings checks it.
    workers: Any = key("processes for a parallel CPU run (auto: one a core on long inputs; 0: threads)")
    executor: Optional[str] = key("what runs the sources: null, this machine; ray, a Ray cluster (set by runner=ray)")


@dataclass
class RayRunnerSchema(RunnerSchema):
    """runner=ray's node: the runner's keys and Ray's own (conf/runner/ray.yaml holds their
    defaults), typed and described here; under runner=default the node has none of them."""

    address: Optional[str] = key("which Ray: null, a private one on 127.0.0.1 for the run; auto, the cluster "
                                 "this machine joined; or HOST:PORT")
    cpus_per_task: float = key("CPUs each shard worker asks Ray for")
    gpu_memory_mb: Optional[int] = key("memory of one GPU on the nodes, MB (null: this machine's first GPU)")
    actors: Optional[int] = key("shard workers (null: as many as the cluster holds, at most one a shard)")
    shard_frames: int = key("frames of a video per shard: the unit a node takes and a rerun keeps")
    files_per_shard: int = key("images of a folder per shard")
    verbose: bool = key("also show Ray's start-up lines and the workers' output")


#: A group's options whose schema adds keys to the group's node: (group, option) -> its schema,
#: stored in the ConfigStore as ``<group>/base_<option>`` for that option's YAML to extend.
OPTION_SCHEMAS: dict[tuple[str, str], type] = {("runner", "ray"): RayRunnerSchema}


def _added_by(option_schema: type) -> list[Any]:
    """The fields an option's schema adds to the group schema it extends (its base class)."""
    own = {item.name for item in fields(option_schema.__mro__[1])}
    return [item for item in fields(option_schema) if item.name not in own]


#: The keys only a group's option has, dotted, and that option: ``runner.address -> runner=ray``.
OPTION_KEYS = {f"{group}.{item.name}": f"{group}={option}"
               for (group, option), schema in OPTION_SCHEMAS.items() for item in _added_by(schema)}
#: The keys that only runner=ray has.
RAY_KEYS = tuple(item.name for item in _added_by(RayRunnerSchema))


@dataclass
class ResumeSchema:
    verify: Verify = key("what a rerun checks of each face file it keeps: size (its recorded size; no file is "
                         "read) | full (also its sha256)")


@dataclass
class SampleSchema:
    every_n: int = key("frames 1, N+1, 2N+1, ... of a video (1: every frame)")
    fps: Optional[float] = key("or: the frames nearest a steady F a second, by the stream's timestamps "
                               "(not with every_n)")
    #: seconds (12.5) or ``HH:MM:SS[.mmm]``: a string here (OmegaConf turns 12.5 into "12.5"),
    #: read by check_settings (facekit.media.sampling.parse_time)
    start: Optional[str] = key("seconds (12.5) or HH:MM:SS[.mmm]: read from here (null: the beginning)")
    end: Optional[str] = key("... up to here, not included (null: the end)")


@dataclass
class CollectionSchema:
    recursive: bool = key("false: only DIR itself (its images are one source, each video another)")
    include: List[str] = key("globs relative to DIR: read only these sources ('collection.include=[**/*.mp4]')")
    exclude: List[str] = key("globs relative to DIR: leave these out ('collection.exclude=[**/trailers/**]')")


class CurateSort(StrEnum):
    """``curate.sort=``: the keys of ``facekit.curate.ordering.SORTS``."""

    yaw = "yaw"
    pitch = "pitch"
    sharpness = "sharpness"
    face_px = "face_px"
    identity = "identity"


@dataclass
class CurateSchema:
    cluster: bool = key("group faces by identity: cluster_NNN/ folders, contact sheets, clusters.csv")
    dedupe: Optional[float] = key("a cosine distance (e.g. 0.1): drop near-duplicates of one identity, "
                                  "keep the sharpest")
    dedupe_pose: float = key("degrees: duplicates also differ by at most this in yaw, pitch and roll")
    best: Optional[int] = key("keep N faces per identity cluster, spread over yaw, sharpest first")
    sort: Optional[CurateSort] = key("yaw | pitch | sharpness | face_px | identity: also a sorted_KEY/ folder")
    copy: bool = key("copy the face files into the result instead of symlinking them")
    min_cluster_size: Optional[int] = key("null: 2 (a face that matches no other stays unclustered)")
    join: Optional[float] = key("join clusters whose mean faces are this close, a cosine distance (null: 0.55 "
                                "of the identity plugin's match distance, 0.35 with sface; 0: never)")


@dataclass
class RecropSchema:
    sources: Optional[str] = key("a folder where sources that moved since extraction now are, under the "
                                 "names they had in the collection (null: where extraction read them)")


#: The keys each task but extraction and re-crop reads (a key, or every key of a group), which
#: ``facekit task=NAME --help`` lists alone; extraction and re-crop read nearly all of them.
TASK_KEYS: dict[str, tuple[str, ...]] = {
    Task.plugins: ("task",),
    Task.curate: ("task", "input", "output.dir", "default_plugins.identity", "identity", "models", "curate"),
    Task.mask: ("task", "input", "output.masks", "output.mask_size", "output.mask_format", "masker", "models", "mask"),
}

#: Tasks that read an extraction and write a new folder, which ``output=`` must name: its default
#: (``faces/``) is where an extraction writes. The CLI refuses them without it, and
#: ``task=NAME --help`` shows ``output.dir`` as required (``TASK_REQUIRED``).
RESULT_FOLDER: dict[str, str] = {
    Task.curate: "a new folder for the curated faces",
    Task.recrop: "a new folder for the new crops",
}
#: Keys a task needs the user to give, whose default it never takes.
TASK_REQUIRED: dict[str, dict[str, str]] = {
    task: {"output.dir": f"required: {what} (output=<result folder>)"} for task, what in RESULT_FOLDER.items()}


@dataclass
class FacekitSchema:
    task: Task = key("extract | plugins (list them) | curate (sort an extraction's faces) | mask (add masks to "
                     "an extraction) | recrop (new crops from an extraction's landmarks)")
    input: Optional[str] = key("an image, a folder of images, a video, a tree of them, or @list.txt")
    output: OutputSchema = node(OutputSchema, "where and how faces are written (output=DIR: output.dir=DIR)")
    default_plugins: DefaultPluginsSchema = node(DefaultPluginsSchema, "the plugins a run uses when it names none")
    filter: FilterSchema = node(FilterSchema, "keep only the chosen people (needs refs or nrefs)")
    quality: QualitySchema = node(QualitySchema, "reject faces by their measures (null: off)")
    cache: CacheSchema = node(CacheSchema, "detections, landmarks and embeddings kept per input")
    models: ModelsSchema = node(ModelsSchema, "where weights come from")
    runner: RunnerSchema = node(RunnerSchema, "how the passes are scheduled (runner=ray: on a Ray cluster)")
    sample: SampleSchema = node(SampleSchema, "which frames of a video are read (images ignore it)")
    resume: ResumeSchema = node(ResumeSchema, "what a rerun checks before it keeps a frame an earlier run finished")
    collection: CollectionSchema = node(CollectionSchema, "input=DIR of videos or subfolders, or @list.txt: "
                                                          "one source each")
    curate: CurateSchema = node(CurateSchema, "task=curate input=EXTRACTION output=RESULT (never changes the input)")
    mask: MaskSchema = node(MaskSchema, "task=mask input=EXTRACTION 'output.masks=[...]': add or replace masks in "
                                        "place, no detection")
    recrop: RecropSchema = node(RecropSchema, "task=recrop input=EXTRACTION output=NEW: crops at output.size, "
                                              "centering and padding from the stored landmarks, no model run")
    # Added with +detector=NAME etc.: each plugin's own node (its YAML in conf/, or its config
    # dataclass through cli.register_plugin_configs); None when the run names none.
    detector: Optional[Any] = key("added with +detector=NAME: that detector's options (detector.KEY=... "
                                  "alone: the default detector's)", None)
    aligner: Optional[Any] = key("added with +aligner=NAME: that aligner's options (aligner.KEY=... alone: "
                                 "the default aligner's)", None)
    identity: Optional[Any] = key("added with +identity=NAME: that identity model's options (identity.KEY=... "
                                  "alone: the default one's)", None)
    masker: Optional[Any] = key("added with +masker=NAME: that masker's options (NAME is also made, as if in "
                                "output.masks)", None)


#: The nodes that a plugin group fills (their keys are the chosen plugin's options).
PLUGIN_NODES = ("detector", "aligner", "identity", "masker")


@dataclass(frozen=True)
class SchemaKey:
    """One key of the schema: its dotted path, its description, and its nested schema when it
    is a group of keys."""

    path: str
    about: str
    group: type | None = None

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


def schema_keys(schema: type = FacekitSchema, prefix: str = "") -> Iterator[SchemaKey]:
    """Every key of ``schema``, groups before their keys, in declaration order."""
    hints = get_type_hints(schema)
    for item in fields(schema):
        hint = hints[item.name]
        group = hint if is_dataclass(hint) else None
        found = SchemaKey(prefix + item.name, item.metadata.get(ABOUT, ""), group)
        yield found
        if group is not None:
            yield from schema_keys(group, found.path + ".")
            yield from _option_keys(found.path)


def _option_keys(path: str) -> Iterator[SchemaKey]:
    """The keys a group's options add to it (``runner.shard_frames``, runner=ray's), after its own."""
    for (name, _), schema in OPTION_SCHEMAS.items():
        if name == path:
            for item in _added_by(schema):
                yield SchemaKey(f"{path}.{item.name}", item.metadata.get(ABOUT, ""))


def register_schema() -> None:
    """Puts the schema in Hydra's ConfigStore, where config.yaml's defaults list finds it, and
    each option schema where its YAML's defaults list does (runner/ray.yaml: ``base_ray``)."""
    store = ConfigStore.instance()
    store.store(name=SCHEMA_NAME, node=FacekitSchema)
    for (group, option), schema in OPTION_SCHEMAS.items():
        store.store(group=group, name=f"base_{option}", node=schema)
