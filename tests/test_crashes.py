"""A plugin that fails, exits or hangs mid-run (threads): the run ends promptly, naming plugin and frame."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from cli_helpers import load_json, run_facekit
from conftest import DATA, require_data
from flaky_plugin import ctrl_c_once_hanging, install_flaky

VIDEO = DATA / "video" / "faceswap_test.mp4"


@pytest.fixture(scope="module")
def flaky_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install_flaky(tmp_path_factory.mktemp("site"))


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_failing_plugin_ends_the_run_naming_plugin_and_frame(tmp_path: Path, flaky_env: dict[str, str],
                                                               how: str) -> None:
    require_data()
    out = tmp_path / "faces"
    started = time.monotonic()
    result = run_facekit("+detector=flaky", f"detector.how={how}", "detector.fail_on_call=5", f"input={VIDEO}",
                         f"output={out}", "runner.progress=false", cwd=tmp_path, env=flaky_env, timeout=120)
    assert time.monotonic() - started < 60
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(error) == 1 and "flaky" in error[0] and "faceswap_test_000005" in error[0], result.stderr
    # the frames finished before the failure are kept, and a rerun would resume after them
    assert sorted(load_json(out / "alignments.json")["frames"]) == [f"faceswap_test_{n:06d}" for n in range(1, 5)]


def test_a_hung_plugin_still_stops_on_ctrl_c(tmp_path: Path, flaky_env: dict[str, str]) -> None:
    require_data()
    args = ["detector.fail_on_call=3", f"input={VIDEO}", f"output={tmp_path / 'faces'}", "runner.progress=false"]
    stopped_after_s, code = ctrl_c_once_hanging(args, tmp_path, flaky_env)
    assert stopped_after_s < 3 and code == 130
    frames = load_json(tmp_path / "faces" / "alignments.json")["frames"]
    assert sorted(frames) == ["faceswap_test_000001", "faceswap_test_000002"]
