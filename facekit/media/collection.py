"""A collection: a tree (or a list) of sources, each read and written on its own.

Every video is a source, and the images directly inside one folder together form a source. The
tree is walked lazily (``os.scandir``, one folder at a time, a generator), so the first source
runs while a large tree is still being listed. What cannot be read (an unreadable subfolder, a
symlink loop, a listed path that is missing) comes out as a ``Source`` with ``failed`` set: the
caller names it, records it and goes on, since one bad folder must not end a run over thousands.

Each source's output folder mirrors its place in the tree (the rule is in the README,
"Collections"): images of folder ``a/b`` go to ``OUT/a/b/``, video ``a/b/clip.mp4`` to
``OUT/a/b/clip/``, or ``OUT/a/b/clip.mp4/`` where ``clip`` is taken in that folder (another
entry of that name or stem, or ``debug`` / ``rejected`` / ``masks``, which hold a source's own extras).
"""
from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping, Sequence

from facekit.errors import ConfigError, FacekitError
from facekit.media.sampling import Sampling, checked_sampling
from facekit.media.sources import (IMAGE_SUFFIXES, LIST_PREFIX, VIDEO_SUFFIXES, FrameSource, decoded_image,
                                   existing_input, not_a_file, open_input, utf8_text)
from facekit.records import Frame

log = logging.getLogger(__name__)

#: Names a source's own output folder uses for its extras (debug frames, rejected faces, mask files):
#: a child source of that name is written under another name so the two never mix.
RESERVED = frozenset({"debug", "rejected", "masks"})
COLLECTION_FILE = "collection.json"  # in the output folder: every source and its state
#: A folder holding one of these is facekit's output (a collection's, or a source's: the names of
#: ``facekit.output.alignments.ALIGNMENTS_FILE``, its journal, and Ray's shard journals'
#: ``facekit.ledger.shard_journal.SHARDS_DIR``, a test keeps them equal), not a source: a tree
#: that holds an earlier run's output must not have its face crops extracted as photos, nor one
#: still running, or stopped before its first fold, which has only its journals yet.
OUTPUT_MARKERS = (COLLECTION_FILE, "alignments.json", "alignments.json.journal", ".facekit-shards")


def listed_sources(folder: Path) -> list[dict[str, Any]]:
    """The source entries of the ``collection.json`` in ``folder``, as an extraction wrote them.
    OSError when it cannot be read; ValueError when it is not JSON with a list of sources."""
    document = json.loads((folder / COLLECTION_FILE).read_text(encoding="utf-8"))
    sources = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(sources, list) or not all(isinstance(entry, dict) for entry in sources):
        raise ValueError("no list of sources")
    return sources


@dataclass(frozen=True)
class Source:
    """One source of a collection: ``rel`` names it (its path relative to the collection's root,
    POSIX separators; ``.`` for the root folder's own images), ``output`` is its folder relative
    to the output folder. ``failed`` says why it cannot be read, when it cannot.

    ``rel`` and ``output`` are UTF-8 text (``utf8_text``) whatever the file's name: they go into
    collection.json and logs, and the output folder is facekit's to name, so a file whose name
    is not UTF-8 (``v\\xe9.mp4``, Latin-1) is source ``v%E9.mp4`` written to ``v%E9``; ``path``
    is the file's own name, to open it by."""

    path: Path
    kind: str  # "video" | "folder"
    rel: str
    output: str
    failed: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rel", utf8_text(self.rel))
        object.__setattr__(self, "output", utf8_text(self.output))


@dataclass(frozen=True)
class Selection:
    """Which sources a walk yields: ``collection.recursive``, ``include`` and ``exclude``."""

    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def wants(self, rel: str, folder: bool = False) -> bool:
        """Whether a source at ``rel`` is kept. A folder source also matches as ``rel/`` (so
        ``**/trailers/**`` leaves out the images of ``x/trailers`` as well as what lies below)."""
        names = [rel, rel + "/"] if folder else [rel]
        if any(_matches(p, n) for p in self.exclude for n in names):
            return False
        return not self.include or any(_matches(p, n) for p in self.include for n in names)

    def prunes(self, rel: str) -> bool:
        """A folder whose whole subtree is excluded is not even listed."""
        return any(_matches(p, rel + "/") for p in self.exclude)


def is_list(input_value: str) -> bool:
    return str(input_value).startswith(LIST_PREFIX)


def is_collection(root: Path, selection: Selection, exclude: Path | None = None) -> bool:
    """True when ``root`` is a list (``@list.txt``) or a folder that holds a video, or (when
    recursive) a subfolder with a video or an image at any depth; a flat folder of images (and
    a single file) stays a single source, read exactly as before collections existed."""
    if is_list(str(root)):
        return True
    if not root.is_dir():
        return False
    excluded = _resolved(exclude)
    for folder_depth, entry in _entries_breadth_first(root, excluded, selection.recursive):
        suffix = Path(entry.name).suffix.lower()
        if _is_file(entry) and suffix in VIDEO_SUFFIXES:
            return True
        if folder_depth > 0 and _is_file(entry) and suffix in IMAGE_SUFFIXES:
            return True
    return False


def first_media_file(root: Path) -> str | None:
    """The first photo or video below ``root`` as a collection walk would meet it (nearest
    first; hidden entries and facekit's output folders passed over), relative; None when none."""
    for _, entry in _entries_breadth_first(root, None, recursive=True):
        if _is_file(entry) and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            return Path(entry.path).relative_to(root).as_posix()
    return None


def walk(root: Path, selection: Selection, exclude: Path | None = None) -> Iterator[Source]:
    """The sources of the tree at ``root``, depth first, each folder's entries in name order:
    the folder's own images, its videos, then its subfolders. ``exclude`` (the output folder)
    is never entered."""
    excluded = _resolved(exclude)
    yield from _walk_folder(root, "", "", selection, excluded, ancestors=frozenset())


def read_list(list_file: Path, selection: Selection) -> Iterator[Source]:
    """The sources a list file names, one path a line (blank lines and ``#`` comments left out;
    relative paths are relative to the list file's folder): a video, or a folder whose images
    form a source. A path that is missing or neither is a failed source. Each output folder is
    the path relative to the list's folder, or its last name when it lies outside that folder
    (``_named_from``), made unique: every output stays inside the output folder."""
    base = list_file.parent
    used: set[str] = set()
    listed: dict[str, int] = {}  # each path named so far, by its line
    for number, line in enumerate(_lines(list_file), start=1):
        if isinstance(line, Source):  # the list could not be read (further)
            yield line
            return
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        path, text = _listed_path(base, text)
        # the same entry written twice (./a.mp4, a.mp4): its folder resolved, its own name kept (two links are two sources)
        rel, where = _named_from(base, path), os.path.join(os.path.realpath(path.parent), path.name)
        if where in listed:  # one source, one folder and one state: read once
            log.warning("%s line %d: %s is listed already (line %d); it is read once", list_file.name, number, text,
                        listed[where])
            continue
        listed[where] = number
        video = path.suffix.lower() in VIDEO_SUFFIXES
        if not selection.wants(rel, folder=not video):
            continue
        stem = rel[: -len(path.suffix)] if video and path.suffix and rel.endswith(path.suffix) else rel
        output = _unique(_clear_of_reserved(stem if stem not in used else rel, video and path.name), used)
        if not path.exists():
            why = "a broken link" if path.is_symlink() else "does not exist"
            if not Path(text).expanduser().is_absolute():  # what was looked for, where a user looks from elsewhere
                why += f" (read as {os.path.abspath(path)}: a list's relative paths start at its folder)"
            yield Source(path, "video" if video else "folder", text, output, failed=why)
        elif path.is_dir():
            yield Source(path, "folder", text, output)
        elif video and path.is_file():
            yield Source(path, "video", text, output)
        else:
            yield Source(path, "folder", text, output, failed="neither a video nor a folder of images")


def _listed_path(base: Path, text: str) -> tuple[Path, str]:
    """The path a list line names (relative to the list's folder) and the line as it names it:
    without a trailing ``#`` comment after a space where the line as written names nothing that
    exists (a name may hold " #" itself)."""
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.exists() and (bare := re.sub(r"\s+#.*$", "", text)) != text:
        return _listed_path(base, bare)
    return path, text


def names_nothing(list_file: Path) -> bool:
    """Whether a list file (a regular file: a pipe is read as the run goes) holds no line that
    names a source, only blank lines and comments: a run of it would have nothing to do."""
    if not list_file.is_file():
        return False
    try:
        with list_file.open(encoding="utf-8-sig") as lines:
            return not any(line.strip() and not line.strip().startswith("#") for line in lines)
    except (OSError, UnicodeDecodeError):
        return False  # the run names what is wrong with it, as a failed source


def _named_from(base: Path, path: Path) -> str:
    """``path`` relative to the list's folder ``base`` when it lies inside it, else its last name
    (``root`` for ``/``). Both are taken as written, ``..`` undone by name and symlinks not
    followed, so no entry (``../x``, ``a/../../x``, ``~``, an absolute path, a link to elsewhere)
    gives an output folder outside the output folder."""
    here, there = Path(os.path.abspath(base)), Path(os.path.abspath(path))
    try:
        return there.relative_to(here).as_posix()
    except ValueError:
        return there.name or "root"


def _lines(list_file: Path) -> Iterator[str | Source]:
    """The list's lines as they are read (a list of 100,000 sources, or one still being written
    to a pipe, starts running at its first line), then a failed ``Source`` if reading fails."""
    read = 0
    try:
        with list_file.open(encoding="utf-8-sig") as lines:  # a byte-order mark (Windows editors) is no name
            for read, line in enumerate(lines, start=1):
                yield line
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = f" after line {read}" if read else ""
        yield Source(list_file, "folder", utf8_text(list_file), ".", failed=f"the list cannot be read{where} ({reason})")


def _clear_of_reserved(output: str, video_name: str | bool) -> str:
    """A list's output path kept clear of the folders a source's own output uses (``RESERVED``),
    as a walk names them: a folder ``debug`` anywhere on it is ``debug.folder``, and a video whose
    name ends there takes its file name (``p/debug.mp4`` beside source ``p`` went to ``p/debug/``,
    among p's debug frames)."""
    parts = output.split("/")
    named = [f"{part}.folder" if part in RESERVED else part for part in parts]
    if parts[-1] in RESERVED and video_name:
        named[-1] = str(video_name)
    return "/".join(named)


def _unique(name: str, used: set[str]) -> str:
    unique, number = name, 1
    while unique in used:
        number += 1
        unique = f"{name}~{number}"
    used.add(unique)
    return unique


def _walk_folder(folder: Path, rel: str, out: str, selection: Selection, excluded: Path | None,
                 ancestors: frozenset[tuple[int, int]]) -> Iterator[Source]:
    here = rel or "."
    try:
        status = folder.stat()
        identity = (status.st_dev, status.st_ino)
        if identity in ancestors:
            yield Source(folder, "folder", here, out or ".", failed="a symlink loop (a link back to a folder above it)")
            return
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        yield Source(folder, "folder", here, out or ".", failed=_os_reason(exc, "cannot be listed"))
        return
    images, videos, subfolders, broken = [], [], [], []
    unreadable: dict[str, str] = {}  # why, by name: videos that are not files
    for entry in entries:
        if entry.name.startswith("."):
            continue
        suffix = Path(entry.name).suffix.lower()
        try:
            is_dir = entry.is_dir()
            is_file = entry.is_file()
        except OSError:
            is_dir = is_file = False
        if is_dir:
            if excluded is not None and Path(entry.path).resolve() == excluded:
                continue
            if holds_output(Path(entry.path)):
                log.info("%s: not read: it holds facekit's output (%s), not sources",
                         f"{rel}/{entry.name}" if rel else entry.name, " or ".join(OUTPUT_MARKERS))
                continue
            subfolders.append(entry)
        elif is_file and suffix in IMAGE_SUFFIXES:
            images.append(entry)
        elif is_file and suffix in VIDEO_SUFFIXES:
            videos.append(entry)
        elif entry.is_symlink() and _loops(entry.path):
            broken.append(entry)
        elif suffix in VIDEO_SUFFIXES:  # a broken link (a disk not mounted), a pipe: named, never opened
            videos.append(entry)
            unreadable[entry.name] = not_a_file(Path(entry.path))
    taken = {e.name for e in entries} | {Path(e.name).stem for e in videos}
    if images and selection.wants(here, folder=True):
        yield Source(folder, "folder", here, out or ".")
    elif rel and not (videos or subfolders or broken) and selection.wants(here, folder=True):
        # a folder at the end of a branch with nothing to read: most likely a source whose media
        # went missing (a person's folder left empty), so it is named rather than passed over
        others = sum(1 for e in entries if not e.name.startswith("."))
        yield Source(folder, "folder", here, out, failed="holds no images or videos" + (
            f" ({others} other file{'s' if others != 1 else ''})" if others else " (it is empty)"))
    for entry in videos:
        entry_rel = f"{rel}/{entry.name}" if rel else entry.name
        stem = Path(entry.name).stem
        clash = stem in RESERVED or any(other is not entry and stem in (other.name, Path(other.name).stem)
                                        for other in (*videos, *subfolders))
        name = entry.name if clash else stem
        if selection.wants(entry_rel):
            yield Source(Path(entry.path), "video", entry_rel, f"{out}/{name}" if out else name,
                         failed=unreadable.get(entry.name))
    for entry in broken:
        entry_rel = f"{rel}/{entry.name}" if rel else entry.name
        yield Source(Path(entry.path), "folder", entry_rel, f"{out}/{entry.name}" if out else entry.name,
                     failed="a symlink loop (the link resolves to itself)")
    if not selection.recursive:
        return
    for entry in subfolders:
        entry_rel = f"{rel}/{entry.name}" if rel else entry.name
        if selection.prunes(entry_rel):
            continue
        name = f"{entry.name}.folder" if entry.name in RESERVED and entry.name in taken else entry.name
        yield from _walk_folder(Path(entry.path), entry_rel, f"{out}/{name}" if out else name, selection,
                                excluded, ancestors | {identity})


def _entries_breadth_first(root: Path, excluded: Path | None, recursive: bool) -> Iterator[tuple[int, os.DirEntry]]:
    """Every entry below ``root`` (hidden ones and the output folder left out), a folder at a
    time, nearest first: the test for "is this a collection" stops at the first media file."""
    queue: list[tuple[int, Path]] = [(0, root)]
    seen: set[tuple[int, int]] = set()
    while queue:
        depth, folder = queue.pop(0)
        try:
            status = folder.stat()
            if (status.st_dev, status.st_ino) in seen:
                continue
            seen.add((status.st_dev, status.st_ino))
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            if depth > 0:  # an unreadable subfolder: the walk names it, so this is a collection
                yield depth, _FakeEntry()
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            yield depth, entry
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if (is_dir and recursive and (excluded is None or Path(entry.path).resolve() != excluded)
                    and not holds_output(Path(entry.path))):
                queue.append((depth + 1, Path(entry.path)))


def holds_output(folder: Path) -> bool:
    """Whether ``folder`` holds facekit's output (``OUTPUT_MARKERS``). A folder this user cannot
    search holds none as far as it can tell: reading it fails later, named as such."""
    for marker in OUTPUT_MARKERS:
        try:
            if (folder / marker).exists():
                return True
        except OSError:  # permission denied: Path.is_file raises for all but a missing file
            return False
    return False


class _FakeEntry:
    """Stands for an unreadable subfolder in ``_entries_breadth_first``: a video by its name."""

    name = "unreadable.mp4"

    def is_file(self) -> bool:
        return True


def _is_file(entry: os.DirEntry | _FakeEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _loops(path: str) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _os_reason(exc: OSError, what: str) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    return f"{what} ({exc.strerror or exc})"


def _resolved(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None


def _matches(pattern: str, rel: str) -> bool:
    return _compiled(pattern).fullmatch(rel) is not None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    """A glob on POSIX relative paths: ``*`` and ``?`` stay within one folder name, ``**`` spans
    folders (``**/`` also matches no folder at all), ``[...]`` as in fnmatch."""
    out, i = [], 0
    if pattern not in ("", "."):  # tidied ("a//b", "./a"), keeping a folder's slash: "sub/" matches folder sub
        pattern = str(PurePosixPath(pattern)) + ("/" if pattern.endswith("/") and pattern.strip("/") else "")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 1)) > i + 1:
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def sources_of(root: Path, selection: Selection, exclude: Path | None = None) -> Iterator[Source]:
    """The sources of a collection input: a list file (``@list.txt``) or a tree."""
    text = str(root)
    if is_list(text):
        yield from read_list(Path(text[len(LIST_PREFIX):]).expanduser(), selection)
    else:
        yield from walk(root, selection, exclude)


def check_leaves_a_source(named: str, selection: Selection, exclude: Path | None = None) -> None:
    """An ``include`` / ``exclude`` that leaves no source of the tree or list ``named`` is a
    ConfigError, one line, for the CLI's ``collection.*`` keys and the library's arguments alike
    (left silent, a run would read nothing and say nothing). The walk stops at the first source
    it keeps."""
    if not (selection.include or selection.exclude):
        return
    if next(sources_of(Path(named).expanduser(), selection, exclude), None) is None:
        raise ConfigError(f"input {named!r}: no source is left by collection.include={list(selection.include)} and "
                          f"collection.exclude={list(selection.exclude)} (globs on each source's path in the collection)")


def collection(path: str | Path, sample: Sampling | Mapping[str, Any] | None = None, recursive: bool = True,
               include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Iterator[tuple[Source, Frame]]:
    """Every frame of a collection (a tree, ``@list.txt``, or a single file or flat folder, which
    is one source), lazily, as ``(source, frame)``: ``frame.name`` / ``frame.index`` are its name
    and number in its source, ``frame.image`` its BGR pixels. ``sample`` (a ``Sampling`` or its
    fields: ``{"every_n": 10}``) chooses each video's frames. A source of a tree or list that
    cannot be read is named in a warning and passed over, as the CLI does; a ``path`` that does
    not exist, a single source that cannot be read, or ``include`` / ``exclude`` (a glob, or a
    list of them) that leave no source, raise FacekitError here, at the call."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"collection takes a path (str or Path), got {type(path).__name__}")
    if not isinstance(recursive, bool):
        raise TypeError(f"collection's recursive is True or False, got {recursive!r}")
    if not isinstance(sample, (Sampling, Mapping, type(None))):
        raise TypeError(f"collection's sample is a Sampling or a mapping of its fields ({{'every_n': 10}}), got "
                        f"{type(sample).__name__}")
    if isinstance(sample, Sampling):  # a Sampling made by hand is checked as its fields would be
        sample = dataclasses.asdict(sample)
    sampling = None if sample is None else _sampling_of(dict(sample))
    include, exclude = ([globs] if isinstance(globs, str) else globs for globs in (include, exclude))  # one glob
    selection = Selection(recursive, tuple(include), tuple(exclude))
    listed = is_list(str(path))
    root = Path(str(path)) if listed else Path(path).expanduser()
    existing_input(str(root)[len(LIST_PREFIX):] if listed else root)
    if is_collection(root, selection):
        check_leaves_a_source(str(path), selection)
        return _frames(sources_of(root, selection), sampling)
    single = Source(root, "video" if root.suffix.lower() in VIDEO_SUFFIXES else "folder", ".", ".")
    frames = open_input(root, sampling=sampling)
    if frames.kind == "image" and (why := decoded_image(root)[1]) is not None:  # the CLI refuses it before a frame
        raise FacekitError(f"input {str(root)!r}: {why}")
    return _one_sources_frames(single, frames)


def _one_sources_frames(source: Source, frames: FrameSource) -> Iterator[tuple[Source, Frame]]:
    """The frames of a single source; a folder none of whose photos could be read (each named
    in a warning) ends in a FacekitError, as the CLI's run of it exits 2: a script would carry on
    with nothing."""
    read = 0
    for frame in frames.frames():
        read += 1
        yield source, frame
    if not read and frames.kind == "folder" and frames.skipped:
        raise FacekitError(f"input {str(source.path)!r}: none of its {len(frames.skipped)} image file(s) could be read "
                           "(each is named above)")


def _sampling_of(fields: dict[str, Any]) -> Sampling:
    """The library's ``sample`` mapping, checked as the CLI's ``sample.*`` keys are."""
    unknown = sorted(set(fields) - {"every_n", "fps", "start", "end"})
    if unknown:
        raise ValueError(f"sample takes every_n, fps, start and end; not {', '.join(unknown)}")
    return checked_sampling(**fields)


def _frames(sources: Iterator[Source], sampling: Sampling | None) -> Iterator[tuple[Source, Frame]]:
    for source in sources:
        if source.failed is not None:
            log.warning("source %s failed: %s", source.rel, source.failed)
            continue
        try:
            frames = open_input(source.path, sampling=sampling, in_collection=True)
        except FacekitError as exc:
            log.warning("source %s failed: %s", source.rel, exc)
            continue
        for frame in frames.frames():
            yield source, frame

__all__: Sequence[str] = ["check_leaves_a_source", "collection", "COLLECTION_FILE", "LIST_PREFIX", "RESERVED", "Selection", "Source", "is_collection", "is_list",
                          "read_list", "sources_of", "walk"]
