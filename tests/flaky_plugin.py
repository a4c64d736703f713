"""A test plugin that misbehaves on purpose, installed the way pip would install a third party's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_helpers import ctrl_c_default, install_module, path_with

# A detector that finds one fixed box and misbehaves, in the way its config says, on its Nth
# call (``fail_on_call``) or on the frame whose pixels hash to ``frame_sha1``: worker processes
# count their calls apart, so only the frame's content names one frame in every runner.
FLAKY_MODULE = '''\
import hashlib
import os
import signal
import sys
import threading
from dataclasses import dataclass

import facekit
from facekit.plugin import PluginSpec
from facekit.types import Detection


@dataclass
class FlakyConfig:
    fail_on_call: int = 5  # 0: never by count
    frame_sha1: str = ""
    how: str = "raise"  # raise | exit | kill | hang


class FlakyDetector:
    def __init__(self, config):
        self.config, self.calls = config, 0

    def detect(self, images):
        self.calls += 1
        marked = any(hashlib.sha1(image.tobytes()).hexdigest() == self.config.frame_sha1 for image in images)
        if self.calls == self.config.fail_on_call or marked:
            if self.config.how == "raise":
                raise ValueError("flaky on purpose")
            if self.config.how == "exit":
                sys.exit(3)  # what kills a worker thread silently in most thread pools
            if self.config.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)  # a worker process that dies outright
            print("HANGING", flush=True)
            threading.Event().wait()  # never returns
        return [[Detection((40.0, 40.0, 200.0, 220.0), 0.9)] for _ in images]


@facekit.hookimpl
def facekit_detectors():
    return [PluginSpec(name="flaky", kind="detector", factory=lambda config, store: FlakyDetector(config),
                       config_class=FlakyConfig)]
'''


def install_flaky(site: Path) -> dict[str, str]:
    """Installs the ``flaky`` detector into ``site``; the environment that finds it."""
    install_module(site, "toy_flaky_facekit", FLAKY_MODULE, "flaky")
    return path_with(site)


def ctrl_c_once_hanging(args: list[str], cwd: Path, env: dict[str, str], settle_s: float = 0.0) -> tuple[float, int]:
    """Runs facekit with the flaky plugin set to hang, sends Ctrl-C once it says so (and after
    ``settle_s`` more), and returns how long it took to stop and its exit code."""
    command = [sys.executable, "-m", "facekit", "+detector=flaky", "detector.how=hang", *args]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env, "FACEKIT_OFFLINE": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_default)
    try:
        assert process.stdout.readline().strip() == "HANGING"
        time.sleep(settle_s)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        return time.monotonic() - sent, process.returncode
    finally:
        process.kill()
        process.wait()
