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

from omegaconf import DictConfig, ListConfig, OmegaConf

from facekit.app.schema import ABOUT, PLUGIN_NODES, SchemaKey, schema_keys
from facekit.plugin.registry import default_registry

RESOLVER = "facekit_keys"
_COLUMN = 30  # where descriptions start
MIN_COLUMNS = 80
#: Groups whose options (other than ``default``) add keys of their own to the group's node.
_OPTION_GROUPS = ("runner",)


def terminal_width() -> int:
    """The terminal's columns (``COLUMNS`` when set), 80 at least: what help and listings wrap to."""
    return max(MIN_COLUMNS, shutil.get_terminal_size().columns)


def register_help_resolver() -> None:
    """``${facekit_keys:}`` in the help template lists the keys of the config being helped."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, lambda *, _root_: _escaped(describe_keys(_root_)))


def describe_keys(cfg: DictConfig) -> str:
    """One line a key: ``  size: 256          # side of each aligned face crop, pixels``; a
    description longer than the terminal is wide (80 columns at least) goes on under its column."""
    option_values = {f"{group}.{key}": found for group in _OPTION_GROUPS
                     for key, found in _option_values(group).items()}
    lines = []
    for key in schema_keys():
        value = OmegaConf.select(cfg, key.path, default=None)
        about = key.about
        if key.path in option_values and value is None:
            option, value = option_values[key.path]
            about = f"{option}: {about}"
        lines.append(_line(key, value, about))
        if key.path in PLUGIN_NODES and value is not None:
            lines.extend(_plugin_lines(key, value))
    return "\n".join(lines)


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
    schema = next(key.group for key in schema_keys() if key.path == group)
    base = OmegaConf.load(str(folder / "default.yaml"))
    found: dict[str, tuple[str, Any]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml") and entry.name != "default.yaml":
            own = {name: value for name, value in OmegaConf.load(str(entry)).items()
                   if name != "defaults" and name not in base}
            typed = OmegaConf.merge(OmegaConf.structured(schema), own)
            for name in own:
                found.setdefault(str(name), (f"{group}={entry.name[:-5]}", typed[name]))
    return found


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
