"""Running the installed ``facekit`` command the way a user does, in a subprocess."""
from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pytest

#: How long a test waits for a facekit process before it calls it hung. Only a hang reaches it:
#: tests check what a run did (its exit code, the frames it kept), never how fast it was.
HANG_S = 120


def run_facekit(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
                preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    """``preexec`` runs in the child before facekit starts (a resource limit, say). A run still
    going after ``timeout`` seconds is killed with its worker processes and fails the test as a hang."""
    with facekit_process(*args, cwd=cwd, env=env, preexec=preexec) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"facekit hung: {_still_running(process)} after {timeout:g} s ({' '.join(args)})")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@contextmanager
def facekit_process(*args: str, cwd: Path, env: dict[str, str] | None = None,
                    preexec: Callable[[], None] | None = None) -> Iterator[subprocess.Popen[str]]:
    """``facekit`` running in a session of its own, its output piped. Whatever of it is still
    running on the way out (a hung worker process too) is killed: a failed test leaves nothing."""
    process = subprocess.Popen([sys.executable, "-m", "facekit", *args], cwd=cwd,
                               env={**os.environ, "FACEKIT_OFFLINE": "1", **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: _as_at_a_terminal(preexec), start_new_session=True)
    try:
        yield process
    finally:
        _kill_session(process)


def _as_at_a_terminal(preexec: Callable[[], None] | None) -> None:
    """In the child: SIGINT and SIGTERM as a terminal's shell gives them, neither ignored nor
    blocked, whatever the test process inherited or did before (an ignoring parent, a signal mask
    left blocked by code that ran in it): in CI a test's SIGINT twice never stopped a run on
    threads, which then did all its frames."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if preexec is not None:
        preexec()


def run_in_terminal(*args: str, cwd: Path, columns: int = 80, env: dict[str, str] | None = None,
                    timeout: float = 300) -> tuple[int, str]:
    """``facekit`` run the way a person at a terminal ``columns`` wide runs it: its stdout and
    stderr on one pseudo-terminal, so progress bars are drawn. Its exit code and all it wrote, the
    terminal's control sequences (colours, cursor moves) taken out."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: facekit, its output the terminal
        os.chdir(cwd)
        os.execvpe(sys.executable, [sys.executable, "-m", "facekit", *args],
                   {**os.environ, "FACEKIT_OFFLINE": "1", "COLUMNS": str(columns), **(env or {})})
    written, deadline = bytearray(), time.monotonic() + timeout
    try:
        while select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child has exited and the terminal is closed
                break
            if not chunk:
                break
            written += chunk
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"facekit hung in a terminal after {timeout:g} s ({' '.join(args)})")
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written.decode("utf-8", errors="replace"))
    return os.waitstatus_to_exitcode(status), text


def _kill_session(process: subprocess.Popen[str]) -> str:
    """Kills what is left of ``process`` and its children; all it wrote to stderr."""
    try:
        os.killpg(process.pid, signal.SIGKILL)  # it leads its group (start_new_session)
    except ProcessLookupError:
        pass  # it and everything it started have exited
    return process.communicate()[1] or ""


def _still_running(process: subprocess.Popen[str]) -> str:
    """What was left of a timed-out ``process``, for the failure message; kills it."""
    code = process.poll()
    stderr = _kill_session(process)[-2000:]
    if code is None:
        return f"still running; its stderr ends: {stderr}"
    return f"exited (code {code}), but a process it started still held its output open; its stderr ends: {stderr}"


def ctrl_c_default() -> None:
    """For ``preexec_fn`` of a child that a test sends Ctrl-C (SIGINT): a job started in the
    background of a non-interactive shell (``pytest &``, some CI runners) has SIGINT ignored, its
    children inherit that (POSIX), and Python then never raises KeyboardInterrupt. The test is of
    facekit, not of how pytest was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def journaled_frames(output: Path) -> list[str]:
    """The frames whole in the journal of ``output``'s alignments file, in the order written:
    what a running facekit has finished so far (it flushes the journal after every frame)."""
    try:
        lines = (output / "alignments.json.journal").read_bytes().split(b"\n")
    except FileNotFoundError:
        return []
    return [json.loads(line)["name"] for line in lines[1:-1]]  # a header first; the last may be torn


def wait_for_frames(process: subprocess.Popen[str], output: Path, count: int) -> list[str]:
    """Waits until the running ``process`` has journaled ``count`` frames into ``output``; the
    frames journaled then. Fails the test if it exits first or is still short after ``HANG_S``."""
    deadline = time.monotonic() + HANG_S
    while True:
        frames = journaled_frames(output)
        if len(frames) >= count:
            return frames
        if process.poll() is not None:
            pytest.fail(f"facekit exited (code {process.returncode}) with {len(frames)} of {count} frames "
                        f"journaled; its stderr ends: {_kill_session(process)[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"facekit hung: {len(frames)} of {count} frames journaled after {HANG_S} s; "
                        f"{_still_running(process)}")
        time.sleep(0.01)


def while_paused(process: subprocess.Popen[str], run: Callable[[], subprocess.CompletedProcess[str]]
                 ) -> subprocess.CompletedProcess[str]:
    """``run()`` while the running ``process`` is paused (SIGSTOP) mid-run, holding whatever it
    holds; it resumes (SIGCONT) afterwards, whatever ``run`` did."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        return run()
    finally:
        os.kill(process.pid, signal.SIGCONT)


def stop_with(process: subprocess.Popen[str], signum: int) -> str:
    """Sends ``signum`` to the running ``process`` and waits for it, and every process it
    started, to exit; its stderr. Fails the test as a hang if that takes ``HANG_S``."""
    process.send_signal(signum)
    return wait_for_exit(process, f"after {signal.Signals(signum).name}")


def wait_for_exit(process: subprocess.Popen[str], what: str = "") -> str:
    """Waits for ``process``, and every process it started, to exit; its stderr. Fails the test
    as a hang if that takes ``HANG_S``; ``what`` says, in that message, what it was waiting after."""
    try:
        return process.communicate(timeout=HANG_S)[1]
    except subprocess.TimeoutExpired:
        pytest.fail(f"facekit hung: {_still_running(process)} {HANG_S} s {what}".rstrip())


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


def copy_flat(photos: Iterable[Path], folder: Path) -> Path:
    """``photos`` copied into ``folder`` as ``<their folder>_<name>`` (p01/img1.jpg -> p01_img1.jpg):
    one flat folder of images is one source, and names from several folders stay apart."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copy(photo, folder / f"{photo.parent.name}_{photo.name}")
    return folder


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def install_module(site: Path, module: str, source: str, entry_point: str) -> None:
    """What ``pip install`` leaves behind for a one-module distribution with one ``facekit``
    entry point: the module and a ``*.dist-info`` that ``importlib.metadata`` finds on the path
    (``site`` is made when missing)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    dist_info = site / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(f"[facekit]\n{entry_point} = {module}\n", encoding="utf-8")


def path_with(site: Path) -> dict[str, str]:
    """Environment that puts ``site`` on the subprocess's import path."""
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)}


def stopped_midway(extraction: Path, source: str, folder: str, frames_kept: int) -> None:
    """``extraction`` as a run stopped in ``source`` leaves it: the source ``partial`` in
    collection.json, its alignments file holding only its first ``frames_kept`` frames (the fold
    on the way out) and only their face files."""
    from facekit.output.alignments import load_alignments, write_alignments

    path = extraction / folder / "alignments.json"
    document = load_alignments(path)
    names = list(document["frames"])
    for name in names[frames_kept:]:
        for face in document["frames"].pop(name)["faces"]:
            if face.get("crop"):
                (extraction / folder / face["crop"]).unlink()
    write_alignments(path, document)
    state = load_json(extraction / "collection.json")
    for entry in state["sources"]:
        if entry["source"] == source:
            entry["state"] = "partial"
    (extraction / "collection.json").write_text(json.dumps(state))
