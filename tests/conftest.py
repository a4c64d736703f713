"""Shared fixtures: the shared test data folder and a place for the model cache."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SCENES = DATA / "images" / "scenes"


def require_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA}")
    return DATA


@pytest.fixture
def data() -> Path:
    return require_data()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty model cache, so nothing depends on a developer's machine."""
    home = tmp_path_factory.mktemp("facekit_home")
    monkeypatch.setenv("FACEKIT_HOME", str(home))
    return home
