"""A user's own config file (Hydra's ``-cd DIR -cn NAME``) and Hydra's ``-r`` get facekit's checks
up front as a plain command line does: a refused run is one line, exit 2, and writes nothing (no
``.hydra/`` either, nor over an earlier run's); task=curate runs from one; a sweep's values are
checked before the first job."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import load_json, run_facekit
from conftest import SCENES, require_data


def one_line_error(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("facekit: error:"), result.stderr
    return lines[0]


def _tree(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


@pytest.fixture
def user_config(tmp_path: Path) -> Path:
    """conf/mine.yaml: facekit's config with the user's input, output and crop size."""
    require_data()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "obama.jpg").symlink_to(SCENES / "obama.jpg")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mine.yaml").write_text(
        "defaults:\n  - config\n  - _self_\ninput: in\noutput:\n  dir: out\n  size: 128\nrunner:\n  progress: false\n",
        encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("flags", [["-cd", "conf", "-cn", "mine"], ["--config-dir=conf", "--config-name=mine"]],
                         ids=["short", "long"])
def test_a_bad_value_over_a_user_config_is_one_line_and_writes_nothing(user_config: Path, flags: list[str]) -> None:
    before = _tree(user_config)
    assert "output.size must be a whole number of pixels" in one_line_error(
        run_facekit(*flags, "output.size=-5", cwd=user_config))
    assert "output.size must be a whole number, got 'abc'" in one_line_error(
        run_facekit(*flags, "output.size=abc", cwd=user_config))
    assert _tree(user_config) == before


def test_a_refused_rerun_from_a_user_config_leaves_the_first_run_s_record_as_it_was(user_config: Path) -> None:
    assert run_facekit("-cd", "conf", "-cn", "mine", cwd=user_config).returncode == 0
    record = (user_config / "out" / ".hydra" / "config.yaml").read_bytes()
    assert "written with other settings" in one_line_error(
        run_facekit("-cd", "conf", "-cn", "mine", "output.size=64", cwd=user_config))
    assert (user_config / "out" / ".hydra" / "config.yaml").read_bytes() == record


def test_hydra_s_run_flag_changes_nothing(tmp_path: Path) -> None:
    assert "does not exist" in one_line_error(run_facekit("-r", "input=nope", "output=o", cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_task_curate_runs_from_a_user_config(user_config: Path) -> None:
    """Hydra made the result folder's .hydra/ first, and curation refused its own folder."""
    assert run_facekit("-cd", "conf", "-cn", "mine", cwd=user_config).returncode == 0
    (user_config / "conf" / "cur.yaml").write_text(
        "defaults:\n  - config\n  - _self_\ntask: curate\ninput: out\noutput:\n  dir: curated\n", encoding="utf-8")
    result = run_facekit("-cd", "conf", "-cn", "cur", cwd=user_config)
    assert result.returncode == 0, result.stderr
    assert load_json(user_config / "curated" / "curation.json")["counts"]["kept"] == 1


def test_a_sweep_over_a_user_config_checks_every_value_before_the_first_job(user_config: Path) -> None:
    before = _tree(user_config)
    assert "the sweep's output.size=-1" in one_line_error(
        run_facekit("-m", "-cd", "conf", "-cn", "mine", "output.size=64,-1", cwd=user_config))
    assert _tree(user_config) == before


@pytest.mark.parametrize("key", ["hydra.run.dir=elsewhere", "hydra.output_subdir=null", "hydra.mode=MULTIRUN"])
def test_a_hydra_key_facekit_sets_itself_is_refused_not_silently_overridden(tmp_path: Path, key: str) -> None:
    """hydra.run.dir made no folder and hydra.output_subdir=null still wrote .hydra/; with
    output_subdir (or hydra.mode=MULTIRUN for -m) a sweep lost its report."""
    assert f"{key.partition('=')[0]} is facekit's to set" in one_line_error(
        run_facekit("input=nope", "output=o", key, cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []
