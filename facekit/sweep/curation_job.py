"""A curation sweep's job (``facekit -m task=curate ...``): where it leaves its result and the
counts the sweep report reads from it. The names live here, below ``facekit.curate``, because
the report may not import curation (the layer contract); the curate task and its result writer
take them from here, so each is stated once."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

#: A sweep's curation job writes its result folder here, inside its job folder (which holds Hydra's files).
CURATED_FOLDER = "curated"
#: The result folder's record of what curation did, its counts among it.
CURATION_FILE = "curation.json"


@dataclass(frozen=True)
class CurationCounts:
    """What one curation kept of the faces it considered, and why it dropped the rest."""

    faces: int
    kept: int
    dropped: dict[str, int] = field(default_factory=dict)  # by reason, as curation.json counts them
    clusters: int | None = None  # None: the job did not cluster


def curation_counts(job_folder: Path) -> CurationCounts | None:
    """The counts in a job's ``curated/curation.json``, or None where it has none (not a
    curation job, or one that failed before writing its result) or cannot be read."""
    try:
        document = json.loads((job_folder / CURATED_FOLDER / CURATION_FILE).read_text(encoding="utf-8"))
        counts = document["counts"]
        clustered = bool((document.get("settings") or {}).get("cluster"))
        return CurationCounts(faces=int(counts["faces"]), kept=int(counts["kept"]),
                              dropped={str(kind): int(n) for kind, n in (counts.get("dropped") or {}).items()},
                              clusters=int(counts.get("clusters", 0)) if clustered else None)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
