"""The per-frame work: detect, align, normalise. Shared by the CLI runner and ``Extractor``."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from facekit import geometry
from facekit.errors import StageError
from facekit.models.store import ModelStore
from facekit.plugin import PluginKind, PluginSpec
from facekit.registry import PluginRegistry, default_registry
from facekit.types import Face, Frame, FrameRecord


@dataclass
class LoadedPlugin:
    """A plugin's declaration next to the model built from it."""

    spec: PluginSpec
    config: Any
    model: Any


def load_plugin(registry: PluginRegistry, store: ModelStore, kind: PluginKind, name: str,
                options: Mapping[str, Any] | None = None) -> LoadedPlugin:
    """Build a plugin from its name and config values; runs in whichever process needs it."""
    spec = registry.get(kind, name)
    config = registry.build_config(spec, options)
    return LoadedPlugin(spec, config, spec.factory(config, store))


class FaceStages:
    """Detect, align and normalise, each as a method the runner can put on its own thread."""

    def __init__(self, detector: LoadedPlugin, aligner: LoadedPlugin, size: int = 256,
                 padding: float | None = None) -> None:
        self.detector = detector
        self.aligner = aligner
        self.size = size
        self.padding = geometry.DEFAULT_PADDING if padding is None else padding

    def detect(self, records: Sequence[FrameRecord]) -> None:
        """Adds a Face per detection to each record (a batch, for detectors that batch)."""
        images = [r.frame.image for r in records]
        with _stage_errors(self.detector.spec, records):
            found = self.detector.model.detect(images)
        for record, detections in zip(records, found):
            record.height, record.width = record.frame.image.shape[:2]
            record.faces = [Face(detection=d) for d in detections]

    def align(self, record: FrameRecord) -> None:
        """Adds 68 landmarks, the alignment matrix and the aligned crop to each face."""
        if not record.faces:
            return
        with _stage_errors(self.aligner.spec, [record]):
            points = self.aligner.model.align(record.frame.image, [f.detection for f in record.faces])
        for face, landmarks in zip(record.faces, points):
            face.landmarks = np.asarray(landmarks, dtype=np.float32).reshape(68, 2)
            face.matrix = geometry.alignment_matrix(face.landmarks, self.size, padding=self.padding)
            face.crop = geometry.warp_face(record.frame.image, face.matrix, self.size)


@contextmanager
def _stage_errors(spec: PluginSpec, records: Sequence[FrameRecord]) -> Iterator[None]:
    """Turns a plugin's exception into a StageError naming the plugin and the frame."""
    try:
        yield
    except StageError:
        raise
    except Exception as exc:  # whatever a plugin raises, the user needs plugin and frame
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

    def extract(self, image: np.ndarray) -> list[Face]:
        """Every face in one BGR image, with box, score, 68 landmarks and aligned crop."""
        return next(self.extract_many([image]))

    def extract_many(self, images: Iterable[np.ndarray]) -> Iterator[list[Face]]:
        """Faces frame by frame, lazily, so a long video never sits in memory."""
        for index, image in enumerate(images):
            if image is None or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError("Extractor takes BGR uint8 images of shape (height, width, 3)")
            record = FrameRecord(Frame(name=f"frame_{index:06d}", source="<array>", index=index, image=image))
            self.stages.detect([record])
            self.stages.align(record)
            yield record.faces
