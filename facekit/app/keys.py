"""Override keys checked against the schema and the chosen plugins' options before Hydra composes,
so a typo gets "did you mean" in facekit's words instead of Hydra's "Key 'ouput' not in
'FacekitSchema'", which names an internal class and suggests nothing; sweeps (``-m``) included."""
from __future__ import annotations

import dataclasses
import difflib
import re
from importlib import resources
from typing import Any, Sequence

from facekit.app.schema import OPTION_KEYS, PLUGIN_NODES, SchemaKey, schema_keys
from facekit.errors import ConfigError
from facekit.plugin.registry import PluginRegistry

_OVERRIDE = re.compile(r"^(?:~|\+{1,2})?([\w.]+)=")
_LIST_INDEX = re.compile(r"\.\d+$")
_DEFAULT_PLUGIN = re.compile(r"^\+{0,2}default_plugins\.(\w+)=([\w.\-]+)$")
#: A config group's choice: ``+aligner=fan``, ``aligner=fan``, ``runner=ray``, or its removal, ``~aligner``.
_GROUP_CHOICE = re.compile(r"^(~|\+{0,2})(detector|aligner|identity|masker|runner)(?:=(.*))?$")
_SIMPLE_NAMES = re.compile(r"^[\w.\-]+(,[\w.\-]+)*$")


@dataclasses.dataclass(frozen=True)
class GroupChoice:
    """One argument that chooses (or removes) a config group's option: the one reading of such
    arguments that the key checks, the default plugins and the CLI's name check share."""

    group: str
    names: list[str] | None  # the names chosen, comma-separated in the argument; None: removed, or not plain names

    @property
    def is_plugin(self) -> bool:
        return self.group in PLUGIN_NODES


def group_choice(arg: str) -> GroupChoice | None:
    """What ``arg`` chooses, if it is a group choice (``names`` only for plain names: a sweep's
    ``choice(...)`` or an interpolation is Hydra's to read)."""
    match = _GROUP_CHOICE.match(arg)
    if match is None:
        return None
    prefix, group, value = match.groups()
    plain = value is not None and prefix != "~" and _SIMPLE_NAMES.match(value) is not None
    return GroupChoice(group, value.split(",") if plain else None)


def name_default_plugins(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``+aligner=facemesh`` added where ``aligner.mirror_pose=false`` sets an
    option but no ``+aligner=`` names a plugin: the run would use the default plugin
    (``default_plugins``), so the option is that plugin's, and Hydra needs its group named to
    take it. A kind with no default (masker) is left for ``check_keys`` to explain."""
    chosen = {c.group for a in argv if (c := group_choice(a)) and c.is_plugin}
    unnamed = []  # kinds with an option set and no plugin named, in the order met
    for arg in argv:
        match = _OVERRIDE.match(arg)
        kind = match.group(1).partition(".")[0] if match and "." in match.group(1) else None
        if kind in PLUGIN_NODES and kind not in chosen and kind not in unnamed:
            unnamed.append(kind)
    if not unnamed:  # the usual command: conf/config.yaml is not read at every start
        return list(argv)
    defaults = {**_packaged_default_plugins(), **{m.group(1): m.group(2) for a in argv if (m := _DEFAULT_PLUGIN.match(a))}}
    return [*argv, *(f"+{kind}={defaults[kind]}" for kind in unnamed if kind in defaults)]


def packaged_config() -> Any:
    """conf/config.yaml as the package ships it, uncomposed: the one place its defaults are
    written, for the checks that compare a value with its default."""
    from omegaconf import OmegaConf

    return OmegaConf.load(str(resources.files("facekit.conf") / "config.yaml"))


def _packaged_default_plugins() -> dict[str, str]:
    """``default_plugins`` as conf/config.yaml sets it."""
    return {str(kind): str(name) for kind, name in packaged_config().default_plugins.items()}


def check_keys(argv: Sequence[str], registry: PluginRegistry) -> None:
    """Raise ConfigError for the first override whose key neither the schema nor the chosen
    plugin has, with the nearest key that exists."""
    chosen = {c.group: c.names for a in argv if (c := group_choice(a)) and c.is_plugin and c.names}
    known = {k.path: k for k in schema_keys()}
    for arg in argv:
        match = _OVERRIDE.match(arg)
        if match is None or arg.startswith("-"):
            continue
        key = _LIST_INDEX.sub("", match.group(1))
        head, _, option = key.partition(".")
        if head == "hydra" or key == "output":
            continue  # Hydra's own keys; output=DIR is short for output.dir=DIR
        if head in PLUGIN_NODES and option:
            _check_plugin_option(head, option.partition(".")[0], chosen.get(head), registry)
        elif key in OPTION_KEYS and OPTION_KEYS[key] not in argv:
            raise ConfigError(f"{key} is a key of {OPTION_KEYS[key]}: add {OPTION_KEYS[key]} to the command")
        elif not _known(key, known):
            near = _with_group_mended(head, option, known) or nearest(key, list(known))
            raise ConfigError(f"unknown key {key!r}" + (f"; did you mean {near}?" if near else "")
                              + " (facekit --help lists every key)")


def _with_group_mended(head: str, option: str, known: dict[str, SchemaKey]) -> str | None:
    """``detector.score_threshold`` for ``detectr.score_threshold``: the group misspelt, the key
    after it right (matched whole, ``filter.threshold`` came nearer)."""
    groups = sorted({path.partition(".")[0] for path in known if "." in path} | set(PLUGIN_NODES))
    near = difflib.get_close_matches(head, groups, n=1, cutoff=0.75)
    if not option or not near:
        return None
    mended = f"{near[0]}.{option}"
    return mended if near[0] in PLUGIN_NODES or _known(mended, known) else None


def _known(key: str, known: dict[str, SchemaKey]) -> bool:
    """A schema key, or a part of one that a key below a list or ``Any`` field names."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = known.get(".".join(parts[:end]))
        if found is not None:
            return end == len(parts) or found.group is None
    return False


def _check_plugin_option(kind: str, option: str, names: list[str] | None, registry: PluginRegistry) -> None:
    if not names:
        raise ConfigError(f"{kind}.{option} is an option of a {kind} plugin: name the plugin first, "
                          f"+{kind}=NAME {kind}.{option}=... ({kind}s: {', '.join(registry.names(kind))})")
    for name in names:
        spec = registry.plugins[kind].get(name)
        if spec is None:
            continue  # an unknown plugin name: check_group_choices names the choices
        options = ["name", *(f.name for f in dataclasses.fields(spec.config_class))]
        if option not in options:
            near = nearest(option, options[1:])
            guess = f"; did you mean {kind}.{near}?" if near else ""
            raise ConfigError(f"{kind} {name} has no option {option!r}{guess} "
                              f"({name} takes: {', '.join(options[1:]) or 'no options'})")


def nearest(key: str, candidates: list[str]) -> str | None:
    """The candidate nearest ``key``: by the whole key, then by its last part alone (``size``
    -> ``output.size``); None when nothing is near."""
    near = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if near:
        return near[0]
    by_last = {c.rpartition(".")[2]: c for c in reversed(candidates)}
    close = difflib.get_close_matches(key.rpartition(".")[2], list(by_last), n=1, cutoff=0.75)
    return by_last[close[0]] if close else None
