"""The per-frame work, and the one place that states its order: detect -> align (normalise and
measure) -> embed, then judge (identity, then quality) -> crop. Every path takes its steps from
here: CLI passes on threads or in worker processes, the analysis cache's replay, reference photos
and ``Extractor``."""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from facekit.errors import ConfigError, ModelError, StageError
from facekit.faces.answers import (checked_detections, checked_embeddings, checked_landmarks, checked_outline,
                                  checked_points)
from facekit.faces.quality import measure, measured_pose
from facekit.imaging import geometry
from facekit.imaging.centering import DEFAULT_CENTERING, centering_matrix, check_centering
from facekit.plugin.loading import LoadedPlugin, ensure_all_weights
from facekit.plugin.spec import PluginSpec, PoseAligner
from facekit.records import EMBEDDING_DECIMALS, PIXEL_DECIMALS, Face, Frame, FrameRecord, OneByOne

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter
    from facekit.faces.masks import MaskMaker
    from facekit.faces.quality import QualityFilter

decisions = logging.getLogger("facekit.decisions")  # goes to facekit.log only (conf/hydra/job_logging)
log = logging.getLogger("facekit")


@dataclass(frozen=True)
class Step:
    """One model stage: its name, its plugin, and its work on a batch of records."""

    name: str
    plugin: LoadedPlugin
    work: Callable[[list[FrameRecord]], None]
    batch_size: int = 1


def judge(record: FrameRecord, face_filter: IdentityFilter) -> None:
    """The identity filter's decision on each face, with its reason and distance."""
    for index, face in enumerate(record.faces):
        decision = face_filter.decide(face.embedding)
        face.keep, face.reason, face.distance = decision.keep, decision.reason, decision.distance
        if not decision.keep:
            decisions.info("rejected %s face %d: %s", record.frame.name, index, decision.reason)


class FaceStages:
    """Detect, align, normalise and embed, each a method the runner can put on its own thread;
    ``steps`` states their order."""

    def __init__(self, detector: LoadedPlugin, aligner: LoadedPlugin, identity: LoadedPlugin | None = None,
                 size: int = 256, padding: float | None = None, centering: str = DEFAULT_CENTERING,
                 masks: MaskMaker | None = None) -> None:
        self.detector = detector
        self.aligner = aligner
        self.identity = identity
        self.size = size
        self.padding = geometry.DEFAULT_PADDING if padding is None else padding
        self.centering = check_centering(centering)
        self.masks = masks  # output.masks: drawn in ``finish``, on the faces that get a file
        self.model_s: dict[str, float] = {}  # seconds inside each plugin's own calls: the bound
        self._dimensions: int | None = None  # the identity plugin's embeddings' length, from its first answer

    def steps(self) -> list[Step]:
        """The model stages in the order every frame goes through them: detect, align (which
        normalises), and embed when an identity plugin is set. Passes, worker processes,
        reference photos and ``Extractor`` all run these, in this order."""
        steps = [Step("detect", self.detector, self.detect, self.detector.batch_size),
                 Step("align", self.aligner, OneByOne(self.align))]
        if self.identity is not None:
            steps.append(Step("embed", self.identity, OneByOne(self.embed)))
        return steps

    def plugins(self) -> list[LoadedPlugin]:
        """Every plugin of the run, the maskers last: each one's weights and GPU memory count."""
        return [step.plugin for step in self.steps()] + (self.masks.plugins if self.masks else [])

    @property
    def batch_size(self) -> int:
        """Frames the first step takes at once (a cluster worker's batch)."""
        return self.detector.batch_size

    def wants(self, frame: Frame) -> bool:
        """Whether ``frame`` is run at all: every frame, but a re-crop's stages (``restored``)
        take only the frames their alignments hold."""
        return True

    def analyse(self, records: list[FrameRecord], narrow: Callable[[FrameRecord], None] | None = None) -> None:
        """Every model stage on ``records`` in order, on this thread. ``narrow``, after
        detection, keeps only the faces worth the later stages (a reference photo: its largest)."""
        for step in self.steps():
            step.work(records)
            if step.name == "detect" and narrow is not None:
                for record in records:
                    narrow(record)

    def restore(self, record: FrameRecord, faces: list[Face]) -> None:
        """What the model stages found, from a store (the analysis cache) instead of the models:
        the faces keep their landmarks and embeddings and are normalised at this run's size."""
        record.height, record.width = record.frame.image.shape[:2]
        record.faces = faces
        self.normalise(record)

    def finish(self, record: FrameRecord, face_filter: IdentityFilter | None = None,
               wanted: Callable[[Face], bool] | None = None, quality: QualityFilter | None = None) -> None:
        """After the model stages: judge each face (the identity filter, then the quality
        filter, when set), then crop the faces that ``wanted`` picks (all by default). Judging
        first spares the crops of rejected faces nobody will see; the measures the quality
        filter reads need no crop (``normalise`` made them). The faces cropped get their masks."""
        if face_filter is not None:
            judge(record, face_filter)
        if quality is not None:
            quality.judge(record)
        cropped = [face for face in record.faces if wanted is None or wanted(face)]
        self.crop(record, cropped)
        if self.masks is not None:
            for plugin in self.masks.plugins:
                with self._calling(plugin, [record]):
                    self.masks.make_for_record(record, cropped, self.size, only=plugin)

    def load_models(self) -> None:
        """Build every model now, so a missing weights file fails before the first frame (every
        missing one named at once)."""
        self.ensure_weights()
        for plugin in self.plugins():
            plugin.model  # noqa: B018 - cached_property builds it

    def ensure_weights(self) -> None:
        """Every plugin's weights present, for runs whose models are built elsewhere (workers);
        one error names every model that is missing."""
        ensure_all_weights(self.plugins())

    def detect(self, records: Sequence[FrameRecord]) -> None:
        """Adds a Face per detection to each record (a batch, for detectors that batch)."""
        images = [r.frame.image for r in records]
        with self._calling(self.detector, records):
            found = self.detector.model.detect(images)
        for record, detections in zip(records, checked_detections(found, records, self.detector.label)):
            record.height, record.width = record.frame.image.shape[:2]
            record.faces = [Face(detection=d) for d in detections]

    def align(self, record: FrameRecord) -> None:
        """Adds 68 landmarks to each face, then normalises it. An aligner with points of its own
        for head pose (a ``PoseAligner``) has the pose read from those."""
        if record.faces:
            model, detections = self.aligner.model, [f.detection for f in record.faces]
            outlined = self.masks is not None and self.masks.needs_outline and hasattr(model, "align_outlined")
            with self._calling(self.aligner, [record]):
                if isinstance(model, PoseAligner):  # (points, pose points[, outline])
                    found = [(*f, None)[:3] for f in (model.align_for_pose(record.frame.image, detections, outline=True)
                                                      if outlined else model.align_for_pose(record.frame.image, detections))]
                elif outlined:
                    found = [(points, None, edge) for points, edge in model.align_outlined(record.frame.image, detections)]
                else:
                    found = [(points, None, None) for points in model.align(record.frame.image, detections)]
            name, label = record.frame.name, self.aligner.label
            for face, (landmarks, for_pose, outline) in zip(record.faces, checked_points(found, len(detections), name, label)):
                face.landmarks = _as_stored(checked_landmarks(landmarks, name, label), PIXEL_DECIMALS)
                if for_pose is not None:
                    face.pose = measured_pose(_as_stored(checked_landmarks(for_pose, name, label, "pose points"),
                                                         PIXEL_DECIMALS))
                face.outline = None if outline is None else _as_stored(checked_outline(outline, name, label),
                                                                        PIXEL_DECIMALS)
            self._leave_out_unfitted(record)
        self.normalise(record)

    def _leave_out_unfitted(self, record: FrameRecord) -> None:
        """Faces whose points span no face (``geometry.spans_a_face``) are left out with a warning
        naming the frame and the aligner: one such answer must not end a long run."""
        unfitted = [number for number, face in enumerate(record.faces) if not geometry.spans_a_face(face.landmarks)]
        if unfitted:
            log.warning("%s: aligner %s gave face(s) %s points that span no face (all in one place, on one "
                        "line, or not numbers); left out", record.frame.name, self.aligner.spec.name,
                        ", ".join(str(n) for n in unfitted))
            record.faces = [face for number, face in enumerate(record.faces) if number not in unfitted]

    def normalise(self, record: FrameRecord) -> None:
        """Adds the alignment matrix (Umeyama to the mean face, at the run's centering; ``crop``
        applies it) and the measures the quality filter reads (pose, face_px, misalignment,
        sharpness), once: a face restored from the cache keeps its stored ones. Sharpness has its
        own small crop, so faces that get no file need no full-size one."""
        for face in record.faces:
            face.matrix = centering_matrix(face.landmarks, self.size, self.padding, self.centering)
            face.centering = self.centering
            measure(face, record.frame.image)

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
        label = self.identity.label
        vectors = checked_embeddings(vectors, len(record.faces), record.frame.name, label, self._dimensions)
        self._dimensions = vectors.shape[1]
        for face, vector in zip(record.faces, vectors):
            face.embedding = _as_stored(vector, EMBEDDING_DECIMALS)
            face.embedded_by = self.identity.spec.name
        finite = np.array([np.isfinite(face.embedding).all() for face in record.faces])  # as stored: float32
        if not finite.all():
            log.warning("%s: %s gave face(s) %s embeddings that are not numbers; left out", record.frame.name, label,
                        ", ".join(str(n) for n in np.flatnonzero(~finite)))
            record.faces = [face for face, kept in zip(record.faces, finite) if kept]


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
    with np.errstate(over="ignore"):  # beyond float32 is inf, which the callers leave out with their own warning
        return np.round(np.asarray(values, dtype=np.float64), decimals).astype(np.float32)


@contextmanager
def _stage_errors(spec: PluginSpec, records: Sequence[FrameRecord]) -> Iterator[None]:
    """Turns a plugin's exception into a StageError naming the plugin and the frame."""
    try:
        yield
    except (StageError, ModelError, ConfigError):  # a model that cannot be built, or an option its plugin
        raise  # refuses when it builds it, is no frame's (nor reference photo's) fault: its own message
    except (Exception, SystemExit) as exc:  # whatever a plugin raises, the user needs plugin and frame
        frames = ", ".join(r.frame.name for r in records)
        plugin, cause = f"{spec.kind} {spec.name!r}", f"{type(exc).__name__}: {exc}"
        raise StageError(f"{plugin} failed on frame {frames}: {cause}", plugin, cause) from exc
