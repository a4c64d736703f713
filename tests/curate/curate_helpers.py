"""Extraction outputs the curation tests share (the people set, the clip's first seconds), each
extracted once per session with the default plugins through the command line, and helpers to
run curation and read its result."""
from __future__ import annotations

import csv
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_facekit
from conftest import DATA, require_data

PEOPLE = DATA / "images" / "people"
CLIP = DATA / "video" / "short_hamilton_clip.mp4"

_extracted: dict[str, Path] = {}


def extract(tmp_path: Path, source: Path, *extra: str) -> Path:
    output = tmp_path / "extracted"
    result = run_facekit(f"input={source}", f"output={output}", "runner.progress=false", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    return output


def shared_extraction(name: str, factory: pytest.TempPathFactory) -> Path:
    """``people``: the 27 portraits, one source per person's folder (a collection); ``clip``:
    the clip's first 3 seconds (90 frames, 2-3 faces each). Once per session: the curation
    tests only read them."""
    require_data()
    if name not in _extracted:
        source, extra = {"people": (PEOPLE, ()), "clip": (CLIP, ("sample.end=3",))}[name]
        _extracted[name] = extract(factory.mktemp(name), source, *extra)
    return _extracted[name]


def curate(tmp_path: Path, source: Path, *settings: str, out: str = "curated") -> Path:
    result_dir = tmp_path / out
    result = curate_run(tmp_path, source, *settings, out=out)
    assert result.returncode == 0, result.stderr[-4000:]
    return result_dir


def curate_run(tmp_path: Path, source: Path, *settings: str, out: str = "curated") -> subprocess.CompletedProcess[str]:
    return run_facekit("task=curate", f"input={source}", f"output={tmp_path / out}", *settings, cwd=tmp_path)


def clusters_csv(result_dir: Path) -> dict[str, int | None]:
    """Each face's cluster (-1 unclustered; None: clustering did not take it)."""
    with (result_dir / "clusters.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and list(rows[0]) == ["face", "cluster"]
    return {row["face"]: int(row["cluster"]) if row["cluster"] else None for row in rows}


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and link under ``root``: its content's sha256, or the link's target, with its mode."""
    digest = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest[rel] = "-> " + os.readlink(path)
            else:
                digest[rel] = f"{oct(path.stat().st_mode)} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return digest
