"""Shared fixtures: the shared test data folder, a place for the model cache, and CLI runs that
serve every module asking for the same input and settings."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The test tree mirrors the packages, one folder each; a test may use another folder's helpers
# (test_s3fd's weight writer, say), so every folder is importable by its modules' plain names.
sys.path[1:1] = [str(folder) for folder in sorted(Path(__file__).parent.iterdir())
                 if folder.is_dir() and not folder.name.startswith((".", "_"))]
SCENES = DATA / "images" / "scenes"

from cli_helpers import file_hashes, load_json, run_facekit  # noqa: E402 (needs the folders on the path)


def require_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA}")
    return DATA


@pytest.fixture
def data() -> Path:
    return require_data()


@pytest.fixture(scope="session")
def session_derived(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``derived/`` folder (models facekit rewrites from the packaged ones: YuNet folded to
    float, SFace converted to LiteRT) for the whole session: SFace's conversion takes about 10 s,
    and each test would otherwise pay it again. Under pytest-xdist the processes of one run share
    it (their temporary folders sit side by side), since facekit makes a derived model under a
    file lock, once. The tests of the conversion itself use folders of their own."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "derived"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("derived")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                   session_derived: Path) -> Path:
    """Every test gets its own empty model cache, so nothing depends on a developer's machine;
    only the derived models are shared (``session_derived``)."""
    home = tmp_path_factory.mktemp("facekit_home")
    (home / "derived").symlink_to(session_derived, target_is_directory=True)
    monkeypatch.setenv("FACEKIT_HOME", str(home))
    return home


@dataclass(frozen=True)
class Extraction:
    """A finished CLI run: its output folder (read it, never write into it: other tests read it
    too), what it printed, its alignments file and its face files' hashes."""

    out: Path
    result: subprocess.CompletedProcess[str]
    alignments: dict
    files: dict[str, str]


@pytest.fixture(scope="session")
def extraction(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Extraction]:
    """``extraction(*args)``: the CLI run of ``args`` (the input and settings; the output folder is
    its own, progress bars off), run once a session and served to every test that asks for the
    same arguments, in whichever module. Each run has a model and analysis cache of its own, so
    no run is served another's results."""
    runs: dict[tuple[str, ...], Extraction] = {}

    def extract(*args: str) -> Extraction:
        if args not in runs:
            work = tmp_path_factory.mktemp("extraction")
            out = work / "faces"
            result = run_facekit(*args, f"output={out}", "runner.progress=false", cwd=work,
                                 env={"FACEKIT_HOME": str(work / "facekit_home")})
            assert result.returncode == 0, result.stderr
            runs[args] = Extraction(out, result, load_json(out / "alignments.json"), file_hashes(out, "*.png"))
        return runs[args]

    return extract


@pytest.fixture
def collected() -> list[logging.LogRecord]:
    """What the calling process's handler on the 'relay_test' logger (WARNING and above) receives:
    where workers' log records are replayed (``facekit.log_relay``)."""
    received: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = received.append
    logger = logging.getLogger("relay_test")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    yield received
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
