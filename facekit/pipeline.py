"""The per-frame work: detect, align, normalise. Shared by the CLI runner and ``Extractor``."""
from __future__ import annotations

from contextlib import contextmanager
import dataclasses
import time
from functools import cached_property
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from facekit import geometry
from facekit.alignments import EMBEDDING_DECIMALS, PIXEL_DECIMALS
from facekit.errors import StageError
from facekit.models.store import ModelStore
from facekit.plugin import PluginKind, PluginSpec
from facekit.registry import PluginRegistry, default_registry
from facekit.types import Face, Frame, FrameRecord


class LoadedPlugin:
    """A plugin's declaration and config; the model is built on first use, so a run that finds
    everything in the analysis cache never loads a model at all."""

    def __init__(self, spec: PluginSpec, config: Any, store: ModelStore) -> None:
        self.spec, self.config, self._store = spec, config, store

    @cached_property
    def model(self) -> Any:
        return self.spec.factory(self.config, self._store)

    @property
    def batch_size(self) -> int:
        """The batch the plugin's stage receives: its config's ``batch_size`` when it has one
        (``detector.batch_size=8``), else the spec's."""
        return max(1, int(getattr(self.config, "batch_size", self.spec.batch_size)))

    @property
    def gpu_memory_mb(self) -> int:
        """GPU memory at the configured batch: the spec's figure is for its default batch."""
        if self.spec.gpu_memory_mb == 0:
            return 0
        extra = self.spec.gpu_memory_per_item_mb * (self.batch_size - self.spec.batch_size)
        return max(1, self.spec.gpu_memory_mb + extra)

    @property
    def label(self) -> str:
        """How messages name it: ``detector 'yunet'``."""
        return f"{self.spec.kind} {self.spec.name!r}"

    def __reduce__(self) -> tuple[Any, ...]:
        """In a worker process the plugin is found again by name in that process's registry and
        built from its config values: a spec's factory may be a lambda, which cannot be pickled,
        and a built model (an interpreter, a session) cannot travel at all."""
        return (_plugin_in_this_process, (self.spec.kind, self.spec.name, dataclasses.asdict(self.config), self._store))

    def ensure_weights(self) -> None:
        """Finds (or downloads) the weights without building the model."""
        for model_id in self.spec.model_ids:
            self._store.ensure(model_id)

    def fingerprint(self) -> dict[str, Any]:
        """What decides this plugin's output: name, config, and its models' versions and files."""
        models = [self._store.spec(m) for m in self.spec.model_ids if m in self._store.specs]
        return {"name": self.spec.name, "config": dataclasses.asdict(self.config),
                "models": {m.id: [m.version, *(f.sha256 for f in m.files)] for m in models}}


def load_plugin(registry: PluginRegistry, store: ModelStore, kind: PluginKind, name: str,
                options: Mapping[str, Any] | None = None) -> LoadedPlugin:
    """A plugin from its name and config values; runs in whichever process needs it."""
    spec = registry.get(kind, name)
    return LoadedPlugin(spec, registry.build_config(spec, options), store)


def _plugin_in_this_process(kind: PluginKind, name: str, options: dict[str, Any], store: ModelStore) -> LoadedPlugin:
    return load_plugin(default_registry(), store, kind, name, options)


class FaceStages:
    """Detect, align, normalise and embed, each a method the runner can put on its own thread."""

    def __init__(self, detector: LoadedPlugin, aligner: LoadedPlugin, identity: LoadedPlugin | None = None,
                 size: int = 256, padding: float | None = None) -> None:
        self.detector = detector
        self.aligner = aligner
        self.identity = identity
        self.size = size
        self.padding = geometry.DEFAULT_PADDING if padding is None else padding
        self.model_s: dict[str, float] = {}  # seconds inside each plugin's own calls: the bound

    def plugins(self) -> list[LoadedPlugin]:
        return [plugin for _, plugin in self.stage_plugins()]

    def stage_plugins(self) -> list[tuple[str, LoadedPlugin]]:
        """Each model stage by name with its plugin, in the order a frame goes through them."""
        order = [("detect", self.detector), ("align", self.aligner)]
        if self.identity is not None:
            order.append(("embed", self.identity))
        return order

    def load_models(self) -> None:
        """Build every model now, so a missing weights file fails before the first frame."""
        for plugin in self.plugins():
            plugin.model  # noqa: B018 - cached_property builds it

    def ensure_weights(self) -> None:
        """Every plugin's weights present, for runs whose models are built elsewhere (workers)."""
        for plugin in self.plugins():
            plugin.ensure_weights()

    def detect(self, records: Sequence[FrameRecord]) -> None:
        """Adds a Face per detection to each record (a batch, for detectors that batch)."""
        images = [r.frame.image for r in records]
        with self._calling(self.detector, records):
            found = self.detector.model.detect(images)
        for record, detections in zip(records, found):
            record.height, record.width = record.frame.image.shape[:2]
            record.faces = [Face(detection=d) for d in detections]

    def align(self, record: FrameRecord) -> None:
        """Adds 68 landmarks to each face, then normalises it."""
        if record.faces:
            with self._calling(self.aligner, [record]):
                points = self.aligner.model.align(record.frame.image, [f.detection for f in record.faces])
            for face, landmarks in zip(record.faces, points):
                face.landmarks = _as_stored(landmarks, PIXEL_DECIMALS).reshape(68, 2)
        self.normalise(record)

    def normalise(self, record: FrameRecord) -> None:
        """Adds the alignment matrix (Umeyama to the mean face); ``crop`` applies it."""
        for face in record.faces:
            face.matrix = geometry.alignment_matrix(face.landmarks, self.size, padding=self.padding)

    def crop(self, record: FrameRecord, faces: Sequence[Face] | None = None) -> None:
        """Adds the aligned crop to ``faces`` (all by default). Kept apart from ``normalise`` so
        a run crops only the faces it writes: the filter's rejects usually are not."""
        for face in record.faces if faces is None else faces:
            face.crop = geometry.warp_face(record.frame.image, face.matrix, self.size)

    @contextmanager
    def _calling(self, plugin: LoadedPlugin, records: Sequence[FrameRecord]) -> Iterator[None]:
        """Times a model call and names plugin and frame if it fails."""
        with _stage_errors(plugin.spec, records), _timed(self.model_s, plugin.spec.kind):
            yield

    def embed(self, record: FrameRecord) -> None:
        """Adds each face's identity vector (only when an identity plugin is set)."""
        if self.identity is None or not record.faces:
            return
        with self._calling(self.identity, [record]):
            vectors = self.identity.model.embed(record.frame.image, [f.landmarks for f in record.faces])
        for face, vector in zip(record.faces, vectors):
            face.embedding = _as_stored(vector, EMBEDDING_DECIMALS)


@contextmanager
def _timed(into: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - started


def _as_stored(values: Any, decimals: int) -> np.ndarray:
    """Rounded as the alignments file and the analysis cache store them, so a face restored from
    either gives the very same crop and distances as the run that computed it."""
    return np.round(np.asarray(values, dtype=np.float64), decimals).astype(np.float32)


@contextmanager
def _stage_errors(spec: PluginSpec, records: Sequence[FrameRecord]) -> Iterator[None]:
    """Turns a plugin's exception into a StageError naming the plugin and the frame."""
    try:
        yield
    except StageError:
        raise
    except (Exception, SystemExit) as exc:  # whatever a plugin raises, the user needs plugin and frame
        frames = ", ".join(r.frame.name for r in records)
        raise StageError(f"{spec.kind} {spec.name!r} failed on frame {frames}: "
                         f"{type(exc).__name__}: {exc}") from exc


class Extractor:
    """Faces from numpy frames, without Hydra or files: for converters that extract on the fly.

    >>> extractor = Extractor(detector="yunet", aligner="facemesh")
    >>> faces = extractor.extract(image)          # image: BGR uint8, as cv2.imread gives
    >>> faces[0].landmarks.shape, faces[0].crop.shape
    ((68, 2), (256, 256, 3))
    """

    def __init__(self, detector: str = "yunet", aligner: str = "facemesh", *, size: int = 256,
                 detector_options: Mapping[str, Any] | None = None,
                 aligner_options: Mapping[str, Any] | None = None,
                 offline: bool = False, registry: PluginRegistry | None = None) -> None:
        registry = registry or default_registry()
        store = ModelStore(registry.models, offline=offline)
        self.stages = FaceStages(
            load_plugin(registry, store, "detector", detector, detector_options),
            load_plugin(registry, store, "aligner", aligner, aligner_options),
            size=size,
        )
        self.stages.load_models()

    def extract(self, image: np.ndarray) -> list[Face]:
        """Every face in one BGR image, with box, score, 68 landmarks and aligned crop."""
        return next(self.extract_many([image]))

    def extract_many(self, images: Iterable[np.ndarray]) -> Iterator[list[Face]]:
        """Faces frame by frame, lazily, so a long video never sits in memory."""
        for index, image in enumerate(images):
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError("Extractor takes BGR uint8 images of shape (height, width, 3)")
            record = FrameRecord(Frame(name=f"frame_{index:06d}", source="<array>", index=index, image=image))
            self.stages.detect([record])
            self.stages.align(record)
            self.stages.crop(record)
            yield record.faces
