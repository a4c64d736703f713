"""The model stages of a re-crop: each frame's faces come from an earlier run's alignments file
instead of the detector and aligner, and are normalised again at this run's size, padding and
centering (``FaceStages.restore``); judging, cropping and writing are the extraction's own
(``Finisher``), so a re-crop at an extraction's settings writes that extraction's files.

An object of plain data, pickled to worker processes and Ray workers like ``FaceStages``: each
worker reads the alignments files it needs itself, once, from the paths it was given.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facekit.errors import FacekitError
from facekit.faces.stages import FaceStages, Step
from facekit.media.file_times import changed_after
from facekit.output.alignments import face_from_dict, last_written_ns, load_alignments
from facekit.plugin.loading import LoadedPlugin
from facekit.records import Face, Frame, FrameRecord, OneByOne

#: Frames a Ray worker hands to the restore step at once (no model batches them).
BATCH = 16
#: Sources whose alignments a worker keeps read: a Ray worker takes shard after shard of a
#: collection, mostly of one source at a time, and must not hold every source's file at once.
KEPT_SOURCES = 4


@dataclass(frozen=True)
class StoredSource:
    """One source of the earlier run: where its frames are read now (``path``, after
    ``recrop.sources``) and its alignments file."""

    path: str
    alignments: str
    #: its photos are where they were extracted, so one changed since (its change time later than
    #: the extraction's last write) is another photo; a copy elsewhere (recrop.sources) is newer anyway
    same_place: bool = True


class RestoredStages(FaceStages):
    """``FaceStages`` whose one model stage restores the stored faces of each frame."""

    def __init__(self, sources: list[StoredSource], size: int = 256, padding: float | None = None,
                 centering: str = "legacy") -> None:
        super().__init__(None, None, None, size=size, padding=padding, centering=centering)  # type: ignore[arg-type]
        self.sources = {source.path: source for source in sources}
        self._frames: dict[str, dict[str, Any]] = {}  # by source path, then frame name (read on first use)
        self._written_ns: dict[str, int | None] = {}  # by source path: when its extraction last wrote

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_frames": {}, "_written_ns": {}}  # each worker reads the files it needs

    @property
    def batch_size(self) -> int:
        return BATCH

    def steps(self) -> list[Step]:
        return [Step("restore", _NO_PLUGIN, OneByOne(self.restore_stored))]

    def plugins(self) -> list[LoadedPlugin]:
        return []

    def stored_frames(self, source: str) -> dict[str, Any]:
        """Frame name -> its entry in the alignments file of ``source`` (a path as this run reads it)."""
        if source not in self._frames:
            if len(self._frames) >= KEPT_SOURCES:
                del self._frames[next(iter(self._frames))]
            self._frames[source] = load_alignments(self.sources[source].alignments)["frames"]
        return self._frames[source]

    def hold(self, source: str, frames: dict[str, Any]) -> None:
        """The frames of ``source``'s alignments file, already read by the caller."""
        self._frames[source] = frames

    def wants(self, frame: Frame) -> bool:
        """Only the frames the earlier run finished: a frame it never reached has no faces to restore."""
        return frame.name in self.stored_frames(self._source_of(frame))

    def restore_stored(self, record: FrameRecord) -> None:
        """The frame's stored faces, once its pixels are seen to be the size extraction read:
        another file under a moved source's name would get crops of the wrong places."""
        source = self._source_of(record.frame)
        entry = self.stored_frames(source)[record.frame.name]
        height, width = record.frame.image.shape[:2]
        if (width, height) != (entry["width"], entry["height"]):
            raise FacekitError(f"frame {record.frame.name} of {record.frame.source} is {width}x{height} here but was "
                               f"{entry['width']}x{entry['height']} when extracted: not the source extraction read")
        if self._replaced_since(source, record.frame):
            raise FacekitError(f"photo {record.frame.path} changed after its extraction last wrote "
                               f"{self.sources[source].alignments}: not the photo extracted; run the extraction "
                               "again (it does that photo again), then the re-crop")
        self.restore(record, [_restored(face) for face in entry["faces"]])

    def _replaced_since(self, source: str, frame: Frame) -> bool:
        """Whether ``frame``'s photo, where it was extracted, changed after the extraction of
        ``source`` last wrote (a photo of the same size replaced in place got crops cut at the old
        photo's points). A video's frames have no file of their own (its signature is checked)."""
        if frame.path is None or not self.sources[source].same_place:
            return False
        if source not in self._written_ns:
            self._written_ns[source] = last_written_ns(Path(self.sources[source].alignments).parent)
        return changed_after(frame.path, self._written_ns[source])

    def _source_of(self, frame: Frame) -> str:
        """The source a frame belongs to: the video or image itself, or a folder's image's folder."""
        return frame.source if frame.source in self.sources else str(Path(frame.source).parent)


def _restored(entry: dict[str, Any]) -> Face:
    """A stored face as the model stages left it: what a crop writes is written anew."""
    face = face_from_dict(entry)
    face.crop_file = face.crop_sha256 = face.crop_bytes = None
    face.matrix = face.centering = None
    return face


_NO_PLUGIN: Any = None  # a restore step runs no plugin
