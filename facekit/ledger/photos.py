"""Resume checks a folder's photos as well as its face files: a finished frame whose photo was
replaced since (or whose name another file now has) is done again, so a rerun's output is what
a new run of the folder as it is would give. A frame whose photo is gone is kept, and said."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from facekit.media.sources import utf8_text
from facekit.output.alignments import ALIGNMENTS_FILE, journal_path


def last_written_ns(folder: Path) -> int | None:
    """When an earlier run last wrote the folder's alignments file or journal (None: never)."""
    times = []
    for path in (folder / ALIGNMENTS_FILE, journal_path(folder / ALIGNMENTS_FILE)):
        try:
            times.append(path.stat().st_mtime_ns)
        except OSError:
            continue
    return max(times, default=None)


def photos_to_redo(folder: Path, done: Iterable[tuple[str, dict[str, Any]]], photos: Sequence[tuple[str, Path]],
                   written_ns: int | None, say: Callable[[str], None]) -> set[str]:
    """The finished frames (name, entry) to do again, of a source whose photos are ``photos``
    (frame name, file) now: another file under the frame's name (``a.JPG`` gone, ``a.png``
    come), or its photo changed after ``written_ns`` (a file's change time, which no copy or
    ``touch`` can set back: replaced, rewritten, or a symlink pointed elsewhere). Those whose
    photo is gone are kept; ``say`` hears a line for each kind found."""
    files = dict(photos)
    redo, gone = set(), 0
    for name, entry in done:
        path = files.get(name)
        if path is None:
            gone += 1
        elif Path(str(entry.get("source", ""))).name != utf8_text(path.name) or _changed_after(path, written_ns):
            redo.add(name)
    if redo:
        say(f"{folder}: {len(redo)} finished frame(s) whose photo changed since (replaced, or another file has its "
            "name now); they are done again")
    if gone:
        say(f"{folder}: {gone} finished frame(s) have no photo in the input now (removed or renamed); their entries "
            "and face files are kept (a new output folder holds only what the input holds)")
    return redo


def _changed_after(path: Path, written_ns: int | None) -> bool:
    if written_ns is None:
        return False
    try:  # the link and the file it names: either one replaced is another photo
        return max(path.stat().st_ctime_ns, path.lstat().st_ctime_ns) > written_ns
    except OSError:
        return False  # gone meanwhile: the run will say so when it reads it
