"""A plugin that fails, exits or hangs mid-run (threads): the run ends promptly, naming plugin and frame."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import HANG_S, load_json, run_facekit
from conftest import DATA, require_data
from flaky_plugin import ctrl_c_once_hanging, install_flaky

VIDEO = DATA / "video" / "faceswap_test.mp4"


@pytest.fixture(scope="module")
def flaky_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install_flaky(tmp_path_factory.mktemp("site"))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_failing_plugin_ends_the_run_naming_plugin_and_frame(tmp_path: Path, flaky_env: dict[str, str],
                                                               how: str) -> None:
    require_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=flaky", f"detector.how={how}", "detector.fail_on_call=5", f"input={VIDEO}",
                         f"output={out}", "runner.progress=false", cwd=tmp_path, env=flaky_env, timeout=HANG_S)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(error) == 1 and "flaky" in error[0] and "faceswap_test_000005" in error[0], result.stderr
    # the frames finished before the failure are kept, and a rerun would resume after them
    assert sorted(load_json(out / "alignments.json")["frames"]) == [f"faceswap_test_{n:06d}" for n in range(1, 5)]


def test_a_plugin_that_fails_the_first_frame_leaves_nothing_that_refuses_the_mended_command(
        tmp_path: Path, flaky_env: dict[str, str]) -> None:
    require_data()
    photo = DATA / "images" / "people" / "p01" / "img1.jpg"
    out = tmp_path / "faces"
    args = [f"input={photo}", f"output={out}", "runner.progress=false", "runner.workers=0"]
    failed = run_facekit("+detector=flaky", "detector.fail_on_call=1", *args, cwd=tmp_path, env=flaky_env, timeout=HANG_S)
    assert failed.returncode == 2 and "flaky" in failed.stderr, failed.stderr
    assert not (out / "alignments.json").exists() and not list(out.glob("*.journal"))
    mended = run_facekit("+detector=flaky", "detector.fail_on_call=0", *args, cwd=tmp_path, env=flaky_env)
    assert mended.returncode == 0, mended.stderr  # an option changed: not refused for "other settings"
    assert list(load_json(out / "alignments.json")["frames"]) == ["img1"]


@pytest.mark.slow
def test_a_hung_plugin_still_stops_on_ctrl_c(tmp_path: Path, flaky_env: dict[str, str]) -> None:
    """The detector hangs on its third frame; the two before it are journaled, then Ctrl-C: the
    run exits as interrupted and keeps exactly those two (a hang fails after ``HANG_S``)."""
    require_data()
    out = tmp_path / "faces"
    args = ["detector.fail_on_call=3", f"input={VIDEO}", "runner.progress=false"]
    before, code, stderr = ctrl_c_once_hanging(args, out, tmp_path, flaky_env, journaled=2)
    assert code == 130, f"exit {code}, not interrupted: {stderr}"
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert before == ["faceswap_test_000001", "faceswap_test_000002"]
    assert list(load_json(out / "alignments.json")["frames"]) == before


def test_a_worker_process_that_dies_while_it_starts_ends_the_run_in_one_line(tmp_path: Path,
                                                                             flaky_env: dict[str, str]) -> None:
    """Its pipe's end reads as "ready to receive": the EOFError that followed was a traceback."""
    require_data()
    result = run_facekit("+detector=flaky", "detector.die_in_worker=true", f"input={VIDEO}", "output=faces",
                         "runner.workers=2", "runner.progress=false", cwd=tmp_path, env=flaky_env, timeout=HANG_S)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(error) == 1 and "a worker process could not start (killed by SIGKILL)" in error[0], result.stderr
