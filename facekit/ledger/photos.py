"""Resume checks a folder's photos as well as its face files: a finished frame whose photo was
replaced since (or whose name another file now has) is done again, so a rerun's output is what
a new run of the folder as it is would give. A frame whose photo is gone is kept, and said."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from facekit.media.file_times import changed_after
from facekit.media.sources import utf8_text
from facekit.output.mask_files import MASK_FOLDER


def photos_to_redo(folder: Path, recorded: Mapping[str, str], photos: Sequence[tuple[str, Path]],
                   written_ns: int | None, say: Callable[[str], None]) -> set[str]:
    """The finished frames to do again (``recorded``: each one's photo, by the file name its
    entry holds), of a source whose photos are ``photos`` (frame name, file) now: another file
    under the frame's name (``a.JPG`` gone, ``a.png`` come), or its photo changed after
    ``written_ns`` (a file's change time, which no copy or ``touch`` can set back: replaced,
    rewritten, or a symlink pointed elsewhere), or its photo now named otherwise (``a.png`` come
    beside ``a.jpg``, so frame ``a`` is ``a_jpg`` now). Those whose photo is gone are kept; ``say``
    hears a line for each kind found."""
    files = dict(photos)
    named_now = {utf8_text(path.name) for path in files.values()}
    redo, gone = set(), 0
    for name, file_name in recorded.items():
        path = files.get(name)
        if path is None:
            if file_name in named_now:  # its photo is there under another frame name (a.jpg: a -> a_jpg
                redo.add(name)  # once a.png came): done again under that name, its old entry and files go
            else:
                gone += 1
        elif file_name != utf8_text(path.name) or changed_after(path, written_ns):
            redo.add(name)
    if redo:
        say(f"{folder}: {len(redo)} finished frame(s) whose photo changed since (replaced, another file has its "
            "name now, or it has another frame name beside a new file); they are done again")
    if gone:
        say(f"{folder}: {gone} finished frame(s) have no photo in the input now (removed or renamed); their entries "
            "and face files are kept (a new output folder holds only what the input holds)")
    return redo


def remove_face_files(folder: Path, crops: Iterable[str]) -> None:
    """Each face file named (and its mask files): what a changed photo's frame showed, which the
    frame done again may not write over (the photo now in its place may have fewer faces)."""
    for crop in crops:
        for path in (folder / crop, *(folder / MASK_FOLDER).glob(f"*/{crop}")):
            path.unlink(missing_ok=True)
