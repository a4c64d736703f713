"""A plugin that fails, exits or hangs mid-run: the run ends promptly, naming plugin and frame."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import install_module, load_json, path_with, run_facekit
from conftest import DATA, require_data

# A detector that finds one fixed box and misbehaves on its Nth call, in the way its config says.
FLAKY_MODULE = '''\
import sys
import threading
from dataclasses import dataclass

import facekit
from facekit.plugin import PluginSpec
from facekit.types import Detection


@dataclass
class FlakyConfig:
    fail_on_call: int = 5
    how: str = "raise"  # raise | exit | hang


class FlakyDetector:
    def __init__(self, config):
        self.config, self.calls = config, 0

    def detect(self, images):
        self.calls += 1
        if self.calls == self.config.fail_on_call:
            if self.config.how == "raise":
                raise ValueError("flaky on purpose")
            if self.config.how == "exit":
                sys.exit(3)  # what kills a worker thread silently in most thread pools
            print("HANGING", flush=True)
            threading.Event().wait()  # never returns
        return [[Detection((40.0, 40.0, 200.0, 220.0), 0.9)] for _ in images]


@facekit.hookimpl
def facekit_detectors():
    return [PluginSpec(name="flaky", kind="detector", factory=lambda config, store: FlakyDetector(config),
                       config_class=FlakyConfig)]
'''

VIDEO = DATA / "video" / "faceswap_test.mp4"


@pytest.fixture(scope="module")
def flaky_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    install_module(site, "toy_flaky_facekit", FLAKY_MODULE, "flaky")
    return path_with(site)


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
    env = {**flaky_env, "FACEKIT_OFFLINE": "1"}
    command = [sys.executable, "-m", "facekit", "+detector=flaky", "detector.how=hang", "detector.fail_on_call=3",
               f"input={VIDEO}", f"output={tmp_path / 'faces'}", "runner.progress=false"]
    import os

    process = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "HANGING"
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        assert time.monotonic() - sent < 3
    finally:
        process.kill()
    assert process.returncode == 130
    frames = load_json(tmp_path / "faces" / "alignments.json")["frames"]
    assert sorted(frames) == ["faceswap_test_000001", "faceswap_test_000002"]
