"""runner=ray needs an output folder every node writes to (a shared filesystem): a cluster with a
node that sees another folder at that path (a node started in a private mount namespace, the
folder covered by a tmpfs of its own) is refused with one line before any shard runs."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from cli_helpers import run_facekit
from conftest import require_data
from ray_cluster import node_without, require_private_mounts, require_ray, start_cluster, stopped, summary

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
    """The refusal above is for the folder, not the node: the private node takes shards elsewhere."""
    cluster, private_id = on_cluster
    out = tmp_path / "out"
    result = _on_ray(cluster, f"input={require_data() / 'images' / 'scenes'}", f"output={out}",
                     "runner.files_per_shard=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert private_id in summary(out)["nodes"] and len(summary(out)["nodes"]) == 2, summary(out)
