"""Run as a program (``python private_node.py GCS_ADDRESS``): one Ray worker node joined to the
cluster at GCS_ADDRESS, bound to 127.0.0.1 and started as ``Cluster.add_node`` starts one. It
prints its node id, runs until its stdin closes, then stops its processes.

``ray start --address`` cannot stand in: with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (which keeps
every node on loopback) it refuses to join a cluster at all. A test starts this program inside a
private mount namespace (``unshare --mount``) so that the node sees a folder other than the one
the driver writes: a node on a machine that does not share the output folder."""
from __future__ import annotations

import sys

import ray._private.node
import ray._private.parameter


def main(gcs_address: str) -> None:
    params = ray._private.parameter.RayParams(
        node_ip_address="127.0.0.1", gcs_address=gcs_address, num_cpus=1, num_gpus=0,
        object_store_memory=150 * 1024 * 1024, min_worker_port=0, max_worker_port=0,
        include_log_monitor=False, node_manager_port=0)
    params.dashboard_agent_listen_port = None  # any free port: the head's agent holds the default
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(node.node_id, flush=True)
    sys.stdin.read()  # until the test closes it
    node.kill_all_processes(check_alive=False, allow_graceful=True)


if __name__ == "__main__":
    main(sys.argv[1])
