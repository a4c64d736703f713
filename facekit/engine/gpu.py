"""Free GPU memory, and how a run's stages are grouped into passes so that each pass fits on it."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal, Sequence

from facekit.errors import ConfigError

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
    return first_gpu_mb("memory.free")


def first_gpu_mb(field: str) -> int | None:
    """nvidia-smi's ``field`` (``memory.free``, ``memory.total``) of the first GPU in MB, None
    without a GPU or nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return int(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class StageNeed:
    """One stage of the run and the GPU memory its plugin reports (0: it runs on the CPU)."""

    stage: str
    plugin: str
    memory_mb: int


@dataclass(frozen=True)
class PassPlan:
    """Which stages share a pass, and why, in one line with its figures."""

    mode: RunMode
    passes: tuple[tuple[str, ...], ...]
    decision: str
    warnings: tuple[str, ...] = ()
    free_mb: int | None = None
    margin_mb: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "passes": [list(p) for p in self.passes], "decision": self.decision,
                "free_mb": self.free_mb, "margin_mb": self.margin_mb, "warnings": list(self.warnings)}


def plan_passes_for_gpu(requested: str, needs: Sequence[StageNeed], free_mb: int | None,
                        margin_mb: int) -> PassPlan:
    """``auto``: every stage in one pass (detect and align side by side) when the memory of all
    the plugins that need the GPU, plus the margin, fits in the free memory; otherwise as few
    passes as fit, in stage order, each holding what fits together. A CPU plugin needs nothing
    and joins whichever pass its stage falls in, so it never makes two GPU plugins share one.
    ``serial`` and ``parallel`` are taken as asked: detect, then the rest; or all at once."""
    if requested not in MODES:
        raise ConfigError(f"runner.mode={requested!r}; choose one of: {', '.join(MODES)}")
    stages = tuple(n.stage for n in needs)
    if requested == "parallel" or (requested == "serial" and len(stages) < 2):
        return PassPlan(requested, (stages,), f"{requested}: runner.mode={requested}", free_mb=free_mb,
                        margin_mb=margin_mb)  # type: ignore[arg-type]
    if requested == "serial":
        return PassPlan("serial", (stages[:1], stages[1:]), "serial: runner.mode=serial", free_mb=free_mb,
                        margin_mb=margin_mb)
    on_gpu = [n for n in needs if n.memory_mb > 0]
    if not on_gpu:
        return PassPlan("parallel", (stages,), "parallel: no plugin needs GPU memory", free_mb=free_mb,
                        margin_mb=margin_mb)
    if free_mb is None:
        return PassPlan("parallel", (stages,), f"parallel: no GPU found, so {_names(on_gpu)} run on the CPU",
                        margin_mb=margin_mb)
    sum_line = " + ".join([*(f"{n.plugin} {n.memory_mb} MB" for n in on_gpu), f"margin {margin_mb} MB"])
    if sum(n.memory_mb for n in on_gpu) + margin_mb <= free_mb:
        return PassPlan("parallel", (stages,), f"parallel: {sum_line} <= {free_mb} MB free",
                        free_mb=free_mb, margin_mb=margin_mb)
    passes = _fitting_passes(needs, free_mb - margin_mb)
    warnings = tuple(f"{n.plugin} ({n.stage}) alone needs {n.memory_mb} MB of GPU memory and only {free_mb} MB "
                     "is free: it may run out of memory" for n in on_gpu if n.memory_mb > free_mb)
    decision = (f"serial: {sum_line} > {free_mb} MB free; passes: "
                + " | ".join(" + ".join(p) for p in passes))
    return PassPlan("serial", passes, decision, warnings, free_mb, margin_mb)


def _fitting_passes(needs: Sequence[StageNeed], room_mb: int) -> tuple[tuple[str, ...], ...]:
    """Stages in order, a new pass begun whenever the next GPU plugin would not fit beside the
    GPU plugins already in the current one (a plugin too large for any pass gets one alone)."""
    passes: list[list[str]] = [[]]
    used = 0
    for need in needs:
        if need.memory_mb and used and used + need.memory_mb > room_mb:
            passes.append([])
            used = 0
        passes[-1].append(need.stage)
        used += need.memory_mb
    return tuple(tuple(p) for p in passes)


def _names(needs: Sequence[StageNeed]) -> str:
    return ", ".join(n.plugin for n in needs)
