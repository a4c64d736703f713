"""An output on a disk mounted read-only (a tmpfs remounted by the test: root, as CI runs): a
task that would write there is one line naming the folder, not Python's errno and a lock or
staging file's path."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_facekit
from conftest import SCENES, require_data
from test_full_disk import small_disk


def test_tasks_that_would_write_on_a_read_only_disk_say_so_in_one_line(tmp_path: Path) -> None:
    require_data()
    with small_disk(tmp_path / "disk", 64) as disk:
        out = disk / "faces"
        done = run_facekit(f"input={SCENES / 'obama.jpg'}", f"output={out}", "runner.progress=false", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
        if remounted.returncode != 0:
            pytest.skip(f"a read-only disk is a tmpfs remounted read-only (root): {remounted.stderr.strip()}")
        for args, says in ((["task=mask", f"input={out}", "output.masks=[components]"], f"cannot write into {out}"),
                           (["task=curate", f"input={out}", f"output={disk / 'curated'}"],
                            f"cannot write the curation result {disk / 'curated'}"),
                           ([f"input={SCENES / 'obama.jpg'}", f"output={disk / 'new'}"],
                            f"output folder {str(disk / 'new')!r} cannot be written")):
            result = run_facekit(*args, cwd=tmp_path)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
            assert lines[-1].startswith(f"facekit: error: {says}") and "Read-only file system" in lines[-1], result.stderr
