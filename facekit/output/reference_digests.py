"""Reference photos (``filter.refs`` / ``filter.nrefs``) as a rerun compares them: by content.

A run's settings record each reference photo as the digest of its file, so the same photo typed
another way (``../refs/a.jpg``, ``/data/refs/a.jpg``) resumes the output, and a photo replaced
under its name is another setting, refused, rather than judging half the frames against each.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from stat import S_ISREG
from typing import Any, Iterable

from facekit.fileio import file_sha256

DIGEST_PREFIX = "sha256:"


def reference_digests(names: Iterable[Any]) -> list[str]:
    """The photos ``names`` names as ``sha256:<hex>`` of their files, sorted and each once (the
    filter takes the nearest reference, so their order and repeats change nothing). A digest
    stays one; a name that is no file now (an older run's, whose photo has gone) stays as typed."""
    return sorted({_digest(str(name)) for name in names})


def references_by_content(settings: Any) -> Any:
    """``settings`` (an alignments fingerprint, or a collection's settings) with its ``filter``
    group's ``refs`` and ``nrefs`` as ``reference_digests``: what an older facekit wrote (the
    paths as typed) compares by the content those paths hold now."""
    if not isinstance(settings, dict) or not isinstance(settings.get("filter"), dict):
        return settings
    group = dict(settings["filter"])
    for key in ("refs", "nrefs"):
        if isinstance(group.get(key), list):
            group[key] = reference_digests(group[key])
    return {**settings, "filter": group}


def is_digest_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(str(v).startswith(DIGEST_PREFIX) for v in value)


def _digest(name: str) -> str:
    if name.startswith(DIGEST_PREFIX):
        return name
    path = Path(name).expanduser()
    try:
        found = path.stat()
        if not S_ISREG(found.st_mode):
            return name
        return _cached_digest(str(path.resolve()), found.st_size, found.st_mtime_ns)
    except OSError:  # gone, or unreadable: the filter's own reading of it says why
        return name


@lru_cache(maxsize=256)
def _cached_digest(path: str, size: int, mtime_ns: int) -> str:
    """Once a run per file and version of it: a collection's every source records the same photos."""
    return DIGEST_PREFIX + file_sha256(Path(path))
