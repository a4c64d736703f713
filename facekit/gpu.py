"""Free GPU memory, and the choice between running detect and align serially or in parallel."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterable, Literal

from facekit.errors import ConfigError
from facekit.plugin import PluginSpec

RunMode = Literal["serial", "parallel"]
MODES = ("auto", "serial", "parallel")
FAKE_FREE_ENV = "FACEKIT_GPU_FREE_MB"  # tests and dry runs: pretend this much GPU memory is free


def free_gpu_memory_mb() -> int | None:
    """Free memory of the first GPU in MB, None when there is none.

    Asks nvidia-smi rather than TensorFlow: importing TensorFlow to answer would cost seconds
    and reserve memory on the very GPU we are measuring.
    """
    fake = os.environ.get(FAKE_FREE_ENV)
    if fake is not None:
        return None if fake.strip().lower() in ("", "none") else int(fake)
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        return int(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def choose_mode(requested: str, plugins: Iterable[PluginSpec], free_mb: int | None,
                margin_mb: int = 1024) -> RunMode:
    """``auto``: parallel when there is no GPU, when a plugin needs none (it runs on the CPU
    beside the other), or when free memory covers both plus a margin; serial otherwise."""
    if requested not in MODES:
        raise ConfigError(f"runner.mode={requested!r}; choose one of: {', '.join(MODES)}")
    if requested != "auto":
        return requested  # type: ignore[return-value]
    needs = [p.gpu_memory_mb for p in plugins]
    if free_mb is None or any(n == 0 for n in needs):
        return "parallel"
    return "parallel" if free_mb >= sum(needs) + margin_mb else "serial"
