"""facekit: photos and videos in, aligned face crops and an alignments file out.

``facekit.Extractor`` is the library entry point; ``facekit.hookimpl`` marks a plugin's hooks.
"""
from __future__ import annotations

from typing import Any

from facekit import moved
from facekit.plugin.hookspecs import hookimpl

moved.install()  # old import paths (facekit.types, facekit.hookspecs, ...) work for one more release

__version__ = "0.2.0"
__all__ = ["Extractor", "collection", "hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use so that "import facekit" in a plugin module stays cheap.
    if name == "Extractor":
        from facekit.faces.extractor import Extractor

        return Extractor
    if name == "collection":  # every frame of a tree of videos and photo folders, with its source
        from facekit.media.collection import collection

        return collection
    raise AttributeError(f"module 'facekit' has no attribute {name!r}")
