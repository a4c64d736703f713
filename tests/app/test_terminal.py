"""What a person at an 80-column terminal sees of a run: a collection's progress that ends at
100% whatever failed on the way, no line at the start that says something untrue, and one line
from a rerun that has nothing to do."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli_helpers import run_facekit, run_in_terminal
from conftest import DATA, require_data

#: the frames field of a collection's progress bar: "27/54 frames"
FRAMES = re.compile(r"(\d+)/(\d+) frames")


def _tree_with_a_failed_source(tree: Path) -> Path:
    """A video, a folder of photos, and a video cut off after its first 20 KB (it cannot be opened)."""
    (tree / "clips").mkdir(parents=True)
    (tree / "clips" / "good.mp4").symlink_to(DATA / "video" / "faceswap_test.mp4")
    (tree / "clips" / "cut.mp4").write_bytes((DATA / "video" / "short_hamilton_clip.mp4").read_bytes()[:20_000])
    (tree / "people").mkdir()
    (tree / "people" / "p01").symlink_to(DATA / "images" / "people" / "p01")
    return tree


def test_a_collection_with_a_failed_source_ends_its_progress_at_100_percent(tmp_path: Path) -> None:
    require_data()
    _tree_with_a_failed_source(tmp_path / "tree")
    code, text = run_in_terminal("input=tree", "output=out", "sample.every_n=5", "runner.workers=0", cwd=tmp_path)
    assert code == 0, text
    assert "source clips/cut.mp4 failed" in " ".join(text.split()), text
    drawn = FRAMES.findall(text)
    assert drawn, text
    done, total = map(int, drawn[-1])
    assert done == total > 0, drawn[-5:]


def test_a_collection_says_nothing_of_subfolders_not_read_since_it_reads_them(tmp_path: Path) -> None:
    """The root's own photos are a source of the tree, and its subfolder and video sources of
    their own: only a file nobody reads (notes.txt) is named."""
    require_data()
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "img1.jpg").symlink_to(DATA / "images" / "people" / "p01" / "img1.jpg")
    (archive / "clip.mp4").symlink_to(DATA / "video" / "faceswap_test.mp4")
    (archive / "p04").symlink_to(DATA / "images" / "people" / "p04")
    (archive / "notes.txt").write_text("who is who")
    code, text = run_in_terminal("input=archive", "output=out", "sample.every_n=30", cwd=tmp_path)
    assert code == 0, text
    said = " ".join(text.split())
    assert "subfolder" not in said, said
    assert "archive: not read (not images or videos by their suffix): 1 .txt" in said, said


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("source, frames", [("images/people/p01", 8), ("video/faceswap_test.mp4", 19)])
def test_a_rerun_of_a_finished_input_says_in_one_line_that_there_is_nothing_to_do(
        tmp_path: Path, source: str, frames: int) -> None:
    require_data()
    args = (f"input={DATA / source}", "output=out", "sample.every_n=5")
    assert run_facekit(*args, "runner.progress=false", cwd=tmp_path).returncode == 0
    code, text = run_in_terminal(*args, cwd=tmp_path)
    assert code == 0, text
    assert _lines(text) == [f"INFO     nothing to do: {frames} frames already done"], text


def test_a_rerun_of_a_finished_collection_says_in_one_line_that_there_is_nothing_to_do(tmp_path: Path) -> None:
    require_data()
    _tree_with_a_failed_source(tmp_path / "tree")
    (tmp_path / "tree" / "clips" / "cut.mp4").unlink()
    args = ("input=tree", "output=out", "sample.every_n=5", "runner.workers=0")
    assert run_facekit(*args, "runner.progress=false", cwd=tmp_path).returncode == 0
    code, text = run_in_terminal(*args, cwd=tmp_path)
    assert code == 0, text
    assert _lines(text) == ["INFO     nothing to do: 27 frames already done"], text


def test_a_sweeps_hydra_lines_come_in_facekits_console_format_on_stderr_with_values_as_typed(tmp_path: Path) -> None:
    """Hydra's launcher wrote "[2026-12-06 17:00:53,181][HYDRA] #0 : input='fötos' ..." to stdout."""
    require_data()
    (tmp_path / "fötos").mkdir()
    (tmp_path / "fötos" / "img1.jpg").symlink_to(DATA / "images" / "people" / "p01" / "img1.jpg")
    result = run_facekit("-m", "input=fötos", "output=sweep", "output.size=64,128", "runner.progress=false",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[HYDRA]" not in result.stdout + result.stderr and "Launching" not in result.stdout
    errors = result.stderr.splitlines()
    assert "INFO     Launching 2 jobs locally" in errors
    assert "INFO     #0 : input=fötos output.dir=sweep output.size=64 runner.progress=False" in errors, errors
    assert any(line.startswith("INFO     sweep report in sweep") for line in errors), errors
