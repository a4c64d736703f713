"""Shared fixtures: the shared test data folder and a place for the model cache."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The test tree mirrors the packages, one folder each; a test may use another folder's helpers
# (test_s3fd's weight writer, say), so every folder is importable by its modules' plain names.
sys.path[1:1] = [str(folder) for folder in sorted(Path(__file__).parent.iterdir())
                 if folder.is_dir() and not folder.name.startswith((".", "_"))]
SCENES = DATA / "images" / "scenes"


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
    and each test would otherwise pay it again. The tests of the conversion itself use folders of
    their own."""
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
