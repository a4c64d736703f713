"""Running the installed ``facekit`` command the way a user does, in a subprocess."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable


def run_facekit(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
                preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    """``preexec`` runs in the child before facekit starts (a resource limit, say)."""
    full_env = {**os.environ, "FACEKIT_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "facekit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec)


def ctrl_c_default() -> None:
    """For ``preexec_fn`` of a child that a test sends Ctrl-C (SIGINT): a job started in the
    background of a non-interactive shell (``pytest &``, some CI runners) has SIGINT ignored, its
    children inherit that (POSIX), and Python then never raises KeyboardInterrupt. The test is of
    facekit, not of how pytest was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def peak_rss_mb(*args: str, cwd: Path) -> float:
    """Run ``facekit`` like ``run_facekit`` (it must succeed); its peak resident memory in MB,
    read by wait4 from the child itself."""
    process = subprocess.Popen([sys.executable, "-m", "facekit", *args], cwd=cwd,
                               env={**os.environ, "FACEKIT_OFFLINE": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, process.stderr.read()[-2000:]
    return usage.ru_maxrss / 1024


def file_hashes(folder: Path, *patterns: str) -> dict[str, str]:
    """sha256 of every file under ``folder`` that matches one of ``patterns``, by relative path:
    two runs wrote the same files when these are equal."""
    paths = sorted({path for pattern in patterns for path in folder.glob(pattern)})
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def install_module(site: Path, module: str, source: str, entry_point: str) -> None:
    """What ``pip install`` leaves behind for a one-module distribution with one ``facekit``
    entry point: the module and a ``*.dist-info`` that ``importlib.metadata`` finds on the path."""
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    dist_info = site / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(f"[facekit]\n{entry_point} = {module}\n", encoding="utf-8")


def path_with(site: Path) -> dict[str, str]:
    """Environment that puts ``site`` on the subprocess's import path."""
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}
