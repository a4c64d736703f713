"""A model id names its files and where to find them, in order of preference."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFile:
    """One weights file. ``sha256`` may be None for a published file with no known checksum:
    the store records it on first download and verifies it from then on."""

    name: str
    sha256: str | None
    size: int | None = None
    url: str | None = None  # download source; None when only a package ships it
    # When the URL serves a zip (as faceswap's model releases do): the file is the archive member
    # whose base name is ``name``; the archive itself is not kept.
    archive: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """Sources, in order: the user cache, ``package``'s ``package_dir`` resource, each file's URL.

    ``package`` is located with importlib without importing it (some packages that ship weights
    fail to import under NumPy 2).
    """

    id: str
    files: tuple[ModelFile, ...]
    version: str = "1"
    package: str | None = None
    package_dir: str = ""
    description: str = ""

    def file(self, name: str) -> ModelFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"model {self.id!r} has no file {name!r}")
