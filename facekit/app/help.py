"""``facekit --help``'s key listing: every key with its real default and its one-line description,
grouped as the config is. Descriptions come from the schema (facekit.app.schema, written once);
defaults from the composed config, and for a runner option's own keys (runner=ray's) from that
option's YAML, since under runner=default they are null. Hydra's help template calls it through
the ``facekit_keys`` resolver, so ``facekit +detector=s3fd --help`` lists s3fd's options too."""
from __future__ import annotations

import dataclasses
import shutil
import textwrap
from importlib import resources
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, ListConfig, OmegaConf

from facekit.app.schema import (ABOUT, OPTION_SCHEMAS, PLUGIN_NODES, TASK_KEYS, TASK_REQUIRED, SchemaKey,
                                schema_keys)
from facekit.plugin.registry import default_registry

RESOLVER = "facekit_keys"
GROUPS_RESOLVER = "facekit_groups"
_COLUMN = 30  # where descriptions start
MIN_COLUMNS = 80
#: Groups whose options (other than ``default``) add keys of their own to the group's node.
_OPTION_GROUPS = ("runner",)


def terminal_width() -> int:
    """The terminal's columns (``COLUMNS`` when set), 80 at least: what help and listings wrap to."""
    return max(MIN_COLUMNS, shutil.get_terminal_size().columns)


def register_help_resolver() -> None:
    """``${facekit_keys:}`` in the help template lists the keys of the config being helped,
    ``${facekit_groups:}`` the config groups and their options."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, lambda *, _root_: _escaped(describe_keys(_root_)))
    if not OmegaConf.has_resolver(GROUPS_RESOLVER):
        OmegaConf.register_new_resolver(GROUPS_RESOLVER, lambda: _escaped(describe_groups()))


def describe_groups() -> str:
    """``detector: blazeface, ...`` a line a group, packaged options and plugins' alike; an option
    schema (``runner/base_ray``, what runner=ray's YAML extends) is no choice of its own."""
    store = ConfigStore.instance()
    lines = []
    for group in sorted([*PLUGIN_NODES, *_OPTION_GROUPS]):
        options = {name.removesuffix(".yaml") for name in (store.list(group) if store.repo.get(group) else [])}
        options = (options | set(packaged_options(group))) - {f"base_{o}" for (g, o) in OPTION_SCHEMAS if g == group}
        lines.append(f"{group}: {', '.join(sorted(options))}")
    return "\n".join(lines)


def describe_keys(cfg: DictConfig) -> str:
    """One line a key: ``  size: 256          # side of each aligned face crop, pixels``; a
    description longer than the terminal is wide (80 columns at least) goes on under its column."""
    option_values = {f"{group}.{key}": found for group in _OPTION_GROUPS
                     for key, found in _option_values(group).items()}
    task = str(OmegaConf.select(cfg, "task", default=None))
    wanted = TASK_KEYS.get(task)
    lines = []
    for key in schema_keys():
        if wanted is not None and not _read_by(key.path, wanted):
            continue
        value = OmegaConf.select(cfg, key.path, default=None)
        about = key.about
        if key.path in TASK_REQUIRED.get(task, {}):  # no default this task takes
            value, about = "???", TASK_REQUIRED[task][key.path]
        if key.path in option_values and value is None:
            option, value = option_values[key.path]
            about = f"{option}: {about}"
        lines.append(_line(key, value, about))
        if key.path in PLUGIN_NODES and value is not None:
            lines.extend(_plugin_lines(key, value))
    if wanted is not None:
        lines.append(f"(the keys task={task} reads; facekit --help lists every key)")
    return "\n".join(lines)


def _read_by(path: str, wanted: tuple[str, ...]) -> bool:
    """Whether a task that reads ``wanted`` reads ``path``: one of them, under one, or a group
    one of them is in (``output`` for ``output.dir``)."""
    return any(path == key or path.startswith(f"{key}.") or key.startswith(f"{path}.") for key in wanted)


def _line(key: SchemaKey, value: Any, about: str) -> str:
    depth = key.path.count(".")
    typed = "" if key.group is not None or isinstance(value, DictConfig) else f" {shown(value)}"
    text = f"{'  ' * depth}{key.name}:{typed}"
    if not about:
        return text
    width = terminal_width() - _COLUMN - 2
    first, *more = textwrap.wrap(about, max(width, 30), break_on_hyphens=False) or [""]
    return "\n".join([f"{text:<{_COLUMN - 1}} # {first}", *(f"{'':<{_COLUMN - 1}} # {line}" for line in more)])


def _plugin_lines(key: SchemaKey, node: DictConfig) -> list[str]:
    """A chosen plugin's options, described when its config dataclass's fields carry ``about``."""
    spec = default_registry().plugins[key.path].get(node.get("name"))
    abouts = {f.name: f.metadata.get(ABOUT, "") for f in dataclasses.fields(spec.config_class)} if spec else {}
    abouts["name"] = f"the {key.path} plugin"
    return [_line(SchemaKey(f"{key.path}.{name}", ""), value, abouts.get(str(name), "")) for name, value in node.items()]


def _option_values(group: str) -> dict[str, tuple[str, Any]]:
    """Keys that only a group's other options set, with the first option's value as the schema
    types it (``cpus_per_task: 1`` reads as 1.0): for runner, ``shard_frames -> ("runner=ray", 500)``."""
    folder = resources.files("facekit.conf") / group
    base = OmegaConf.load(str(folder / "default.yaml"))
    found: dict[str, tuple[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.name != "default.yaml":
            schema = OPTION_SCHEMAS.get((group, entry.name[:-5]))
            if schema is None:
                continue
            own = {name: value for name, value in OmegaConf.load(str(entry)).items()
                   if name != "defaults" and name not in base}
            typed = OmegaConf.merge(OmegaConf.structured(schema), own)
            for name in own:
                found.setdefault(str(name), (f"{group}={entry.name[:-5]}", typed[name]))
    return found


def packaged_options(group: str) -> list[str]:
    """The options of a config group that ship in conf/ (``runner``: default, ray)."""
    folder = resources.files("facekit.conf") / group
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def shown(value: Any) -> str:
    """A value as it is typed on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, ListConfig)):
        return "[" + ",".join(shown(item) for item in value) + "]"
    return str(value)


def _escaped(text: str) -> str:
    """Hydra fills its help template with ``string.Template``: a ``$`` must be doubled."""
    return text.replace("$", "$$")
