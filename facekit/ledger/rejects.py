"""The faces a run's filters rejected, counted by reason once for every executor."""
from __future__ import annotations

from collections import Counter
from typing import Any

from facekit.faces.quality import reason_kind
from facekit.records import FrameRecord


class RejectCounts(Counter[str]):
    """Rejected faces by the kind of reason: ``identity`` or the quality measure that failed."""

    def count(self, record: FrameRecord) -> None:
        self.update(reason_kind(face.reason) for face in record.faces if not face.keep)

    def count_entry(self, entry: dict[str, Any]) -> None:
        """The same count from a frame's alignments entry, as a run stored it."""
        self.update(reason_kind(face.get("reason")) for face in entry.get("faces", []) if face.get("keep") is False)

    def as_dict(self) -> dict[str, int]:
        return dict(sorted((kind, count) for kind, count in self.items() if count))
