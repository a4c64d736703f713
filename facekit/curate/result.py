"""The result folder: the kept faces (links by default), per-cluster folders and contact sheets,
a sorted folder, ``clusters.csv`` and ``curation.json``.

The folder is built whole under a hidden name beside the target, then renamed into place; a
rerun replaces an earlier curation result the same way (the old one goes only once the new one
stands), and refuses any other existing folder that is not empty: it is someone's files.

Links are symbolic, to the face files' absolute paths: a symlink works across file systems and
shows where each face came from, and deleting it from the result never touches the extraction
output (a hard link is the same file, so editing a hard-linked face in place would change the
extraction output). Where a symlink cannot be made (a file system or OS that refuses them) the
file is copied; ``curate.copy=true`` always copies.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from facekit.console import hydra_quoted
from facekit.curate.clusters import UNCLUSTERED
from facekit.curate.decide import NO_FILE, Curation, measures
from facekit.curate.inventory import FaceEntry
from facekit.curate.ordering import sort_order
from facekit.curate.sheets import cluster_sheet, tile_caption
from facekit.errors import ConfigError, OutputError
from facekit.fileio import atomic_write_bytes
from facekit.output.mask_files import mask_file_path
from facekit.sweep.curation_job import CURATION_FILE

log = logging.getLogger(__name__)

CLUSTERS_FILE = "clusters.csv"
FORMAT = "facekit-curation"
VERSION = 1
FACES_FOLDER = "faces"  # the kept faces when they are not split by cluster
UNCLUSTERED_FOLDER = "unclustered"
SHEETS_FOLDER = "sheets"
REFS_PER_COMMAND = 5


def cluster_folder(label: int) -> str:
    return UNCLUSTERED_FOLDER if label == UNCLUSTERED else f"cluster_{label:03d}"


def check_target(result: Path, source: Path) -> None:
    """One line, before any work, when the result folder cannot be written as asked."""
    resolved, root = result.expanduser().resolve(), source.expanduser().resolve()
    if resolved == root or root in resolved.parents:
        raise ConfigError(f"output {str(result)!r} lies inside the input {str(source)!r}: curation never writes "
                          "into an extraction output; choose a folder outside it")
    if resolved in root.parents:
        raise ConfigError(f"output {str(result)!r} holds the input {str(source)!r}; choose a folder beside it")
    if result.exists() and not result.is_dir():
        raise ConfigError(f"output {str(result)!r} is a file; give a folder for the curation result")
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:  # output=. did all the work, then "Device or resource busy"
        raise ConfigError(f"output {str(result)!r} holds the folder this command runs in, and a curation result "
                          "replaces its folder whole; give a new folder's name (output=curated)")
    if result.is_dir() and any(result.iterdir()) and not (result / CURATION_FILE).is_file():
        raise ConfigError(f"output {str(result)!r} holds files but no {CURATION_FILE}: it is not an earlier "
                          "curation result, so it is not replaced; choose an empty or new folder")
    _check_writable_parent(result)


def _check_writable_parent(result: Path) -> None:
    """The result is built beside its folder, in the folder that holds it: a file in its path or
    a folder this user cannot write is said before the faces are read and embedded, not after."""
    above = result.expanduser().absolute().parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"output {str(result)!r}: {above} is a file, not a folder; choose another output")
    try:  # what the system says of a folder made there (a read-only disk, a folder not this user's)
        os.rmdir(tempfile.mkdtemp(prefix=".facekit-probe-", dir=above))
    except OSError as exc:
        raise OutputError(f"cannot write the curation result {result}: {exc.strerror or exc}") from None


def write_result(curation: Curation, source: Path, result: Path, command_input: str | None = None) -> dict[str, Any]:
    """Builds the result beside ``result`` and renames it into place; returns curation.json's content."""
    result = result.expanduser()
    _clear_leftovers(result)
    staging = result.parent / f".{result.name}.curating-{secrets.token_hex(4)}"
    try:
        result.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    except OSError as exc:  # a read-only disk: named by the result the user asked for, not the staging folder
        raise OutputError(f"cannot write the curation result {result}: {exc.strerror or exc}") from None
    try:
        document = _build(curation, source, result, staging, command_input)
        _replace(result, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return document


def _build(curation: Curation, source: Path, result: Path, staging: Path, command_input: str | None) -> dict[str, Any]:
    faces, settings = curation.faces, curation.settings
    names = _flat_names([face.name for face in faces])
    placed: dict[int, str] = {}
    for row in np.flatnonzero(curation.kept):
        folder = cluster_folder(curation.cluster_of(row)) if settings.cluster else FACES_FOLDER
        placed[int(row)] = f"{folder}/{names[row]}"
        _place_face(faces[row], staging, placed[int(row)], settings.copy)
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION, "input": str(source),
                                "settings": settings.as_dict(), "identity": curation.identity}
    if settings.sort is not None:
        document["sorted"] = _write_sorted(curation, staging, names)
    if curation.labels is not None:
        atomic_write_bytes(staging / CLUSTERS_FILE, _clusters_csv(curation))
        document["clusters"] = _clusters(curation, staging, result, placed, command_input)
    document["counts"] = _counts(curation)
    document["faces"] = [_face_entry(curation, row, placed.get(row), source) for row in range(len(faces))]
    atomic_write_bytes(staging / CURATION_FILE, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"))
    return document


def _flat_names(names: list[str]) -> list[str]:
    """Each face's name in a result folder: its written path with folders joined by ``__``
    (a collection's sources reuse frame names), unique."""
    used: set[str] = set()
    flat = []
    for name in names:
        candidate = name.replace("/", "__")
        stem, suffix, n = PurePosixPath(candidate).stem, PurePosixPath(candidate).suffix, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}~{n}{suffix}"
        used.add(candidate)
        flat.append(candidate)
    return flat


def _place_face(face: FaceEntry, staging: Path, relative: str, copy: bool) -> None:
    """The face file at ``relative`` in the result, and each of its mask files (written by
    ``output.mask_format=file``) at masks/<mask>/``relative``, the layout extraction uses."""
    _place(face.path, staging / relative, copy)
    for mask, mask_file in face.mask_files.items():
        _place(mask_file, staging / mask_file_path(mask, relative), copy)


def _place(target: Path | None, link: Path, copy: bool) -> None:
    assert target is not None  # only faces with a file are kept
    link.parent.mkdir(parents=True, exist_ok=True)
    if not copy:
        try:
            os.symlink(target.resolve(), link)
            return
        except OSError as exc:
            log.debug("symlink %s failed (%s); copying", link, exc)
    shutil.copyfile(target, link)


def _write_sorted(curation: Curation, staging: Path, names: list[str]) -> dict[str, Any]:
    key = curation.settings.sort
    assert key is not None
    rows = np.flatnonzero(curation.kept)
    faces = [curation.faces[r] for r in rows]
    values = curation.labels[rows] if key == "identity" else measures(faces, key)
    order = rows[sort_order(key, values, measures(faces, "sharpness"))]
    folder = f"sorted_{key}"
    width = max(4, len(str(len(order))))
    for rank, row in enumerate(order, start=1):
        _place_face(curation.faces[row], staging, f"{folder}/{rank:0{width}d}_{names[row]}", curation.settings.copy)
    return {"by": key, "folder": folder, "faces": len(order)}


def _clusters_csv(curation: Curation) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["face", "cluster"])
    for row, face in enumerate(curation.faces):
        writer.writerow([face.name, curation.cluster_of(row)])
    return text.getvalue().encode("utf-8")


def _clusters(curation: Curation, staging: Path, result: Path, placed: dict[int, str],
              command_input: str | None) -> list[dict[str, Any]]:
    """Each cluster's size, folder, sheet and the command that keeps it (``filter.refs``: the
    faces nearest the cluster's mean embedding, its most typical)."""
    entries = []
    sharpness = measures(curation.faces, "sharpness")
    for label in curation.clusters:
        rows = np.flatnonzero(curation.labels == label)
        entry: dict[str, Any] = {"cluster": label, "faces": len(rows), "kept": int(curation.kept[rows].sum())}
        if curation.settings.cluster:
            entry["folder"] = cluster_folder(label)
            shown = [r for r in rows[np.lexsort((rows, -np.nan_to_num(sharpness[rows], nan=-np.inf)))]
                     if curation.kept[r]]
            if shown:
                sheet = f"{SHEETS_FOLDER}/{cluster_folder(label)}.jpg"
                (staging / SHEETS_FOLDER).mkdir(exist_ok=True)
                atomic_write_bytes(staging / sheet, cluster_sheet(
                    [staging / placed[r] for r in shown],
                    [tile_caption(PurePosixPath(curation.faces[r].key[0]).name, curation.faces[r].file_name) for r in shown]))
                entry["sheet"] = sheet
        entry["refs_command"] = _refs_command(curation, rows, label, command_input)
        entries.append(entry)
    unclustered = curation.unclustered
    if unclustered:
        entries.append({"cluster": UNCLUSTERED, "faces": unclustered,
                        "kept": int(curation.kept[curation.labels == UNCLUSTERED].sum())})
    return entries


def _refs_command(curation: Curation, rows: np.ndarray, label: int, command_input: str | None) -> str:
    unit = curation.unit[rows]
    centre = unit.mean(axis=0)
    typical = rows[np.lexsort((rows, -(unit @ centre)))][:REFS_PER_COMMAND]
    refs = ",".join(_item(str(curation.faces[r].path.resolve())) for r in sorted(typical))
    # the identity plugin the clusters were made with: run as printed, the filter is that person's by it
    plugin = [shlex.quote(f"+identity={curation.identity}")] if curation.identity else []
    return " ".join(["facekit", shlex.quote(f"input={command_input or 'INPUT'}"),
                     shlex.quote(f"output={cluster_folder(label)}_faces"), *plugin, shlex.quote(f"filter.refs=[{refs}]")])


def _item(path: str) -> str:
    """A path as a list item Hydra reads back as the path: quoted where it holds a comma, a space,
    a bracket or a quote ("Smith, John/img20_0.png" read as two paths)."""
    return hydra_quoted(path) if re.search(r"""[\s,\[\]{}()'"=:\\$]""", path) else path


#: The measures each face's entry in curation.json carries, as its alignments entry held them.
ENTRY_MEASURES = ("yaw", "pitch", "roll", "sharpness", "face_px", "misalignment")

#: A drop reason's kind, by how its text begins: one key of ``counts.dropped`` (and one column of
#: a curation sweep's report) a kind, whatever file, distance or N its text names.
DROP_KINDS = (("duplicate of", "duplicate"), ("not among best", "not_among_best"), ("unclustered", "unclustered"),
              ("rejected at extraction", "rejected_at_extraction"), ("unreadable", "unreadable"),
              (NO_FILE, "no_face_file"))


def drop_kind(reason: str | None) -> str:
    """``not_among_best`` for "not among best 3"; a reason of no known kind, as written up to its detail."""
    text = reason or ""
    found = next((kind for start, kind in DROP_KINDS if text.startswith(start)), None)
    return found or text.split(" (")[0].split(":")[0].replace(" ", "_")


def _counts(curation: Curation) -> dict[str, Any]:
    dropped: dict[str, int] = {}
    for row in np.flatnonzero(~curation.kept):
        kind = drop_kind(curation.reasons[row])
        dropped[kind] = dropped.get(kind, 0) + 1
    return {"faces": len(curation.faces), "kept": int(curation.kept.sum()), "dropped": dict(sorted(dropped.items())),
            "clusters": len(curation.clusters)}


def _face_entry(curation: Curation, row: int, placed: str | None, source: Path) -> dict[str, Any]:
    face = curation.faces[row]
    found = face.path.relative_to(source).as_posix() if face.path is not None else None
    return {"face": face.name, "file": found, "result": placed, "cluster": curation.cluster_of(row),
            "kept": bool(curation.kept[row]), "reason": curation.reasons[row],
            "source": face.key[0], "frame": face.key[1], "index": face.key[2],
            **{measure: _json_number(getattr(face, measure)) for measure in ENTRY_MEASURES}}


def _json_number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def _clear_leftovers(result: Path) -> None:
    """What a curation killed before it ended (SIGKILL: no cleanup ran) left beside ``result``: a
    half-built staging folder goes; an earlier result moved aside goes too, or comes back when
    the kill came before the new one stood in its place (no result there now)."""
    if not result.parent.is_dir():
        return
    for left in sorted(result.parent.glob(f".{glob.escape(result.name)}.replaced-*")):
        if not result.exists():
            os.replace(left, result)
        else:
            shutil.rmtree(left, ignore_errors=True)
    for left in result.parent.glob(f".{glob.escape(result.name)}.curating-*"):
        shutil.rmtree(left, ignore_errors=True)


def _replace(result: Path, staging: Path) -> None:
    """``staging`` becomes ``result``; an earlier result (``check_target`` allowed it) is moved
    aside first and removed once the new one stands."""
    old = None
    if result.exists():
        old = result.parent / f".{result.name}.replaced-{secrets.token_hex(4)}"
        os.replace(result, old)
    try:
        os.replace(staging, result)
    except BaseException:
        if old is not None:
            os.replace(old, result)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
