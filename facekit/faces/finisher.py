"""The last stage of every run's chain, local or on Ray: judge, crop, encode, drop the pixels."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from facekit.errors import StageError
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.output.face_files import FaceWriter
from facekit.records import FrameRecord

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter


@dataclass
class Finisher:
    """Judge, crop and mask (``FaceStages.finish``), encode the faces that get a file (and their
    masks, as ``output.mask_format`` asks), drop the frame's pixels. A class rather than a
    closure, so that it travels to worker processes and Ray workers; the writer only encodes
    here (the ledger lands the files)."""

    stages: FaceStages
    face_filter: IdentityFilter | None
    writer: FaceWriter
    quality: QualityFilter | None = None

    def __call__(self, record: FrameRecord) -> None:
        try:
            self.stages.finish(record, self.face_filter, self.writer.writes, self.quality)
            masks = self.stages.masks
            if masks is not None:
                masks.before_encode(record.faces)
            self.writer.encode(record)
            if masks is not None:
                masks.after_encode(record, self.stages.size)
        except StageError:
            raise
        except Exception as exc:  # judging, cropping and encoding are facekit's own: name the frame all the same
            raise StageError(f"finishing frame {record.frame.name} failed: {type(exc).__name__}: {exc}") from exc
        record.frame.image = None
