"""The faces a run's filters rejected, counted by reason once for every executor."""
from __future__ import annotations

from collections import Counter

from facekit.faces.quality import reason_kind
from facekit.records import FrameRecord


class RejectCounts(Counter[str]):
    """Rejected faces by the kind of reason: ``identity`` or the quality measure that failed."""

    def count(self, record: FrameRecord) -> None:
        self.update(reason_kind(face.reason) for face in record.faces if not face.keep)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted((kind, count) for kind, count in self.items() if count))
