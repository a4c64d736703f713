"""pluggy hook specifications: how built-in and third-party packages add plugins and models.

A package exposes a module through the ``facekit`` entry-point group; that module implements
any of these hooks with ``@facekit.hookimpl``.
"""
from __future__ import annotations

import pluggy

from facekit.models.spec import ModelSpec
from facekit.plugin.spec import PluginSpec

PROJECT = "facekit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def facekit_detectors() -> list[PluginSpec]:  # type: ignore[empty-body]
    """Detector plugins this module provides."""


@hookspec
def facekit_aligners() -> list[PluginSpec]:  # type: ignore[empty-body]
    """Aligner plugins this module provides."""


@hookspec
def facekit_identities() -> list[PluginSpec]:  # type: ignore[empty-body]
    """Identity (embedding) plugins this module provides."""


@hookspec
def facekit_maskers() -> list[PluginSpec]:  # type: ignore[empty-body]
    """Masker plugins this module provides (``output.masks=[NAME]``)."""


@hookspec
def facekit_models() -> list[ModelSpec]:  # type: ignore[empty-body]
    """Model ids (files, checksums, sources) this module's plugins need."""
