"""How many worker processes a run gets, from the cores this process may use (its CPU affinity
and a cgroup's CPU quota) and what its plugins need: the resource policy, apart from the pool
that runs the workers (``workers``) and the loop each worker runs (``worker_loop``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

#: Frames each worker must have before ``auto`` starts workers. Two workers take 0.5-0.75 s to
#: start and build their models; on the 2-core machine the whole command took about as long
#: either way at 200 frames of the Hamilton clip (5.04 s with workers against 5.11 s on threads,
#: then 4.48 against 4.18) and 0.9-1.2 s less with workers at 400.
FRAMES_PER_WORKER = 100


def choose_workers(requested: int | str, gpu_memory_mb: Sequence[int], mode: str, frames: int,
                   cores: int | None = None) -> int | None:
    """How many worker processes a run gets; None runs the stages on threads in this process.

    ``auto``: one a core, for parallel runs whose plugins all run on the CPU (``gpu_memory_mb``,
    what each stage's plugin holds on a GPU, all 0: on a GPU each worker would hold its own copy
    of the models) and whose input has ``FRAMES_PER_WORKER`` frames for each of at least two
    workers, so that starting them pays for itself. A number
    asks for that many (0 or 1: threads; the config's check refused anything else), but never
    more than the input's ``frames`` (when known): runner.workers=1000 on one photo started 1,000
    processes. Serial runs always stay on threads, since they exist to hold one model at a time."""
    if requested == "auto":
        if mode != "parallel" or any(gpu_memory_mb):
            return None
        count = min(cores or usable_cores(), frames // FRAMES_PER_WORKER)
    else:
        count = requested if mode == "parallel" else 0  # type: ignore[assignment]
        count = min(count, frames) if frames > 0 else count
    return count if count >= 2 else None


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota (a container
    started with ``--cpus=2`` on a 64-core host sees 64 cores but may use two)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, quota)) if quota else cores


#: Where cgroup v2 and v1 keep the CPU quota of this process's group.
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _cgroup_cpu_quota() -> int | None:
    """Whole CPUs the cgroup quota allows (rounded up), None when there is no quota."""
    try:
        if _CGROUP_V2.is_file():
            return cpus_from_quota(*_CGROUP_V2.read_text().split()[:2])
        if _CGROUP_V1[0].is_file():
            return cpus_from_quota(*(p.read_text().strip() for p in _CGROUP_V1))
    except (OSError, TypeError):
        return None
    return None


def cpus_from_quota(quota: str, period: str) -> int | None:
    """``cpu.max``'s "200000 100000" is 2 CPUs; "max" (v2) or "-1" (v1) is no quota."""
    if not (quota.isdigit() and period.isdigit()) or int(period) == 0:
        return None
    return max(1, -(-int(quota) // int(period)))
