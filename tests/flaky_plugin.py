"""A test plugin that misbehaves on purpose, installed the way pip would install a third party's."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

from cli_helpers import HANG_S, ctrl_c_default, facekit_process, install_module, path_with, stop_with, wait_for_frames

# A detector that finds one fixed box and misbehaves, in the way its config says, on its Nth
# call (``fail_on_call``) or on the frame whose pixels hash to ``frame_sha1``: worker processes
# count their calls apart, so only the frame's content names one frame in every runner.
FLAKY_MODULE = '''\
import hashlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import facekit
from facekit.plugin.spec import PluginSpec
from facekit.records import Detection


@dataclass
class FlakyConfig:
    fail_on_call: int = 5  # 0: never by count
    frame_sha1: str = ""
    how: str = "raise"  # raise | exit | kill | hang
    wait_for: str = ""  # a path: misbehave only once it exists (the run has got that far), or after 120 s
    die_in_worker: bool = False  # killed while a worker process builds it, before the worker says it is ready


class FlakyDetector:
    def __init__(self, config):
        self.config, self.calls = config, 0
        import multiprocessing

        if config.die_in_worker and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)

    def detect(self, images):
        self.calls += 1
        marked = any(hashlib.sha1(image.tobytes()).hexdigest() == self.config.frame_sha1 for image in images)
        if self.calls == self.config.fail_on_call or marked:
            waited = time.monotonic()
            while self.config.wait_for and not os.path.exists(self.config.wait_for) and time.monotonic() - waited < 120:
                time.sleep(0.02)
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


def ctrl_c_once_hanging(args: list[str], output: Path, cwd: Path, env: dict[str, str],
                        journaled: int = 0) -> tuple[list[str], int, str]:
    """Runs facekit into ``output`` with the flaky plugin set to hang; once it says so and has
    journaled ``journaled`` frames, sends Ctrl-C. Returns the frames journaled before the signal,
    the exit code and stderr. A run that hangs on the way (before or after the signal) fails the
    test after ``HANG_S``: nothing here measures how fast it stops."""
    with facekit_process("+detector=flaky", "detector.how=hang", f"output={output}", *args, cwd=cwd, env=env,
                         preexec=ctrl_c_default) as process:
        watchdog = threading.Timer(HANG_S, _kill_group, [process.pid])  # ends a readline that waits forever
        watchdog.start()
        try:
            said = process.stdout.readline().strip()
        finally:
            watchdog.cancel()
        assert said == "HANGING", f"the flaky plugin never hung (exit {process.poll()}): {said!r}"
        before = wait_for_frames(process, output, journaled)
        stderr = stop_with(process, signal.SIGINT)
        return before, process.returncode, stderr


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
