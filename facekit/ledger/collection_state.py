"""``collection.json``: every source of a collection met so far, with its state, so a rerun
knows which sources are done (those are not reopened) and a person sees what failed and why."""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from facekit.errors import FacekitError
from facekit.fileio import atomic_write_bytes
from facekit.media.file_times import changed_ns
from facekit.ledger.states import SourceState
from facekit.media.collection import COLLECTION_FILE, LIST_PREFIX, Source, is_list, listed_sources
from facekit.media.sources import from_utf8_text, utf8_text
from facekit.output.alignments import ALIGNMENTS_FILE, journal_path
from facekit.output.differences import setting_differences
from facekit.output.reference_digests import references_by_content

log = logging.getLogger("facekit")

SAVE_EVERY_S = 2.0


@dataclass
class CollectionState:
    """What ``collection.json`` holds: one entry per source, by its path in the collection.
    ``path`` None: a single input's, a collection of one, kept in memory only."""

    path: Path | None
    input: str
    settings: dict[str, Any] = field(default_factory=dict)  # what the sources' outputs depend on
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    earlier: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last run's entries
    saved_at: float = float("-inf")  # time.monotonic() of the last write
    run: dict[str, Any] = field(default_factory=dict)  # the last run's frames, seconds, frames/s
    lock: threading.Lock = field(default_factory=threading.Lock)  # the reader opens sources, the sink ends them
    paused: bool = False  # states are recorded but not written (a run not accepted yet)
    signatures: dict[str, list[int] | None] = field(default_factory=dict)  # each source's as this run opened it
    changed: set[str] = field(default_factory=set)  # done sources found changed, said once
    kept_earlier: int = 0  # sources done by an earlier run and unchanged: kept as they were, not reopened
    #: ``resume.verify=full``: a done source is reopened too, so its face files are read again
    #: (its ledger re-hashes them and redoes a frame whose file is missing or damaged)
    reopen_done: bool = False

    @classmethod
    def load(cls, path: Path, input_value: str, settings: dict[str, Any],
             defaults: Callable[[], dict[str, Any] | None] | None = None,
             effective: Callable[[Any], Any] = lambda found: found) -> CollectionState:
        """The last run's entries, which a rerun keeps. A rerun with other settings is refused
        as a whole, before any source opens, naming the settings that differ: mixing the two
        would leave some sources of each. A file written by an older facekit lacks the keys
        added since: each counts as equal when this run leaves it at its default (``defaults``
        gives them), and a key removed since counts for nothing. ``effective`` reads the file's
        settings as ``settings`` are written (defaults filled in). A damaged file costs only a
        reopen of each source."""
        state = cls(path, input_value, settings)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            earlier = {entry["source"]: entry for entry in document.get("sources", [])
                       if not left_nothing(path.parent, entry)}
            found = effective(references_by_content(document.get("settings")))  # an older file's photos as typed
        except FileNotFoundError:
            return state
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is damaged (%s); every source is run again (each resumes from its journal)", path, exc)
            return state
        if not earlier:  # no source of the last run wrote anything: nothing of its would mix with this run's
            return state
        root, now = document.get("root"), resolved_root(input_value)
        if isinstance(root, str) and root != now:
            raise FacekitError(f"{path.parent} holds the collection of {root}, not of {now}; their sources "
                               f"would mix: rerun with input={root} to resume it, or choose another output")
        if found != settings and not _same_but_newer(found, settings, defaults):
            raise FacekitError(f"{path.parent} holds a collection made with other settings ({setting_differences(found, settings)}); "
                               "rerun with those settings to resume it, or choose another output")
        state.earlier = earlier
        return state

    def pinned(self, sources: Iterable[Source]) -> Iterator[Source]:
        """``sources`` with the output folders the last run gave them: a folder's name comes from
        what else the walk (or list) holds, so a file added beside a video (``clip.mkv`` by
        ``clip.mp4``: both get full names) or a list's lines reordered would move a finished
        source to another folder, to be done again there or refused as another source's. A new
        source whose name another source had keeps clear of it (``clip~2``)."""
        recorded = {rel: entry["output"] for rel, entry in self.earlier.items() if isinstance(entry.get("output"), str)}
        taken = set(recorded.values())
        for source in sources:
            output = recorded.get(source.rel)
            if output is None:
                output = source.output
                if output in taken:
                    output = next(f"{source.output}~{n}" for n in itertools.count(2) if f"{source.output}~{n}" not in taken)
                taken.add(output)
            yield source if output == source.output else dataclasses.replace(source, output=output)

    def was_done(self, source: Source) -> bool:
        """Whether an earlier run finished ``source`` and it has not changed since: a photo added
        to its folder, or its video replaced, reopens it (its journal then resumes it). An
        entry from before signatures were kept is taken as it says."""
        entry = self.earlier.get(source.rel)
        if self.reopen_done or entry is None or entry.get("state") != SourceState.DONE \
                or entry.get("output") != source.output:
            return False
        if "signature" in entry and not same_signature(entry["signature"], source_signature(source.path)):
            if source.rel not in self.changed:
                self.changed.add(source.rel)
                log.info("source %s changed since an earlier run finished it: reopened", source.rel)
            return False
        if entry.get("skipped"):  # files that did not decode: mended since, perhaps (a flat folder's rerun tries them too)
            if source.rel not in self.changed:
                self.changed.add(source.rel)
                log.info("source %s: %s file(s) skipped when it was done; reopened to try them again", source.rel,
                         entry["skipped"])
            return False
        return True

    def set(self, source: Source, state: SourceState, **details: Any) -> None:
        """Records ``source``'s state; the file catches up within ``SAVE_EVERY_S`` (``save``),
        whatever the state: a failed or stopped source's write each time made a collection of
        thousands of failing sources cost O(sources²)."""
        with self.lock:
            signature = self.signatures.setdefault(source.rel, source_signature(source.path))  # when it opened
            self.sources[source.rel] = {"source": source.rel, "path": utf8_text(source.path), "kind": source.kind,
                                        "output": source.output, "state": SourceState(state).value, **details}
            if state == SourceState.DONE and signature is not None:
                self.sources[source.rel]["signature"] = signature
        self.save(force=False)

    def keep_earlier(self, source: Source) -> None:
        """A source done by an earlier run keeps that run's entry."""
        with self.lock:
            self.sources[source.rel] = self.earlier[source.rel]
            self.kept_earlier += 1
        self.save(force=False)

    def spelled(self, source: Source) -> Path:
        """``source.path``, or the earlier run's path of it where that names the same file
        otherwise (relative, absolute, through a link): a rerun resumes that run, so its frames
        and face files name the source as that run's did."""
        earlier = self.earlier.get(source.rel, {}).get("path")
        if earlier is None or earlier == utf8_text(source.path) or not same_file(earlier, str(source.path)):
            return source.path
        return Path(from_utf8_text(earlier))

    def counts(self) -> Counter[str]:
        return Counter(entry["state"] for entry in list(self.sources.values()))

    def pause_saving(self) -> None:
        self.paused = True

    def resume_saving(self) -> None:
        self.paused = False
        self.save()

    def save(self, force: bool = True) -> None:
        """Rewrites the file; unless ``force``d, at most every ``SAVE_EVERY_S``: rewriting it after
        each of 10,000 short sources would cost O(sources²). A state it has not caught up with
        costs nothing but a reopen: a source missing or partial there resumes from its journal."""
        with self.lock:
            if self.path is None or self.paused or (not force and time.monotonic() - self.saved_at < SAVE_EVERY_S):
                return
            self.saved_at = time.monotonic()
            document = {"input": utf8_text(self.input), "root": resolved_root(self.input),
                        "settings": self.settings, "counts": dict(self.counts()),
                        **({"run": self.run} if self.run else {}), "sources": list(self.sources.values())}
            atomic_write_bytes(self.path, json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8"))


def left_nothing(root: Path, entry: dict[str, Any]) -> bool:
    """Whether an earlier run's entry is of a source that failed before it wrote anything (a
    path that did not exist, a file that would not open): its folder was never made, so it holds
    no folder name, the settings it ran with shaped nothing, and a rerun forgets it. A list run
    whose every line was mistyped, corrected, would otherwise have its sources in ``name~2``
    folders, or be refused for settings that wrote no file."""
    output = entry.get("output")
    return entry.get("state") == SourceState.FAILED and not (isinstance(output, str) and (root / output).exists())


def resolved_root(input_value: str) -> str:
    """The folder (or list file) a collection's input names, resolved: the same collection
    however it is typed, from wherever it is run."""
    named = input_value[len(LIST_PREFIX):] if is_list(input_value) else input_value
    return utf8_text(Path(named).expanduser().resolve())


def refuse_another_kind(root: Path, collection: bool) -> None:
    """A single source's run into a collection's output folder, or a collection's into a single
    source's, is refused before anything is written: their files would mix, and each task that
    reads the folder would see one or the other (a collection's ``.`` source writes
    alignments.json beside collection.json, so that pair is a collection's)."""
    is_collection = (root / COLLECTION_FILE).is_file()
    if not collection and is_collection:
        raise FacekitError(f"{root} holds a collection's output ({COLLECTION_FILE}); a single source's faces would "
                           "mix with its sources': choose another output folder")
    alignments = root / ALIGNMENTS_FILE
    if collection and not is_collection and (alignments.is_file() or journal_path(alignments).is_file()):
        raise FacekitError(f"{root} holds a single source's output ({ALIGNMENTS_FILE}); a collection's sources would "
                           "mix with it: choose another output folder")


def save_unless_failing(state: CollectionState) -> None:
    """Saves the state at a run's end; when the run is already ending in an error (a full disk,
    most often), a failed save stays quiet so that error remains the one line the user sees."""
    import sys

    ending_in_error = sys.exc_info()[1] is not None  # called from a finally: the error on its way out
    try:
        state.save()
    except OSError:
        if not ending_in_error:
            raise


def source_signature(path: Path) -> list[int] | None:
    """What changes when a source does, read without opening it: a video's size and time of
    change; a folder's time of change, which adding, removing or renaming a photo in it moves,
    and the latest change time of its files (a photo overwritten in place, or a symlink pointed
    elsewhere). None where it cannot be read (the source is then never taken as unchanged)."""
    try:
        found = os.stat(path)
        if not stat.S_ISDIR(found.st_mode):
            return [found.st_size, found.st_mtime_ns]
        with os.scandir(path) as entries:
            changed = max((changed_ns(entry) for entry in entries if not entry.is_dir()), default=0)
    except OSError:
        return None
    return [found.st_mtime_ns, changed]


def same_signature(found: Any, now: list[int] | None) -> bool:
    """Whether a source's recorded signature is ``now``'s; a folder's from before the change
    time of its files was kept (its time of change alone) is compared on that."""
    if not isinstance(found, list) or now is None:
        return found == now
    return found == now or (len(found) == 1 and len(now) == 2 and found[0] == now[0])


def unfinished_folders(root: Path) -> dict[Path, str]:
    """The source folders of the collection in ``root`` (none for a single source's folder)
    whose extraction is not ``done``, with its state: a task that changes a source's files
    leaves those for the extraction to finish first. A collection.json that cannot be read
    names none (its damage is the extraction's to report)."""
    try:
        entries = listed_sources(root)
    except (OSError, ValueError):
        return {}
    return {root / str(entry["output"]): str(entry.get("state")) for entry in entries
            if entry.get("state") != SourceState.DONE and entry.get("output")}


def alignments_name(source: Source) -> str:
    """A source's alignments file, relative to the collection's output folder."""
    return f"{source.output}/{ALIGNMENTS_FILE}" if source.output != "." else ALIGNMENTS_FILE


def _same_but_newer(found: Any, wanted: dict[str, Any],
                    defaults: Callable[[], dict[str, Any] | None] | None) -> bool:
    """Whether ``found`` differs from ``wanted`` only in keys it lacks, each at its default now,
    or keys it has that no longer exist."""
    default = defaults() if defaults is not None else None
    return isinstance(found, dict) and default is not None and _within(found, wanted, default)


def _within(found: dict[str, Any], wanted: dict[str, Any], default: Any) -> bool:
    for name, value in wanted.items():
        if name not in found:
            if not isinstance(default, dict) or default.get(name, _ABSENT) != value:
                return False
        elif isinstance(value, dict) and isinstance(found[name], dict):
            if not _within(found[name], value, default.get(name) if isinstance(default, dict) else None):
                return False
        elif found[name] != value:
            return False
    return True


_ABSENT = object()


def same_file(one: str, other: str) -> bool:
    """Whether two paths name one existing file or folder by the same name, their folders
    spelled otherwise (relative, absolute, through a link). A file named otherwise (a link
    ``b.mp4`` to ``a.mp4``) is not: its frames are named after it."""
    if Path(one).name != Path(other).name:
        return False
    try:
        return Path(one).expanduser().resolve(strict=True) == Path(other).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        return False
