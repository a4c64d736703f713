"""The output-folder rules hold on Ray too: one run at a time (a Ray run is refused while another
run holds the folder), and a refused Ray rerun leaves the output byte for byte; a private Ray,
bound to 127.0.0.1."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import facekit_process, load_json, run_facekit, wait_for_exit, wait_for_frames, while_paused
from conftest import DATA, require_data
from ray_cluster import LOOPBACK_ENV, require_ray
from test_run_state import snapshot

require_ray()
pytestmark = pytest.mark.slow  # a private Ray starts for each run

CLIP = DATA / "video" / "faceswap_test.mp4"


def _on_ray(*args: str, cwd: Path):
    return run_facekit("runner=ray", "runner.progress=false", "runner.shard_frames=30", *args, cwd=cwd, env=LOOPBACK_ENV)


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for name in ("a", "b"):
        (tree / name).mkdir(parents=True)
        (tree / name / "clip.mp4").symlink_to(CLIP)
    return tree


def test_a_ray_run_into_an_output_another_run_holds_is_refused_before_ray_starts(tmp_path: Path) -> None:
    require_data()
    with facekit_process(f"input={DATA / 'video' / 'short_hamilton_clip.mp4'}", "output=out", "runner.progress=false",
                         cwd=tmp_path) as first:
        wait_for_frames(first, tmp_path / "out", 2)
        second = while_paused(first, lambda: _on_ray(f"input={CLIP}", "output=out", "runner.queue_size=7", cwd=tmp_path))
        assert "Traceback" not in wait_for_exit(first) and first.returncode == 0
    assert second.returncode == 2 and "another facekit run is writing to" in second.stderr, second.stderr
    out = tmp_path / "out"
    assert not (out / "ray_summary.json").exists() and not (out / ".facekit-shards").exists()
    assert "queue_size=7" not in (out / ".hydra" / "overrides.yaml").read_text()


def test_a_ray_collection_is_refused_while_a_run_writes_one_of_its_source_folders(tmp_path: Path) -> None:
    """Ray took no source folder's lock: a local run writing ``out/b/clip`` and a Ray collection
    into ``out`` both ran and wrote that folder, the later fold overwriting the other's
    alignments. Here the lock is held as a local run into ``out/b/clip`` holds it (its ledger's)."""
    require_data()
    from facekit.ledger.lock import exclusive_output

    tree = _tree(tmp_path)
    (tmp_path / "out" / "b" / "clip").mkdir(parents=True)
    with exclusive_output(tmp_path / "out" / "b" / "clip"):
        result = _on_ray(f"input={tree}", "output=out", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "another facekit run is writing to out/b/clip" in " ".join(result.stderr.split())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b"]  # refused before it was accepted


@pytest.mark.parametrize("kind", ["single", "collection"])
def test_a_ray_rerun_with_other_settings_leaves_the_output_byte_for_byte(kind: str, tmp_path: Path) -> None:
    require_data()
    source = CLIP if kind == "single" else _tree(tmp_path)
    first = _on_ray(f"input={source}", "output=out", "sample.every_n=10", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmp_path / "out")
    again = _on_ray(f"input={source}", "output=out", "sample.every_n=5", cwd=tmp_path)
    assert again.returncode == 2 and "other settings" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    assert snapshot(tmp_path / "out") == before
    if kind == "collection":
        assert {e["state"] for e in load_json(tmp_path / "out" / "collection.json")["sources"]} == {"done"}


def test_a_ray_recrop_of_an_extraction_finished_since_recrops_its_new_frames(tmp_path: Path) -> None:
    """A re-crop shard of an unfinished extraction was kept as finished once the extraction went
    on: the rerun said "nothing to do" with the new frames never re-cropped. Locally they were."""
    require_data()
    import signal

    from cli_helpers import stop_with

    args = [f"input={CLIP}", "output=out", "runner.workers=0", "runner.progress=false", "output.save_every=1"]
    with facekit_process(*args, "runner.queue_size=1", cwd=tmp_path) as first:
        wait_for_frames(first, tmp_path / "out", 20)
        stop_with(first, signal.SIGINT)
    extracted = len(load_json(tmp_path / "out" / "alignments.json")["frames"])
    assert 20 <= extracted < 91, extracted
    early = _on_ray("task=recrop", "input=out", "output=recrop", "output.size=128", "runner.shard_frames=200", cwd=tmp_path)
    assert early.returncode == 0, early.stderr
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    again = _on_ray("task=recrop", "input=out", "output=recrop", "output.size=128", "runner.shard_frames=200", cwd=tmp_path)
    assert again.returncode == 0 and "the extraction went on since" in again.stderr, again.stderr
    assert sorted(load_json(tmp_path / "recrop" / "alignments.json")["frames"]) == sorted(
        load_json(tmp_path / "out" / "alignments.json")["frames"])


def test_a_ray_run_with_other_settings_is_refused_by_a_killed_local_run_s_journal(tmp_path: Path) -> None:
    """A local run killed before its fold leaves its journal and face files, no alignments.json:
    a Ray run with other settings checked only alignments.json, ran every shard over the local
    run's face files (same names, other size), and only then was refused."""
    import os
    import signal

    require_data()
    out = tmp_path / "out"
    with facekit_process(f"input={CLIP}", "output=out", "runner.workers=0", "runner.progress=false",
                         cwd=tmp_path) as first:
        wait_for_frames(first, out, 5)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert (out / "alignments.json.journal").exists() and not (out / "alignments.json").exists()
    before = snapshot(out)
    again = _on_ray(f"input={CLIP}", "output=out", "output.size=128", cwd=tmp_path)
    assert again.returncode == 2 and "alignments.json.journal was written with other settings" in again.stderr, \
        again.stderr[-3000:]
    assert snapshot(out) == before


def test_a_local_run_with_other_settings_is_refused_by_a_ray_run_s_unfolded_shards(tmp_path: Path) -> None:
    """A Ray run stopped before its fold leaves shard journals and face files, no alignments.json:
    a local run with other settings was accepted, left the shards' face files beside its own, and
    every later Ray run was refused for the shards' settings."""
    require_data()
    out = tmp_path / "out"
    assert _on_ray(f"input={CLIP}", "output=out", "sample.every_n=10", cwd=tmp_path).returncode == 0
    (out / "alignments.json").unlink()  # as a Ray run stopped before its fold leaves it
    before = snapshot(out)
    again = run_facekit(f"input={CLIP}", "output=out", "sample.every_n=5", "runner.progress=false", cwd=tmp_path)
    assert again.returncode == 2 and "holds shards written with other settings" in again.stderr, again.stderr
    assert snapshot(out) == before
