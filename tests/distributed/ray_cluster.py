"""A Ray cluster of several nodes on this machine, every node bound to 127.0.0.1, for the
runner=ray tests; and what they compare."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pytest

from cli_helpers import file_hashes, load_json
from facekit.output.pngmeta import read_png_text

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


#: Covers a folder with an empty tmpfs, then runs the rest of the command line: in a private mount
#: namespace, only that command (and what it starts) sees the empty folder.
_COVERED = 'mount -t tmpfs facekit-private "$0" && exec "$@"'


def require_private_mounts(folder: Path) -> None:
    """Skips unless this process may give a child a mount namespace of its own (``unshare
    --mount`` and a tmpfs mount: root or CAP_SYS_ADMIN, which a container may withhold)."""
    if shutil.which("unshare") is None:
        pytest.skip("a node that does not share the output folder needs unshare (util-linux), not found")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _COVERED, str(folder), "true"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"])[-1]
        pytest.skip(f"a node that does not share the output folder needs a private mount namespace "
                    f"(unshare --mount, mount -t tmpfs), not permitted here: {why}")


@contextmanager
def node_without(cluster: Any, hidden: Path) -> Iterator[str]:
    """A one-CPU node joined to ``cluster`` that sees ``hidden`` as an empty folder of its own, as
    a machine without the shared filesystem would; its node id. Stopped on the way out (killed
    if it does not stop), before the cluster is."""
    node = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", _COVERED, str(hidden),
                             sys.executable, str(Path(__file__).with_name("private_node.py")), cluster.address],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        node_id = node.stdout.readline().strip()
        assert node_id, f"the node in a private mount namespace did not start (exit code {node.wait(30)})"
        deadline = time.monotonic() + 60
        while node_id not in cluster.global_state._live_node_ids():
            assert time.monotonic() < deadline, "the node in a private mount namespace never joined the cluster"
            time.sleep(0.1)
        yield node_id
    finally:
        node.stdin.close()
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)  # it leads its session: its raylet and workers go too
            node.wait()


def same_output(ours: Path, theirs: Path) -> None:
    """Two output folders hold the same face files (bytes) and alignments entries, in the same order."""
    mine_files, their_files = file_hashes(ours, "*.png", "rejected/*.png"), file_hashes(theirs, "*.png", "rejected/*.png")
    assert mine_files.keys() == their_files.keys()
    differing = sorted(name for name in mine_files if mine_files[name] != their_files[name])
    assert not differing, "face files differ: " + "; ".join(how_pngs_differ(ours / n, theirs / n) for n in differing[:5])
    mine, other = load_json(ours / "alignments.json"), load_json(theirs / "alignments.json")
    assert list(mine["frames"]) == list(other["frames"]) and mine == other


def how_pngs_differ(ours: Path, theirs: Path) -> str:
    """Which part of two face files differs: the pixels, the text they carry, or only the deflate
    encoding of the same rows (a failing comparison says which, to tell an encoder from a crop)."""
    def rows(path: Path) -> bytes:
        data, offset, idat = path.read_bytes(), 8, b""
        while offset < len(data):
            length, kind = int.from_bytes(data[offset:offset + 4], "big"), data[offset + 4:offset + 8]
            idat += data[offset + 8:offset + 8 + length] if kind == b"IDAT" else b""
            offset += length + 12
        return zlib.decompress(idat)

    a, b = (cv2.imread(str(path), cv2.IMREAD_UNCHANGED) for path in (ours, theirs))
    parts = [f"{ours.name}:",
             "pixels equal" if a.shape == b.shape and np.array_equal(a, b) else
             f"pixels differ ({int(np.count_nonzero(a != b)) if a.shape == b.shape else 'shape'} values)",
             "text equal" if read_png_text(ours) == read_png_text(theirs) else "text differs",
             "filtered rows equal" if rows(ours) == rows(theirs) else "filtered rows differ"]
    return " ".join(parts)


def shard_journals(output: Path) -> dict[str, tuple[int, int]]:
    """Finished shards' journals by name, with (inode, mtime_ns): a journal rewritten gets a new inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (output / ".facekit-shards").glob("*.jsonl")}


def settled_journals(output: Path, quiet_s: float, limit_s: float) -> dict[str, tuple[int, int]]:
    """The finished shards' journals once none has landed for ``quiet_s``: a killed driver's
    shard tasks run on until Ray notices the driver is gone and ends its workers, and one of
    them can still land its journal after the driver died."""
    journals, quiet_since, deadline = shard_journals(output), time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() - quiet_since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.1)
        now = shard_journals(output)
        if now != journals:
            journals, quiet_since = now, time.monotonic()
    return journals


def summary(output: Path) -> dict[str, Any]:
    return json.loads((output / "run_summary.json").read_text())
