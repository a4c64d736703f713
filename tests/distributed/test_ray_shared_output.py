"""runner=ray needs an output folder every node writes to (a shared filesystem): a cluster with a
node that sees another folder at that path (a node started in a private mount namespace, the
folder covered by a tmpfs of its own) is refused with one line before any shard runs."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from cli_helpers import run_facekit
from conftest import require_data
from facekit.distributed.shared_output import check_shared_output
from facekit.errors import FacekitError
from ray_cluster import node_without, require_private_mounts, require_ray, start_cluster, stopped, summary

pytestmark = pytest.mark.slow  # Ray clusters with a node in a mount namespace of its own

require_ray()


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that the private node sees empty: the driver's output there is not shared with it."""
    folder = tmp_path_factory.mktemp("hidden")
    require_private_mounts(folder)
    return folder


@pytest.fixture(scope="module")
def on_cluster(hidden: Path) -> Iterator[tuple[Any, str]]:
    """A head that runs nothing (the driver's node), a one-CPU node that shares every folder, and
    one that sees ``hidden`` empty; the cluster and that node's id. The node stops before the cluster."""
    with contextmanager(stopped)(start_cluster(1, {})) as cluster, node_without(cluster, hidden) as private_id:
        yield cluster, private_id


def _on_ray(cluster: Any, *args: str, cwd: Path):
    return run_facekit("runner=ray", f"runner.address={cluster.address}", "runner.progress=false", *args, cwd=cwd)


def test_an_output_folder_one_node_does_not_see_is_refused_with_one_line_naming_it_and_that_node(
        on_cluster: tuple[Any, str], hidden: Path, tmp_path: Path) -> None:
    cluster, private_id = on_cluster
    out = hidden / "out"
    result = _on_ray(cluster, f"input={require_data() / 'images' / 'scenes'}", f"output={out}",
                     "runner.files_per_shard=1", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr  # one line, the last
    assert f"output {str(out)!r} is not shared with node 127.0.0.1 ({private_id[:8]})" in errors[0], result.stderr
    assert "does not see that folder's files" in errors[0], result.stderr
    # refused before any shard ran: no shard journal, alignments, face or summary; the probe removed
    assert not (out / ".facekit-shards").exists() and not (out / "alignments.json").exists()
    assert not list(out.rglob("*.png")) and not list(out.glob("*summary.json")) and not list(out.glob(".facekit-probe-*"))


def test_the_same_cluster_runs_on_both_nodes_into_a_folder_they_share(on_cluster: tuple[Any, str],
                                                                     tmp_path: Path) -> None:
    """The refusal above is for the folder, not the node: the same cluster, private node included,
    is not refused for a folder every node sees, and runs every frame. Which of the two worker nodes
    takes which shard is Ray's choice and the moment each actor is ready (one node may take all 15
    before the other has loaded its models), so the test requires only that the shards ran on
    nodes of this cluster."""
    cluster, private_id = on_cluster
    out = tmp_path / "out"
    result = _on_ray(cluster, f"input={require_data() / 'images' / 'scenes'}", f"output={out}",
                     "runner.files_per_shard=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    nodes = summary(out)["nodes"]
    workers = set(cluster.global_state._live_node_ids()) - {cluster.head_node.node_id}
    assert private_id in workers and nodes and set(nodes) <= workers, (nodes, workers)
    assert sum(nodes.values()) == 15 == summary(out)["frames"], summary(out)


class _Ray:
    """Just enough of ``ray`` for ``check_shared_output``, its nodes in a fixed order: each probe
    task runs at once, here, as the node it is pinned to would answer (Ray's own order of nodes
    decides which node the real cluster above asks first)."""

    def __init__(self, nodes: dict[str, Callable[[Path, str], str | None]]) -> None:
        self.answer_as = nodes

    def get_runtime_context(self) -> Any:
        return SimpleNamespace(get_node_id=lambda: "d" * 56)

    def nodes(self) -> list[dict[str, Any]]:
        return [{"NodeID": "d" * 56, "Alive": True}] + [
            {"NodeID": node_id, "Alive": True, "NodeManagerAddress": f"10.0.0.{n}"} for n, node_id in enumerate(self.answer_as)]

    def remote(self, **_: Any) -> Callable[[Any], Any]:
        answer_as = self.answer_as

        class Task:
            def options(self, scheduling_strategy: Any) -> Any:
                node = answer_as[scheduling_strategy.node_id]
                return SimpleNamespace(remote=lambda path, token: node(Path(path), token))
        return lambda _function: Task()

    def get(self, replies: list[Any], timeout: float) -> list[Any]:
        return replies


def _sees(node_id: str) -> Callable[[Path, str], str | None]:
    def answer(probe: Path, token: str) -> str | None:
        assert probe.read_text() == token
        probe.with_name(f"{probe.name}.{node_id}").write_bytes(b"seen")
        return None
    return answer


def test_a_refusal_leaves_no_probe_file_behind_whichever_node_answers_first(tmp_path: Path) -> None:
    blind, seeing = "b" * 56, "c" * 56
    ray = _Ray({blind: lambda probe, token: "does not see that folder's files", seeing: _sees(seeing)})
    with pytest.raises(FacekitError, match=r"not shared with node 10\.0\.0\.0 \(bbbbbbbb\): it does not see"):
        check_shared_output(ray, tmp_path)
    assert list(tmp_path.iterdir()) == []  # the seeing node's answer too, though the blind one refused first
    check_shared_output(_Ray({seeing: _sees(seeing)}), tmp_path)  # a folder every node sees passes
    assert list(tmp_path.iterdir()) == []
