"""``facekit --help`` explains every key with its real default, from descriptions written once in
the schema; ``task=plugins`` fits an 80-column terminal."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from cli_helpers import run_facekit
from facekit.app.help import shown
from facekit.app.schema import RAY_KEYS, register_schema, schema_keys
from facekit.plugin.registry import default_registry

NARROW = {"COLUMNS": "80"}
CONTINUED = re.compile(r"^ {29} # (.*)$")  # a description wrapped onto the next line


def _compose(*overrides: str):
    register_schema()
    with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _help_entries(stdout: str) -> list[str]:
    """The lines of the help's Config section, each key's wrapped description joined to its line."""
    entries: list[str] = []
    for line in stdout.split("== Config ==", 1)[1].splitlines():
        continued = CONTINUED.match(line)
        if continued and entries:
            entries[-1] += " " + continued.group(1)
        else:
            entries.append(line)
    return entries


def test_every_schema_key_has_a_one_line_description() -> None:
    keys = list(schema_keys())
    assert len(keys) > 60
    lacking = [key.path for key in keys if not key.about.strip() or "\n" in key.about]
    assert lacking == [], f"describe these keys in facekit/app/schema.py with key('...'): {lacking}"


@pytest.fixture(scope="module")
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    result = run_facekit("--help", cwd=tmp_path_factory.mktemp("help"), env=NARROW)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_gives_every_key_its_description_and_real_default_grouped_as_the_config(help_text: str) -> None:
    """Values are the composed config's; runner=ray's own keys, null under runner=default, show
    runner/ray.yaml's values (the README's 500, 50, 1 and false), marked as runner=ray's."""
    entries = _help_entries(help_text)
    plain, ray = _compose(), _compose("runner=ray")
    for key in schema_keys():
        indent = "  " * key.path.count(".")
        found = [entry for entry in entries if entry.startswith(f"{indent}{key.name}:")]
        assert found, f"{key.path} is not in --help"
        entry = found[0] if len(found) == 1 else next(e for e in found if key.about in e)
        assert f"# {'runner=ray: ' if key.name in RAY_KEYS and key.path.startswith('runner.') else ''}" \
               f"{key.about}" in entry, entry
        if key.group is None:
            value = OmegaConf.select(plain, key.path)
            if value is None and key.path.startswith("runner.") and key.name in RAY_KEYS:
                value = OmegaConf.select(ray, key.path)
            assert entry.startswith(f"{indent}{key.name}: {shown(value)} "), entry
    for ray_default in ("shard_frames: 500", "files_per_shard: 50", "cpus_per_task: 1.0", "verbose: false"):
        assert f"  {ray_default} " in help_text
    assert "(null: 0.15)" in help_text  # output.padding's real value when left null


def test_help_fits_80_columns(help_text: str) -> None:
    assert [line for line in help_text.splitlines() if len(line) > 80] == []


def test_help_lists_a_chosen_plugins_options(tmp_path: Path) -> None:
    result = run_facekit("+detector=yunet", "runner=ray", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^  score_threshold: 0\.6$", result.stdout, re.MULTILINE)
    assert re.search(r"^  shard_frames: 500 +# frames of a video per shard", result.stdout, re.MULTILINE)


def test_task_plugins_wraps_to_80_columns(tmp_path: Path) -> None:
    result = run_facekit("task=plugins", cwd=tmp_path, env=NARROW)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    registry = default_registry()
    for spec in registry.all():  # each plugin's line starts with its kind and name, its description wrapped below
        row = next(i for i, line in enumerate(lines) if re.match(rf"^{spec.kind} +{re.escape(spec.name)} ", line))
        if spec.description:
            below = " ".join(line.strip() for line in lines[row + 1:row + 8])
            assert spec.description in below, spec.name


def test_help_names_every_task_in_its_usage_lines(help_text: str) -> None:
    usage = help_text.split("== Configuration groups ==", 1)[0]
    for task in ("plugins", "curate", "recrop", "mask"):
        assert f"facekit task={task}" in usage


def test_version_is_facekits_own(tmp_path: Path) -> None:
    import facekit

    result = run_facekit("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == f"facekit {facekit.__version__}", result.stdout


@pytest.mark.parametrize("asked", [["task=plugins"], ["--help"]], ids=["plugins", "help"])
def test_a_listing_piped_into_a_reader_that_stops_early_ends_without_an_error_line(tmp_path: Path,
                                                                                   asked: list[str]) -> None:
    """facekit --help | head -3 ended in a BrokenPipeError traceback: Hydra prints its help
    before any task runs, outside the task's own handling."""
    import subprocess
    import sys

    listing = subprocess.Popen([sys.executable, "-m", "facekit", *asked], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert listing.stdout is not None
    listing.stdout.close()  # the reader goes before facekit writes a line: every write meets a closed pipe
    _, stderr = listing.communicate(timeout=120)
    assert b"error" not in stderr and b"Traceback" not in stderr, stderr


@pytest.mark.parametrize("task", ["curate", "mask", "plugins"])
def test_a_task_s_help_lists_the_keys_it_reads_and_no_others(task: str, tmp_path: Path) -> None:
    """``facekit task=curate --help`` is about curation: the extraction keys it never reads
    (filters, sampling, the runner) would bury the few it does, so they are left out and the
    last line says where every key is listed."""
    from facekit.app.help import _read_by
    from facekit.app.schema import TASK_KEYS

    result = run_facekit(f"task={task}", "--help", cwd=tmp_path, env=NARROW)
    assert result.returncode == 0, result.stderr
    entries = _help_entries(result.stdout)
    listed = {key.path for key in schema_keys()
              if any(entry.startswith(f"{'  ' * key.path.count('.')}{key.name}:") for entry in entries)}
    wanted = {key.path for key in schema_keys() if _read_by(key.path, TASK_KEYS[task])}
    assert "task" in listed and not {"filter.threshold", "sample.fps", "runner.workers", "output.size"} & listed
    assert listed == wanted, (listed ^ wanted)
    assert f"(the keys task={task} reads; facekit --help lists every key)" in result.stdout


def test_the_curate_help_names_what_curation_is_set_with(tmp_path: Path) -> None:
    entries = _help_entries(run_facekit("task=curate", "--help", cwd=tmp_path, env=NARROW).stdout)
    for line in ("  dedupe: null", "  identity: sface", "  cluster: false", "  offline: false"):
        assert any(entry.startswith(line) for entry in entries), line
    # output.dir's default (faces/, where an extraction writes) is one curation refuses: shown as required
    assert any(entry.startswith("  dir: ???") and "required" in entry for entry in entries), entries
