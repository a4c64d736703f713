"""A source's state in ``collection.json``, named once."""
from __future__ import annotations

from enum import StrEnum


class SourceState(StrEnum):
    """``done``: every frame written and folded; ``partial``: some, and the same command resumes
    it; ``failed``: it could not be read or written (the reason is beside it)."""

    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"
