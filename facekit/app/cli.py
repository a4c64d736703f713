"""The ``facekit`` command: Hydra composes the config, a task runs it, errors are one line."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from facekit import __version__
from facekit.app.arguments import SHELL_COMPLETION, check_arguments, check_flag_pairs, warn_of_keys_given_twice
from facekit.app.help import packaged_options, register_help_resolver
from facekit.app.keys import check_keys, group_choice, name_default_plugins, packaged_config
from facekit.app.overrides import LIST_KEYS, is_a_sweep, quote_overrides
from facekit.app.schema import RESULT_FOLDER, register_schema
from facekit.errors import ConfigError, FacekitError, interrupted_exit, stop_writing_to_a_closed_pipe
from facekit.plugin.spec import PLUGIN_KINDS
from facekit.plugin.registry import PluginRegistry, default_registry

#: Hydra makes no output folder and writes no .hydra/ for a plain run: a task that writes no files
#: (task=plugins) needs none, and an extract run writes its own once accepted, so a refused run
#: leaves nothing behind (facekit/app/tasks/acceptance.py).
_NO_OUTPUT_FOLDER = ["hydra.run.dir=.", "hydra.output_subdir=null"]
#: Nor a log file in the working folder: curate builds its result folder whole and renames it
#: into place, so Hydra cannot write there first; curation.json holds what a log would.
_NO_LOG_FILE = {task: ["hydra.job_logging.root.handlers=[console]"] for task in ("curate", "mask")}


def main() -> None:
    """Console entry point."""
    argv = [_renamed_key(arg) for arg in sys.argv[1:]]
    if argv in (["--version"], ["-V"]):  # Hydra's own flag would print Hydra's version
        print(f"facekit {__version__}")
        return
    try:
        argv = executor_as_runner(argv)
        registry = default_registry()
        check_flag_pairs(argv)
        warn_of_keys_given_twice(argv)
        check_hydra_keys(argv)
        if not SHELL_COMPLETION & set(argv):  # its words (install=bash, query=...) are Hydra's, not overrides
            check_arguments(argv)
            argv = name_default_plugins(argv)
            check_keys(argv, registry)
        check_group_choices(argv, registry)
        # input=fötos, output=出力: values Hydra reads only quoted are quoted, as the user typed them
        argv = [_expand_output_shorthand(a) for a in quote_overrides(argv)]
        register_schema()
        register_help_resolver()
        register_plugin_configs(registry)
        cfg = check_composes(argv)
        check_sweep_values(argv)
        if cfg is not None:
            _warn_of_other_tasks_keys(argv, cfg.task)
    except FacekitError as exc:
        _fail(exc)
    if cfg is not None:  # a plain run: an extract run writes its .hydra/ once it is accepted (acceptance.py)
        argv += _NO_OUTPUT_FOLDER + _NO_LOG_FILE.get(cfg.task, [])
    sys.argv = [sys.argv[0], *argv]
    _hydra_entry()


@hydra.main(version_base="1.3", config_path="pkg://facekit.conf", config_name="config")
def _hydra_entry(cfg: DictConfig) -> None:
    from facekit.app.tasks import TASKS

    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    _back_in_the_original_folder()
    try:
        task: Callable[[DictConfig, PluginRegistry], None] = TASKS[cfg.task]  # the schema's Task names one
        task(cfg, default_registry())
        run_ended[0] = True
    except FacekitError as exc:
        _clear_a_refused_sweep_job(cfg)
        _fail(exc)
    except BrokenPipeError:  # facekit task=plugins | head -1: the reader has what it wanted
        stop_writing_to_a_closed_pipe()
    except OSError as exc:  # the environment, not facekit: a full disk, a folder gone read-only
        _fail(exc)
    except KeyboardInterrupt:
        print(f"facekit: interrupted; {_what_an_interruption_keeps(cfg)}", file=sys.stderr)
        sys.exit(interrupted_exit(_stopped_by[0]))


def _back_in_the_original_folder() -> None:
    """``hydra.job.chdir=true`` runs a job in its output folder, where the relative paths typed
    (input, reference photos, output) name nothing: "reference photo 'ref.jpg' does not exist",
    then a traceback from the refused job's folder removed under it. Each job writes where its
    output settings say anyway, so it runs from the folder it was started in."""
    import os

    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    if HydraConfig.initialized() and HydraConfig.get().job.chdir:
        os.chdir(get_original_cwd())


#: What Hydra writes into a sweep's job folder and its sweep folder before the job runs.
_HYDRA_JOB_FILES, _HYDRA_SWEEP_FILES = {".hydra", "facekit.log"}, {"multirun.yaml"}


def _clear_a_refused_sweep_job(cfg: DictConfig) -> None:
    """A sweep's job refused before it wrote anything (a reference photo without a face) leaves
    no folder: Hydra made its job folder, and for the first job the sweep's folder, before it
    ran; each is removed when it holds nothing but Hydra's own files, as a refused run writes
    nothing, and so is output= when that leaves it empty. Any other file (an earlier job's
    results) keeps its folder."""
    import shutil

    from hydra.core.hydra_config import HydraConfig

    from facekit.app.tasks.settings import in_sweep

    if not in_sweep():
        return
    job = Path(HydraConfig.get().runtime.output_dir)
    for folder, made in ((job, _HYDRA_JOB_FILES), (job.parent, _HYDRA_SWEEP_FILES)):
        if not folder.is_dir() or not {entry.name for entry in folder.iterdir()} <= made:
            return
        shutil.rmtree(folder, ignore_errors=True)
    output = Path(str(cfg.output.dir)).expanduser()
    if output.resolve() == job.parent.parent.resolve():
        with contextlib.suppress(OSError):  # only when empty: rmdir removes nothing else
            output.rmdir()


def _what_an_interruption_keeps(cfg: DictConfig) -> str:
    """What is left of a run stopped midway, in the task's own terms."""
    from facekit.app.tasks.settings import in_sweep

    if in_sweep():
        return "the sweep's finished jobs are in its folder; running it again starts a new sweep"
    if cfg.task == "curate":
        result = Path(str(OmegaConf.select(cfg, "output.dir", default=""))).expanduser() / "curation.json"
        if result.is_file() and result.stat().st_mtime >= _STARTED_AT:  # it landed: the printing after was stopped
            return f"the curation result had been written whole to {result.parent}"
        return "curation writes its result only when it ends, so nothing was written"
    if cfg.task == "plugins":
        return "nothing was written"
    return "finished frames are saved, rerun to resume"


#: user-facing keys renamed, old spelling -> new: the old one still works, with a line that says so
RENAMED_KEYS = {"runner.engine": "runner.executor"}


#: The config groups that one task alone reads.
_TASK_OF_GROUP = {"curate": "curate", "recrop": "recrop", "mask": "mask"}


def _warn_of_other_tasks_keys(argv: Sequence[str], task: str) -> None:
    """A key that only another task reads (``curate.best=3`` on an extraction) is named on
    stderr, so a setting the run will not use is not taken for one it does; the run goes on."""
    for arg in argv:
        key = arg.lstrip("+~").partition("=")[0]
        owner = _TASK_OF_GROUP.get(key.partition(".")[0])
        if owner is not None and owner != task and "." in key:
            print(f"facekit: warning: {key} is read by task={owner} only; this task={task} run does not use it",
                  file=sys.stderr)


def _renamed_key(arg: str) -> str:
    """``runner.engine=ray`` as ``runner.executor=ray``, with a deprecation line on stderr."""
    prefix = arg[: len(arg) - len(arg.lstrip("+~"))]
    key, equals, value = arg[len(prefix):].partition("=")
    if key in RENAMED_KEYS:
        print(f"facekit: {key} is now {RENAMED_KEYS[key]}; the old name still works for now", file=sys.stderr)
        return f"{prefix}{RENAMED_KEYS[key]}{equals}{value}"
    return arg


def executor_as_runner(argv: Sequence[str]) -> list[str]:
    """``runner.executor=ray`` (or the old ``runner.engine=ray``) alone picks Ray as
    ``runner=ray`` does, since Ray's keys come with that choice; ``null`` or ``local`` is this
    machine. Anything else is refused in one line (it reached the run as an unknown executor)."""
    chosen = [arg for arg in argv if arg.partition("=")[0].lstrip("+") == "runner.executor"]
    rest = [arg for arg in argv if arg not in chosen]
    for arg in chosen:
        value = arg.partition("=")[2].strip().strip("'\"")
        if value not in ("ray", "local", "null", ""):
            raise ConfigError(f"runner.executor={value}: choose ray (a Ray cluster, as runner=ray) or null (this machine)")
        if value == "ray" and not any(a.partition("=")[0].lstrip("+") == "runner" for a in rest):
            rest.append("runner=ray")
        else:
            rest.append("runner.executor=" + ("ray" if value == "ray" else "null"))
    return rest


def _fail(exc: BaseException) -> None:
    print(f"facekit: error: {exc}", file=sys.stderr)
    sys.exit(2)


#: The signal that stopped the run, when one did (Ctrl-C leaves it None): its exit code says which.
_stopped_by: list[int | None] = [None]
#: Whether the task returned: a signal after that (while Hydra closes the run) stops nothing.
run_ended = [False]
#: When this command started: a result file newer than this was written by it.
_STARTED_AT = time.time()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops a run as Ctrl-C does (the frames in flight drain, the journal keeps them)."""
    _stopped_by[0] = signum
    raise KeyboardInterrupt


def _expand_output_shorthand(arg: str) -> str:
    """``output=DIR`` means ``output.dir=DIR``: ``output`` itself is a node (size, debug, ...).
    A dict there (``output={dir:o,size:64}``) made a folder of that name and set nothing else."""
    if not arg.startswith("output="):
        return arg
    value = arg[len("output="):]
    if value.lstrip("'\"").startswith("{"):
        raise ConfigError(f"output={value}: set output's keys one at a time (output.dir=DIR output.size=N ...), or "
                          "output=DIR for the folder alone")
    return "output.dir=" + value


def check_group_choices(argv: Sequence[str], registry: PluginRegistry) -> None:
    """Unknown plugin names fail here in one line that lists the choices, before Hydra runs; so
    does a group chosen twice (Hydra's own line speaks of its defaults list)."""
    chosen: dict[str, str] = {}
    for arg in argv:
        choice = group_choice(arg)
        if choice is None or choice.names is None:
            continue
        group = choice.group
        if group in chosen:
            raise ConfigError(f"{chosen[group]} and {arg} each choose the {group}; a run has one: keep one, or "
                              f"sweep them with -m {arg.split('=', 1)[0]}={chosen[group].split('=', 1)[1]},"
                              f"{arg.split('=', 1)[1]}")
        chosen[group] = arg
        valid = registry.names(group) if group in PLUGIN_KINDS else packaged_options(group)
        for value in choice.names:
            if value not in valid:
                raise ConfigError(f"unknown {group} {value!r}; choose one of: {', '.join(valid) or '(none installed)'}")


def _check_nothing_deleted(cfg: DictConfig, argv: Sequence[str]) -> None:
    """``~output`` (Hydra's deletion) composes, then the run met a missing node in a traceback:
    every group of the schema is needed, so its deletion is one line instead (a key within one,
    ``~output.size``, is refused by the schema itself). A group the schema fills back in with
    mandatory keys (``~runner``) is still there, so the command line is read too."""
    from dataclasses import MISSING, fields

    from facekit.app.schema import FacekitSchema

    deleted = {arg[1:].partition("=")[0] for arg in argv if arg.startswith("~")}
    for item in fields(FacekitSchema):
        optional = item.default is not MISSING  # ~detector drops a plugin a config file adds: Hydra's way, and fine
        if item.name in cfg and (item.name not in deleted or optional):
            continue
        if item.default_factory is MISSING:  # a key of its own
            raise ConfigError(f"~{item.name} deletes a setting every run needs; set it instead ({item.name}=VALUE)")
        raise ConfigError(f"~{item.name} deletes facekit's {item.name} settings, which every run needs; set only the "
                          f"keys to change ({item.name}.KEY=VALUE; null where a key takes it)")


#: The flags that ask Hydra for help, which it composes the overrides beside them for
HELP_FLAGS = frozenset({"--help", "-h", "--hydra-help"})


#: Hydra keys facekit sets itself, and what a user does instead: set, they were silently overridden.
_FACEKIT_S_HYDRA_KEYS = {
    "hydra.run.dir": "a run writes where output.dir says (output=DIR), a sweep under hydra.sweep.dir",
    "hydra.output_subdir": "facekit writes each run's record to .hydra/ once the run is accepted, and a sweep's "
                           "report reads its jobs' there",
    "hydra.mode": "a sweep is asked for with -m",
}


def check_hydra_keys(argv: Sequence[str]) -> None:
    for arg in argv:
        key = arg.lstrip("+~").partition("=")[0]
        if key in _FACEKIT_S_HYDRA_KEYS:
            raise ConfigError(f"{key} is facekit's to set: {_FACEKIT_S_HYDRA_KEYS[key]}; leave it out")


@dataclass(frozen=True)
class ConfigFlags:
    """Hydra's flags that choose the config a run composes (``-cd DIR``, ``-cn NAME``; ``-r``,
    a plain run, changes nothing), apart from the other arguments: with them a run is still
    composed and checked up front (and writes nothing when refused), from the user's config."""

    flags: list[str]  # as typed, to hand on
    rest: list[str]
    folder: str | None = None
    name: str = "config"


def config_flags(argv: Sequence[str]) -> ConfigFlags:
    flags, rest, found = [], [], {}
    words = iter(argv)
    for word in words:
        key, equals, value = word.partition("=")
        if key in _CONFIG_FLAGS and word.startswith("--") and equals:
            flags.append(word)
            found[_CONFIG_FLAGS[key]] = value
        elif word in _CONFIG_FLAGS:
            value = next(words, "")
            flags += [word, value]
            found[_CONFIG_FLAGS[word]] = value
        elif word in ("-r", "--run"):
            flags.append(word)
        else:
            rest.append(word)
    return ConfigFlags(flags, rest, found.get("folder"), found.get("name") or "config")


_CONFIG_FLAGS = {"-cd": "folder", "--config-dir": "folder", "-cn": "name", "--config-name": "name"}


def composed(argv: Sequence[str], config_dir: str | None = None, config_name: str = "config") -> DictConfig:
    """The config these overrides make (from ``config_name`` in ``config_dir`` or facekit's own,
    as ``-cd`` / ``-cn`` choose), or a one-line ConfigError naming what is wrong (Hydra's own
    message is several lines, and under --help a traceback, exit 1)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    if config_dir is not None and not os.path.isdir(config_dir):
        raise ConfigError(f"--config-dir {config_dir!r} is not a folder")
    try:
        cfg = _compose(list(argv), config_dir, config_name)
        OmegaConf.to_container(cfg, resolve=True)  # ${...}: a path that holds one is read as Hydra's interpolation
    except InterpolationResolutionError as exc:
        raise ConfigError(_interpolation_error(exc)) from None
    except Exception as exc:  # Hydra and OmegaConf raise many types; all mean a bad override
        cause = f"\n{exc.__cause__}" if exc.__cause__ is not None else ""
        said = one_line(f"{exc}{cause}")
        raise ConfigError(_one_value_hint(said) or ((_wrong_type(said) or said) + _list_hint(argv))) from None
    return cfg


def _compose(overrides: list[str], config_dir: str | None, config_name: str) -> DictConfig:
    """Hydra's composition as ``facekit`` runs it: facekit's config module, with ``config_dir``
    searched first (as Hydra's own ``--config-dir`` puts it), ``config_name`` the primary config."""
    from hydra import compose, initialize_config_module

    if config_dir is None and config_name == "config":
        with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
            return compose(config_name="config", overrides=overrides)
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import open_dict

    search_path = create_config_search_path("pkg://facekit.conf")
    if config_dir is not None:
        search_path.prepend(provider="command-line", path=f"file://{os.path.abspath(config_dir)}",
                            anchor=SearchPathQuery(provider="schema"))
    GlobalHydra.instance().clear()
    try:
        cfg = Hydra.create_main_hydra2(task_name="facekit", config_search_path=search_path).compose_config(
            config_name=config_name, overrides=overrides, run_mode=RunMode.RUN, with_log_configuration=False)
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


#: OmegaConf's names for the types a key takes, as a user reads them.
_TYPE_WORDS = {"Float": "a number", "Integer": "a whole number", "Boolean": "true or false"}
_NOT_CONVERTED = re.compile(r"Error merging override (?P<key>[^=\s]+)=.*? Value '(?P<value>.*)' of type '\w+' "
                            r"could not be converted to (?P<type>Float|Integer|Boolean)")
_NOT_A_BOOL = re.compile(r"Error merging override (?P<key>[^=\s]+)=.*? Value '(?P<value>.*)' is not a valid bool")
_NOT_A_CHOICE = re.compile(r"Error merging override (?P<key>[^=\s]+)=.*? Invalid value '(?P<value>.*)', expected one "
                           r"of \[(?P<choices>[^\]]*)\]")
_NOT_A_GROUP_VALUE = re.compile(r"Error merging override (?P<key>[^=\s]+)=(?P<value>\S*) Invalid type assigned: "
                                r"\w+ is not a subclass of \w+")


def _wrong_type(message: str) -> str | None:
    """OmegaConf's type errors in the words of the key: ``quality.max_yaw must be a number, got
    'abc'``; ``quality is a group of keys``. None for any other message (shown as it is)."""
    if match := _NOT_CONVERTED.search(message):
        return f"{match['key']} must be {_TYPE_WORDS[match['type']]}, got {match['value']!r}"
    if match := _NOT_A_BOOL.search(message):
        return f"{match['key']} must be true or false, got {match['value']!r}"
    if match := _NOT_A_CHOICE.search(message):
        return f"{match['key']}={match['value']}; choose one of: {match['choices']}"
    if match := _NOT_A_GROUP_VALUE.search(message):
        key = match["key"]
        return (f"{key} is a group of keys, not a value ({match['value']!r}): set one of them, "
                f"{key}.<key>=... (facekit --help lists them)")
    return None


def check_composes(argv: Sequence[str]) -> DictConfig | None:
    """Compose a plain run's config once up front, so Hydra's multi-line composition errors (an
    unknown key, a bad value) reach the user as one line; returns it. Its values are checked as
    the run checks them before it writes (an extraction's settings, the plugins' options that
    its stages would refuse, curation's settings), so a sweep's are too (``check_sweep_values``).
    Flags (--help, -m, ...) go straight to Hydra (None): sweeps hold values that only a launcher can expand."""
    user = config_flags(argv)
    if HELP_FLAGS & set(argv) and not is_a_sweep(argv):  # its overrides as Hydra will compose them for the help
        composed([arg for arg in user.rest if not arg.startswith("-")], user.folder, user.name)
    if any(arg.startswith("-") for arg in user.rest):
        return None
    cfg = composed(user.rest, user.folder, user.name)
    _check_nothing_deleted(cfg, user.rest)
    if cfg.task == "extract":  # before Hydra creates the output folder or anything loads
        from facekit.app.tasks.planning import build_stages
        from facekit.app.tasks.settings import check_settings

        check_settings(cfg)
        build_stages(cfg, default_registry())  # the plugins' options, checked as the run checks them; no model loads
    if cfg.task in RESULT_FOLDER and not any(arg.startswith("output.dir=") for arg in argv) \
            and str(cfg.output.dir) == str(packaged_config().output.dir):  # a user's config file may name it
        # output.dir's default (faces/) is where an extraction writes: a curation or re-crop never lands there unasked
        raise ConfigError(f"task={cfg.task} needs output=<result folder>, {RESULT_FOLDER[cfg.task]}: "
                          f"facekit task={cfg.task} input=<extraction output folder> output=<result folder>")
    if cfg.task == "mask" and any(arg.startswith("output.dir=") for arg in argv):
        raise ConfigError("task=mask adds masks in place, into the extraction named by input=; it writes no other "
                          "folder, so output= is not read: leave it out (copy the folder first to keep the original)")
    if cfg.task == "curate":
        from facekit.app.tasks.curate import curate_settings

        curate_settings(cfg)
    return cfg


def _interpolation_error(exc: Exception) -> str:
    """OmegaConf's message (a first line, then ``full_key: ...``) as one line that says how a
    path holding ``${`` is written."""
    lines = [line.strip() for line in str(exc).splitlines()]
    key = next((line.removeprefix("full_key:").strip() for line in lines if line.startswith("full_key:")), "a value")
    return (f"{key}: {lines[0] if lines else exc}; '${{...}}' in a value is Hydra's interpolation, so a path that "
            "holds '${' is written with '\\${' (input='photo\\${1}.jpg')")


def check_sweep_values(argv: Sequence[str]) -> None:
    """A sweep's (``-m``) every value checked up front as a plain run's are: each job composed
    with that value and the other keys' first ones. A bad value (``output.size=128,-1``,
    ``quality.max_yaw=10,abc``) is one line before any job runs, not a failure after the
    first jobs wrote their folders (or Hydra's multi-line error, exit 1)."""
    if not is_a_sweep(argv):
        return
    if "task=plugins" in argv:  # it lists the plugins and writes nothing; a sweep made a folder of empty jobs
        raise ConfigError("task=plugins lists the plugins; it takes no -m (there is nothing to sweep): facekit task=plugins")
    _check_hydra_groups([arg for arg in argv if arg.lstrip("+").startswith("hydra/")])
    user = config_flags(argv)
    overrides = [arg for arg in user.rest if not arg.startswith(("-", "hydra.", "hydra/", "+hydra"))]
    try:  # Hydra's own parsing and job split, so each value is written as its jobs get it
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        values = [[job[0] for batch in BasicSweeper.split_arguments([override], None) for job in batch]
                  for override in OverridesParser.create().parse_overrides(overrides)]
    except Exception:  # noqa: BLE001 - Hydra itself names what it cannot parse, as before
        return
    first = [choices[0] for choices in values]
    jobs = [(choice, [*first[:position], choice, *first[position + 1:]])
            for position, choices in enumerate(values) for choice in choices[1:]]
    jobs += [("first job", first)] if jobs else []  # last: a bad value is named before what every job shares
    checked: set[str] = set()
    for named, job in jobs:
        try:
            _check_job([*user.flags, *job], checked)
        except FacekitError as exc:
            if named != "first job" and _fails_with([*user.flags, *first], str(exc)):  # a setting every job shares, not the value
                raise
            raise ConfigError(f"the sweep's {named}: {exc}") from None


def _check_job(overrides: list[str], checked: set[str]) -> None:
    """A sweep's job checked as a plain run is before it writes: its settings, and what it
    would otherwise find only once it ran, after the jobs before it: its plugins' weights and
    its reference photos (each read, its face found), once per distinct set of them."""
    cfg = check_composes(overrides)
    if cfg is None or cfg.task != "extract":
        return
    from facekit.app.tasks.settings import is_collection_input, job_output_dir, sampling
    from facekit.media.sources import open_input

    if not is_collection_input(cfg):  # a video that does not open stops the sweep at its job otherwise
        open_input(str(cfg.input), exclude=job_output_dir(cfg), sampling=sampling(cfg))
    loads = {key: OmegaConf.to_container(cfg[key], resolve=True) if isinstance(cfg[key], DictConfig) else cfg[key]
             for key in ("detector", "aligner", "identity", "default_plugins", "models")}
    loads["refs"], loads["nrefs"] = list(cfg.filter.refs), list(cfg.filter.nrefs)
    key = json.dumps(loads, sort_keys=True, default=str)
    if key in checked:
        return
    checked.add(key)
    from facekit.app.tasks.planning import build_stages, identity_filter
    from facekit.plugin.loading import ensure_all_weights

    stages = build_stages(cfg, default_registry())
    ensure_all_weights(stages.plugins())
    identity_filter(cfg, stages, None, None)


def _fails_with(overrides: list[str], message: str) -> bool:
    """Whether checking ``overrides`` as a sweep's job fails with ``message``."""
    try:
        _check_job(overrides, set())
    except FacekitError as exc:
        return str(exc) == message
    return False


def _check_hydra_groups(choices: Sequence[str]) -> None:
    """A sweep's Hydra group choices (``hydra/launcher=joblib``) composed up front: one that does
    not exist (``hydra/launcher=bogus``) is one line, not Hydra's error and search path, exit 1."""
    if not choices:
        return
    from hydra import compose, initialize_config_module

    try:
        with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
            compose(config_name="config", overrides=list(choices), return_hydra_config=True)
    except Exception as exc:  # noqa: BLE001 - Hydra raises several types; each names the bad choice
        raise ConfigError(one_line(str(exc)).split(" Config search path:")[0]) from None


def _one_value_hint(said: str) -> str | None:
    """Hydra's "Ambiguous value" for ``key=a,b`` of a key that takes one value: two of its three
    fixes (a list, a quoted string) are refused by that key's own check next, so the one that
    fits is said alone: several values are a sweep, which ``-m`` asks for."""
    found = re.match(r"Ambiguous value for argument '([^=']+)=([^']*)'", said)
    if found is None or found.group(1).lstrip("+~") in LIST_KEYS:
        return None
    key, values = found.group(1).lstrip("+~"), found.group(2)
    return (f"{key}={values}: {key} takes one value; to run one job for each of {values} (a sweep), add -m: "
            f"facekit -m ... {key}={values}")


def _list_hint(argv: Sequence[str]) -> str:
    """For a list key given one word (``filter.refs=a.jpg``): how a list is written."""
    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key in LIST_KEYS and not value.startswith("["):
            return f" ({key} is a list: '{key}={LIST_KEYS[key]}')"
    return ""


def one_line(message: str) -> str:
    """Hydra's multi-line messages folded into one line, minus OmegaConf's debugging context."""
    noise = ("full_key:", "object_type", "reference_type", "To append to your")
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return " ".join(line for line in lines if not line.startswith(noise))


def register_plugin_configs(registry: PluginRegistry) -> None:
    """Every plugin without a YAML file in conf/ becomes selectable through Hydra's ConfigStore,
    so ``+detector=<third-party name>`` composes like a built-in."""
    store = ConfigStore.instance()
    for spec in registry.all():
        if spec.name not in packaged_options(spec.kind):
            store.store(group=spec.kind, name=spec.name, node=registry.config_node(spec), provider=spec.name)
