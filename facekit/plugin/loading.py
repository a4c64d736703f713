"""A plugin found by name and built from its config, in whichever process runs its stage."""
from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import Any, Mapping, Sequence

from facekit.errors import FacekitError, ModelError
from facekit.models.store import ModelStore
from facekit.plugin.registry import PluginRegistry, default_registry
from facekit.plugin.spec import PluginKind, PluginSpec


class LoadedPlugin:
    """A plugin's declaration and config; the model is built on first use, so a run that finds
    everything in the analysis cache never loads a model at all."""

    def __init__(self, spec: PluginSpec, config: Any, store: ModelStore) -> None:
        self.spec, self.config, self._store = spec, config, store

    @cached_property
    def model(self) -> Any:
        """The built model. A factory's own failure names the plugin (facekit's errors, such as
        missing weights, say what they say): it was a traceback, or "stage failed" in a worker."""
        try:
            return self.spec.factory(self.config, self._store)
        except FacekitError:
            raise
        except Exception as exc:  # noqa: BLE001 - foreign code
            raise ModelError(f"{self.label} could not be built: {type(exc).__name__}: {exc}") from exc

    @property
    def batch_size(self) -> int:
        """The batch the plugin's stage receives: its config's ``batch_size`` when it has one
        (``detector.batch_size=8``), else the spec's."""
        return max(1, int(getattr(self.config, "batch_size", self.spec.batch_size)))

    @property
    def gpu_memory_mb(self) -> int:
        """GPU memory at the configured batch: the spec's figure is for its default batch."""
        if self.spec.gpu_memory_mb == 0:
            return 0
        extra = self.spec.gpu_memory_per_item_mb * (self.batch_size - self.spec.batch_size)
        return max(1, self.spec.gpu_memory_mb + extra)

    @property
    def label(self) -> str:
        """How messages name it: ``detector 'yunet'``."""
        return f"{self.spec.kind} {self.spec.name!r}"

    def __reduce__(self) -> tuple[Any, ...]:
        """In a worker process the plugin is found again by name in that process's registry and
        built from its config values: a spec's factory may be a lambda, which cannot be pickled,
        and a built model (an interpreter, a session) cannot travel at all."""
        return (_plugin_in_this_process, (self.spec.kind, self.spec.name, dataclasses.asdict(self.config), self._store))

    def ensure_weights(self) -> None:
        """Finds (or downloads) the weights without building the model."""
        for model_id in self.spec.model_ids:
            if model_id not in self._store.specs:
                raise ModelError(f"{self.label} needs model {model_id!r}, which no installed package declares "
                                 "(a facekit_models hook gives a ModelSpec of that id)")
            self._store.ensure(model_id)

    def fingerprint(self) -> dict[str, Any]:
        """What decides this plugin's output: name, config, and its models' versions and files."""
        models = [self._store.spec(m) for m in self.spec.model_ids if m in self._store.specs]
        return {"name": self.spec.name, "config": dataclasses.asdict(self.config),
                "models": {m.id: [m.version, *(f.sha256 for f in m.files)] for m in models}}


def ensure_all_weights(plugins: Sequence[LoadedPlugin]) -> None:
    """Every plugin's weights found (or downloaded); what is missing is named all at once, so a
    user who lacks two models fetches both before the next try, not one per try."""
    problems = []
    for plugin in plugins:
        try:
            plugin.ensure_weights()
        except ModelError as exc:
            problems.append(str(exc))
    if len(problems) > 1:
        raise ModelError(f"{len(problems)} models are missing: " + "; ".join(problems))
    if problems:
        raise ModelError(problems[0])


def load_plugin(registry: PluginRegistry, store: ModelStore, kind: PluginKind, name: str,
                options: Mapping[str, Any] | None = None) -> LoadedPlugin:
    """A plugin from its name and config values; runs in whichever process needs it."""
    spec = registry.get(kind, name)
    if options is not None and not isinstance(options, Mapping):  # a DictConfig is one
        raise TypeError(f"{kind} {name}'s options are a mapping of option names to values "
                        f"({kind}_options={{'name': value}}), not {type(options).__name__}")
    return LoadedPlugin(spec, registry.build_config(spec, options), store)


def _plugin_in_this_process(kind: PluginKind, name: str, options: dict[str, Any], store: ModelStore) -> LoadedPlugin:
    return load_plugin(default_registry(), store, kind, name, options)
