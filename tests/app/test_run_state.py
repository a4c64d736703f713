"""One run per output folder, and a refused run leaves the folder exactly as it found it: the
lock on ``output.dir`` covers the whole run, single or collection, and every check that can
refuse a run (the lock, settings, weights, references) runs before anything is written, Hydra's
``.hydra/`` and ``facekit.log`` included."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cli_helpers import facekit_process, load_json, run_facekit, wait_for_exit, wait_for_frames, while_paused
from conftest import DATA, SCENES, require_data

CLIP = "short_hamilton_clip.mp4"


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (dotfiles too): a file's sha256, a folder's mark."""
    if not folder.exists():
        return {}
    return {str(path.relative_to(folder)): "folder" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*"))}


def _refused(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("facekit: error")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for name in ("a", "b"):
        (tree / name).mkdir(parents=True)
        (tree / name / "clip.mp4").symlink_to(DATA / "video" / "faceswap_test.mp4")
    return tree


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["single", "collection"])
def test_a_second_run_into_an_output_in_use_is_refused_and_the_first_ends_as_if_alone(kind: str, tmp_path: Path) -> None:
    """The first run is paused (SIGSTOP) mid-run while the second is tried: the second is
    refused with one line and exit 2, writes nothing (its marker override reaches neither
    ``.hydra/`` nor the log), and the first, resumed, ends with every source done."""
    require_data()
    source = DATA / "video" / CLIP if kind == "single" else _tree(tmp_path)
    journal_folder = tmp_path / "out" if kind == "single" else tmp_path / "out" / "a" / "clip"
    with facekit_process(f"input={source}", "output=out", "runner.progress=false", cwd=tmp_path) as first:
        wait_for_frames(first, journal_folder, 2)
        second = while_paused(first, lambda: run_facekit(f"input={source}", "output=out", "runner.queue_size=7", cwd=tmp_path))
        readers = [] if kind == "collection" else while_paused(first, lambda: [  # type: ignore[arg-type, return-value]
            run_facekit("task=curate", "input=out", "output=curated", cwd=tmp_path),
            run_facekit("task=mask", "input=out", "output.masks=[components]", cwd=tmp_path),
            run_facekit("task=recrop", "input=out", "output=small", "output.size=64", cwd=tmp_path)])
        assert "Traceback" not in wait_for_exit(first) and first.returncode == 0
    _refused(second, "another facekit run is writing to", "out")
    for reader in readers:  # not "an unfinished extraction; run the extraction again"
        _refused(reader, "another facekit run is writing to", "wait for it to end")
    out = tmp_path / "out"
    assert "queue_size=7" not in (out / ".hydra" / "overrides.yaml").read_text()
    assert "queue_size" not in (out / "facekit.log").read_text()
    if kind == "collection":
        assert [entry["state"] for entry in load_json(out / "collection.json")["sources"]] == ["done", "done"]
    else:
        assert len(load_json(out / "alignments.json")["frames"]) == 275


def test_a_rerun_with_other_settings_leaves_the_output_byte_for_byte(tmp_path: Path) -> None:
    require_data()
    assert run_facekit(f"input={SCENES}", "output=out", cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "out")
    _refused(run_facekit(f"input={SCENES}", "output=out", "output.size=128", cwd=tmp_path),
             "other settings", "size: 256 there, 128 now")
    assert snapshot(tmp_path / "out") == before


def test_a_collection_rerun_with_other_sampling_is_refused_as_a_whole_naming_the_setting(tmp_path: Path) -> None:
    """Refused before any source opens: collection.json keeps every done source done, and not
    one byte of the output changes."""
    require_data()
    tree = _tree(tmp_path)
    assert run_facekit(f"input={tree}", "output=out", "sample.every_n=30", cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "out")
    _refused(run_facekit(f"input={tree}", "output=out", "sample.every_n=5", cwd=tmp_path),
             "other settings", "sample.every_n: 30 there, 5 now")
    assert snapshot(tmp_path / "out") == before
    assert [e["state"] for e in load_json(tmp_path / "out" / "collection.json")["sources"]] == ["done", "done"]


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_a_collection_rerun_that_only_writes_out_defaults_resumes_and_a_refusal_names_the_one_option(
        tmp_path: Path) -> None:
    """Compared as the run uses them: the default plugin named, an option at its default, or the
    default padding is the plain command's collection; one written as an older facekit did
    (plugin nodes unset, ``default_plugins`` beside them) too. A real change names its option."""
    import json

    require_data()
    tree = _tree(tmp_path)
    assert run_facekit(f"input={tree}", "output=out", cwd=tmp_path).returncode == 0
    state = tmp_path / "out" / "collection.json"
    document = load_json(state)
    assert document["settings"]["detector"]["name"] == "yunet" and "default_plugins" not in document["settings"]
    document["settings"].update(detector=None, aligner=None, default_plugins={"detector": "yunet", "aligner": "facemesh",
                                                                              "identity": "sface"})
    state.write_text(json.dumps(document, indent=2))  # as an older facekit wrote it
    for same in (["+detector=yunet"], ["detector.score_threshold=0.6"], ["output.padding=0.15"],
                 ["+aligner=facemesh", "aligner.mirror_pose=true"], ["default_plugins.identity=vggface2"]):
        again = run_facekit(f"input={tree}", "output=out", *same, cwd=tmp_path)
        assert again.returncode == 0 and "nothing to do" in again.stderr, (same, again.stderr)
    before = snapshot(tmp_path / "out")
    _refused(run_facekit(f"input={tree}", "output=out", "detector.score_threshold=0.8", cwd=tmp_path),
             "other settings (detector.score_threshold: 0.6 there, 0.8 now)")
    assert snapshot(tmp_path / "out") == before


def test_a_collection_sampled_from_a_time_resumes_with_the_time_typed_another_way(tmp_path: Path) -> None:
    require_data()
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "clip.mp4").symlink_to(DATA / "video" / "faceswap_test.mp4")
    (tmp_path / "tree" / "p01").symlink_to(DATA / "images" / "people" / "p01")
    args = ["input=tree", "output=out", "runner.progress=false", "sample.every_n=30"]
    assert run_facekit(*args, "sample.start=2.5", cwd=tmp_path).returncode == 0
    again = run_facekit(*args, "sample.start=00:00:02.5", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["single", "collection"])
@pytest.mark.parametrize("why", ["missing weights", "missing reference", "unreadable reference"])
def test_a_run_refused_for_its_models_or_references_leaves_nothing_behind(kind: str, why: str,
                                                                          tmp_path: Path) -> None:
    """In an existing output folder not one byte changes; a new output folder is not made."""
    require_data()
    source = SCENES if kind == "single" else _tree(tmp_path)
    (tmp_path / "not_a_photo.jpg").write_bytes(b"not a JPEG")
    args = {"missing weights": ["+detector=s3fd"],
            "missing reference": [f"filter.refs=[{tmp_path / 'nobody.jpg'}]"],
            "unreadable reference": [f"filter.refs=[{tmp_path / 'not_a_photo.jpg'}]"]}[why]
    for output in ("new/deeper", "existing"):
        (tmp_path / "existing").mkdir(exist_ok=True)
        (tmp_path / "existing" / "notes.txt").write_text("mine")
        before = snapshot(tmp_path)
        result = run_facekit(f"input={source}", f"output={output}", *args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert snapshot(tmp_path) == before, output


def _older_collection(tmp_path: Path) -> Path:
    """A collection as an older facekit left it: its settings lack a key added since
    (``output.mask_size``) and hold one removed since; both of its sources done."""
    import json

    tree = tmp_path / "tree"
    for name in ("p01", "p04"):
        tree.mkdir(exist_ok=True)
        (tree / name).symlink_to(DATA / "images" / "people" / name)
    assert run_facekit(f"input={tree}", "output=out", cwd=tmp_path).returncode == 0
    state = tmp_path / "out" / "collection.json"
    document = load_json(state)
    del document["settings"]["output"]["mask_size"]
    document["settings"]["output"]["since_removed"] = 1
    state.write_text(json.dumps(document, indent=2))
    return tree


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_a_collection_an_older_facekit_wrote_resumes_when_the_keys_added_since_keep_their_defaults(
        tmp_path: Path) -> None:
    """A key the older version lacked behaved as its default there; resume.verify checks a rerun
    and changes no output, so it is no setting of the collection."""
    require_data()
    tree = _older_collection(tmp_path)
    _refused(run_facekit(f"input={tree}", "output=out", "output.mask_size=64", cwd=tmp_path),
             "other settings", "output.mask_size: unset there, 64 now")
    again = run_facekit(f"input={tree}", "output=out", "resume.verify=full", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # both sources kept: verify=full reopens them to re-hash their face files, and redoes no frame
    said = " ".join(again.stderr.split())
    assert "0 frames, 0 faces (8 already done" in said and "0 frames, 0 faces (5 already done" in said, again.stderr


def test_a_video_replaced_under_its_name_is_refused_not_resumed_into_the_old_frames(tmp_path: Path) -> None:
    """The rerun took the other video's frames for the ones done and mixed the two into one
    alignments file; a video copied back (new time, same bytes) resumes as before."""
    require_data()
    video = tmp_path / "take.mp4"
    video.write_bytes((DATA / "video" / "faceswap_test.mp4").read_bytes())
    args = (f"input={video}", f"output={tmp_path / 'out'}", "sample.end=1", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "out")
    video.write_bytes((DATA / "video" / CLIP).read_bytes())
    _refused(run_facekit(*args, cwd=tmp_path), "other settings", "input's content")
    assert snapshot(tmp_path / "out") == before
    video.write_bytes((DATA / "video" / "faceswap_test.mp4").read_bytes())
    again = run_facekit(*args, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr


def _frames_and_faces(out: Path) -> dict[str, tuple[str, list[list[float]]]]:
    """Each frame's photo (its file name) and its faces' boxes: what a run made of which photo."""
    frames = load_json(out / "alignments.json")["frames"]
    return {name: (Path(entry["source"]).name, [face["box"] for face in entry["faces"]]) for name, entry in frames.items()}


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
@pytest.mark.parametrize("collection", [False, True], ids=["folder", "collection"])
def test_a_photo_replaced_since_is_done_again_and_the_output_is_a_new_runs_of_the_folder(
        tmp_path: Path, collection: bool) -> None:
    """Overwritten in place (the folder's own time does not move), or another file under its
    frame's name (x.JPG gone, x.jpeg come): the rerun did nothing and kept the old photo's faces.
    A photo removed is said and its entry kept."""
    require_data()
    photos = tmp_path / "in" / "people" if collection else tmp_path / "in"
    photos.mkdir(parents=True)
    for name, scene in (("a.jpg", "obama.jpg"), ("b.JPG", "two_people.jpg"), ("c.jpg", "biden.jpg")):
        (photos / name).write_bytes((SCENES / scene).read_bytes())
    out = tmp_path / "out"
    folder_out = out / "people" if collection else out
    args = [f"input={tmp_path / 'in'}", f"output={out}", "runner.progress=false"]
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    (photos / "a.jpg").write_bytes((SCENES / "two_people.jpg").read_bytes())  # in place, two faces now
    (photos / "b.JPG").unlink()
    (photos / "b.jpeg").write_bytes((SCENES / "obama.jpg").read_bytes())  # one face where there were two
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 finished frame(s) whose photo changed since" in result.stderr, result.stderr
    (photos / "c.jpg").unlink()
    gone = run_facekit(*args, cwd=tmp_path)
    assert gone.returncode == 0 and ("nothing to do" in gone.stderr or "done: 0 frames" in gone.stderr), gone.stderr
    assert "resuming: 2 frame(s) already done" in gone.stderr or not collection, gone.stderr  # the folder's own
    assert "1 finished frame(s) have no photo in the input now" in gone.stderr, gone.stderr
    (photos / "c.jpg").write_bytes((SCENES / "biden.jpg").read_bytes())  # back for the fresh run to compare
    fresh = tmp_path / "fresh"
    assert run_facekit(f"input={tmp_path / 'in'}", f"output={fresh}", "runner.progress=false", cwd=tmp_path).returncode == 0
    fresh_out = fresh / "people" if collection else fresh
    assert _frames_and_faces(folder_out) == _frames_and_faces(fresh_out)
    assert sorted(p.name for p in folder_out.glob("*.png")) == sorted(p.name for p in fresh_out.glob("*.png"))


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
@pytest.mark.parametrize("collection", [False, True], ids=["folder", "collection"])
def test_a_photo_named_anew_beside_a_new_file_of_its_stem_is_done_once_under_its_new_name(
        tmp_path: Path, collection: bool) -> None:
    """a.jpg's frame is "a" until a.png comes beside it; then the two are a_jpg and a_png. The
    rerun kept frame "a" (warned as a photo gone) and wrote a_jpg beside it: the photo's faces
    twice. Its progress bar also counted 2 frames of 1 to do."""
    require_data()
    photos = tmp_path / "in" / "people" if collection else tmp_path / "in"
    photos.mkdir(parents=True)
    (photos / "a.jpg").write_bytes((SCENES / "obama.jpg").read_bytes())
    out = tmp_path / "out"
    folder_out = out / "people" if collection else out
    args = [f"input={tmp_path / 'in'}", f"output={out}"]
    assert run_facekit(*args, "runner.progress=false", cwd=tmp_path).returncode == 0
    assert sorted(load_json(folder_out / "alignments.json")["frames"]) == ["a"]
    (photos / "a.png").write_bytes((SCENES / "biden.jpg").read_bytes())
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "have no photo in the input now" not in result.stderr, result.stderr
    assert "2/2" in result.stderr and "2/1" not in result.stderr, result.stderr
    fresh = tmp_path / "fresh"
    assert run_facekit(f"input={tmp_path / 'in'}", f"output={fresh}", "runner.progress=false", cwd=tmp_path).returncode == 0
    fresh_out = fresh / "people" if collection else fresh
    assert sorted(load_json(folder_out / "alignments.json")["frames"]) == ["a_jpg", "a_png"]
    assert _frames_and_faces(folder_out) == _frames_and_faces(fresh_out)
    assert sorted(p.name for p in folder_out.glob("*.png")) == sorted(p.name for p in fresh_out.glob("*.png"))


@pytest.mark.parametrize("other_work", [True, False], ids=["another-frame-to-do", "nothing-else-to-do"])
def test_a_photo_replaced_by_one_that_no_longer_decodes_leaves_no_entry_naming_its_removed_face_files(
        tmp_path: Path, other_work: bool) -> None:
    """Its face files go with the rerun's first write; its entry went on naming them, and every
    later rerun warned of missing files it never mended. Now the entry goes too, as a new run of
    the folder would have none; so do both when the rerun has no other frame to write."""
    require_data()
    photos = tmp_path / "in"
    photos.mkdir()
    for name in ("obama.jpg", "biden.jpg", "two_people.jpg"):
        (photos / name).write_bytes((SCENES / name).read_bytes())
    args = ["input=in", "output=out", "runner.progress=false"]
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    (photos / "two_people.jpg").write_bytes(b"not a JPEG any more")
    if other_work:
        (tmp_path / "out" / "biden_0.png").unlink()  # a frame to do: the rerun writes
    again = run_facekit(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    frames = load_json(tmp_path / "out" / "alignments.json")["frames"]
    assert sorted(frames) == ["biden", "obama"], sorted(frames)
    named = {face["crop"] for frame in frames.values() for face in frame["faces"]}
    assert named == {p.name for p in (tmp_path / "out").glob("*.png")}  # every file named is there, and only those
    quiet = run_facekit(*args, cwd=tmp_path)
    assert quiet.returncode == 0 and "missing" not in quiet.stderr, quiet.stderr



def test_a_video_given_by_another_name_for_the_same_file_is_refused_not_extracted_again_beside_its_frames(
        tmp_path: Path) -> None:
    """Its frames are named by the name given: a link to the video resumed its output and wrote
    every frame again as link_*, the alignments file holding each face twice."""
    require_data()
    (tmp_path / "link.mp4").symlink_to(DATA / "video" / CLIP)
    args = ["output=out", "sample.every_n=10", "runner.progress=false"]
    assert run_facekit(f"input={DATA / 'video' / CLIP}", *args, cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path / "out")
    _refused(run_facekit("input=link.mp4", *args, cwd=tmp_path),
             f"holds the frames of {CLIP!r}, and 'link.mp4' is the same file under another name")
    assert snapshot(tmp_path / "out") == before


def test_a_rerun_with_nothing_to_do_writes_the_summary_a_run_stopped_after_its_fold_never_wrote(tmp_path: Path) -> None:
    """A stop between the final fold and run_summary.json left the folder without one for good:
    every rerun said "nothing to do" and wrote none."""
    require_data()
    photos = tmp_path / "in"
    photos.mkdir()
    for name in ("obama.jpg", "two_people.jpg"):
        (photos / name).write_bytes((SCENES / name).read_bytes())
    args = [f"input={photos}", f"output={tmp_path / 'out'}", "runner.progress=false",
            f"filter.refs=[{SCENES / 'obama.jpg'}]"]
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    first = load_json(tmp_path / "out" / "run_summary.json")
    (tmp_path / "out" / "run_summary.json").unlink()  # as the stop left it
    again = run_facekit(*args, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do: 2 frames already done" in again.stderr, again.stderr
    summary = load_json(tmp_path / "out" / "run_summary.json")
    assert (summary["frames"], summary["resumed"], summary["rejected"]) == (0, 2, first["rejected"]) != (0, 2, {})


@pytest.mark.parametrize("collection", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_a_rerun_that_names_the_input_otherwise_keeps_the_first_runs_spelling(tmp_path: Path, collection: bool) -> None:
    """Resumed with the input typed relative where the first run typed it absolute, half the
    frames named the file one way and half the other (entries and face files' text alike), a
    folder that matched no run: ``crop_sha256`` of the same pixels differed, curation sorted them
    apart. The rerun now names it as the run it resumes did."""
    from facekit.output.pngmeta import SOURCE_KEY, read_png_text

    require_data()
    photos = tmp_path / "work" / ("tree/a" if collection else "photos")
    photos.mkdir(parents=True)
    (photos / "obama.jpg").symlink_to(SCENES / "obama.jpg")
    typed = photos.parent if collection else photos
    first = run_facekit(f"input={typed}", f"output={tmp_path / 'out'}", "runner.progress=false", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (photos / "biden.jpg").symlink_to(SCENES / "biden.jpg")  # the rerun has a frame to do
    again = run_facekit(f"input={typed.relative_to(tmp_path / 'work')}", f"output={tmp_path / 'out'}",
                        "runner.progress=false", cwd=tmp_path / "work")
    assert again.returncode == 0, again.stderr
    out = tmp_path / "out" / ("a" if collection else "")
    frames = load_json(out / "alignments.json")["frames"]
    assert set(frames) == {"obama", "biden"}
    assert {str(Path(frame["source"]).parent) for frame in frames.values()} == {str(photos)}
    assert {str(Path(read_png_text(path)[SOURCE_KEY]).parent) for path in out.glob("*.png")} == {str(photos)}


@pytest.mark.parametrize("inside", ["b", "b/clip"])
def test_a_run_into_a_folder_inside_an_output_in_use_is_refused(inside: str, tmp_path: Path) -> None:
    """A run into ``out/b`` while a collection held ``out`` was accepted: the collection, reaching
    its source ``b``, found the other run's alignments there and failed it. Here ``out`` is held
    as a run holds its output folder."""
    require_data()
    from facekit.ledger.run_folder import RunFolder

    with RunFolder(tmp_path / "out"):
        result = run_facekit(f"input={DATA / 'video' / 'faceswap_test.mp4'}", f"output=out/{inside}",
                             "sample.every_n=30", cwd=tmp_path)
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".facekit-run.lock"]  # nothing made there
    _refused(result, "another facekit run is writing to", "which holds out/" + inside)
