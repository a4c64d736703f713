"""``task=recrop``: new crops and alignments from an extraction's stored landmarks and the source
frames, no model run; the same files as an extraction at the new settings, a moved source found
through ``recrop.sources``, a missing one named once while the others go on, and a rerun that
resumes."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import load_json, run_facekit, stopped_midway
from conftest import DATA, require_data
from ray_cluster import LOOPBACK_ENV, require_ray

VIDEO = DATA / "video" / "faceswap_test.mp4"
#: Fields a re-crop legitimately writes otherwise than an extraction at its settings: the file's
#: bytes when a pixel differs by a level (crop_sha256, crop_bytes), and the meta's note of the
#: alignments file the faces came from (meta.recrop, meta.fingerprint.recrop).
MAY_DIFFER = ("crop_sha256", "crop_bytes")


def _run(work: Path, *args: str) -> None:
    result = run_facekit(*args, "runner.progress=false", cwd=work, env={"FACEKIT_HOME": str(work / "home")})
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tree/``: a video and two people's photo folders, extracted as a collection into
    ``at256/`` and ``at512/`` (output.size=512), and re-cropped from ``at256/`` into ``re512/``.
    Returns the working folder."""
    require_data()
    work = tmp_path_factory.mktemp("recrop")
    (work / "tree").mkdir()
    (work / "tree" / VIDEO.name).symlink_to(VIDEO)
    for person in ("p01", "p04"):
        (work / "tree" / person).symlink_to(DATA / "images" / "people" / person)
    _run(work, "input=tree", "output=at256")
    _run(work, "input=tree", "output=at512", "output.size=512")
    _run(work, "task=recrop", "input=at256", "output=re512", "output.size=512")
    return work


def _alignments(folder: Path) -> dict[str, dict]:
    """Every source's alignments file below ``folder``, by its folder relative to it."""
    return {str(path.parent.relative_to(folder)): load_json(path) for path in sorted(folder.rglob("alignments.json"))}


def _without(entry: dict, keys: tuple[str, ...]) -> dict:
    return {key: value for key, value in entry.items() if key not in keys}


def assert_same_as_extraction(recropped: Path, extracted: Path) -> None:
    """Alignments equal but for ``MAY_DIFFER`` and meta.recrop; every face file's pixels within 1 level."""
    ours, theirs = _alignments(recropped), _alignments(extracted)
    assert ours.keys() == theirs.keys() and ours
    for folder, document in ours.items():
        meta, expected = document["meta"], theirs[folder]["meta"]
        assert meta.pop("recrop") == meta["fingerprint"].pop("recrop")
        assert meta == expected, folder
        frames, expected_frames = document["frames"], theirs[folder]["frames"]
        assert list(frames) == list(expected_frames), folder
        for name, frame in frames.items():
            assert _without(frame, ("faces",)) == _without(expected_frames[name], ("faces",))
            assert [_without(face, MAY_DIFFER) for face in frame["faces"]] == \
                [_without(face, MAY_DIFFER) for face in expected_frames[name]["faces"]], name
            for face in frame["faces"]:
                ours_px = cv2.imread(str(recropped / folder / face["crop"]), cv2.IMREAD_UNCHANGED).astype(int)
                theirs_px = cv2.imread(str(extracted / folder / face["crop"]), cv2.IMREAD_UNCHANGED).astype(int)
                assert ours_px.shape == theirs_px.shape == (512, 512, 3)
                assert np.abs(ours_px - theirs_px).max() <= 1, face["crop"]


def test_a_collection_recropped_at_512_equals_its_extraction_at_512(tree: Path) -> None:
    assert_same_as_extraction(tree / "re512", tree / "at512")
    states = {entry["source"]: entry["state"] for entry in load_json(tree / "re512" / "collection.json")["sources"]}
    assert states == {VIDEO.name: "done", "p01": "done", "p04": "done"}
    summary = load_json(tree / "re512" / "faceswap_test" / "run_summary.json")
    assert summary["mode"] == "recrop" and summary["frames"] == 91 and summary["model_s"] is None
    # collection.json's run, as an extraction's: a local re-crop left it out
    run = load_json(tree / "re512" / "collection.json")["run"]
    frames = sum(len(load_json(tree / "at256" / name / "alignments.json")["frames"]) for name in ("faceswap_test", "p01", "p04"))
    assert run["frames"] == frames and run["seconds"] > 0 and run["frames_per_s"] > 0, run


def test_a_collection_recrop_run_again_keeps_its_done_sources(tree: Path, tmp_path: Path) -> None:
    shutil.copytree(tree / "re512", tmp_path / "re512")
    result = run_facekit("task=recrop", f"input={tree / 'at256'}", f"output={tmp_path / 're512'}", "output.size=512",
                         "runner.progress=false", cwd=tree)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("done by an earlier run, not reopened") == 1  # one line, not one a source
    assert "3 source(s) done by an earlier run, not reopened" in result.stderr
    assert _alignments(tmp_path / "re512") == _alignments(tree / "re512")


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_a_source_whose_extraction_stopped_midway_stays_partial_in_the_recrop_until_a_rerun_after_the_extraction(
        tree: Path, tmp_path: Path) -> None:
    shutil.copytree(tree / "at256", tmp_path / "at256", symlinks=True)
    stopped_midway(tmp_path / "at256", VIDEO.name, "faceswap_test", 50)
    args = ["task=recrop", f"input={tmp_path / 'at256'}", f"output={tmp_path / 're512'}", "output.size=512",
            "runner.progress=false"]
    result = run_facekit(*args, cwd=tree)
    assert result.returncode == 0, result.stderr
    assert f"source {VIDEO.name}: its extraction is partial, so this re-crop holds only the frames it had" in result.stderr
    states = {entry["source"]: entry["state"] for entry in load_json(tmp_path / "re512" / "collection.json")["sources"]}
    assert states == {VIDEO.name: "partial", "p01": "done", "p04": "done"}
    assert len(load_json(tmp_path / "re512" / "faceswap_test" / "alignments.json")["frames"]) == 50
    _run(tree, "input=tree", f"output={tmp_path / 'at256'}")  # the extraction finishes its video
    result = run_facekit(*args, cwd=tree)
    assert result.returncode == 0, result.stderr
    assert "resuming: 50 frame(s) already done" in result.stderr and "its extraction is" not in result.stderr
    states = {entry["source"]: entry["state"] for entry in load_json(tmp_path / "re512" / "collection.json")["sources"]}
    assert states == {VIDEO.name: "done", "p01": "done", "p04": "done"}
    assert _alignments(tmp_path / "re512")["faceswap_test"]["frames"] == _alignments(tree / "re512")["faceswap_test"]["frames"]


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_a_recrop_of_a_collection_whose_every_source_is_partial_exits_0_with_what_it_could_do(tmp_path: Path) -> None:
    """It re-cropped the frames, then "no source of at256 could be re-cropped (0 failed)", exit 2:
    the documented partial re-crop read as a failure by scripts."""
    require_data()
    (tmp_path / "tree" / "a").mkdir(parents=True)
    (tmp_path / "tree" / "a" / VIDEO.name).symlink_to(VIDEO)
    _run(tmp_path, "input=tree", "output=at256", "sample.every_n=10")
    stopped_midway(tmp_path / "at256", f"a/{VIDEO.name}", f"a/{VIDEO.stem}", 4)
    result = run_facekit("task=recrop", "input=at256", "output=re", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "its extraction is partial" in result.stderr and "could be re-cropped" not in result.stderr
    assert [entry["state"] for entry in load_json(tmp_path / "re" / "collection.json")["sources"]] == ["partial"]


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_a_single_video_recropped_at_512_on_threads_or_workers_equals_its_extraction_and_a_rerun_resumes(tmp_path: Path) -> None:
    require_data()
    _run(tmp_path, f"input={VIDEO}", "output=at256")
    _run(tmp_path, f"input={VIDEO}", "output=at512", "output.size=512")
    _run(tmp_path, "task=recrop", "input=at256", "output=re512", "output.size=512")
    assert_same_as_extraction(tmp_path / "re512", tmp_path / "at512")
    _run(tmp_path, "task=recrop", "input=at256", "output=workers512", "output.size=512", "runner.workers=2")
    assert load_json(tmp_path / "workers512" / "run_summary.json")["workers"] == 2
    assert_same_as_extraction(tmp_path / "workers512", tmp_path / "at512")
    faces = {path: path.stat().st_mtime_ns for path in (tmp_path / "re512").rglob("*.png")}
    alignments, summary = (load_json(tmp_path / "re512" / name) for name in ("alignments.json", "run_summary.json"))
    rerun = run_facekit("task=recrop", "input=at256", "output=re512", "output.size=512", "runner.progress=false",
                        cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.splitlines() == ["INFO     nothing to do: 91 frames already done"], rerun.stderr
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "re512").rglob("*.png")} == faces  # none made again
    assert load_json(tmp_path / "re512" / "alignments.json") == alignments
    assert load_json(tmp_path / "re512" / "run_summary.json") == summary  # the run that did the work
    other = run_facekit("task=recrop", "input=at256", "output=re512", "output.size=128", cwd=tmp_path)
    assert other.returncode == 2 and "other settings" in other.stderr and "size: 512 there, 128 now" in other.stderr


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_a_moved_source_is_found_through_recrop_sources(tree: Path, tmp_path: Path) -> None:
    work = tmp_path
    shutil.copytree(tree / "tree", work / "tree")  # copies: a link would still lead to the files
    _run(work, "input=tree", "output=at256", "sample.every_n=30")
    (work / "tree").rename(work / "moved")
    gone = run_facekit("task=recrop", "input=at256", "output=lost", cwd=work)
    assert gone.returncode == 2 and "no source of at256 could be re-cropped" in gone.stderr
    _run(work, "task=recrop", "input=at256", "output=found", "recrop.sources=moved", "sample.every_n=1")
    for folder, document in _alignments(work / "found").items():
        earlier = load_json(work / "at256" / folder / "alignments.json")
        assert document["meta"]["input"].startswith("moved")
        assert list(document["frames"]) == list(earlier["frames"])  # the extraction's sampling, not this run's
        for name, frame in document["frames"].items():
            assert frame["source"].startswith("moved")  # and the face files say so: their bytes differ
            assert [_without(face, MAY_DIFFER) for face in frame["faces"]] == \
                [_without(face, MAY_DIFFER) for face in earlier["frames"][name]["faces"]]


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_a_missing_source_is_one_line_and_the_others_go_on(tree: Path, tmp_path: Path) -> None:
    shutil.copytree(tree / "tree", tmp_path / "tree")  # copies: a link would still lead to the files
    _run(tmp_path, "input=tree", "output=at256", "sample.every_n=30")
    shutil.rmtree(tmp_path / "tree" / "p04")
    result = run_facekit("task=recrop", "input=at256", "output=re", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    named = [line for line in result.stderr.splitlines() if "p04" in line]
    assert len(named) == 1 and "failed" in named[0] and "recrop.sources" in named[0], result.stderr
    states = {entry["source"]: entry["state"] for entry in load_json(tmp_path / "re" / "collection.json")["sources"]}
    assert states == {VIDEO.name: "done", "p01": "done", "p04": "failed"}
    assert not (tmp_path / "re" / "p04").exists()


def test_a_single_source_that_is_gone_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    require_data()
    shutil.copy(VIDEO, tmp_path / "clip.mp4")
    _run(tmp_path, "input=clip.mp4", "output=at256", "sample.every_n=30")
    (tmp_path / "clip.mp4").unlink()
    result = run_facekit("task=recrop", "input=at256", "output=re", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "clip.mp4" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "re").exists()


def test_another_file_under_a_moved_sources_name_is_refused_in_one_line(tmp_path: Path) -> None:
    require_data()
    (tmp_path / "was").mkdir()
    shutil.copy(VIDEO, tmp_path / "was" / "clip.mp4")
    _run(tmp_path, "input=was/clip.mp4", "output=at256", "sample.every_n=30")
    shutil.rmtree(tmp_path / "was")
    (tmp_path / "now").mkdir()
    shutil.copy(DATA / "video" / "short_hamilton_clip.mp4", tmp_path / "now" / "clip.mp4")
    result = run_facekit("task=recrop", "input=at256", "output=re", "recrop.sources=now", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # its signature tells it apart before any frame is read (the frame-size check came later)
    assert "now/clip.mp4 is not the video extracted" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "re").exists()


def test_a_photo_replaced_in_place_by_one_of_its_size_is_refused_and_a_copy_elsewhere_is_not(tmp_path: Path) -> None:
    """The frame-size check let a photo turned upside down through: its crops were cut at the
    old photo's points (mean difference 131 of 255). A copy under recrop.sources, newer than the
    extraction by its nature, is the same photo."""
    require_data()
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("two_people.jpg", "obama.jpg"):
        shutil.copy(DATA / "images" / "scenes" / name, photos / name)
    _run(tmp_path, "input=photos", "output=at256")
    shutil.copytree(photos, tmp_path / "copied" / "photos")  # recrop.sources names the folder a source is in
    turned = photos / "two_people.jpg"
    cv2.imwrite(str(turned), cv2.rotate(cv2.imread(str(turned)), cv2.ROTATE_180))
    result = run_facekit("task=recrop", "input=at256", "output=re", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "facekit: error: photo photos/two_people.jpg changed after its extraction last wrote at256/alignments.json: "
        "not the photo extracted; run the extraction again (it does that photo again), then the re-crop")
    shutil.rmtree(photos)
    _run(tmp_path, "task=recrop", "input=at256", "output=moved", "recrop.sources=copied")
    assert sorted(load_json(tmp_path / "moved" / "alignments.json")["frames"]) == ["obama", "two_people"]


def test_a_folder_that_holds_no_extraction_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_facekit("task=recrop", "input=empty", "output=re", cwd=tmp_path)
    assert result.returncode == 2 and "holds no alignments.json or collection.json" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "re").exists()


@pytest.mark.parametrize("asked", ["output.masks=[components]", "output.mask_format=alpha", "+masker=components"])
def test_a_recrop_asked_for_masks_is_refused_in_one_line_naming_task_mask(tmp_path: Path, asked: str) -> None:
    (tmp_path / "empty").mkdir()
    result = run_facekit("task=recrop", "input=empty", "output=re", asked, cwd=tmp_path)
    assert result.returncode == 2 and "run task=mask input=<the re-crop>" in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "re").exists()


@pytest.mark.slow
def test_a_recrop_on_ray_writes_what_a_local_recrop_writes(tree: Path, tmp_path: Path) -> None:
    require_ray()
    result = run_facekit("task=recrop", "input=at256", f"output={tmp_path / 'ray512'}", "output.size=512", "runner=ray",
                         "runner.progress=false", "runner.shard_frames=40", cwd=tree,
                         env={"FACEKIT_HOME": str(tmp_path / "home"), **LOOPBACK_ENV})
    assert result.returncode == 0, result.stderr
    ours, local = _alignments(tmp_path / "ray512"), _alignments(tree / "re512")
    assert ours == local
    states = {entry["source"]: entry["state"] for entry in load_json(tmp_path / "ray512" / "collection.json")["sources"]}
    assert set(states.values()) == {"done"}


def test_a_recrop_keeps_the_masks_extraction_stored_each_with_the_crop_it_was_drawn_in(tmp_path: Path) -> None:
    _run(tmp_path, f"input={require_data() / 'images' / 'scenes'}", "output=masked", "output.masks=[components]")
    _run(tmp_path, "task=recrop", "input=masked", "output=heads", "output.centering=head", "output.size=512")
    before, after = (load_json(tmp_path / folder / "alignments.json")["frames"] for folder in ("masked", "heads"))
    masks = [[face.get("mask") for face in frame["faces"]] for frame in before.values()]
    assert [[face.get("mask") for face in frame["faces"]] for frame in after.values()] == masks
    assert {entry["components"]["centering"] for frame in masks for entry in frame if entry} == {"legacy"}
    assert {face["centering"] for frame in after.values() for face in frame["faces"]} == {"head"}


def _two_photos(folder: Path, *people: str) -> Path:
    """``folder`` holding the first photo of each of ``people``."""
    folder.mkdir(parents=True)
    for person in people:
        shutil.copy(sorted((DATA / "images" / "people" / person).glob("*.jpg"))[0], folder / f"{person}.jpg")
    return folder


def test_a_source_named_relative_to_another_folder_is_found_where_it_was_not_in_this_one(tmp_path: Path) -> None:
    require_data()
    _two_photos(tmp_path / "work" / "photos", "p01", "p04")
    _run(tmp_path / "work" / "photos", "input=.", f"output={tmp_path / 'at256'}")
    _two_photos(tmp_path / "elsewhere" / "photos", "p06")  # what '.' or 'photos' names from here
    _run(tmp_path / "elsewhere" / "photos", "task=recrop", f"input={tmp_path / 'at256'}", f"output={tmp_path / 're'}")
    assert set(load_json(tmp_path / "re" / "alignments.json")["frames"]) == {"p01", "p04"}


def test_frames_no_longer_in_the_source_are_named_and_skipped_and_none_at_all_is_an_error(tmp_path: Path) -> None:
    require_data()
    photos = _two_photos(tmp_path / "photos", "p01", "p04")
    _run(tmp_path, "input=photos", "output=at256")
    (photos / "p04.jpg").unlink()
    result = run_facekit("task=recrop", "input=at256", "output=re", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 of the 2 frame(s)" in result.stderr and "p04" in result.stderr, result.stderr
    assert set(load_json(tmp_path / "re" / "alignments.json")["frames"]) == {"p01"}
    assert load_json(tmp_path / "re" / "run_summary.json")["skipped"] == 1
    shutil.rmtree(photos)
    _two_photos(tmp_path / "other" / "photos", "p06")  # recrop.sources holds another 'photos'
    result = run_facekit("task=recrop", "input=at256", "output=none", "recrop.sources=other", "runner.progress=false",
                         cwd=tmp_path)
    assert result.returncode == 2 and "none of the 2 frame(s)" in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("facekit: error:") and "Traceback" not in result.stderr
    assert not (tmp_path / "none" / "alignments.json").exists()


def test_a_recrop_into_a_folder_inside_the_extraction_is_refused(tree: Path) -> None:
    result = run_facekit("task=recrop", "input=at256", "output=at256/small", "output.size=128", cwd=tree)
    assert result.returncode == 2 and "inside the extraction" in result.stderr, result.stderr
    assert not (tree / "at256" / "small").exists()


def test_a_recrop_into_the_output_of_the_other_kind_is_refused_and_touches_nothing(tree: Path, tmp_path: Path) -> None:
    """A single source's re-crop wrote its alignments.json beside a collection's collection.json,
    and a collection's re-crop its collection.json into a single extraction's folder."""
    single = tmp_path / "single"
    _run(tree, f"input={VIDEO}", f"output={single}", "sample.end=1")
    for source, target, says in ((single, tree / "at256", "holds a collection's output"),
                                 (tree / "at256", single, "holds a single source's output")):
        before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
        result = run_facekit("task=recrop", f"input={source}", f"output={target}", cwd=tree)
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_a_recrop_run_again_after_its_extraction_was_redone_cuts_the_changed_frames_again(tmp_path: Path) -> None:
    """The re-crop said nothing to do and kept the faces of the photo the extraction had before."""
    require_data()
    scenes = DATA / "images" / "scenes"
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "biden.jpg"):
        (photos / name).write_bytes((scenes / name).read_bytes())
    _run(tmp_path, f"input={photos}", "output=faces")
    _run(tmp_path, "task=recrop", "input=faces", "output=small", "output.size=128")
    shutil.rmtree(tmp_path / "faces")
    (photos / "obama.jpg").write_bytes((scenes / "two_people.jpg").read_bytes())
    _run(tmp_path, f"input={photos}", "output=faces")
    result = run_facekit("task=recrop", "input=faces", "output=small", "output.size=128", "runner.progress=false",
                         cwd=tmp_path, env={"FACEKIT_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert "1 re-cropped frame(s) whose faces the extraction holds otherwise now" in result.stderr, result.stderr
    _run(tmp_path, "task=recrop", "input=faces", "output=fresh", "output.size=128")
    assert load_json(tmp_path / "small" / "alignments.json")["frames"] == load_json(tmp_path / "fresh" / "alignments.json")["frames"]
    assert sorted(p.name for p in (tmp_path / "small").glob("*.png")) == sorted(p.name for p in (tmp_path / "fresh").glob("*.png"))


def test_choices_of_faces_or_frames_that_a_recrop_would_not_apply_are_refused(tree: Path) -> None:
    result = run_facekit("task=recrop", "input=at256", "output=chosen", "quality.max_yaw=5", "sample.every_n=5",
                         f"filter.refs=[{DATA / 'images' / 'people' / 'p01' / 'img1.jpg'}]", cwd=tree)
    assert result.returncode == 2, result.stderr
    assert "filter.refs, quality.max_yaw, sample.every_n would not apply" in result.stderr, result.stderr
    assert not (tree / "chosen").exists()


def test_a_plugin_named_for_a_recrop_which_runs_no_model_is_refused(tree: Path) -> None:
    result = run_facekit("task=recrop", "input=at256", "output=plugged", "+detector=mtcnn", "+aligner=fan", cwd=tree)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "task=recrop runs no model" in result.stderr and "leave out +detector, +aligner" in result.stderr
    assert not (tree / "plugged").exists()


def _reencoded(source: Path, target: Path, first: int, last: int) -> None:
    """Frames ``first``..``last`` (0-based) of ``source`` as a new video of the same size."""
    import av

    with av.open(str(source)) as reading, av.open(str(target), "w") as writing:
        stream = reading.streams.video[0]
        out = writing.add_stream("libx264", rate=stream.average_rate)
        out.width, out.height, out.pix_fmt = stream.width, stream.height, "yuv420p"
        for number, frame in enumerate(reading.decode(stream)):
            if first <= number <= last:
                writing.mux(out.encode(frame.reformat(format="yuv420p")))
        writing.mux(out.encode())


def test_a_video_replaced_under_its_name_since_extraction_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    """Its stored points would cut another video's frames: one of the same size re-cropped
    without a word (one of another size failed midway, after writing the output's records)."""
    require_data()
    video = tmp_path / "clip.mp4"
    shutil.copy(VIDEO, video)
    _run(tmp_path, f"input={video}", "output=out", "sample.every_n=10")
    _reencoded(VIDEO, video, 30, 60)
    for other in ("same size", "another size"):
        if other == "another size":
            shutil.copy(DATA / "video" / "short_hamilton_clip.mp4", video)
        result = run_facekit("task=recrop", "input=out", "output=again", "output.size=128", cwd=tmp_path)
        assert result.returncode == 2, (other, result.stderr)
        assert "is not the video extracted (another file under its name)" in result.stderr, (other, result.stderr)
        assert not (tmp_path / "again").exists(), other


@pytest.mark.slow  # three runs: the README's fast tier keeps within its 8 minutes
def test_a_recrop_with_save_rejected_cuts_the_rejected_faces_again(tmp_path: Path) -> None:
    """``filter.save_rejected=true`` on the re-crop cuts the rejected faces again too, as the
    extraction at that size keeps them (formats.md: the one filter key a re-crop takes)."""
    require_data()
    people = DATA / "images" / "people"
    (tmp_path / "photos").mkdir()
    for photo in ("p01/img1.jpg", "p01/img2.jpg", "p04/img13.jpg", "p04/img14.jpg"):
        (tmp_path / "photos" / photo.replace("/", "_")).symlink_to(people / photo)
    kept = (f"filter.refs=[{people / 'p04' / 'img15.jpg'}]", "filter.save_rejected=true")
    _run(tmp_path, "input=photos", "output=at256", *kept)
    _run(tmp_path, "input=photos", "output=at128", "output.size=128", *kept)
    _run(tmp_path, "task=recrop", "input=at256", "output=re128", "output.size=128", "filter.save_rejected=true")
    rejected = sorted(p.name for p in (tmp_path / "at128" / "rejected").glob("*.png"))
    assert len(rejected) == 2 and sorted(p.name for p in (tmp_path / "re128" / "rejected").glob("*.png")) == rejected
    crops = {name: [face["crop"] for face in frame["faces"]]
             for name, frame in load_json(tmp_path / "at128" / "alignments.json")["frames"].items()}
    assert {name: [face["crop"] for face in frame["faces"]]
            for name, frame in load_json(tmp_path / "re128" / "alignments.json")["frames"].items()} == crops
