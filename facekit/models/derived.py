"""Model files that plugins make from packaged ones (a graph folded to float, a conversion to
LiteRT), kept in the cache's ``derived/`` folder so only the first run pays for making them.

One helper for every such file, so they all behave alike: named by the source's sha256 (a new
package version makes a new file), read without a lock when present (a read-only cache that holds
it is enough), made under a file lock (parallel workers and sweep jobs make it once), and, when
the folder cannot be written, made in a scratch folder and handed over as bytes.
"""
from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)


def derived_model(source: Path, folder: Path | None, tag: str, suffix: str,
                  make: Callable[[Path], None], what: str) -> str | bytes:
    """The path of ``<folder>/<source stem>.<tag>.<sha256 prefix><suffix>``, made by
    ``make(target)`` (which writes ``target``) when missing; or the made bytes when there is no
    folder or it cannot be written. ``tag`` carries the maker's version, so a changed maker
    writes a new file; ``what`` names the work in the log ("converting x to LiteRT")."""
    source = Path(source)
    if folder is not None:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        kept = folder / f"{source.stem}.{tag}.{digest}{suffix}"
        if kept.is_file():
            return str(kept)
        try:
            from filelock import FileLock

            folder.mkdir(parents=True, exist_ok=True)
            with FileLock(f"{kept}.lock"):
                if not kept.is_file():
                    log.info("%s, once; kept in %s", what, folder)
                    make(kept)
            return str(kept)
        except OSError:
            log.info("%s; %s cannot be written, so each run does it", what, folder)
    with tempfile.TemporaryDirectory(prefix="facekit-derived-") as scratch:
        target = Path(scratch) / f"model{suffix}"
        make(target)
        return target.read_bytes()
