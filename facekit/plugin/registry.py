"""Discovers plugins and model ids through pluggy and the ``facekit`` entry-point group."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from functools import cache
from typing import Any, Iterable

import pluggy
from omegaconf import DictConfig, OmegaConf

from facekit.plugin import hookspecs
from facekit.errors import ConfigError
from facekit.models.spec import ModelSpec
from facekit.plugin.spec import PLUGIN_KINDS, PluginKind, PluginSpec

log = logging.getLogger(__name__)

_HOOK_BY_KIND = {
    "detector": "facekit_detectors",
    "aligner": "facekit_aligners",
    "identity": "facekit_identities",
    "masker": "facekit_maskers",
}


class PluginRegistry:
    """Every plugin and model id that the installed packages provide."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self.plugins: dict[PluginKind, dict[str, PluginSpec]] = {k: {} for k in PLUGIN_KINDS}
        for kind, hook_name in _HOOK_BY_KIND.items():
            for spec in _flatten(getattr(manager.hook, hook_name)()):
                self._add(kind, spec)
        self.models: dict[str, ModelSpec] = {m.id: m for m in _flatten(manager.hook.facekit_models())}

    def _add(self, kind: str, spec: PluginSpec) -> None:
        if spec.kind != kind:
            raise ConfigError(f"plugin {spec.name!r} says kind {spec.kind!r} but came from the {kind} hook")
        if spec.name in self.plugins[kind]:
            log.warning("two %s plugins are named %r; the later one wins", kind, spec.name)
        self.plugins[kind][spec.name] = spec

    def names(self, kind: PluginKind) -> list[str]:
        return sorted(self.plugins[kind])

    def get(self, kind: PluginKind, name: str) -> PluginSpec:
        try:
            return self.plugins[kind][name]
        except KeyError:
            raise ConfigError(
                f"unknown {kind} {name!r}; choose one of: {', '.join(self.names(kind)) or '(none installed)'}"
            ) from None

    def all(self) -> Iterable[PluginSpec]:
        for kind in PLUGIN_KINDS:
            yield from (self.plugins[kind][n] for n in self.names(kind))

    def build_config(self, spec: PluginSpec, node: DictConfig | dict | None) -> Any:
        """The plugin's config dataclass filled from a config node, type-checked by OmegaConf."""
        schema = OmegaConf.structured(spec.config_class)
        values = {k: v for k, v in dict(node or {}).items() if k != "name"}
        try:
            merged = OmegaConf.merge(schema, values)
        except Exception as exc:  # omegaconf raises several types; all mean a bad value
            fields = ", ".join(f.name for f in dataclasses.fields(spec.config_class)) or "no options"
            raise ConfigError(f"{spec.kind} {spec.name}: {_first_line(exc)} (it takes: {fields})") from None
        try:
            return OmegaConf.to_object(merged)
        except ValueError as exc:  # its own range checks (facekit.plugin.options)
            raise ConfigError(f"{spec.kind} {spec.name}: {exc}") from None

    def config_node(self, spec: PluginSpec) -> dict[str, Any]:
        """The Hydra config node of a plugin: its name plus its config defaults."""
        return {"name": spec.name, **dataclasses.asdict(spec.config_class())}


def _flatten(results: Iterable[Iterable[Any] | None]) -> list[Any]:
    return [item for result in results if result for item in result]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def new_plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    load_entry_points(manager)
    return manager


def load_entry_points(manager: pluggy.PluginManager) -> None:
    """Register every ``facekit`` entry point. Unlike pluggy's own loader, one broken
    third-party package is skipped with a warning instead of taking every plugin down."""
    for entry in importlib.metadata.entry_points(group=hookspecs.PROJECT):
        if manager.get_plugin(entry.name) is not None:
            continue
        try:
            manager.register(entry.load(), name=entry.name)
        except Exception as exc:  # any import-time failure of foreign code
            log.warning("plugin entry point %r (%s) failed to load, skipped: %s",
                        entry.name, entry.value, _first_line(exc))


@cache
def default_registry() -> PluginRegistry:
    """The registry of everything installed; built once per process."""
    return PluginRegistry(new_plugin_manager())
