"""What each shard worker asks Ray for, and how many workers a run starts.

A worker holds one set of plugins (detector, aligner, identity). Its GPU share is the GPU memory
its plugins report divided by one GPU's memory, so Ray packs as many workers onto a GPU as its
memory holds and never more: the cluster form of a local run's rule
(``facekit.engine.gpu``), where a plugin's reported memory decides what runs side by side.
Workers whose plugins all run on the CPU ask for CPUs only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from facekit.engine.gpu import first_gpu_mb

#: Ray counts GPU shares in units of 1/10,000 (its resource granularity).
_GPU_GRAIN = 10_000


@dataclass(frozen=True)
class WorkerResources:
    num_cpus: float
    num_gpus: float
    why: str  # one line for the log

    def as_options(self) -> dict[str, float]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}


def worker_resources(plugin_gpu_mb: int, cpus: float, gpu_memory_mb: int | None,
                     cluster_gpus: float) -> WorkerResources:
    """``plugin_gpu_mb``: what the plugins of one worker report together; ``gpu_memory_mb``:
    one GPU's memory on the nodes (None: unknown, then a worker takes a whole GPU)."""
    if plugin_gpu_mb <= 0:
        return WorkerResources(cpus, 0.0, f"{cpus:g} CPU(s) a worker: no plugin needs GPU memory")
    if cluster_gpus <= 0:
        return WorkerResources(cpus, 0.0, f"{cpus:g} CPU(s) a worker: the plugins report {plugin_gpu_mb} MB of "
                                          "GPU memory, but the cluster has no GPU, so they run on CPUs")
    if not gpu_memory_mb:
        return WorkerResources(cpus, 1.0, f"{cpus:g} CPU(s) and a whole GPU a worker: the GPUs' memory is "
                                          "unknown (set runner.gpu_memory_mb)")
    share = min(1.0, math.ceil(plugin_gpu_mb / gpu_memory_mb * _GPU_GRAIN) / _GPU_GRAIN)
    return WorkerResources(cpus, share, f"{cpus:g} CPU(s) and {share:g} of a GPU a worker: its plugins report "
                                        f"{plugin_gpu_mb} MB of a {gpu_memory_mb} MB GPU")


def worker_count(requested: int | None, resources: WorkerResources, cluster_cpus: float, cluster_gpus: float,
                 shards: int) -> int:
    """``requested``, or as many workers as the cluster's CPUs (and GPUs, for GPU workers) hold
    at once; never more than there are shards, and at least one."""
    if requested:
        return max(1, min(requested, shards))
    fits = int(cluster_cpus // resources.num_cpus) if resources.num_cpus else shards
    if resources.num_gpus:  # a worker's share cannot straddle two GPUs: each holds a whole number of workers
        fits = min(fits, int(cluster_gpus) * (_GPU_GRAIN // int(round(resources.num_gpus * _GPU_GRAIN))))
    return max(1, min(fits, shards))


def local_gpu_memory_mb() -> int | None:
    """Total memory of this machine's first GPU in MB (nvidia-smi), None without one: the
    default for ``runner.gpu_memory_mb``, right where the nodes have this machine's GPUs."""
    return first_gpu_mb("memory.total")
