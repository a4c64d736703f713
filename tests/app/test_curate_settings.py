"""``task=curate``'s settings: typed by the schema, checked in one line each, before anything is read."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from cli_helpers import run_facekit

from facekit.app.schema import CurateSort, register_schema
from facekit.app.tasks.curate import curate_settings
from facekit.curate.ordering import SORTS
from facekit.errors import ConfigError


def _compose(*overrides: str):
    register_schema()
    with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
        return compose(config_name="config", overrides=["task=curate", *overrides])


def test_the_defaults_curate_nothing_but_link_every_face() -> None:
    settings = curate_settings(_compose())
    assert not settings.needs_identity and settings.copy is False and settings.sort is None


def test_the_schema_sorts_are_the_orders_curation_knows() -> None:
    assert [s.value for s in CurateSort] == list(SORTS)


def test_copy_is_read_from_the_config_not_the_nodes_copy_method() -> None:
    assert curate_settings(_compose("curate.copy=true")).copy is True
    assert curate_settings(_compose("curate.copy=false")).copy is False


@pytest.mark.parametrize(("override", "words"), [("curate.dedupe=0", "cosine distance"),
                                                 ("curate.dedupe=3", "cosine distance"),
                                                 ("curate.best=0", "1 or more"),
                                                 ("curate.dedupe_pose=-1", "degrees"),
                                                 ("curate.dedupe_pose=nan", "degrees"),  # it turned the limit off
                                                 ("curate.min_cluster_size=1", "2 or more")])
def test_a_value_out_of_range_is_one_line_naming_the_key(override: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as error:
        curate_settings(_compose(override))
    assert override.split("=")[0] in str(error.value) and "\n" not in str(error.value)


def test_an_unknown_sort_is_refused_by_the_command_in_one_line(tmp_path: Path) -> None:
    result = run_facekit("task=curate", f"input={tmp_path}", f"output={tmp_path / 'out'}", "curate.sort=age", cwd=tmp_path)
    assert result.returncode == 2 and "curate.sort" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "facekit.log").exists()


@pytest.mark.parametrize("task", ["curate", "recrop"])
def test_curate_without_an_output_folder_is_refused_in_one_line_naming_output(tmp_path: Path, task: str) -> None:
    """Its default would be faces/, where an extraction writes: a curation or a re-crop never
    lands there unasked (a re-crop wrote into ./faces)."""
    result = run_facekit(f"task={task}", f"input={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"facekit: error: task={task} needs output=<result folder>")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("override", ["filter.refs=[a.jpg]", "filter.threshold=0.4", "quality.max_yaw=5",
                                      "sample.every_n=3"])
def test_an_extractions_choice_of_faces_or_frames_is_refused_in_one_line_not_ignored(tmp_path: Path,
                                                                                   override: str) -> None:
    result = run_facekit("task=curate", f"input={tmp_path}", f"output={tmp_path / 'out'}", override, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("facekit: error: task=curate picks among the faces an extraction kept")
    assert f"{override.split('=')[0]} would not apply" in result.stderr and not (tmp_path / "out").exists()


def test_a_clusters_ready_command_names_the_extractions_input_as_resolved(tmp_path: Path) -> None:
    """``input=c2`` as typed ran only from the folder the extraction ran in."""
    import json

    from facekit.app.tasks.curate import _extraction_input

    collection, single, listed = (tmp_path / name for name in ("collection", "single", "listed"))
    for folder in (collection, single, listed):
        folder.mkdir()
    (collection / "collection.json").write_text(json.dumps({"input": "c2", "root": "/data/c2", "sources": []}))
    (listed / "collection.json").write_text(json.dumps({"input": "@l.txt", "root": "/data/l.txt", "sources": []}))
    (single / "alignments.json").write_text(json.dumps(
        {"meta": {"input": "clip.mp4", "fingerprint": {"input": "/data/clip.mp4"}}, "frames": {}}))
    assert [_extraction_input(f) for f in (collection, listed, single)] == ["/data/c2", "@/data/l.txt", "/data/clip.mp4"]
    older = tmp_path / "older"  # a collection.json from before root was kept: the input as typed
    older.mkdir()
    (older / "collection.json").write_text(json.dumps({"input": "c2", "sources": []}))
    assert _extraction_input(older) == "c2"


def test_a_result_folder_under_a_file_is_refused_before_the_faces_are_read(tmp_path: Path) -> None:
    """It was refused only once every face was read and embedded (minutes on a large extraction),
    and then as "File exists"."""
    from facekit.curate.result import check_target

    (tmp_path / "afile").write_bytes(b"")
    with pytest.raises(ConfigError, match="afile is a file, not a folder"):
        check_target(tmp_path / "afile" / "curated", tmp_path / "extraction")
    check_target(tmp_path / "new" / "curated", tmp_path / "extraction")  # folders yet to be made are fine
