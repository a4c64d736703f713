"""What a collection's sources' outputs depend on, as ``collection.json`` records it: a done
source is skipped on a rerun only when these are equal, and a rerun with other ones is refused.

They are compared as the run uses them, not as they were typed: ``+detector=yunet`` (the default
plugin named), ``detector.score_threshold=0.6`` (its default) or ``output.padding=0.15`` is the
same run as the plain command, and a refusal names the option that differs, never the whole
plugin node a plain command leaves unset.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

from facekit.imaging.geometry import DEFAULT_PADDING
from facekit.media.sampling import parse_time
from facekit.output.reference_digests import references_by_content
from facekit.plugin.registry import default_registry

#: The plugin nodes whose effective options a collection's settings hold (a masker's are its
#: masks' own entry).
_PLUGIN_NODES = ("detector", "aligner", "identity")

#: What changes no source's output: how a run is scheduled and checked, where weights and caches
#: live, which sources it reads, and the other tasks' own nodes.
_NOT_SETTINGS = ("task", "input", "runner", "models", "cache", "collection", "resume", "curate", "mask", "recrop")


def collection_settings(cfg: DictConfig) -> dict[str, Any]:
    """The config less ``_NOT_SETTINGS`` and ``output.dir`` / ``output.save_every``: a done
    source is skipped on a rerun only when these are equal."""
    settings = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(settings, dict)
    for key in _NOT_SETTINGS:
        settings.pop(key, None)
    for key in ("dir", "save_every"):
        settings.get("output", {}).pop(key, None)
    return effective_settings(references_by_content(json.loads(json.dumps(settings, default=str))))


def default_settings() -> dict[str, Any] | None:
    """``collection_settings`` of a command that sets nothing: what a key an older facekit did not
    have yet meant there (a key added later, such as ``output.masks``, defaults to what that
    version did). None outside a composed run (Hydra not initialised)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if not GlobalHydra.instance().is_initialized():
        return None
    return collection_settings(compose(config_name="config"))


def effective_settings(settings: Any) -> Any:
    """``settings`` (a collection's, as ``collection_settings`` gives them or an earlier
    ``collection.json`` holds them) with each plugin node the plugin the run uses and every one of
    its options (the default plugin where none was named, each option's default where unset),
    ``default_plugins`` folded into them, the identity plugin only where a filter or
    ``output.embeddings`` runs it, ``output.padding``'s default written out, and ``sample``'s
    times in seconds however they were typed (``00:01:02.5`` is 62.5). A node whose
    plugin or options are unknown here is left as written."""
    if not isinstance(settings, dict):
        return settings
    settings = copy.deepcopy(settings)
    chosen = settings.pop("default_plugins", None) or {}
    registry = default_registry()
    for kind in _PLUGIN_NODES:
        node = settings.get(kind)
        if kind == "identity" and not _identity_runs(settings):
            settings.pop(kind, None)
            continue
        node = node if isinstance(node, dict) else {}
        name = node.get("name") or chosen.get(kind)
        try:
            config = registry.get(kind, str(name)).config_class(**{k: v for k, v in node.items() if k != "name"})
        except Exception:  # noqa: BLE001 - a plugin not installed here, or options it no longer has
            continue
        settings[kind] = {"name": name, **json.loads(json.dumps(dataclasses.asdict(config), default=str))}
    output = settings.get("output")
    if isinstance(output, dict) and output.get("padding") is None:
        output["padding"] = DEFAULT_PADDING
    sample = settings.get("sample")
    for key in ("start", "end") if isinstance(sample, dict) else ():
        try:  # 0.2, "0.2" and "00:00:00.2" are one moment
            sample[key] = parse_time(sample.get(key))
        except ValueError:
            continue
    return settings


def _identity_runs(settings: dict[str, Any]) -> bool:
    face_filter, output = settings.get("filter") or {}, settings.get("output") or {}
    return bool(face_filter.get("refs") or face_filter.get("nrefs") or output.get("embeddings"))
