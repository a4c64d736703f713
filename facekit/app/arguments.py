"""Arguments typed the way other tools take them (``facekit photos/ faces/``, ``--input photos/``,
``+runner=ray``, ``detector=s3fd``) and a sweep launcher that is not installed: each is caught
before Hydra sees it and answered with one line that shows the command as facekit reads it.
Hydra's own answers (a grammar error, argparse's usage block, nine lines of search path) name
neither the mistake nor the fix."""
from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from importlib import metadata
from typing import Sequence

from facekit.app.keys import nearest
from facekit.app.overrides import FLAGS_WITH_VALUE
from facekit.app.schema import schema_keys
from facekit.errors import ConfigError
from facekit.plugin.registry import default_registry

#: Hydra's own flags (``facekit --hydra-help`` lists them); any other ``-x`` or ``--x`` is a mistake.
HYDRA_FLAGS = frozenset({"-h", "--help", "--hydra-help", "--version", "--resolve", "-r", "--run", "-m", "--multirun",
                         "-sc", "--shell-completion", "-i", "--info"}) | FLAGS_WITH_VALUE
_INFO_FLAGS = frozenset({"-i", "--info"})
SHELL_COMPLETION = frozenset({"-sc", "--shell-completion"})
_INFO_CHOICES = frozenset({"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"})
#: Groups in config.yaml's defaults list: chosen with ``group=NAME``; a "+" would add a second one.
CHOSEN_GROUPS = ("runner",)
#: Groups outside the defaults list: added with ``+group=NAME``.
ADDED_GROUPS = ("detector", "aligner", "identity", "masker")
#: Hydra's launchers by name: the module that registers each and the distribution that ships it.
LAUNCHERS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "hydra-ray-launcher"),
    "rq": ("hydra_plugins.hydra_rq_launcher", "hydra-rq-launcher"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
}
_GROUP = re.compile(r"^(\+{0,2})([\w/]+)=(.*)$")
_POSITIONAL_NAMES = ("input", "output")


def check_arguments(argv: Sequence[str]) -> None:
    """Raise ConfigError, naming the fix, for the first argument facekit would misread."""
    words: list[str] = []
    previous = ""
    for index, arg in enumerate(argv):
        if previous in FLAGS_WITH_VALUE or (previous in _INFO_FLAGS and arg in _INFO_CHOICES):
            previous = ""
            continue
        previous = arg
        if arg.startswith("-"):
            _check_flag(arg, argv[index + 1] if index + 1 < len(argv) else None)
        elif "=" not in arg:
            if not arg.startswith("~"):  # ~key deletes a key: Hydra's own override
                words.append(arg)
        else:
            _check_group(arg)
    if words in (["help"], ["version"]):  # what a user types for --help / --version
        raise ConfigError(f"facekit takes key=value arguments, not {words[0]}: write facekit --{words[0]}")
    if bare := [word for word in words if word in ("input", "output")]:
        raise ConfigError(f"{bare[0]} needs a value: {bare[0]}={'PATH' if bare[0] == 'input' else 'DIR'} "
                          "(e.g. facekit input=photos/ output=faces/)")
    if words:
        given = {arg.partition("=")[0] for arg in argv if "=" in arg}
        free = [name for name in _POSITIONAL_NAMES if name not in given and f"{name}.dir" not in given]
        if not free:
            raise ConfigError(f"facekit takes key=value arguments, not {' '.join(words)}: input= and output= are "
                              "given already (facekit --help lists the keys)")
        raise ConfigError(f"facekit takes key=value arguments, not {' '.join(words)}: "
                          f"write {_as_keys(words, free)}")


#: What Hydra's ``--shell-completion`` does, one of them written after it (``install=bash``).
_COMPLETION_WORDS = ("install=", "uninstall=", "query=")


def check_flag_pairs(argv: Sequence[str]) -> None:
    """The flags Hydra takes only with another (it raises a bare ValueError, a traceback to a user)."""
    # --cfg=job and -cjob are --cfg job, as Hydra's argparse reads them
    given = {"-c" if arg.startswith("-c") and not arg.startswith(("-cp", "-cn", "-cd"))
             else arg.partition("=")[0] for arg in argv if arg.startswith("-")}
    if given & {"--resolve"} and not given & {"-c", "--cfg", "-h", "--help"}:
        raise ConfigError("--resolve goes with --cfg or --help: facekit --cfg job --resolve [key=value ...] "
                          "prints the config a command composes, interpolations resolved")
    if given & {"-c", "--cfg"} and given & {"-m", "--multirun"}:
        raise ConfigError("--cfg prints one command's config and takes no -m: facekit --cfg job [key=value ...], one "
                          "value a key")
    if given & {"--resolve"} and _cfg_part(argv) in ("hydra", "all"):
        raise ConfigError("--resolve goes with --cfg job: Hydra's own settings name output.dir, which only the job's "
                          "config holds (facekit --cfg job --resolve [key=value ...])")
    if given & SHELL_COMPLETION and not any(arg.startswith(_COMPLETION_WORDS) for arg in argv):
        raise ConfigError("--shell-completion needs what to do: facekit --shell-completion install=bash "
                          "(or uninstall=bash, or query='facekit ...')")


def warn_of_keys_given_twice(argv: Sequence[str]) -> None:
    """A key given twice with two values (``output=a output.dir=b``, one the other's shorthand)
    is named on stderr with the value the run takes (the last, as Hydra takes it): silently, the
    run wrote where the user did not look. Not refused: a script that adds its defaults before
    a user's own overrides relies on the last one winning."""
    seen: dict[str, str] = {}
    for arg in argv:
        if arg.startswith(("-", "~")) or "=" not in arg:  # a flag, or a key deleted
            continue
        key, _, value = arg.partition("=")
        key = "output.dir" if key.lstrip("+") == "output" else key.lstrip("+")
        if ("." not in key and key not in ("input", "task")) or value.lstrip("'\"").startswith("{"):
            continue  # a plugin group chosen twice, or a node set whole: their own checks say what to do
        if key in seen and seen[key] != arg:
            print(f"facekit: warning: {key} is given twice ({seen[key]} and {arg}); the last, {arg}, is used",
                  file=sys.stderr)
        seen[key] = arg


def _cfg_part(argv: Sequence[str]) -> str | None:
    """What ``--cfg`` / ``-c`` asks for (job, hydra, all), or None."""
    for number, arg in enumerate(argv):
        if arg in ("-c", "--cfg"):
            return argv[number + 1] if number + 1 < len(argv) else None
        if arg.startswith("--cfg="):
            return arg.partition("=")[2]
        if arg.startswith("-c") and not arg.startswith(("-cp", "-cn", "-cd")):
            return arg[2:].lstrip("=")
    return None


def _check_flag(arg: str, following: str | None) -> None:
    flag, has_value, value = arg.partition("=")
    if flag in HYDRA_FLAGS:
        return
    keys = ["output", *(k.path for k in schema_keys() if k.group is None)]  # output=DIR: output.dir=DIR
    name = nearest(flag.lstrip("-").replace("-", "_"), keys)
    if not has_value and following is not None and not following.startswith("-") and "=" not in following:
        value, arg = following, f"{arg} {following}"
    fix = f"write {name}={value or '...'}" if name else "e.g. facekit input=photos/ output=faces/"
    raise ConfigError(f"facekit takes key=value arguments, not {arg}: {fix} (facekit --help lists the keys)")


def _check_group(arg: str) -> None:
    match = _GROUP.match(arg)
    if match is None:
        return
    plus, group, value = match.groups()
    if group in CHOSEN_GROUPS and plus == "+":
        raise ConfigError(f"{group} always has a value (default), so it is chosen, not added: "
                          f"write {group}={value} without the '+'")
    if group in ADDED_GROUPS and not plus and value.startswith("{"):  # options as a dict: no plugin named
        raise ConfigError(f"{group}={value}: a plugin's options are set one at a time, {group}.KEY=VALUE (the "
                          f"default {group}'s; with +{group}=NAME, that one's)")
    if group in ADDED_GROUPS and not plus:
        names = default_registry().names(group)
        near = difflib.get_close_matches(value, names, n=1, cutoff=0.6) if value not in names else [value]
        raise ConfigError(f"{group} is added to a run, not chosen: write +{group}={near[0] if near else value}"
                          + ("" if near else f" ({group}s: {', '.join(names)})"))
    if group == "hydra/launcher":
        check_launchers(value.split(","))


def check_launchers(names: Sequence[str]) -> None:
    """A known Hydra launcher that is not installed: name the pip command that adds it."""
    for name in names:
        module, distribution = LAUNCHERS.get(name.strip(), (None, None))
        if module is None or distribution is None or _importable(module):
            continue  # an unknown name: Hydra lists the launchers it has
        raise ConfigError(f"hydra/launcher={name} needs {distribution}, which is not installed: "
                          f"pip install {install_command(distribution)}")


def install_command(distribution: str) -> str:
    """``'.[EXTRA]'`` in facekit's repository when one of its extras brings ``distribution``
    (the one meant for users, not ``test``), else the distribution itself. Not by name: PyPI's
    "facekit" is another project."""
    marker = re.compile(r"""extra\s*==\s*["'](\w+)["']""")
    extras = []
    for requirement in metadata.requires("facekit") or []:
        name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
        found = marker.search(requirement)
        if found and _normal(name) == _normal(distribution):
            extras.append(found.group(1))
    users = [extra for extra in extras if extra != "test"]
    return f"'.[{users[0]}]' in facekit's repository" if users else distribution


def _as_keys(words: list[str], names: Sequence[str]) -> str:
    """``photos/ faces/`` as ``input=photos/ output=faces/`` (``names``: the keys not given yet)."""
    named = [f"{key}={word}" for key, word in zip(names, words)]
    return " ".join(named) if len(words) <= len(names) else f"{' '.join(named)} (one input a run)"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
