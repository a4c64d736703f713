"""``collection.json``: every source of a collection met so far, with its state, so a rerun
knows which sources are done (those are not reopened) and a person sees what failed and why."""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facekit.fileio import atomic_write_bytes
from facekit.ledger.states import SourceState
from facekit.media.collection import Source
from facekit.output.alignments import ALIGNMENTS_FILE

log = logging.getLogger("facekit")

SAVE_EVERY_S = 2.0


@dataclass
class CollectionState:
    """What ``collection.json`` holds: one entry per source, by its path in the collection."""

    path: Path
    input: str
    settings: dict[str, Any] = field(default_factory=dict)  # what the sources' outputs depend on
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    earlier: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last run's entries
    saved_at: float = float("-inf")  # time.monotonic() of the last write
    run: dict[str, Any] = field(default_factory=dict)  # the last run's frames, seconds, frames/s
    lock: threading.Lock = field(default_factory=threading.Lock)  # the reader opens sources, the sink ends them

    @classmethod
    def load(cls, path: Path, input_value: str, settings: dict[str, Any]) -> CollectionState:
        """The last run's entries count only when it had the same settings: with other plugins
        or sampling no source is done, and each one's own fingerprint check refuses it."""
        state = cls(path, input_value, settings)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("settings") == settings:
                state.earlier = {entry["source"]: entry for entry in document.get("sources", [])}
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is damaged (%s); every source is run again (each resumes from its journal)", path, exc)
        return state

    def was_done(self, source: Source) -> bool:
        entry = self.earlier.get(source.rel)
        return entry is not None and entry.get("state") == SourceState.DONE and entry.get("output") == source.output

    def set(self, source: Source, state: SourceState, force: bool = False, **details: Any) -> None:
        with self.lock:
            self.sources[source.rel] = {"source": source.rel, "path": str(source.path), "kind": source.kind,
                                        "output": source.output, "state": SourceState(state).value, **details}
        self.save(force)

    def keep_earlier(self, source: Source) -> None:
        """A source done by an earlier run keeps that run's entry."""
        with self.lock:
            self.sources[source.rel] = self.earlier[source.rel]
        self.save(force=False)

    def counts(self) -> Counter[str]:
        return Counter(entry["state"] for entry in list(self.sources.values()))

    def save(self, force: bool = True) -> None:
        """Rewrites the file; unless ``force``d, at most every ``SAVE_EVERY_S``: rewriting it after
        each of 10,000 short sources would cost O(sources²). A state it has not caught up with
        costs nothing but a reopen: a source missing or partial there resumes from its journal."""
        with self.lock:
            if not force and time.monotonic() - self.saved_at < SAVE_EVERY_S:
                return
            self.saved_at = time.monotonic()
            document = {"input": self.input, "settings": self.settings, "counts": dict(self.counts()),
                        **({"run": self.run} if self.run else {}), "sources": list(self.sources.values())}
            atomic_write_bytes(self.path, json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"))


def alignments_name(source: Source) -> str:
    """A source's alignments file, relative to the collection's output folder."""
    return f"{source.output}/{ALIGNMENTS_FILE}" if source.output != "." else ALIGNMENTS_FILE
