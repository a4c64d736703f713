"""runner=ray's settings and resources: what is refused with one line, what each worker asks Ray
for, and a private Ray started for the run (no cluster given)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import load_json, path_with, run_facekit
from conftest import require_data
from facekit.distributed.resources import worker_count, worker_resources
from ray_cluster import LOOPBACK_ENV, require_ray, same_output, summary


def test_runner_ray_without_ray_installed_says_how_to_install_it(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "ray").mkdir(parents=True)
    (site / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")  # as if absent
    result = run_facekit("runner=ray", f"input={require_data() / 'images' / 'scenes' / 'obama.jpg'}",
                         f"output={tmp_path / 'out'}", cwd=tmp_path, env=path_with(site))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("pip install '.[ray]' in facekit's repository"), result.stderr


@pytest.mark.parametrize("override, message", [
    ("runner.shard_frames=0", "runner.shard_frames must be a whole number, 1 or more"),
    ("runner.cpus_per_task=0", "runner.cpus_per_task must be a positive number"),
    ("runner.actors=0", "runner.actors must be 1 or more"),
])
def test_runner_ray_refuses_a_bad_setting_with_one_line(tmp_path: Path, override: str, message: str) -> None:
    require_ray()
    result = run_facekit("runner=ray", override, f"input={require_data() / 'images' / 'scenes' / 'obama.jpg'}",
                         f"output={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1], result.stderr


def test_cpu_only_plugins_ask_for_cpus_only() -> None:
    asked = worker_resources(0, 2.0, 81_920, cluster_gpus=8)
    assert (asked.num_cpus, asked.num_gpus) == (2.0, 0.0)


def test_a_workers_gpu_share_is_its_plugins_memory_over_one_gpus_memory() -> None:
    asked = worker_resources(4928 + 1600, 1.0, 24_576, cluster_gpus=2)  # s3fd + fan on 24 GB cards
    assert asked.num_gpus == pytest.approx(0.2657)
    assert worker_count(None, asked, cluster_cpus=32, cluster_gpus=2, shards=100) == 6  # 3 a GPU, never over-committed
    assert worker_resources(40_000, 1.0, 24_576, 1).num_gpus == 1.0  # more than a GPU holds: a whole one
    assert worker_resources(512, 1.0, 24_576, cluster_gpus=0).num_gpus == 0.0  # no GPU in the cluster: CPUs


def test_workers_are_as_many_as_the_cpus_hold_and_never_more_than_the_shards() -> None:
    asked = worker_resources(0, 2.0, None, 0)
    assert worker_count(None, asked, cluster_cpus=9, cluster_gpus=0, shards=100) == 4
    assert worker_count(None, asked, cluster_cpus=9, cluster_gpus=0, shards=3) == 3
    assert worker_count(6, asked, cluster_cpus=9, cluster_gpus=0, shards=100) == 6


@pytest.mark.slow
def test_without_an_address_a_private_ray_gives_the_local_output_and_a_rerun_with_other_settings_is_refused(tmp_path: Path) -> None:
    require_ray()
    clip = require_data() / "video" / "faceswap_test.mp4"
    local = run_facekit(f"input={clip}", f"output={tmp_path / 'local'}", "sample.end=6", "runner.progress=false",
                        cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    result = run_facekit("runner=ray", f"input={clip}", f"output={tmp_path / 'ray'}", "sample.end=6",
                         "runner.shard_frames=10", "runner.progress=false", cwd=tmp_path, env=LOOPBACK_ENV)
    assert result.returncode == 0, result.stderr
    same_output(tmp_path / "ray", tmp_path / "local")
    assert summary(tmp_path / "ray")["shards"] == 3
    other = run_facekit("runner=ray", f"input={clip}", f"output={tmp_path / 'ray'}", "sample.end=6", "output.size=128",
                        "runner.shard_frames=10", "runner.progress=false", cwd=tmp_path, env=LOOPBACK_ENV)
    last = other.stderr.strip().splitlines()[-1]
    assert other.returncode == 2 and "written with other settings (output.size: 256 there, 128 now)" in last, other.stderr


#: A ``ray`` that imports but cannot start: a run that starts Ray fails with its message.
_NO_RAY_START = "def is_initialized():\n    return False\n\n\ndef init(*args, **kwargs):\n    raise RuntimeError('a Ray was started')\n"


@pytest.mark.slow
@pytest.mark.parametrize("source", ["video/faceswap_test.mp4", "tree"])
def test_a_rerun_whose_shards_are_all_done_starts_no_ray_and_says_in_one_line_there_is_nothing_to_do(
        tmp_path: Path, source: str) -> None:
    require_ray()
    data = require_data()
    if source == "tree":  # a collection: a video and a folder of photos
        (tmp_path / "tree" / "people").mkdir(parents=True)
        (tmp_path / "tree" / "clip.mp4").symlink_to(data / "video" / "faceswap_test.mp4")
        (tmp_path / "tree" / "people" / "p01").symlink_to(data / "images" / "people" / "p01")
    args = ("runner=ray", f"input={tmp_path / source if source == 'tree' else data / source}", "output=out",
            "sample.every_n=5", "runner.shard_frames=10", "runner.progress=false")
    first = run_facekit(*args, cwd=tmp_path, env=LOOPBACK_ENV)
    assert first.returncode == 0, first.stderr
    folders = [tmp_path / "out"] if source != "tree" else [tmp_path / "out" / "clip", tmp_path / "out" / "people" / "p01"]
    frames = sum(len(load_json(folder / "alignments.json")["frames"]) for folder in folders)
    site = tmp_path / "site"
    (site / "ray").mkdir(parents=True)
    (site / "ray" / "__init__.py").write_text(_NO_RAY_START)
    again = run_facekit(*args, cwd=tmp_path, env={**LOOPBACK_ENV, **path_with(site)})
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines() == [f"INFO     nothing to do: {frames} frames already done"], again.stderr
