"""The per-frame work, and the one place that states its order: detect -> align (and normalise)
-> embed, then judge -> crop. Every path takes its steps from here: CLI passes on threads or in
worker processes, the analysis cache's replay, reference photos and ``Extractor``."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from facekit.errors import StageError
from facekit.imaging import geometry
from facekit.plugin.loading import LoadedPlugin
from facekit.plugin.spec import PluginSpec
from facekit.records import EMBEDDING_DECIMALS, PIXEL_DECIMALS, Face, FrameRecord


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
