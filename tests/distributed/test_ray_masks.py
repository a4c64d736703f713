"""Masks on runner=ray: a private Ray's shard workers finish records through the same chain as a
local run, so the face files, mask files and alignments (masks included) are the local run's."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import file_hashes, run_facekit
from conftest import require_data
from ray_cluster import LOOPBACK_ENV, require_ray, same_output

pytestmark = pytest.mark.slow  # a private Ray for one run


def test_masks_on_ray_are_the_local_runs_face_files_mask_files_and_alignments(tmp_path: Path) -> None:
    require_ray()
    args = [f"input={require_data() / 'images' / 'scenes'}", "output.masks=[components,extended]",
            "output.mask_format=file", "runner.progress=false"]
    local = run_facekit(*args, f"output={tmp_path / 'local'}", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    result = run_facekit("runner=ray", "runner.files_per_shard=5", *args, f"output={tmp_path / 'ray'}", cwd=tmp_path,
                         env=LOOPBACK_ENV)
    assert result.returncode == 0, result.stderr
    same_output(tmp_path / "ray", tmp_path / "local")
    masks = file_hashes(tmp_path / "ray", "masks/*/*.png")
    assert len(masks) == 66 and masks == file_hashes(tmp_path / "local", "masks/*/*.png")
    # A mask file gone: the rerun redoes its shard, as a local rerun redoes its frame (it kept the
    # shard and said nothing to do, the mask file missing)
    gone = sorted((tmp_path / "ray" / "masks" / "extended").glob("*.png"))[0]
    gone.unlink()
    # and what a killed run was writing below the folder goes, as a local rerun removes it
    left = [tmp_path / "ray" / "masks" / "extended" / ".a_0.png.0123456789abcdef.tmp",
            tmp_path / "ray" / "debug" / ".a.jpg.0123456789abcdef.tmp"]
    for path in left:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a PNG")
    rerun = run_facekit("runner=ray", "runner.files_per_shard=5", *args, f"output={tmp_path / 'ray'}", cwd=tmp_path,
                        env=LOOPBACK_ENV)
    assert rerun.returncode == 0, rerun.stderr
    assert "have a face file or mask file that is missing or damaged" in " ".join(rerun.stderr.split()), rerun.stderr
    assert gone.is_file() and file_hashes(tmp_path / "ray", "masks/*/*.png") == masks
    assert not any(path.exists() for path in left)
