"""A shard that reports success but whose journal or face files the driver does not find in the
output folder is not a finished shard: it runs once more, and fails with one line naming it and
what is missing if it is still not there, so a run never reports frames its alignments file lacks.

Two real routes there: a node that joins after the shared-output check (a cluster that grows)
and writes into a folder of its own, and a plugin that removes what an earlier shard wrote after
that shard reported it finished."""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from cli_helpers import facekit_process, install_module, load_json, path_with, run_facekit
from conftest import require_data
from ray_cluster import NODE, node_without, require_private_mounts, require_ray, same_output, start_cluster, stopped

pytestmark = pytest.mark.slow  # Ray clusters that grow mid-run and shards run twice

require_ray()

# A detector that finds one fixed box and, on the frame whose pixels hash to ``frame_sha1``,
# once (``marker`` records it) deletes or truncates ``victim``: what a cleaner, a full disk or a
# node that writes elsewhere does to a file an earlier shard reported written.
VANDAL_MODULE = '''\
import hashlib
import os
from dataclasses import dataclass

import facekit
from facekit.plugin.spec import PluginSpec
from facekit.records import Detection


@dataclass
class VandalConfig:
    frame_sha1: str = ""
    victim: str = ""
    marker: str = ""
    how: str = "delete"  # delete | truncate (keep the first two lines)


class VandalDetector:
    def __init__(self, config):
        self.config = config

    def detect(self, images):
        config = self.config
        if any(hashlib.sha1(image.tobytes()).hexdigest() == config.frame_sha1 for image in images):
            if os.path.exists(config.victim) and not os.path.exists(config.marker):
                if config.how == "delete":
                    os.unlink(config.victim)
                else:
                    with open(config.victim, "rb") as victim:
                        kept = victim.readline() + victim.readline()
                    with open(config.victim, "wb") as victim:
                        victim.write(kept)
                open(config.marker, "w").close()
        return [[Detection((40.0, 40.0, 200.0, 220.0), 0.9)] for _ in images]


@facekit.hookimpl
def facekit_detectors():
    return [PluginSpec(name="vandal", kind="detector", factory=lambda config, store: VandalDetector(config),
                       config_class=VandalConfig)]
'''


def _frame_sha1(clip: Path, number: int) -> str:
    from facekit.media.sources import open_input

    frame = next(f for f in open_input(clip).frames() if f.index == number)
    return hashlib.sha1(frame.image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def vandal_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    install_module(site, "toy_vandal_facekit", VANDAL_MODULE, "vandal")
    return path_with(site)


@pytest.fixture(scope="module")
def cluster(vandal_env: dict[str, str]) -> Iterator[Any]:
    """A head that runs nothing and one one-CPU node: one worker, so shards run one after another."""
    yield from stopped(start_cluster(1, vandal_env))


@pytest.mark.parametrize("how, victim", [("delete", ".facekit-shards/000000.jsonl"),
                                         ("truncate", ".facekit-shards/000000.jsonl"),
                                         ("delete", "faceswap_test_000003_0.png")],
                         ids=["journal-deleted", "journal-truncated", "face-file-deleted"])
def test_a_finished_shard_whose_journal_or_face_file_is_gone_at_the_fold_runs_again_and_nothing_is_lost(
        cluster: Any, tmp_path: Path, how: str, victim: str) -> None:
    clip = require_data() / "video" / "faceswap_test.mp4"
    out = tmp_path / "ray"
    # frame 10 is shard 2's (frames 9-16): shard 1 has reported finished when its output is spoiled
    args = ["+detector=vandal", f"detector.frame_sha1={_frame_sha1(clip, 10)}", f"detector.victim={out / victim}",
            f"detector.marker={tmp_path / 'spoiled'}", f"detector.how={how}", f"input={clip}",
            "runner.progress=false"]
    result = run_facekit("runner=ray", f"runner.address={cluster.address}", "runner.shard_frames=8", "runner.actors=1",
                         f"output={out}", *args, cwd=tmp_path)
    assert (tmp_path / "spoiled").exists(), "the plugin never spoiled shard 1's output"
    assert result.returncode == 0, result.stderr
    assert "frames 1-8" in result.stderr and "runs again" in result.stderr, result.stderr
    local = run_facekit(f"output={tmp_path / 'local'}", *args, cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    same_output(out, tmp_path / "local")
    frames = load_json(out / "alignments.json")["frames"]
    assert all((out / face["crop"]).exists() for frame in frames.values() for face in frame["faces"] if face["crop"])


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that a private node sees empty: output there is not shared with it."""
    folder = tmp_path_factory.mktemp("hidden")
    require_private_mounts(folder)
    return folder


@contextmanager
def _stderr_lines(process: Any) -> Iterator[list[str]]:
    """The process's stderr lines as they come (a thread reads them), all of them on the way out."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    yield lines
    reader.join(timeout=120)


def _scenes(tmp_path: Path, collection: bool) -> tuple[Path, list[str]]:
    """The input, and the output subfolders to compare: a folder of 15 photos (one source), or a
    tree of two folders of photos (a collection of two sources)."""
    scenes = require_data() / "images" / "scenes"
    if not collection:
        return scenes, [""]
    tree = tmp_path / "tree"
    for folder, photos in (("s1", sorted(scenes.glob("*.jpg"))[:5]), ("s2", sorted(scenes.glob("*.jpg"))[5:8])):
        (tree / folder).mkdir(parents=True)
        for photo in photos:
            (tree / folder / photo.name).symlink_to(photo)
    return tree, ["s1", "s2"]


@pytest.mark.parametrize("collection", [False, True], ids=["one-source", "collection"])
def test_a_node_that_joins_after_the_shared_output_check_and_writes_elsewhere_fails_its_shards_naming_them_and_a_rerun_resumes(
        hidden: Path, tmp_path: Path, collection: bool) -> None:
    """A cluster that grows mid-run: the check saw no other node, the node that joined later writes
    its shards' files where the driver cannot see them. Each runs once more (on that node again,
    the only one) and then fails, exit code 2, a collection's sources left partial; the same
    command on a cluster that shares the folder finishes."""
    source, outputs = _scenes(tmp_path, collection)
    out = hidden / tmp_path.name
    with contextmanager(stopped)(start_cluster(0, {})) as cluster:
        args = ["runner=ray", f"runner.address={cluster.address}", "runner.progress=false", f"input={source}",
                f"output={out}", "runner.files_per_shard=4", "runner.actors=1"]
        with facekit_process(*args, cwd=tmp_path) as process:
            with _stderr_lines(process) as lines:
                waited = threading.Event()
                for _ in range(600):  # the driver waits for a worker once the check has passed
                    if any("worker(s)" in line for line in lines) or process.poll() is not None:
                        break
                    waited.wait(0.1)
                assert any("worker(s)" in line for line in lines), "".join(lines)
                with node_without(cluster, hidden):
                    process.wait(timeout=240)
            stderr = "".join(lines)
        assert process.returncode == 2, stderr
        last = stderr.strip().splitlines()[-1]
        assert "files 1-4: its journal .facekit-shards/000000.jsonl is missing" in last, stderr
        assert "runs again" in stderr, stderr
        for folder in outputs:
            alignments = out / folder / "alignments.json"
            assert not alignments.exists() or not load_json(alignments)["frames"]
        if collection:
            states = {e["source"]: e["state"] for e in load_json(out / "collection.json")["sources"]}
            assert states == {"s1": "partial", "s2": "partial"}, states
        cluster.add_node(**NODE, num_cpus=1)  # a node that shares the folder; the private one is gone
        cluster.wait_for_nodes()
        again = run_facekit(*args, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    local = run_facekit(f"input={source}", f"output={tmp_path / 'local'}", "runner.progress=false", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    for folder in outputs:
        same_output(out / folder, tmp_path / "local" / folder)
    if collection:
        assert {e["state"] for e in load_json(out / "collection.json")["sources"]} == {"done"}
