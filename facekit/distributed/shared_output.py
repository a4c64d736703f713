"""Every node must write into the one output folder the driver folds from: a shared
filesystem. Checked at the start, from a task on each other node, so that a folder only this
machine sees is refused with one line before any shard runs, not discovered as missing shards."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from facekit.errors import FacekitError
from facekit.fileio import atomic_write_bytes

_PROBE = ".facekit-probe-"


def check_shared_output(ray: Any, output: Path) -> None:
    """Writes a token into ``output``; a task pinned to each other live node must read it and
    write one back that this process then reads."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [node for node in ray.nodes() if node.get("Alive") and node["NodeID"] != here]
    if not others:
        return
    token = secrets.token_hex(8)
    probe = output / f"{_PROBE}{token}"
    atomic_write_bytes(probe, token.encode())
    probe_task = ray.remote(num_cpus=0, max_retries=0)(_answer_probe)
    answers = {node["NodeID"]: probe.with_name(f"{probe.name}.{node['NodeID']}") for node in others}
    try:
        pending = [probe_task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))
                   .remote(str(probe), token) for node_id in answers]
        refused: dict[str, str] = {}
        # every node's reply before any is judged: a refusal must not leave another node's answer behind
        for node_id, why in zip(answers, ray.get(pending, timeout=120)):
            if why is None and not answers[node_id].exists():
                why = "writes a file there that this machine does not see"
            if why is not None:
                refused[node_id] = why
    finally:
        for answer in (probe, *answers.values()):
            answer.unlink(missing_ok=True)
    if refused:
        node_id, why = next(iter(refused.items()))
        address = next(node.get("NodeManagerAddress", "?") for node in others if node["NodeID"] == node_id)
        more = f" (and {len(refused) - 1} other node(s))" if len(refused) > 1 else ""
        raise FacekitError(f"output {str(output)!r} is not shared with node {address} ({node_id[:8]}){more}: "
                           f"it {why}; every node must write to the same folder "
                           "(a shared filesystem mounted at the same path)")


def _answer_probe(path: str, token: str) -> str | None:
    """On another node: None when the token reads back and an answer could be written beside it."""
    import ray

    probe = Path(path)
    try:
        if probe.read_text() != token:
            return "reads another file at that path"
        atomic_write_bytes(probe.with_name(f"{probe.name}.{ray.get_runtime_context().get_node_id()}"), b"seen")
    except FileNotFoundError:
        return "does not see that folder's files"
    except OSError as exc:
        return f"cannot write there ({exc.strerror or exc})"
    return None
