"""A collection through the CLI: a tree of videos and image folders in one run, each source
written as a separate run of it would be, its state in collection.json, bad sources named and
passed over, and a stopped run resumed per source."""
from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from cli_helpers import facekit_process, file_hashes, load_json, run_facekit, stop_with, wait_for_frames
from conftest import DATA, require_data
from facekit.ledger.collection_state import CollectionState
from facekit.ledger.states import SourceState
from facekit.media.collection import COLLECTION_FILE, Source
from facekit.output.pngmeta import SOURCE_KEY, read_png_text
from ray_cluster import LOOPBACK_ENV, require_ray

SAMPLE = "sample.every_n=25"  # a few frames of each video: the point is where they go, not how many


def _link(tree: Path, rel: str, target: Path) -> None:
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).symlink_to(target)


def _frames(out: Path) -> dict:
    return load_json(out / "alignments.json")["frames"]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tree/``: the shared videos twice (once nested deeper), and two people's photo folders;
    run once as a collection into ``out/``. Returns the working folder."""
    require_data()
    work = tmp_path_factory.mktemp("collection")
    for video in sorted((DATA / "video").glob("*.mp4")):
        _link(work / "tree", f"videos/{video.name}", video)
        _link(work / "tree", f"shows/season 1/{video.name}", video)
    for person in ("p01", "p04"):
        _link(work / "tree", f"people/{person}", DATA / "images" / "people" / person)
    result = run_facekit("input=tree", "output=out", SAMPLE, cwd=work, env={"FACEKIT_HOME": str(work / "home")})
    assert result.returncode == 0, result.stderr
    return work


SOURCES = {  # source -> its output folder
    "videos/faceswap_test.mp4": "videos/faceswap_test",
    "videos/short_hamilton_clip.mp4": "videos/short_hamilton_clip",
    "shows/season 1/faceswap_test.mp4": "shows/season 1/faceswap_test",
    "shows/season 1/short_hamilton_clip.mp4": "shows/season 1/short_hamilton_clip",
    "people/p01": "people/p01",
    "people/p04": "people/p04",
}


def test_collection_json_lists_every_source_done_with_its_frames_faces_and_alignments(collection: Path) -> None:
    document = load_json(collection / "out" / "collection.json")
    entries = {e["source"]: e for e in document["sources"]}
    assert {s: e["output"] for s, e in entries.items()} == SOURCES
    for source, entry in entries.items():
        frames = _frames(collection / "out" / entry["output"])
        assert entry["state"] == "done"
        assert entry["alignments"] == f"{SOURCES[source]}/alignments.json"
        assert entry["frames"] == len(frames) > 0
        assert entry["faces"] == sum(len(f["faces"]) for f in frames.values()) > 0
    assert document["counts"] == {"done": 6}


@pytest.mark.parametrize("source", ["videos/faceswap_test.mp4", "shows/season 1/short_hamilton_clip.mp4",
                                    "people/p01"])
def test_each_source_equals_a_separate_run_of_it(collection: Path, source: str) -> None:
    alone = collection / "alone" / SOURCES[source]
    result = run_facekit(f"input=tree/{source}", f"output={alone}", SAMPLE, cwd=collection,
                         env={"FACEKIT_HOME": str(collection / "home")})
    assert result.returncode == 0, result.stderr
    together = collection / "out" / SOURCES[source]
    assert _frames(together) == _frames(alone)
    assert file_hashes(together, "*.png") == file_hashes(alone, "*.png") != {}
    for face in together.glob("*.png"):
        assert read_png_text(face)[SOURCE_KEY].startswith(f"tree/{source}")


def test_a_flat_folder_stays_a_single_source(collection: Path) -> None:
    out = collection / "flat"
    result = run_facekit("input=tree/people/p04", f"output={out}", cwd=collection,
                         env={"FACEKIT_HOME": str(collection / "home")})
    assert result.returncode == 0, result.stderr
    assert not (out / "collection.json").exists() and (out / "alignments.json").exists()


def test_bad_sources_are_named_marked_failed_and_the_run_goes_on(tmp_path: Path) -> None:
    require_data()
    tree = tmp_path / "tree"
    _link(tree, "good/clip.mp4", DATA / "video" / "faceswap_test.mp4")
    (tree / "bad.mp4").write_text("not a video")
    (tree / "good" / "loop").symlink_to(tree)
    (tree / "extras").mkdir()
    (tree / "extras" / "trailers").mkdir()
    _link(tree, "extras/trailers/t.mp4", DATA / "video" / "faceswap_test.mp4")
    (tree / "people" / "p09").mkdir(parents=True)  # a person's folder left empty
    locked = tree / "locked"
    locked.mkdir()
    (locked / "x.jpg").write_bytes(b"")
    locked.chmod(0)
    try:
        result = run_facekit("input=tree", "output=out", "sample.every_n=50", "collection.exclude=[**/trailers/**]",
                             cwd=tmp_path)
    finally:
        locked.chmod(0o755)
    assert result.returncode == 0, result.stderr
    entries = {e["source"]: e for e in load_json(tmp_path / "out" / "collection.json")["sources"]}
    assert entries["good/clip.mp4"]["state"] == "done"
    assert entries["bad.mp4"]["state"] == "failed" and "cannot be opened as a video" in entries["bad.mp4"]["reason"]
    assert entries["good/loop"]["state"] == "failed" and "symlink loop" in entries["good/loop"]["reason"]
    assert "extras/trailers/t.mp4" not in entries
    assert entries["people/p09"] == {**entries["people/p09"], "state": "failed",
                                     "reason": "holds no images or videos (it is empty)"}
    failed = ["bad.mp4", "good/loop", "people/p09", "locked"]
    # root reads the folder whatever its permissions, and finds only an empty photo
    why = "Permission denied" if os.geteuid() != 0 else "none of its 1 image file(s) could be read"
    assert entries["locked"]["state"] == "failed" and why in entries["locked"]["reason"]
    text = " ".join(result.stderr.split())
    for source in failed:
        assert text.count(f"source {source} failed") == 1, text
    assert f"{len(failed)} failed" in text


def test_a_list_file_names_sources_and_a_missing_entry_fails_alone(tmp_path: Path) -> None:
    require_data()
    listing = tmp_path / "list.txt"
    listing.write_text(f"{DATA / 'video' / 'faceswap_test.mp4'}\nnowhere/clip.mp4\n", encoding="utf-8")
    result = run_facekit(f"input=@{listing}", "output=out", "sample.every_n=50", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entries = {e["source"]: e for e in load_json(tmp_path / "out" / "collection.json")["sources"]}
    assert entries[str(DATA / "video" / "faceswap_test.mp4")]["state"] == "done"
    assert (tmp_path / "out" / "faceswap_test" / "alignments.json").exists()
    assert entries["nowhere/clip.mp4"] == {**entries["nowhere/clip.mp4"], "state": "failed",
                                         "reason": f"does not exist (read as {tmp_path / 'nowhere' / 'clip.mp4'}: a list's "
                                                   "relative paths start at its folder)"}


def _files_outside(root: Path, *left_out: Path) -> dict[str, tuple[int, int] | None]:
    """Every file and folder under ``root`` but those under ``left_out``: path -> (size, mtime)
    of a file or link, None for a folder (whose mtime changes when ``output.dir`` is made in it)."""
    found: dict[str, tuple[int, int] | None] = {}
    for folder, folders, files in os.walk(root):
        folders[:] = [f for f in folders if Path(folder, f) not in left_out]
        found.update({str(Path(folder, name).relative_to(root)): None for name in folders})
        for name in files:
            status = os.lstat(Path(folder, name))
            found[str(Path(folder, name).relative_to(root))] = (status.st_size, status.st_mtime_ns)
    return found


@pytest.mark.parametrize("runner", [pytest.param([], id="local"), pytest.param(  # Ray's start: the slow tier
    ["runner=ray", "runner.shard_frames=1"], id="private-ray", marks=pytest.mark.slow)])
def test_hostile_list_entries_write_nothing_outside_the_output_folder_and_same_last_names_do_not_collide(
        tmp_path: Path, runner: list[str]) -> None:
    """Entries naming ``..``, ``../..``, ``~``, an absolute path with ``..`` in it and a link to a
    folder elsewhere: every file the run writes is inside ``output.dir``, each source in a folder
    of its own (two videos both named ``a.mp4`` included); on the local runner and on a private Ray."""
    require_data()
    if runner:
        require_ray()
    video, home = DATA / "video" / "faceswap_test.mp4", tmp_path / "home"
    for rel in ("work/vids/a.mp4", "other/a.mp4", "home/clips/c.mp4", "far/e.mp4"):
        _link(tmp_path, rel, video)
    _link(tmp_path, "photos/p04", DATA / "images" / "people" / "p04")
    _link(tmp_path, "work/lists/link", tmp_path / "far")
    (tmp_path / "work" / "lists" / "l.txt").write_text(
        f"../vids/a.mp4\n../../other/a.mp4\n~/clips/c.mp4\n{tmp_path}/photos/p04/../p04\nlink/e.mp4\n",
        encoding="utf-8")
    out, cache = tmp_path / "work" / "out", tmp_path / "facekit_home"
    home_own = [home / ".cache", home / ".ray"]  # what libraries keep in a home (onnxruntime a machine id, Ray a token)
    before = _files_outside(tmp_path, out, cache, *home_own)
    result = run_facekit("input=@lists/l.txt", "output=out", "sample.every_n=50", "runner.progress=false", *runner,
                         cwd=tmp_path / "work", env={"HOME": str(home), "FACEKIT_HOME": str(cache), **LOOPBACK_ENV})
    assert result.returncode == 0, result.stderr
    assert _files_outside(tmp_path, out, cache, *home_own) == before
    entries = {e["source"]: e for e in load_json(out / "collection.json")["sources"]}
    assert {source: (e["output"], e["state"]) for source, e in entries.items()} == {
        "../vids/a.mp4": ("a", "done"), "../../other/a.mp4": ("a.mp4", "done"), "~/clips/c.mp4": ("c", "done"),
        f"{tmp_path}/photos/p04/../p04": ("p04", "done"), "link/e.mp4": ("link/e", "done")}
    for entry in entries.values():
        assert load_json(out / entry["output"] / "alignments.json")["frames"], entry


def test_nothing_processed_exits_2(tmp_path: Path) -> None:
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "bad.mp4").write_text("not a video")
    (tmp_path / "tree" / "sub" / "also.mkv").write_text("not a video either")
    result = run_facekit("input=tree", "output=out", cwd=tmp_path)
    assert result.returncode == 2
    assert "no source of tree could be processed (2 failed" in " ".join(result.stderr.split())


@pytest.mark.parametrize("runner", [["runner.mode=parallel"],  # streamed; one source at a time; Ray
                                    pytest.param(["runner.mode=serial"], marks=pytest.mark.slow),
                                    pytest.param(["runner=ray"], id="ray", marks=pytest.mark.slow)],
                         ids=lambda runner: runner[0])
def test_a_folder_none_of_whose_photos_reads_is_a_failed_source(tmp_path: Path, runner: list[str]) -> None:
    """Its source was marked done with 0 frames and the run exited 0, where the same folder
    given alone fails: scripts took a tree of unreadable photos for a success, and a rerun did
    not try them again."""
    require_data()
    for folder in ("empty_and_text", "truncated"):
        (tmp_path / "tree" / folder).mkdir(parents=True)
    (tmp_path / "tree" / "empty_and_text" / "zero.jpg").write_bytes(b"")
    (tmp_path / "tree" / "empty_and_text" / "text.jpg").write_text("hi")
    photo = DATA / "images" / "people" / "p01" / "img11.jpg"
    (tmp_path / "tree" / "truncated" / "cut.jpg").write_bytes(photo.read_bytes()[:28000])
    if runner == ["runner=ray"]:
        require_ray()
    command = ("input=tree", "output=out", "runner.progress=false", *runner)
    result = run_facekit(*command, cwd=tmp_path, env=LOOPBACK_ENV)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "no source of tree could be processed (2 failed" in " ".join(result.stderr.split())
    skipped = sorted(line.split(":")[0].split()[-1] for line in result.stderr.splitlines() if " skipped tree/" in line)
    assert skipped == ["tree/empty_and_text/text.jpg", "tree/empty_and_text/zero.jpg", "tree/truncated/cut.jpg"]  # once each
    sources = load_json(tmp_path / "out" / COLLECTION_FILE)["sources"]
    assert {entry["source"]: (entry["state"], entry.get("reason")) for entry in sources} == {
        "empty_and_text": ("failed", "none of its 2 image file(s) could be read (each is named above)"),
        "truncated": ("failed", "none of its 1 image file(s) could be read (each is named above)")}
    (tmp_path / "tree" / "truncated" / "whole.jpg").write_bytes(photo.read_bytes())
    result = run_facekit(*command, cwd=tmp_path, env=LOOPBACK_ENV)  # tried again: one photo reads now
    assert result.returncode == 0, result.stderr[-3000:]
    sources = {e["source"]: e for e in load_json(tmp_path / "out" / COLLECTION_FILE)["sources"]}
    assert {name: e["state"] for name, e in sources.items()} == {"empty_and_text": "failed", "truncated": "done"}
    # its photo that reads is kept (Ray's fold dropped the shard that had just run), and the one
    # that does not is counted, so that the next run tries it again
    assert (sources["truncated"]["frames"], sources["truncated"].get("skipped")) == (1, 1)
    assert list(_frames(tmp_path / "out" / "truncated")) == ["whole"]
    (tmp_path / "tree" / "truncated" / "cut.jpg").write_bytes(photo.read_bytes())  # mended under its name
    result = run_facekit(*command, cwd=tmp_path, env=LOOPBACK_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(_frames(tmp_path / "out" / "truncated")) == ["cut", "whole"]


@pytest.mark.slow
def test_sigterm_mid_collection_then_the_same_command_resumes_per_source(tmp_path: Path) -> None:
    require_data()
    for name in ("a", "b", "c"):
        _link(tmp_path / "tree", f"{name}/clip.mp4", DATA / "video" / "faceswap_test.mp4")
    # every 2nd frame: b's 46 leave a wide margin after its 3rd for the signal to land before its
    # last on a loaded machine too (every 5th left 16 frames; the test failed once under load)
    args = ("input=tree", "output=out", "sample.every_n=2")
    with facekit_process(*args, cwd=tmp_path) as process:
        wait_for_frames(process, tmp_path / "out" / "b" / "clip", 3)
        stop_with(process, signal.SIGTERM)
    states = {e["source"]: e["state"] for e in load_json(tmp_path / "out" / "collection.json")["sources"]}
    # c may be open already (the reader runs ahead of the workers), but nothing of it is done
    assert states.pop("c/clip.mp4", "partial") == "partial"
    assert states == {"a/clip.mp4": "done", "b/clip.mp4": "partial"}
    first = (tmp_path / "out" / "a" / "clip" / "alignments.json").stat().st_mtime_ns

    resumed = run_facekit(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    text = " ".join(resumed.stderr.split())
    assert "1 source(s) done by an earlier run, not reopened" in text  # one line, not one a source
    assert "resuming:" in text
    assert (tmp_path / "out" / "a" / "clip" / "alignments.json").stat().st_mtime_ns == first
    assert {e["state"] for e in load_json(tmp_path / "out" / "collection.json")["sources"]} == {"done"}

    whole = run_facekit("input=tree", "output=whole", "sample.every_n=2", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    for name in ("a", "b", "c"):
        assert _frames(tmp_path / "out" / name / "clip") == _frames(tmp_path / "whole" / name / "clip")
        assert file_hashes(tmp_path / "out" / name / "clip", "*.png") == file_hashes(
            tmp_path / "whole" / name / "clip", "*.png")


@pytest.mark.slow
def test_the_identity_filter_and_a_sweep_work_over_a_collection_analysing_each_source_once(tmp_path: Path) -> None:
    require_data()
    _link(tmp_path / "tree", "clip.mp4", DATA / "video" / "faceswap_test.mp4")
    _link(tmp_path / "tree", "people/p04", DATA / "images" / "people" / "p04")
    ref = DATA / "images" / "people" / "p04" / "img13.jpg"
    result = run_facekit("-m", "input=tree", "output=sweep", SAMPLE, f"filter.refs=[{ref}]",
                         "filter.threshold=0.3,0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stderr.split())
    assert text.count("cached passes") == 2  # the second job replays both sources from the analysis cache
    (sweep,) = (tmp_path / "sweep").glob("sweep_*")
    for job in ("0", "1"):
        people = _frames(sweep / job / "people" / "p04")
        assert any(face["keep"] for frame in people.values() for face in frame["faces"])
        clip = _frames(sweep / job / "clip")
        assert all(not face["keep"] for frame in clip.values() for face in frame["faces"])
    rows = (sweep / "sweep_report.csv").read_text().splitlines()
    assert len(rows) == 3 and all(row.split(",")[2] not in ("", "0") for row in rows[1:])  # kept counted


def test_a_source_done_into_another_output_folder_is_not_done(tmp_path: Path) -> None:
    """``collection.json`` says a source is done only for the folder it was written to: the same
    source whose output folder is now another (a name another source took first) is run again."""
    settings = {"detector": "yunet"}
    before = Source(tmp_path / "a" / "clip.mp4", "video", "a/clip.mp4", "clip")
    earlier = CollectionState(tmp_path / COLLECTION_FILE, "tree", settings)
    earlier.set(before, SourceState.DONE)
    earlier.save()
    state = CollectionState.load(tmp_path / COLLECTION_FILE, "tree", settings)
    assert state.was_done(before)
    assert not state.was_done(replace(before, output="a/clip"))


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_a_photo_added_to_a_done_sources_folder_reopens_it_and_the_others_stay_done(tmp_path: Path) -> None:
    """A source's folder is taken as unchanged only while its time of change is the one it had
    when it was done: the added photo was never read, and a rerun said there was nothing to do."""
    require_data()
    photos = tmp_path / "tree" / "photos"
    photos.mkdir(parents=True)
    (photos / "obama.jpg").write_bytes((DATA / "images" / "scenes" / "obama.jpg").read_bytes())
    _link(tmp_path / "tree", "clip.mp4", DATA / "video" / "faceswap_test.mp4")
    args = ("input=tree", "output=out", "sample.end=1", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    (photos / "biden.jpg").write_bytes((DATA / "images" / "scenes" / "biden.jpg").read_bytes())
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stderr.split())
    assert text.count("source photos changed since an earlier run finished it: reopened") == 1, text
    assert "1 source(s) done by an earlier run, not reopened" in text
    assert set(load_json(tmp_path / "out" / "photos" / "alignments.json")["frames"]) == {"obama", "biden"}
    again = run_facekit(*args, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
def test_a_photo_that_did_not_decode_is_tried_again_once_mended_where_a_done_source_was_not_reopened(
        tmp_path: Path) -> None:
    """A source done with a skipped file is reopened by a rerun, as a flat folder's rerun tries its
    skipped files again; a file mended in place (the folder's own time unmoved) was never read."""
    require_data()
    photos = tmp_path / "tree" / "photos"
    photos.mkdir(parents=True)
    scenes = DATA / "images" / "scenes"
    (photos / "obama.jpg").write_bytes((scenes / "obama.jpg").read_bytes())
    (photos / "biden.jpg").write_bytes((scenes / "biden.jpg").read_bytes()[:2000])  # cut short
    _link(tmp_path / "tree", "clip.mp4", DATA / "video" / "faceswap_test.mp4")
    args = ("input=tree", "output=out", "sample.end=1", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    entry = next(e for e in load_json(tmp_path / "out" / COLLECTION_FILE)["sources"] if e["source"] == "photos")
    assert entry["state"] == "done" and entry["skipped"] == 1
    (photos / "biden.jpg").write_bytes((scenes / "biden.jpg").read_bytes())
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(load_json(tmp_path / "out" / "photos" / "alignments.json")["frames"]) == {"obama", "biden"}
    again = run_facekit(*args, cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr


def test_a_choice_that_leaves_no_source_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    require_data()
    _link(tmp_path / "tree", "a/clip.mp4", DATA / "video" / "faceswap_test.mp4")
    _link(tmp_path / "tree", "b.mp4", DATA / "video" / "faceswap_test.mp4")
    result = run_facekit("input=tree", "output=out", "collection.include=[nomatch/**]", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "input 'tree': no source is left by collection.include=['nomatch/**']" in result.stderr
    assert not (tmp_path / "out").exists()


def _listing(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` (hidden ones too) by relative path, with its size."""
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_runs_of_another_input_or_kind_into_an_output_are_refused_and_touch_nothing(tmp_path: Path) -> None:
    """Two collections, or a collection and a single source, sharing one output would leave
    files that no collection.json names, or faces of one mixed with the other's."""
    require_data()
    for tree, person in (("one", "p01"), ("two", "p04")):
        _link(tmp_path / tree, person, DATA / "images" / "people" / person)
    photo = DATA / "images" / "scenes" / "obama.jpg"
    assert run_facekit("input=one", "output=collection", cwd=tmp_path).returncode == 0
    assert run_facekit(f"input={photo}", "output=single", cwd=tmp_path).returncode == 0
    refusals = {("input=two", "output=collection"): f"holds the collection of {tmp_path / 'one'}, not of",
                (f"input={photo}", "output=collection"): "holds a collection's output (collection.json)",
                ("input=one", "output=single"): "holds a single source's output (alignments.json)"}
    for args, says in refusals.items():
        before = _listing(tmp_path / args[1].split("=")[1])
        result = run_facekit(*args, cwd=tmp_path)
        assert result.returncode == 2 and says in " ".join(result.stderr.split()), (args, result.stderr)
        assert _listing(tmp_path / args[1].split("=")[1]) == before, args
    # the same collection again, named from elsewhere, still resumes (nothing to do)
    again = run_facekit(f"input={tmp_path / 'one'}", f"output={tmp_path / 'collection'}", cwd=tmp_path.parent)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    # and a list file, typed relative to another folder the second time
    (tmp_path / "list.txt").write_text("one/p01\n", encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    assert run_facekit("input=@list.txt", "output=listed", cwd=tmp_path).returncode == 0
    again = run_facekit("input=@../list.txt", "output=../listed", cwd=tmp_path / "elsewhere")
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr


def test_an_input_folder_that_holds_facekits_output_is_refused(tmp_path: Path) -> None:
    """Its face files would be read as photos (a folder below the input holding them is passed over)."""
    require_data()
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "obama.jpg").symlink_to(DATA / "images" / "scenes" / "obama.jpg")
    assert run_facekit(f"input={folder / 'obama.jpg'}", f"output={folder}", cwd=tmp_path).returncode == 0
    result = run_facekit(f"input={folder}", "output=faces", cwd=tmp_path)
    assert result.returncode == 2 and "holds facekit's output" in result.stderr
    assert not (tmp_path / "faces").exists()


def test_a_finished_source_keeps_its_folder_when_a_same_named_file_comes_beside_it(tmp_path: Path) -> None:
    """clip.mp4 alone is written to clip/; with clip.mkv beside it both take their full names,
    so the rerun moved the finished video to clip.mp4/ and did it all again. It keeps clip/, the
    newcomer takes its own name, and a folder named clip that comes later keeps clear (clip~2)."""
    require_data()
    tree = tmp_path / "tree"
    _link(tree, "clip.mp4", DATA / "video" / "faceswap_test.mp4")
    args = ("input=tree", "output=out", "sample.every_n=25", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    before = file_hashes(tmp_path / "out" / "clip")
    _link(tree, "clip.mkv", DATA / "video" / "faceswap_test.mp4")
    _link(tree, "clip/p.jpg", DATA / "images" / "people" / "p01" / "img1.jpg")
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    outputs = {e["source"]: (e["output"], e["state"]) for e in load_json(tmp_path / "out" / COLLECTION_FILE)["sources"]}
    assert outputs == {"clip.mp4": ("clip", "done"), "clip.mkv": ("clip.mkv", "done"), "clip": ("clip~2", "done")}
    assert file_hashes(tmp_path / "out" / "clip") == before and not (tmp_path / "out" / "clip.mp4").exists()
    assert "source clip.mp4 done" not in result.stderr  # not run again


def test_a_list_reordered_keeps_each_source_in_its_folder() -> None:
    """Two lines ending in the same name got their folders by line order (a, then a.mp4): the
    lines swapped, each source met the other's folder and both failed as other settings."""
    state = CollectionState(None, "@l.txt")
    state.earlier = {"../x/a.mp4": {"source": "../x/a.mp4", "output": "a"},
                     "../y/a.mp4": {"source": "../y/a.mp4", "output": "a.mp4"}}
    listed = [Source(Path("y/a.mp4"), "video", "../y/a.mp4", "a"), Source(Path("x/a.mp4"), "video", "../x/a.mp4", "a.mp4"),
              Source(Path("z/a.mp4"), "video", "../z/a.mp4", "a.mp4~2"), Source(Path("b.mp4"), "video", "b.mp4", "a")]
    assert [s.output for s in state.pinned(listed)] == ["a.mp4", "a", "a.mp4~2", "a~2"]


def test_a_source_gone_since_the_last_run_is_said_and_its_folder_kept(tmp_path: Path) -> None:
    """A removed or renamed source vanished from collection.json without a word."""
    require_data()
    tree = tmp_path / "tree"
    for folder, person in (("a", "p01"), ("b", "p04")):
        _link(tree, f"{folder}/x.jpg", sorted((DATA / "images" / "people" / person).glob("*.jpg"))[0])
    args = ("input=tree", "output=out", "runner.progress=false")
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    (tree / "b" / "x.jpg").rename(tree / "c.jpg")
    (tree / "b").rmdir()  # b renamed: the tree's own photos now
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 source(s) of the last run are not in the input now (removed, renamed, or left out by " \
           "collection.include/exclude): b; their folders are kept" in result.stderr, result.stderr
    assert (tmp_path / "out" / "b" / "alignments.json").exists()
    again = run_facekit(*args, cwd=tmp_path)
    assert "not in the input now" not in again.stderr  # said once: this run's collection.json is the input's
    assert {e["source"] for e in load_json(tmp_path / "out" / COLLECTION_FILE)["sources"]} == {".", "a"}


@pytest.mark.parametrize("per_source", [False, True], ids=["streamed", "per-source"])
def test_a_source_that_cannot_open_leaves_no_empty_folder(tmp_path: Path, per_source: bool) -> None:
    """A junk video in a tree left an empty folder (and the folders above it) in the output,
    holding its name; the streamed run and a run of each source on its own (a sweep's job, with
    the analysis cache) alike."""
    require_data()
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "fake.mp4").write_bytes(os.urandom(5000))
    _link(tree, "photos/obama_small.jpg", DATA / "images" / "scenes" / "obama_small.jpg")
    result = run_facekit("input=tree", "output=out", "runner.progress=false",
                         *(["cache.enabled=true"] if per_source else []), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entries = {e["source"]: e for e in load_json(tmp_path / "out" / COLLECTION_FILE)["sources"]}
    assert entries["a/b/fake.mp4"]["state"] == "failed"
    assert not (tmp_path / "out" / "a").exists()
    assert (tmp_path / "out" / "photos" / "alignments.json").is_file()
