"""A single input is a collection of one: the same per-source code runs it, into ``output.dir``
itself, with no ``collection.json``."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_module

from conftest import DATA, require_data
from facekit.app.schema import register_schema
from facekit.app.tasks.sources import RunSources
from facekit.ledger.states import SourceState


def _sources(tmp_path: Path, input_value: str) -> RunSources:
    register_schema()
    with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"input={input_value}", f"output.dir={tmp_path / 'out'}"])
    return RunSources.of(cfg, tmp_path / "out")


def test_a_single_video_is_a_collection_of_one_written_into_the_output_folder_itself(tmp_path: Path) -> None:
    require_data()
    video = DATA / "video" / "faceswap_test.mp4"
    sources = _sources(tmp_path, str(video))
    listed = list(sources.listing())
    assert sources.alone and [(s.path, s.output, s.failed) for s in listed] == [(video, ".", None)]
    assert sources.root / listed[0].output == tmp_path / "out"
    assert sources.named(listed[0]) == str(video)  # its alignments meta names the input as given
    sources.state.set(listed[0], SourceState.DONE)
    assert sources.state.counts() == {"done": 1} and not (tmp_path / "out").exists()  # no collection.json


def test_a_flat_folder_is_a_collection_of_one_and_a_tree_lists_each_source(tmp_path: Path) -> None:
    require_data()
    flat = _sources(tmp_path, str(DATA / "images" / "people" / "p01"))
    assert flat.alone and [s.output for s in flat.listing()] == ["."]
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tree / name).symlink_to(DATA / "video" / "faceswap_test.mp4")
    both = _sources(tmp_path, str(tree))
    assert not both.alone and sorted(s.rel for s in both.listing()) == ["a.mp4", "b.mp4"]
    assert both.state.path == tmp_path / "out" / "collection.json"
