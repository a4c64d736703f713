"""A Ray cluster of several nodes on this machine, every node bound to 127.0.0.1, for the
runner=ray tests; and what they compare."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from cli_helpers import file_hashes, load_json

#: Without it, the driver resolves "this node" to the machine's network address and connects there.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
NODE = {"node_ip_address": "127.0.0.1"}


def require_ray() -> Any:
    return pytest.importorskip("ray", reason="runner=ray needs Ray: pip install 'facekit[ray]'")


def start_cluster(workers: int, env: dict[str, str]) -> Any:
    """A head that runs nothing (0 CPUs: the driver's node) and ``workers`` one-CPU nodes. ``env``
    reaches every node's workers (a test plugin's folder on PYTHONPATH): nodes inherit this
    process's environment when they start."""
    require_ray()
    changed = {**LOOPBACK_ENV, **env}
    saved = {key: os.environ.get(key) for key in changed}
    os.environ.update(changed)
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "include_dashboard": False})
    cluster.facekit_saved_env = saved  # restored by ``stopped``: later tests must not see the test plugin
    for _ in range(workers):
        cluster.add_node(**NODE, num_cpus=1)
    cluster.wait_for_nodes()
    return cluster


def stopped(cluster: Any) -> Iterator[Any]:
    try:
        yield cluster
    finally:
        cluster.shutdown()
        for key, value in getattr(cluster, "facekit_saved_env", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def same_output(ours: Path, theirs: Path) -> None:
    """Two output folders hold the same face files (bytes) and alignments entries, in the same order."""
    assert file_hashes(ours, "*.png", "rejected/*.png") == file_hashes(theirs, "*.png", "rejected/*.png")
    mine, other = load_json(ours / "alignments.json"), load_json(theirs / "alignments.json")
    assert list(mine["frames"]) == list(other["frames"]) and mine == other


def shard_journals(output: Path) -> dict[str, tuple[int, int]]:
    """Finished shards' journals by name, with (inode, mtime_ns): a journal rewritten gets a new inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (output / ".facekit-shards").glob("*.jsonl")}


def summary(output: Path) -> dict[str, Any]:
    return json.loads((output / "run_summary.json").read_text())
