"""runner=ray on a Ray cluster of three nodes on this machine (all on 127.0.0.1): the same output
as the local runner, and what survives a failing plugin, a killed driver and a lost node."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from cli_helpers import HANG_S, facekit_process, load_json, run_facekit, wait_for_exit
from conftest import require_data
from flaky_plugin import install_flaky
from ray_cluster import (NODE, require_ray, same_output, settled_journals, shard_journals, start_cluster, stopped,
                         summary)

pytestmark = pytest.mark.slow  # Ray clusters of three nodes, killed drivers and lost nodes

require_ray()


@pytest.fixture(scope="module")
def flaky_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install_flaky(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def cluster(flaky_env: dict[str, str]) -> Iterator[Any]:
    """One cluster for the module (a head that runs nothing and two one-CPU nodes): starting
    one takes seconds, and each test's driver joins it as a user's would."""
    yield from stopped(start_cluster(2, flaky_env))


def _on_ray(cluster: Any, *args: str, cwd: Path, env: dict[str, str] | None = None):
    return run_facekit("runner=ray", f"runner.address={cluster.address}", "runner.progress=false", *args,
                       cwd=cwd, env=env)


def _local(*args: str, cwd: Path):
    result = run_facekit("runner.progress=false", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("sampling", [["sample.end=2"], ["sample.end=3", "sample.every_n=3"]], ids=["60-frames", "every-3rd"])
def test_a_clip_on_ray_gives_the_local_runners_face_files_and_alignments(cluster: Any, tmp_path: Path,
                                                                        sampling: list[str]) -> None:
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    _local(f"input={clip}", f"output={tmp_path / 'local'}", *sampling, cwd=tmp_path)
    result = _on_ray(cluster, f"input={clip}", f"output={tmp_path / 'ray'}", "runner.shard_frames=16", *sampling,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    same_output(tmp_path / "ray", tmp_path / "local")
    assert len(summary(tmp_path / "ray")["nodes"]) == 2  # both worker nodes took shards
    assert "Token authentication" not in result.stderr and "INFO worker.py" not in result.stderr  # Ray's start-up


def test_photos_with_the_identity_filter_on_ray_give_the_local_runners_kept_and_rejected_faces(
        cluster: Any, tmp_path: Path) -> None:
    people = require_data() / "images" / "people"
    photos = tmp_path / "photos"
    photos.mkdir()
    for person in ("p01", "p04"):
        for photo in sorted((people / person).glob("*.jpg"))[1:4]:
            shutil.copy(photo, photos / f"{person}_{photo.name}")
    args = [f"input={photos}", f"filter.refs=[{people / 'p01' / 'img1.jpg'}]", "filter.save_rejected=true"]
    _local(*args, f"output={tmp_path / 'local'}", cwd=tmp_path)
    result = _on_ray(cluster, *args, f"output={tmp_path / 'ray'}", "runner.files_per_shard=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    same_output(tmp_path / "ray", tmp_path / "local")
    assert list((tmp_path / "ray" / "rejected").glob("p04_*.png"))  # the filter ran: p04's faces are rejected
    assert _decisions(tmp_path / "ray") == _decisions(tmp_path / "local") != []  # each reject's line, from the workers


def _decisions(output: Path) -> list[str]:
    """The rejected faces' lines of a run's facekit.log, without their times, in their order
    there: frame order on Ray too, whichever shard ends first."""
    lines = (output / "facekit.log").read_text().splitlines()
    return [line.split("]", 1)[1] for line in lines if "[facekit.decisions]" in line]


def test_a_collection_on_ray_gives_each_source_the_local_runners_output_and_lists_them_done(
        cluster: Any, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "b").mkdir(parents=True)
    (tree / "a.mp4").symlink_to(require_data() / "video" / "faceswap_test.mp4")
    (tree / "b" / "c.mp4").symlink_to(require_data() / "video" / "short_hamilton_clip.mp4")
    _local(f"input={tree}", f"output={tmp_path / 'local'}", "sample.end=1", cwd=tmp_path)
    result = _on_ray(cluster, f"input={tree}", f"output={tmp_path / 'ray'}", "sample.end=1", "runner.shard_frames=10",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for source in ("a", "b/c"):
        same_output(tmp_path / "ray" / source, tmp_path / "local" / source)
    states = {e["source"]: (e["state"], e["frames"], e["faces"]) for e in load_json(tmp_path / "ray" / "collection.json")["sources"]}
    local = {e["source"]: (e["state"], e["frames"], e["faces"]) for e in load_json(tmp_path / "local" / "collection.json")["sources"]}
    assert states == local and {s for s, _, _ in states.values()} == {"done"}
    run = load_json(tmp_path / "ray" / "collection.json")["run"]  # the run's figures, as a local run keeps them
    assert set(run) == {"frames", "seconds", "frames_per_s"}
    assert run["frames"] == load_json(tmp_path / "local" / "collection.json")["run"]["frames"]


def _frame_sha1(clip: Path, number: int) -> str:
    """The sha1 of a frame's pixels as facekit decodes them: the flaky plugin fails on that frame."""
    from facekit.media.sources import open_input

    frame = next(f for f in open_input(clip).frames() if f.index == number)
    return hashlib.sha1(frame.image.tobytes()).hexdigest()


def test_a_plugin_that_raises_on_one_frame_fails_its_shard_naming_plugin_and_frame_and_the_rest_finish(
        cluster: Any, tmp_path: Path) -> None:
    clip = require_data() / "video" / "faceswap_test.mp4"
    out = tmp_path / "ray"
    result = _on_ray(cluster, "+detector=flaky", "detector.fail_on_call=0", f"detector.frame_sha1={_frame_sha1(clip, 10)}",
                     f"input={clip}", f"output={out}", "runner.shard_frames=8", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "flaky" in last and "faceswap_test_000010" in last and "frames 9-16" in last, result.stderr
    frames = list(load_json(out / "alignments.json")["frames"])
    assert frames == [f"faceswap_test_{n:06d}" for n in range(1, 92) if not 9 <= n <= 16]  # every other shard folded


def test_the_driver_killed_mid_run_then_the_same_command_keeps_finished_shards_and_runs_the_rest(
        cluster: Any, tmp_path: Path) -> None:
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    out = tmp_path / "ray"
    args = ["runner=ray", f"runner.address={cluster.address}", "runner.progress=false", f"input={clip}",
            f"output={out}", "runner.shard_frames=10", "sample.end=6"]
    with facekit_process(*args, cwd=tmp_path) as process:
        deadline = time.monotonic() + HANG_S
        while len(shard_journals(out)) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
        wait_for_exit(process, "after SIGKILL")
    before = settled_journals(out, quiet_s=5.0, limit_s=HANG_S)  # what the rerun finds
    assert 3 <= len(before) < 18 and not (out / "alignments.json").exists()
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    after = shard_journals(out)
    assert len(after) == 18 and all(after[name] == kept for name, kept in before.items())  # not one rewritten
    assert summary(out)["kept_shards"] == len(before)
    frames = len(load_json(out / "alignments.json")["frames"])  # the kept shards' frames count as resumed, as a local run's
    assert summary(out)["resumed"] == 10 * len(before) and summary(out)["frames"] + summary(out)["resumed"] == frames
    _local(f"input={clip}", f"output={tmp_path / 'local'}", "sample.end=6", cwd=tmp_path)
    same_output(out, tmp_path / "local")


def test_a_journal_cut_short_after_its_run_is_set_aside_and_the_same_command_runs_that_shard_again(
        cluster: Any, tmp_path: Path) -> None:
    """Cut where a line ends, a journal holds only whole frame lines: its missing end line is what
    tells the rerun that the shard's frames are not all there."""
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    out = tmp_path / "ray"
    args = [f"input={clip}", f"output={out}", "runner.shard_frames=16", "sample.end=2"]
    assert _on_ray(cluster, *args, cwd=tmp_path).returncode == 0
    journal = out / ".facekit-shards" / "000001.jsonl"
    journal.write_bytes(b"".join(journal.read_bytes().splitlines(keepends=True)[:-3]))  # the last 2 frames and the end
    result = _on_ray(cluster, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "000001.jsonl has no end line" in result.stderr and "frames 17-32 runs again" in result.stderr, result.stderr
    assert summary(out)["kept_shards"] == 3
    _local(f"input={clip}", f"output={tmp_path / 'local'}", "sample.end=2", cwd=tmp_path)
    same_output(out, tmp_path / "local")


def test_a_journal_garbled_mid_file_after_its_run_is_set_aside_naming_the_line_and_the_same_command_runs_that_shard_again(
        cluster: Any, tmp_path: Path) -> None:
    """Its end line is whole: reading every line is what tells the rerun; the warning names the line."""
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    out = tmp_path / "ray"
    args = [f"input={clip}", f"output={out}", "runner.shard_frames=16", "sample.end=2"]
    assert _on_ray(cluster, *args, cwd=tmp_path).returncode == 0
    journal = out / ".facekit-shards" / "000001.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5][:20] + b"\0" * 10 + lines[5][30:]  # line 6, its fifth frame
    journal.write_bytes(b"".join(lines))
    result = _on_ray(cluster, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stderr.split())
    assert ("000001.jsonl is damaged: it should hold 16 frame line(s) then its end line, but holds 4 whole frame "
            "line(s), then line 6, which is neither a frame nor its end line") in text, text
    assert "frames 17-32 runs again" in text and summary(out)["kept_shards"] == 3, text
    _local(f"input={clip}", f"output={tmp_path / 'local'}", "sample.end=2", cwd=tmp_path)
    same_output(out, tmp_path / "local")


def test_a_worker_lost_after_its_shard_journal_landed_is_not_run_again_and_its_journal_is_kept(
        cluster: Any, tmp_path: Path) -> None:
    """A worker's report can go with it: the driver then finds the journal there and keeps it,
    checked as a rerun checks an earlier run's, rather than writing the shard a second time. The
    journal is put in place by the test (another run's shard, under this run's settings) while
    the worker waits on the shard's last frame, which then kills it."""
    clip = require_data() / "video" / "faceswap_test.mp4"
    reference, out, go = tmp_path / "reference", tmp_path / "ray", tmp_path / "journal-landed"
    flaky = ["+detector=flaky", "detector.fail_on_call=0", f"input={clip}", "runner.shard_frames=8"]
    assert _on_ray(cluster, *flaky, f"output={reference}", cwd=tmp_path).returncode == 0
    journal = next(p for p in (reference / ".facekit-shards").glob("*.jsonl") if b"faceswap_test_000016" in p.read_bytes())
    with facekit_process("runner=ray", f"runner.address={cluster.address}", "runner.progress=false", *flaky,
                         f"output={out}", f"detector.frame_sha1={_frame_sha1(clip, 16)}", "detector.how=kill",
                         f"detector.wait_for={go}", cwd=tmp_path) as process:
        deadline = time.monotonic() + HANG_S
        while not shard_journals(out) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        ours = next((out / ".facekit-shards").glob("*.jsonl"))
        header, *lines = journal.read_bytes().splitlines(keepends=True)
        fingerprint = json.loads(ours.read_bytes().splitlines()[0])["fingerprint"]
        placed = {**json.loads(header), "fingerprint": fingerprint}
        for frame in range(9, 17):
            for face in reference.glob(f"faceswap_test_{frame:06d}_*.png"):
                shutil.copyfile(face, out / face.name)
        temp = out / ".facekit-shards" / f".{journal.name}.placed.tmp"
        temp.write_bytes((json.dumps(placed) + "\n").encode() + b"".join(lines))
        os.replace(temp, out / ".facekit-shards" / journal.name)
        kept = shard_journals(out)[journal.name]
        go.touch()
        stderr = wait_for_exit(process, "after its worker was lost")
    assert process.returncode == 0, stderr
    assert "frames 9-16" in stderr and "after its journal landed; the shard is kept as written" in stderr, stderr
    assert "runs again" not in stderr, stderr
    assert shard_journals(out)[journal.name] == kept  # not written a second time
    assert summary(out)["kept_shards"] == 1
    assert list(load_json(out / "alignments.json")["frames"]) == [f"faceswap_test_{n:06d}" for n in range(1, 92)]


def test_a_node_removed_mid_run_loses_no_finished_shard_and_its_shards_run_again_elsewhere(
        cluster: Any, tmp_path: Path) -> None:
    doomed = cluster.add_node(**NODE, num_cpus=1)
    cluster.wait_for_nodes()
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    out = tmp_path / "ray"
    with facekit_process("runner=ray", f"runner.address={cluster.address}", "runner.progress=false", f"input={clip}",
                         f"output={out}", "runner.shard_frames=5", "runner.actors=3", cwd=tmp_path) as process:
        deadline = time.monotonic() + HANG_S
        while len(shard_journals(out)) < 6 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        finished_before = shard_journals(out)
        cluster.remove_node(doomed)
        stderr = wait_for_exit(process, "after a node was removed")
    assert process.returncode == 0, stderr
    # the lost worker's shard runs again, or is kept when its journal had landed before the loss
    assert "was lost" in stderr and ("runs again" in stderr or "after its journal landed" in stderr), stderr
    after = shard_journals(out)
    assert len(after) == 55 and all(after[name] == kept for name, kept in finished_before.items())
    assert not list(out.glob(".*.tmp")) and not list((out / ".facekit-shards").glob(".*.tmp"))  # nothing half-written
    _local(f"input={clip}", f"output={tmp_path / 'local'}", cwd=tmp_path)
    same_output(out, tmp_path / "local")


def test_workers_whose_plugin_reports_gpu_memory_are_packed_onto_the_gpu_node_by_that_memory(
        cluster: Any, tmp_path: Path) -> None:
    gpu_node = cluster.add_node(**NODE, num_cpus=4, num_gpus=1)  # a declared GPU: Ray schedules by the count alone
    cluster.wait_for_nodes()
    people = require_data() / "images" / "people" / "p07"
    out = tmp_path / "ray"
    # mtcnn reports 512 MB: half of a 1024 MB GPU a worker, so two workers share the one GPU
    result = _on_ray(cluster, "+detector=mtcnn", f"input={people}", f"output={out}", "runner.gpu_memory_mb=1024",
                     "runner.files_per_shard=1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 worker(s), 1 CPU(s) and 0.5 of a GPU a worker" in result.stderr, result.stderr
    assert set(summary(out)["nodes"]) == {gpu_node.node_id}


@pytest.mark.parametrize("how", ["deleted", "truncated", "replaced"])
def test_a_kept_shard_whose_face_file_is_damaged_runs_again_and_the_output_equals_the_local_runners(
        cluster: Any, tmp_path: Path, how: str) -> None:
    """A shard kept from an earlier run is checked as a local rerun checks its frames: every face
    file its journal names must be there with its recorded size, and with ``resume.verify=full``
    its bytes (a file replaced by another face's bytes of the same size)."""
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    out = tmp_path / "ray"
    args = [f"input={clip}", f"output={out}", "runner.shard_frames=16", "sample.end=2"]
    assert _on_ray(cluster, *args, cwd=tmp_path).returncode == 0
    victim = out / "short_hamilton_clip_000020_0.png"  # in shard 2, frames 17-32
    if how == "deleted":
        victim.unlink()
    elif how == "truncated":
        victim.write_bytes(victim.read_bytes()[:100])
    else:
        size = victim.stat().st_size
        other = (out / "short_hamilton_clip_000040_0.png").read_bytes()[:size]
        victim.write_bytes(other + b"\0" * (size - len(other)))
        args.append("resume.verify=full")
    result = _on_ray(cluster, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "000001.jsonl: 1 finished frame(s) have a face file that is missing or damaged" in result.stderr, result.stderr
    assert "frames 17-32 runs again" in result.stderr and summary(out)["kept_shards"] == 3
    _local(f"input={clip}", f"output={tmp_path / 'local'}", "sample.end=2", cwd=tmp_path)
    same_output(out, tmp_path / "local")
