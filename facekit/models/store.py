"""Finds a model's files: the user cache, then an installed package, then a download.

(Minimal version: cache and package lookup. Downloads land in a later change.)
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal, Mapping

import platformdirs

from facekit.errors import ModelError
from facekit.models.spec import ModelSpec

WeightsState = Literal["present", "downloadable", "missing"]


def default_cache_dir() -> Path:
    """``$FACEKIT_HOME`` if set, else the XDG user cache (``~/.cache/facekit``)."""
    home = os.environ.get("FACEKIT_HOME")
    return Path(home) if home else Path(platformdirs.user_cache_dir("facekit"))


def package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


class ModelStore:
    def __init__(self, specs: Mapping[str, ModelSpec], cache_dir: Path | None = None,
                 offline: bool = False) -> None:
        self.specs = dict(specs)
        self.cache_dir = cache_dir or default_cache_dir()
        self.offline = offline

    def spec(self, model_id: str) -> ModelSpec:
        try:
            return self.specs[model_id]
        except KeyError:
            raise ModelError(f"unknown model id {model_id!r}; known: {', '.join(sorted(self.specs))}") from None

    def path(self, model_id: str, file_name: str | None = None) -> Path:
        spec = self.spec(model_id)
        name = file_name or spec.files[0].name
        cached = self.cache_dir / "models" / model_id / name
        if cached.is_file():
            return cached
        if spec.package:
            root = package_dir(spec.package)
            if root is not None and (root / spec.package_dir / name).is_file():
                return root / spec.package_dir / name
        raise ModelError(f"model {model_id!r}: {name} not found; put it in {cached.parent}")
