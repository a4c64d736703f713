"""The walk over a collection (facekit.media.collection): which sources a tree or a list holds,
where each one's output goes, and how unreadable parts are named instead of ending the walk."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from facekit.media import Sampling
from facekit.media.collection import Selection, Source, is_collection, read_list, sources_of, walk


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _found(sources: list[Source]) -> dict[str, tuple[str, str, str | None]]:
    return {s.rel: (s.kind, s.output, s.failed) for s in sources}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    _touch(root, "top.jpg", "intro.mp4", "show/s01/e01.mp4", "show/s01/e01.mkv", "show/s01/e01/still.png",
           "show/trailers/t1.mp4", "people/p01/a.jpg", "people/p01/b.jpg", "people/empty/notes.txt",
           ".hidden/x.mp4", "debug.mp4", "debug/frame.jpg", "masks/mask.jpg")
    return root


def test_every_video_is_a_source_each_folders_images_form_one_and_a_leaf_folder_without_media_fails(
        tree: Path) -> None:
    assert _found(list(walk(tree, Selection()))) == {
        ".": ("folder", ".", None),
        "debug.mp4": ("video", "debug.mp4", None),
        "intro.mp4": ("video", "intro", None),
        "debug": ("folder", "debug.folder", None),
        "masks": ("folder", "masks.folder", None),  # a source's own mask files go to masks/<mask>/
        "people/p01": ("folder", "people/p01", None),
        "people/empty": ("folder", "people/empty", "holds no images or videos (1 other file)"),
        "show/s01/e01.mkv": ("video", "show/s01/e01.mkv", None),
        "show/s01/e01.mp4": ("video", "show/s01/e01.mp4", None),
        "show/s01/e01": ("folder", "show/s01/e01", None),
        "show/trailers/t1.mp4": ("video", "show/trailers/t1", None),
    }


def test_a_folders_images_come_first_then_its_videos_then_its_subfolders(tree: Path) -> None:
    assert [s.rel for s in walk(tree, Selection())][:4] == [".", "debug.mp4", "intro.mp4", "debug"]


def test_not_recursive_reads_the_top_folder_only_videos_included(tree: Path) -> None:
    assert [s.rel for s in walk(tree, Selection(recursive=False))] == [".", "debug.mp4", "intro.mp4"]


def test_exclude_globs_leave_out_a_subtree_and_include_globs_keep_only_matches(tree: Path) -> None:
    excluded = {s.rel for s in walk(tree, Selection(exclude=("**/trailers/**", "debug*")))}
    assert "show/trailers/t1.mp4" not in excluded and "debug.mp4" not in excluded and "debug" not in excluded
    assert "show/s01/e01.mp4" in excluded
    assert {s.rel for s in walk(tree, Selection(include=("**/*.mp4",)))} == {
        "debug.mp4", "intro.mp4", "show/s01/e01.mp4", "show/trailers/t1.mp4"}
    assert {s.rel for s in walk(tree, Selection(include=("people/**",)))} == {"people/p01", "people/empty"}
    assert {s.rel for s in walk(tree, Selection(include=("show/s0?/*.mkv",)))} == {"show/s01/e01.mkv"}


def test_a_flat_folder_of_images_and_a_single_file_are_not_collections(tmp_path: Path) -> None:
    _touch(tmp_path / "flat", "a.jpg", "b.png", "notes.txt")
    (tmp_path / "flat" / "empty").mkdir()
    assert not is_collection(tmp_path / "flat", Selection())
    assert not is_collection(tmp_path / "flat" / "a.jpg", Selection())
    _touch(tmp_path / "flat", "sub/c.jpg")
    assert is_collection(tmp_path / "flat", Selection())
    assert not is_collection(tmp_path / "flat", Selection(recursive=False))
    _touch(tmp_path / "flat", "clip.mp4")
    assert is_collection(tmp_path / "flat", Selection(recursive=False))


def test_the_output_folder_inside_the_tree_is_never_read(tree: Path) -> None:
    _touch(tree, "out/old.mp4", "out/x/face.png")
    assert not {s.rel for s in walk(tree, Selection(), exclude=tree / "out")} & {"out/old.mp4", "out/x"}


def test_a_symlink_loop_is_a_failed_source_and_the_walk_goes_on(tree: Path) -> None:
    (tree / "people" / "p01" / "back").symlink_to(tree / "people")
    (tree / "self").symlink_to(tree / "self")
    found = _found(list(walk(tree, Selection())))
    assert "symlink loop" in found["people/p01/back"][2]
    assert "symlink loop" in found["self"][2]
    assert found["show/s01/e01.mp4"][2] is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder whatever its permissions")
def test_an_unreadable_subfolder_is_a_failed_source_and_the_walk_goes_on(tree: Path) -> None:
    locked = tree / "people" / "p01"
    locked.chmod(0)
    try:
        found = _found(list(walk(tree, Selection())))
    finally:
        locked.chmod(0o755)
    assert found["people/p01"][0] == "folder" and "cannot be listed (Permission denied)" in found["people/p01"][2]
    assert found["show/trailers/t1.mp4"][2] is None


def test_a_list_names_sources_relative_to_itself_and_a_missing_one_fails(tree: Path) -> None:
    listing = tree / "list.txt"
    listing.write_text("# my sources\nintro.mp4\n\nshow/s01/e01.mp4\nshow/s01/e01.mkv\npeople/p01\ngone.mp4\n"
                       f"{tree / 'top.jpg'}\n", encoding="utf-8")
    found = _found(list(read_list(listing, Selection())))
    assert found == {
        "intro.mp4": ("video", "intro", None),
        "show/s01/e01.mp4": ("video", "show/s01/e01", None),
        "show/s01/e01.mkv": ("video", "show/s01/e01.mkv", None),
        "people/p01": ("folder", "people/p01", None),
        "gone.mp4": ("video", "gone", f"does not exist (read as {tree / 'gone.mp4'}: a list's relative paths start at "
                                      "its folder)"),
        str(tree / "top.jpg"): ("folder", "top.jpg", "neither a video nor a folder of images"),
    }
    assert [s.rel for s in sources_of(Path(f"@{listing}"), Selection(exclude=("**/*.mkv",)))][:3] == [
        "intro.mp4", "show/s01/e01.mp4", "people/p01"]


def test_the_walk_is_lazy(tree: Path) -> None:
    sources = walk(tree, Selection())
    assert next(sources).rel == "."  # the root's images, before any subfolder is listed
    (tree / "show" / "s01").rename(tree / "show" / "s02")  # show/ is listed only now
    assert "show/s02/e01.mp4" in {s.rel for s in sources}


def test_the_library_helper_yields_each_frame_with_its_source_and_number(tmp_path: Path) -> None:
    import facekit
    from conftest import require_data

    data = require_data()
    (tmp_path / "tree" / "people").mkdir(parents=True)
    (tmp_path / "tree" / "clip.mp4").symlink_to(data / "video" / "faceswap_test.mp4")
    (tmp_path / "tree" / "people" / "p04").symlink_to(data / "images" / "people" / "p04")
    got = [(source.rel, frame.name, frame.index, frame.image.ndim)
           for source, frame in facekit.collection(tmp_path / "tree", sample={"every_n": 25})]
    assert got[:4] == [("clip.mp4", f"clip_{n:06d}", n, 3) for n in (1, 26, 51, 76)]
    assert [g[:2] for g in got[4:]] == [("people/p04", name) for name in ("img13", "img14", "img15", "img57", "img58")]
    flat = [frame.name for _, frame in facekit.collection(data / "images" / "people" / "p04")]
    assert flat == ["img13", "img14", "img15", "img57", "img58"]


def test_a_list_entry_outside_the_lists_folder_gets_its_last_name_so_no_output_leaves_the_output_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever an entry names (``..``, ``../..``, ``..`` inside a path, ``~``, an absolute path,
    a link to elsewhere), its output folder is a path inside the output folder; two entries whose
    last names are the same get two folders."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _touch(tmp_path, "work/vids/a.mp4", "other/a.mp4", "home/clips/c.mp4", "far/e.mp4", "photos/p04/x.jpg")
    (tmp_path / "work" / "lists").mkdir()
    (tmp_path / "work" / "lists" / "link").symlink_to(tmp_path / "far")
    listing = tmp_path / "work" / "lists" / "l.txt"
    listing.write_text("../vids/a.mp4\n../../other/a.mp4\nlink/../../vids/a.mp4\n~/clips/c.mp4\nlink/e.mp4\n"
                       f"{tmp_path}/photos/p04/../p04\n~/..\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "work")
    outputs = [s.output for s in sources_of(Path("@lists/l.txt"), Selection())]
    assert outputs == ["a", "a.mp4", "a.mp4~2", "c", "link/e", "p04", str(tmp_path.name)]
    out = tmp_path / "out"
    for output in outputs:
        assert os.path.normpath(out / output).startswith(f"{out}{os.sep}"), output


@pytest.mark.parametrize("missing", ["nosuchdir/", "@nosuchlist.txt"])
def test_the_library_helper_raises_at_the_call_for_a_path_that_does_not_exist(tmp_path: Path, missing: str,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import facekit
    from facekit.errors import FacekitError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FacekitError, match="'nosuch(dir|list.txt)' does not exist"):
        facekit.collection(missing)  # at the call, not at the first frame


def test_the_library_helper_raises_when_its_one_source_cannot_be_read(tmp_path: Path) -> None:
    import facekit
    from facekit.errors import FacekitError

    (tmp_path / "empty").mkdir()
    with pytest.raises(FacekitError, match="holds no images"):
        facekit.collection(tmp_path / "empty")
    # a photo alone that does not decode, and a folder none of whose photos does: the CLI exits 2
    # on both, and the library gave an empty list
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "text.jpg").write_text("hi")
    (tmp_path / "bad" / "zero.jpg").write_bytes(b"")
    with pytest.raises(FacekitError, match="text.jpg': not a readable image"):
        facekit.collection(tmp_path / "bad" / "text.jpg")
    with pytest.raises(FacekitError, match="none of its 2 image file"):
        list(facekit.collection(tmp_path / "bad"))
    for wrong, says in (({"path": None}, "collection takes a path"), ({"sample": 10}, "sample is a Sampling"),
                        ({"recursive": "no"}, "recursive is True or False")):
        with pytest.raises(TypeError, match=says):
            facekit.collection(**{"path": tmp_path / "bad", **wrong})


def test_an_earlier_runs_output_inside_the_tree_is_not_read_as_sources(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _touch(root, "people/p01/a.jpg", "faces/p01_0.png", "faces/alignments.json", "sorted/x/p01_0.png",
           "sorted/collection.json", "photos/b.jpg")
    assert set(_found(list(walk(root, Selection())))) == {"people/p01", "photos"}
    flat = tmp_path / "flat"
    _touch(flat, "a.jpg", "faces/a_0.png", "faces/alignments.json")
    assert not is_collection(flat, Selection())  # a flat folder with its own output inside stays one source


def test_the_output_markers_are_the_names_facekit_writes() -> None:
    from facekit.ledger.shard_journal import SHARDS_DIR
    from facekit.media.collection import COLLECTION_FILE, OUTPUT_MARKERS
    from facekit.output.alignments import ALIGNMENTS_FILE, journal_path

    assert set(OUTPUT_MARKERS) == {COLLECTION_FILE, ALIGNMENTS_FILE, journal_path(ALIGNMENTS_FILE).name, SHARDS_DIR}


@pytest.mark.parametrize("marker", ["alignments.json.journal", ".facekit-shards/000000.jsonl"])
def test_an_output_with_only_its_journals_yet_is_no_source(tmp_path: Path, marker: str) -> None:
    """A run still writing, killed, or a Ray run stopped before its first fold has journals and
    face files but no alignments.json yet: its face crops were read as photos, in a tree and as
    an input folder alike."""
    from facekit.media.collection import holds_output

    root = tmp_path / "tree"
    _touch(root, "people/p01/a.jpg", "run/clip_000001_0.png", f"run/{marker}")
    assert set(_found(list(walk(root, Selection())))) == {"people/p01"}
    assert holds_output(root / "run")


@pytest.mark.parametrize(("sample", "message"), [
    ({"every_n": 0}, "sample.every_n must be a whole number"), ({"every_n": -1}, "sample.every_n must be"),
    ({"fps": 0}, "sample.fps must be a positive number"), ({"every_n": 10, "fps": 2}, "set one of them"),
    ({"start": "soon"}, "sample.start:"), ({"start": 5, "end": 2}, "must come before"),
    ({"every": 10}, "sample takes every_n, fps, start and end; not every"),
    (Sampling(every_n=0), "sample.every_n must be a whole number"),  # a Sampling made by hand: ZeroDivisionError
    (Sampling(fps=float("inf")), "sample.fps must be a positive number")])
def test_the_librarys_sampling_is_checked_as_the_clis_is(sample: Any, message: str, tmp_path: Path) -> None:
    from facekit.media.collection import collection

    _touch(tmp_path, "a.jpg")
    with pytest.raises(ValueError, match=message):
        collection(tmp_path, sample=sample)


def test_one_glob_given_as_a_string_is_one_glob_not_its_letters(tmp_path: Path) -> None:
    from conftest import require_data
    from facekit.media.collection import collection

    videos = require_data() / "video"
    every = {source.rel for source, _ in collection(videos, sample={"every_n": 30})}
    kept = {source.rel for source, _ in collection(videos, sample={"every_n": 30}, exclude="short_*")}
    assert kept == {name for name in every if not name.startswith("short_")} and kept != every and kept


@pytest.mark.parametrize("choice", [{"exclude": "p0*"}, {"include": ["zzz"]}], ids=["exclude as a string", "include"])
def test_an_include_or_exclude_that_leaves_no_source_is_refused_at_the_call_in_the_clis_words(
        choice: dict, tmp_path: Path) -> None:
    """It yielded nothing, silently, where the CLI refuses the same choice with one line."""
    from cli_helpers import run_facekit
    from conftest import require_data
    from facekit.errors import ConfigError
    from facekit.media.collection import collection

    people = require_data() / "images" / "people"
    with pytest.raises(ConfigError, match="no source is left by collection") as refused:
        collection(people, **choice)
    (key, globs), = choice.items()
    globs = [globs] if isinstance(globs, str) else globs
    result = run_facekit(f"input={people}", f"output={tmp_path / 'out'}", f"collection.{key}=[{','.join(globs)}]",
                         cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"facekit: error: {refused.value}"]


def test_a_list_with_a_byte_order_mark_a_trailing_comment_and_a_repeated_entry(tree: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    """As a Windows editor saves it: the mark is no part of the first name; a comment after a
    space is no part of a name that exists without it (a name may hold " #" itself); a source
    named twice is read once, with a warning naming both lines."""
    _touch(tree, "clip #2.mp4")
    listing = tree / "list.txt"
    listing.write_text("intro.mp4\nshow/s01/e01.mp4   # the pilot\nclip #2.mp4\n./intro.mp4\n", encoding="utf-8-sig")
    found = _found(list(read_list(listing, Selection())))
    assert found == {"intro.mp4": ("video", "intro", None), "show/s01/e01.mp4": ("video", "show/s01/e01", None),
                     "clip #2.mp4": ("video", "clip #2", None)}
    assert "list.txt line 4: ./intro.mp4 is listed already (line 1); it is read once" in caplog.text


def test_an_exclude_glob_naming_a_folder_with_its_slash_leaves_out_that_folder_and_all_below_it(tree: Path) -> None:
    """docs/inputs.md: "a folder they match as dir/ is not even listed"; ``show/`` was tidied
    to ``show`` and matched nothing, so every video under it was read."""
    found = {s.rel for s in walk(tree, Selection(exclude=("show/",)))}
    assert found and not any(rel == "show" or rel.startswith("show/") for rel in found), found
    assert {s.rel for s in walk(tree, Selection(exclude=("show/s01/",)))} >= {"show/trailers/t1.mp4"}
    assert not {s.rel for s in walk(tree, Selection(exclude=("show/s01/",)))} & {"show/s01/e01.mp4", "show/s01/e01"}


def test_a_video_that_is_a_broken_link_or_a_pipe_is_a_failed_source_not_passed_over(tmp_path: Path) -> None:
    """A video on a disk not mounted (its link broken) or a FIFO under a video's name was left
    out without a word: the run said every source was done. It is named, failed, never opened."""
    root = tmp_path / "tree"
    _touch(root, "a.mp4", "p/x.jpg")
    (root / "holiday.mp4").symlink_to(tmp_path / "unplugged" / "holiday.mp4")
    os.mkfifo(root / "pipe.mp4")
    found = _found(list(walk(root, Selection())))
    assert found["holiday.mp4"] == ("video", "holiday",
                                    f"a broken link (to {str(tmp_path / 'unplugged' / 'holiday.mp4')!r})")
    assert found["pipe.mp4"] == ("video", "pipe", "not a regular file (a pipe, socket or device)")
    assert found["a.mp4"] == ("video", "a", None)


def test_a_list_keeps_its_sources_clear_of_a_source_s_own_debug_rejected_and_masks_folders(tree: Path) -> None:
    """``people/p01`` writes its debug frames to ``people/p01/debug/``: a listed
    ``people/p01/debug.mp4`` went there too. A list names such folders as a walk does."""
    _touch(tree, "people/p01/debug.mp4", "people/p01/masks/m.mp4", "people/rejected/a.jpg")
    listing = tree / "list.txt"
    listing.write_text("people/p01\npeople/p01/debug.mp4\npeople/p01/masks/m.mp4\npeople/rejected\ndebug\n",
                       encoding="utf-8")
    assert {rel: output for rel, (_, output, _) in _found(list(read_list(listing, Selection()))).items()} == {
        "people/p01": "people/p01", "people/p01/debug.mp4": "people/p01/debug.mp4",
        "people/p01/masks/m.mp4": "people/p01/masks.folder/m", "people/rejected": "people/rejected.folder",
        "debug": "debug.folder"}
