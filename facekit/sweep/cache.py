"""Detections, landmarks, embeddings and per-face measures kept per input, so a sweep computes them once.

A sweep over ``filter.threshold`` (or ``output.size``) changes nothing the models compute, so the
first job stores its analysis and the others restore it instead of running any model. The key
covers everything that decides the analysis: the input's bytes, the plugins' names and configs,
and their models' versions and checksums; change any of them and the key changes. Parallel jobs
(joblib) share one entry safely: the first takes the entry's lock and computes it, the others
wait on the lock and then read it.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from filelock import FileLock

from facekit.output.alignments import face_from_dict, record_to_dict
from facekit.fileio import atomic_write_bytes
from facekit.fileio import file_sha256
from facekit.records import Face, FrameRecord

FORMAT = "facekit-analysis"
VERSION = 1


def content_key(files: Iterable[Path], fingerprint: Any) -> str:
    """sha256 over each file's name and bytes and the plugins' fingerprint."""
    digest = hashlib.sha256(f"{FORMAT}/{VERSION}".encode())
    for path in files:
        digest.update(path.name.encode("utf-8", "surrogateescape"))
        digest.update(file_sha256(path).encode())
    digest.update(json.dumps(fingerprint, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class AnalysisCache:
    """One entry per key under ``folder``: ``<key>.jsonl`` once complete, ``.partial`` before."""

    def __init__(self, folder: Path, key: str) -> None:
        self.folder = folder
        self.key = key
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{key}.jsonl"
        self.partial = folder / f"{key}.jsonl.partial"

    @contextmanager
    def locked(self) -> Iterator[AnalysisCache]:
        """Held from the lookup until the entry is written, so parallel jobs compute it once."""
        with FileLock(str(self.folder / f"{self.key}.lock")):
            yield self

    def load(self) -> dict[str, dict[str, Any]] | None:
        """Frame name -> alignments-style entry, or None when there is no complete entry."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        header = json.loads(lines[0]) if lines else {}
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            return None
        entries = (json.loads(line) for line in lines[1:])
        return {entry.pop("name"): entry for entry in entries}

    @contextmanager
    def writing(self) -> Iterator[_EntryWriter]:
        """Collects frames as they finish; ``commit()`` makes the entry visible."""
        writer = _EntryWriter(self)
        try:
            yield writer
        finally:
            writer.close()


class _EntryWriter:
    def __init__(self, cache: AnalysisCache) -> None:
        self.cache = cache
        self.handle = cache.partial.open("w", encoding="utf-8")
        self.handle.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")

    def add(self, record: FrameRecord) -> None:
        entry = record_to_dict(record)
        for face in entry["faces"]:  # the analysis only: what a job decides or writes stays out
            for key in ("crop", "crop_sha256", "crop_bytes", "keep", "reason", "distance", "mask"):
                face.pop(key, None)
        self.handle.write(json.dumps({"name": record.frame.name, **entry}, separators=(",", ":")) + "\n")

    def commit(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.cache.partial, self.cache.path)

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.cache.partial.unlink(missing_ok=True)


def restore_faces(entry: dict[str, Any]) -> list[Face]:
    """Faces from a cached entry: detection, landmarks, embedding and the measures (pose,
    face_px, misalignment, sharpness, so a replay computes none), nothing a job decided."""
    return [face_from_dict(face) for face in entry["faces"]]


class ReferenceCache:
    """Reference photos' embeddings, keyed like the analysis, so cached jobs load no model."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "refs"
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> list[float] | None:
        try:
            return json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def put(self, key: str, embedding: list[float]) -> None:
        atomic_write_bytes(self.folder / f"{key}.json", json.dumps(embedding).encode())
