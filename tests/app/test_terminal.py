"""What a person at an 80-column terminal sees of a run: a collection's progress that ends at
100% whatever failed on the way, and no line at the start that says something untrue."""
from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import run_in_terminal
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
    code, text = run_in_terminal("input=tree", "output=out", "sample.every_n=5", cwd=tmp_path)
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
