"""Everything a plugin author uses, in one import::

    from facekit.plugin import Detection, ModelFile, ModelSpec, PluginSpec, hookimpl

The declaration (``PluginSpec`` and the model protocols), the hook marker, the records a model
returns, model files and errors, and the helpers plugins share (``geometry``, ``resize``,
``atomic_write_bytes``, ``derived_model``). ``geometry`` loads OpenCV, so it is imported on first
use: importing a plugin module stays cheap.
"""
from __future__ import annotations

from typing import Any

from facekit.errors import ConfigError, FacekitError, ModelError
from facekit.fileio import atomic_write_bytes
from facekit.models.derived import derived_model
from facekit.models.spec import ModelFile, ModelSpec
from facekit.plugin.hookspecs import hookimpl
from facekit.plugin.spec import (PLUGIN_KINDS, Aligner, Detector, IdentityModel, Masker, PluginKind, PluginSpec,
                                 PoseAligner)
from facekit.records import Detection, Face, MaskRequest

__all__ = [
    "PLUGIN_KINDS", "Aligner", "ConfigError", "Detection", "Detector", "Face", "FacekitError", "IdentityModel",
    "Masker", "MaskRequest", "ModelError", "ModelFile", "ModelSpec", "PluginKind", "PluginSpec", "PoseAligner",
    "atomic_write_bytes", "derived_model",
    "geometry", "hookimpl", "resize",
]


def __getattr__(name: str) -> Any:
    if name in ("geometry", "resize"):
        import importlib

        module = globals()[name] = importlib.import_module(f"facekit.imaging.{name}")  # asked once: plugins
        return module  # import it per face, and a module __getattr__ call costs an import's lookup each time
    raise AttributeError(f"module 'facekit.plugin' has no attribute {name!r}")
