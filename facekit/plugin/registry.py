"""Discovers plugins and model ids through pluggy and the ``facekit`` entry-point group."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import math
from functools import cache
from typing import Any, Iterable, Iterator

import pluggy
from omegaconf import DictConfig, OmegaConf

from facekit.plugin import hookspecs
from facekit.errors import ConfigError
from facekit.models.spec import ModelSpec
from facekit.plugin.spec import DISTANCE_METRICS, MASKER_NEEDS, PLUGIN_KINDS, PluginKind, PluginSpec

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
        self._origins: dict[tuple[str, str], str] = {}  # (kind, name): the package module that declared it
        for kind, hook_name in _HOOK_BY_KIND.items():
            for package, spec in _answers(manager, hook_name):
                self._add(kind, spec, package)
        self.models: dict[str, ModelSpec] = {m.id: m for _, m in _answers(manager, "facekit_models")}

    def _add(self, kind: str, spec: PluginSpec, package: str) -> None:
        """One declared plugin; one a package declares wrongly is skipped with a warning naming
        the package, so it cannot take every command down, ``--help`` included."""
        if not isinstance(spec, PluginSpec) or spec.kind != kind:
            said = f"kind {spec.kind!r}" if isinstance(spec, PluginSpec) else f"a {type(spec).__name__}"
            log.warning("package %s: its %s hook gave %s, not a %s PluginSpec; skipped", package,
                        _HOOK_BY_KIND[kind], said, kind)
            return
        fault = _config_class_fault(spec.config_class, kind) or _needs_fault(spec) or (
            _identity_declaration_fault(spec) if kind == "identity" else None)
        if fault is not None:
            log.warning("package %s: %s %r skipped: %s", package, kind, spec.name, fault)
            return
        earlier = self._origins.get((kind, spec.name))
        if earlier is not None:
            log.warning("two %s plugins are named %r, from %s and from %s; %s's is used", kind, spec.name, earlier,
                        package, package)
        self.plugins[kind][spec.name] = spec
        self._origins[(kind, spec.name)] = package

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
        computed = {f.name for f in dataclasses.fields(spec.config_class) if not f.init}
        values = {k: v for k, v in dict(node or {}).items() if k != "name" and k not in computed}
        try:
            schema = OmegaConf.structured(spec.config_class)
        except Exception as exc:  # a type OmegaConf cannot check (Literal, a union): the plugin's to mend
            raise ConfigError(f"{spec.kind} {spec.name}: its config class cannot be checked: {_first_line(exc)}; "
                              "its options may be of bool, int, float, str, Enum, lists and dicts of them, "
                              "Optional") from None
        try:
            merged = OmegaConf.merge(schema, values)
        except Exception as exc:  # omegaconf raises several types; all mean a bad value
            fields = ", ".join(f.name for f in dataclasses.fields(spec.config_class)) or "no options"
            raise ConfigError(f"{spec.kind} {spec.name}: {_first_line(exc)} (it takes: {fields})") from None
        try:
            config = OmegaConf.to_object(merged)
            # to_object sets a computed field (init=False) after __post_init__, to its default: made again
            return dataclasses.replace(config) if computed else config
        except ValueError as exc:  # its own range checks (facekit.plugin.options)
            raise ConfigError(f"{spec.kind} {spec.name}: {exc}") from None

    def config_node(self, spec: PluginSpec) -> dict[str, Any]:
        """The Hydra config node of a plugin: its name plus its options' defaults. A field its
        config computes (``field(init=False)``, set in ``__post_init__``) is no option: written
        into the node, the default's value came back over the one computed from the options."""
        defaults = dataclasses.asdict(spec.config_class())
        return {"name": spec.name, **{f.name: defaults[f.name] for f in dataclasses.fields(spec.config_class) if f.init}}


def _config_class_fault(config_class: Any, kind: str) -> str | None:
    """What keeps a config class from being a plugin's options, or None. Every command makes each
    plugin's config node from its defaults, so they must make one."""
    if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
        return f"its config class {config_class!r} is not a dataclass"
    if any(f.name == "name" for f in dataclasses.fields(config_class)):
        return (f"its config class has an option called 'name', which is the plugin's own name in the config "
                f"(+{kind}=NAME); call it something else")
    try:
        config_class()
    except Exception as exc:  # noqa: BLE001 - foreign code
        return f"its config class {config_class.__name__} cannot be made from its defaults ({_first_line(exc)})"
    return None


def _needs_fault(spec: PluginSpec) -> str | None:
    """What a plugin says it needs that facekit does not give, or None."""
    unknown = sorted(set(spec.needs) - set(MASKER_NEEDS))
    return (f"it needs {', '.join(map(repr, unknown))}, which facekit does not give (it gives: "
            f"{', '.join(MASKER_NEEDS)})") if unknown else None


def _identity_declaration_fault(spec: PluginSpec) -> str | None:
    """What is wrong with an identity plugin's ``metric`` and ``default_threshold``, or None: a
    filter would fail on them later, blaming the user's threshold."""
    if spec.metric is not None and spec.metric not in DISTANCE_METRICS:
        return f"its metric {spec.metric!r} is none of {', '.join(DISTANCE_METRICS)}"
    threshold = spec.default_threshold
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not math.isfinite(threshold) or threshold < 0):
        return f"its default_threshold {threshold!r} is not a distance (a number >= 0)"
    return None


def _answers(manager: pluggy.PluginManager, hook_name: str) -> Iterator[tuple[str, Any]]:
    """(package, item) for each item each package's ``hook_name`` hook gives, in pluggy's order
    (the last registered first). A hook that raises is skipped with a warning naming its package:
    one broken package must not take the others down."""
    for implementation in reversed(getattr(manager.hook, hook_name).get_hookimpls()):
        try:
            answer = implementation.function()
            items = list(answer) if answer else []
        except Exception as exc:  # noqa: BLE001 - foreign code
            log.warning("package %s: its %s hook failed, skipped: %s: %s", implementation.plugin_name, hook_name,
                        type(exc).__name__, _first_line(exc))
            continue
        for item in items:
            yield implementation.plugin_name, item


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
        try:
            module = entry.load()
        except Exception as exc:  # any import-time failure of foreign code
            log.warning("plugin entry point %r (%s) failed to load, skipped: %s",
                        entry.name, entry.value, _first_line(exc))
            continue
        if manager.is_registered(module):  # the same module found twice on the path
            continue
        # entry point names are each package's own: another package's "yunet" must not hide the
        # built-in one, so a name taken already registers under the module's path
        manager.register(module, name=entry.name if manager.get_plugin(entry.name) is None else entry.value)


@cache
def default_registry() -> PluginRegistry:
    """The registry of everything installed; built once per process."""
    return PluginRegistry(new_plugin_manager())
