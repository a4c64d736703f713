"""facekit: photos and videos in, aligned face crops and an alignments file out.

``facekit.Extractor`` is the library entry point (faces, landmarks, crops and, with an identity
plugin, embeddings); ``distance``, ``compare`` and ``IdentityFilter`` judge identity as the CLI's
filter does; ``collection`` reads a tree of sources; ``hookimpl`` marks a plugin's hooks.
"""
from __future__ import annotations

from typing import Any

from facekit import moved
from facekit.errors import FacekitError  # what every failure a user can act on raises

moved.install()  # old import paths (facekit.types, facekit.hookspecs, ...) work for one more release

__version__ = "0.2.0"
__all__ = ["Extractor", "FacekitError", "IdentityFilter", "collection", "compare", "distance", "hookimpl",
           "__version__"]
_IDENTITY_API = frozenset({"IdentityFilter", "compare", "distance"})


def __getattr__(name: str) -> Any:
    # Imported on first use so that "import facekit" in a plugin module stays cheap.
    if name == "Extractor":
        from facekit.faces.extractor import Extractor

        return Extractor
    if name in _IDENTITY_API:
        from facekit.faces import api

        return getattr(api, name)
    if name == "hookimpl":  # importing the plugin layer loads numpy: not before a plugin asks
        from facekit.plugin.hookspecs import hookimpl

        return hookimpl
    if name == "collection":  # every frame of a tree of videos and photo folders, with its source
        from facekit.media.collection import collection

        return collection
    raise AttributeError(f"module 'facekit' has no attribute {name!r}")
