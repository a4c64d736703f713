"""``run_summary.json``: a source's counts and timings of the last run, one schema whichever
executor wrote it (the README's Output section lists the keys). Keys an executor has no figure
for are null, never missing."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from facekit.fileio import atomic_write_bytes

SUMMARY_FILE = "run_summary.json"


@dataclass
class SourceSummary:
    frames: int = 0  # written in this run
    faces: int = 0
    resumed: int = 0  # done by an earlier run, not redone
    skipped: int = 0  # files that could not be decoded
    seconds: float = 0.0
    mode: str = ""  # serial | parallel | cached | ray
    workers: int | None = 0  # worker processes (0: threads in this process; null on Ray: see nodes)
    rejected: dict[str, int] = field(default_factory=dict)  # by reason kind (RejectCounts)
    start_s: float | None = None  # starting worker processes, before ``seconds``
    stage_s: dict[str, float] | None = None  # busy time of each stage
    sink_s: float | None = None  # writing faces and alignments
    model_s: dict[str, float] | None = None  # inside each plugin's own calls
    gpu: dict[str, Any] | None = None  # the GPU plan (local runs)
    shards: int | None = None  # Ray: the source's shards, those kept from an earlier run, those failed
    kept_shards: int | None = None
    failed_shards: list[str] | None = None
    nodes: dict[str, int] | None = None  # Ray: shards run on each node

    def as_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["seconds"] = round(self.seconds, 3)
        figures["frames_per_s"] = round(self.frames / self.seconds, 2) if self.seconds else 0.0
        return figures

    def write(self, folder: Path) -> None:
        atomic_write_bytes(folder / SUMMARY_FILE, json.dumps(self.as_dict(), indent=2).encode())


def rejects_in(folders: Iterable[Path]) -> Counter[str]:
    """The faces the filters rejected, by reason, summed over the sources' ``run_summary.json``
    (a collection's closing line: a single source's run says its own). A summary that cannot
    be read counts nothing."""
    total: Counter[str] = Counter()
    for folder in folders:
        rejected = _summary_value(folder, "rejected")
        if isinstance(rejected, dict):
            total.update({str(kind): int(count) for kind, count in rejected.items() if isinstance(count, int)})
    return total


def skipped_in(folder: Path) -> int:
    """The files the source's last run could not decode (its ``run_summary.json``; 0 when it
    cannot be read): kept beside its ``done`` state, so that a rerun tries them again."""
    skipped = _summary_value(folder, "skipped")
    return skipped if isinstance(skipped, int) and not isinstance(skipped, bool) else 0


def _summary_value(folder: Path, key: str) -> Any:
    try:
        return json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def nothing_read(kind: str, frames: int, resumed: int, skipped: int) -> str | None:
    """Why a folder's run read nothing (its ``skipped`` files each skipped, no frame done now or
    ``resumed`` from before), or None; whichever executor ran it."""
    if kind != "video" and skipped and not frames and not resumed:
        return f"none of its {skipped} image file(s) could be read (each is named above)"
    return None
