"""Wrong commands a new user types: each gets one line that names the fix, exit 2, no traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cli_helpers import install_module, path_with, run_facekit
from conftest import SCENES, require_data
from facekit.plugin.registry import default_registry

#: What a user types, and what the one line must hold: the command as facekit reads it.
MISTAKES = [
    (["ouput.size=128"], "unknown key 'ouput.size'; did you mean output.size?"),
    (["output.sise=128"], "did you mean output.size?"),
    (["filter.treshold=0.4"], "did you mean filter.threshold?"),
    (["size=128"], "did you mean output.size?"),
    (["-m", "ouput.size=128,256"], "did you mean output.size?"),
    (["input=photos/", "output.size=99999"], "output.size must be a whole number of pixels from 1 to 8192, got 99999"),
    (["-m", "input=photos/", "output.size=128,-1"], "the sweep's output.size=-1: output.size must be a whole number of pixels from 1 to 8192"),
    (["-m", "input=photos/", "quality.max_yaw=10,abc"], "the sweep's quality.max_yaw=abc:"),
    # what every job shares is no swept value's fault: named without one
    (["-m", "input=photos/", "filter.refs=[nothere.jpg]", "filter.threshold=0.3,0.5"],
     "facekit: error: reference photo 'nothere.jpg' does not exist"),
    # several values without -m: Hydra's three fixes, two of which the key's own check refuses next
    (["input=photos/", "filter.threshold=0.3,0.5"],
     "filter.threshold=0.3,0.5: filter.threshold takes one value; to run one job for each of 0.3,0.5 (a sweep), add -m"),
    (["input=photos/", "quality.min_sharpness=20,50"], "quality.min_sharpness takes one value; to run one job for each"),
    (["input=photos/", "collection.include=photos"], "(collection.include is a list: 'collection.include=[photos,clips/**]')"),
    (["input=photos/", "filter.threshold=-0.1"], "filter.threshold must be a distance (a number >= 0), got -0.1"),
    (["-m", "input=photos/", "filter.refs=[a.jpg]", "filter.threshold=0.5,-1"],
     "the sweep's filter.threshold=-1: filter.threshold must be a distance (a number >= 0)"),
    (["+detector=yunet", "detector.score_treshold=0.5"],
     "detector yunet has no option 'score_treshold'; did you mean detector.score_threshold? "
     "(yunet takes: score_threshold, nms_threshold"),
    (["detector.score_treshold=0.5"], "detector yunet has no option 'score_treshold'"),  # the default detector's
    (["default_plugins.aligner=fan", "aligner.mirror_pose=false"], "aligner fan has no option 'mirror_pose'"),
    (["masker.threshold=0.5"], "name the plugin first, +masker=NAME masker.threshold=..."),  # no default masker
    (["+runner=ray"], "write runner=ray without the '+'"),
    (["+detector=yunet", "+detector=blazeface"],
     "+detector=yunet and +detector=blazeface each choose the detector; a run has one: keep one, or sweep them with "
     "-m +detector=yunet,blazeface"),
    (["runner.shard_frames=100"], "runner.shard_frames is a key of runner=ray: add runner=ray to the command"),
    (["runner=ray", "runner.shard_frame=100"], "did you mean runner.shard_frames?"),
    (["detector=s3fd"], "write +detector=s3fd"),
    (["photos/", "faces/"], "write input=photos/ output=faces/"),
    (["photos/"], "write input=photos/"),
    (["help"], "not help: write facekit --help"),
    (["version"], "not version: write facekit --version"),
    (["--input", "photos/"], "not --input photos/: write input=photos/"),
    (["--input=photos/", "--output=faces/"], "write input=photos/"),
    (["--output", "faces/"], "write output=faces/"),
    # the group misspelt, the key after it right; a plugin misspelt where the '+' is missing; a key alone
    (["detectr.score_threshold=0.5"], "unknown key 'detectr.score_threshold'; did you mean detector.score_threshold?"),
    (["detector=yunnet"], "write +detector=yunet"),
    (["input"], "input needs a value: input=PATH"),
    (["input=photos/", "output=faces/", "extra"], "not extra: input= and output= are given already"),
    (["input=photos/", "faces/"], "not faces/: write output=faces/"),
]


def one_line_error(result, alone: bool = True) -> str:
    """facekit's one error line, the run's last; exit 2, no traceback. ``alone``: a command
    refused before anything ran prints nothing else (a run that started may log progress first)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("facekit: error: ")] == lines[-1:], result.stderr
    assert len(lines) == 1 or not alone, result.stderr
    return lines[-1]


@pytest.mark.parametrize(("args", "fix"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistyped_command_names_the_fix_in_one_line(tmp_path: Path, args: list[str], fix: str) -> None:
    line = one_line_error(run_facekit(*args, cwd=tmp_path))
    assert fix in line
    assert "Schema" not in line  # the schema's class names are facekit's internals, not the user's words
    assert list(tmp_path.iterdir()) == []  # refused before Hydra made a folder


def test_an_empty_output_and_a_list_that_names_nothing_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    require_data()
    photo = next(SCENES.glob("*.jpg"))
    assert "output is empty" in one_line_error(run_facekit(f"input={photo}", "output=", cwd=tmp_path))
    (tmp_path / "sources.txt").write_text("# to do\n\n", encoding="utf-8")
    line = one_line_error(run_facekit("input=@sources.txt", "output=faces", cwd=tmp_path))
    assert "the list names no source" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.txt"]
    (tmp_path / "photos").mkdir()
    for value, says in (("@photos", "photos is a folder; a list is a text file"), ("@", "names no list file"),
                        ("sources.txt", "a list of videos and folders, one a line, is read as input=@sources.txt")):
        assert says in one_line_error(run_facekit(f"input={value}", "output=faces", cwd=tmp_path)), value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "sources.txt"]


@pytest.mark.parametrize("output, says", [
    ("in/photos", "is the listed folder 'photos'"),
    ("in/photos/faces", "holds photos or videos of the input's"),
    ("in", "would put source photos's faces into its own folder of photos"),
], ids=["the-folder", "inside-beside-photos", "its-own-place"])
def test_a_list_s_output_in_or_over_a_listed_folder_is_refused_as_a_tree_s_is(tmp_path: Path, output: str,
                                                                             says: str) -> None:
    """A list's folders were never checked: faces went among the listed photos, every rerun then
    found that folder changed, and a tree run of it passed the photos over as facekit's output."""
    require_data()
    (tmp_path / "in" / "photos").mkdir(parents=True)
    for photo in sorted(SCENES.glob("*.jpg"))[:2]:
        (tmp_path / "in" / "photos" / photo.name).symlink_to(photo)
    (tmp_path / "in" / "faces").mkdir()
    (tmp_path / "in" / "l.txt").write_text("photos\n", encoding="utf-8")
    if output.endswith("/faces"):
        (tmp_path / "in" / "photos" / "faces").mkdir()
        (tmp_path / "in" / "photos" / "faces" / "old.jpg").symlink_to(next(SCENES.glob("*.jpg")))
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert says in one_line_error(run_facekit("input=@in/l.txt", f"output={output}", cwd=tmp_path))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing written


def test_a_photo_alone_that_does_not_decode_fails_the_run_where_a_folder_would_skip_it(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a JPEG" * 50)
    result = run_facekit("input=photo.jpg", "output=faces", "runner.progress=false", cwd=tmp_path)
    line = one_line_error(result, alone=False)  # a first run's model note may come before it
    assert "photo.jpg" in line and "not a readable image" in line and "skipped" not in result.stderr
    assert not (tmp_path / "faces").exists()  # refused before anything is written: no lock, no .hydra/, no log


@pytest.mark.parametrize("name", ["pipe.jpg", "pipe.mp4"])
def test_an_input_with_a_photo_or_video_name_that_is_a_fifo_is_refused_unopened(tmp_path: Path, name: str) -> None:
    """Opened, a FIFO blocks until something writes to it: the run would hang (a video's even
    past Ctrl-C, inside the decoder)."""
    os.mkfifo(tmp_path / name)
    line = one_line_error(run_facekit(f"input={name}", "output=faces", "runner.progress=false", cwd=tmp_path))
    assert f"input {name!r} is not a regular file (a pipe, socket or device)" in line
    assert not (tmp_path / "faces").exists()


def test_a_folder_alone_of_which_no_file_reads_fails_and_one_file_that_reads_is_enough(tmp_path: Path) -> None:
    require_data()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"not a JPEG")
    (tmp_path / "photos" / "b.png").write_bytes(b"")
    result = run_facekit("input=photos", "output=faces", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("facekit: error")]
    assert errors == ["facekit: error: input 'photos': none of its 2 image file(s) could be read (each is named above)"]
    assert "a.jpg" in result.stderr and "b.png" in result.stderr  # each named in its warning
    (tmp_path / "photos" / "c.jpg").write_bytes((SCENES / "obama.jpg").read_bytes())
    again = run_facekit("input=photos", "output=faces", "runner.progress=false", cwd=tmp_path)
    assert again.returncode == 0 and "2 file(s) skipped" in again.stderr, again.stderr


def test_an_output_that_is_one_of_the_collections_photo_folders_is_refused(tmp_path: Path) -> None:
    require_data()
    for person in ("p01", "p04"):
        (tmp_path / "tree" / person).mkdir(parents=True)
        (tmp_path / "tree" / person / "a.jpg").write_bytes(next(SCENES.glob("*.jpg")).read_bytes())
    line = one_line_error(run_facekit("input=tree", "output=tree/p01", cwd=tmp_path))
    assert "holds photos or videos of the input's (a.jpg)" in line
    assert sorted(p.name for p in (tmp_path / "tree" / "p01").iterdir()) == ["a.jpg"]
    # a folder above sources: they would be left out of the collection without a word
    (tmp_path / "tree" / "more" / "p05").mkdir(parents=True)
    (tmp_path / "tree" / "more" / "p05" / "b.jpg").write_bytes(next(SCENES.glob("*.jpg")).read_bytes())
    line = one_line_error(run_facekit("input=tree", "output=tree/more", cwd=tmp_path))
    assert "output 'tree/more' holds photos or videos of the input's (p05/b.jpg)" in line
    assert [p.name for p in (tmp_path / "tree" / "more").iterdir()] == ["p05"]


def test_a_start_past_the_end_of_the_video_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    clip = require_data() / "video" / "faceswap_test.mp4"
    line = one_line_error(run_facekit(f"input={clip}", "output=faces", "sample.start=100", cwd=tmp_path), alone=False)
    assert "sample.start=100 s is past the end of" in line and "(its last frame is at 18 s)" in line
    assert not (tmp_path / "faces" / "alignments.json").exists()


@pytest.mark.parametrize("mode", ["parallel", "serial"])
def test_a_collections_video_that_ends_before_sample_start_is_a_failed_source_whatever_the_runner(
        tmp_path: Path, mode: str) -> None:
    """The stream that runs a collection's sources in one pipeline marked it done with no frame;
    a serial run, and the video alone, refuse it."""
    data = require_data()
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "short.mp4").symlink_to(data / "video" / "faceswap_test.mp4")  # 18.2 s
    (tmp_path / "tree" / "long.mp4").symlink_to(data / "video" / "short_hamilton_clip.mp4")  # 9.2 s: 30 fps
    result = run_facekit("input=tree", "output=out", "sample.start=12", "sample.every_n=50", f"runner.mode={mode}",
                         "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "source long.mp4 failed: sample.start=12 s is past the end of" in result.stderr, result.stderr
    states = {entry["source"]: entry["state"] for entry in json.loads((tmp_path / "out" / "collection.json").read_text())["sources"]}
    assert states == {"long.mp4": "failed", "short.mp4": "done"}, states


#: Plugin options of the right type that no model can use: refused before the run writes anything.
OUT_OF_RANGE = [
    (["detector.score_threshold=2"], "detector yunet: score_threshold must be between 0 and 1, got 2.0"),
    (["detector.nms_threshold=-0.1"], "detector yunet: nms_threshold must be between 0 and 1"),
    (["aligner.roi_scale=0"], "aligner facemesh: roi_scale must be above 0, got 0.0"),
    (["aligner.passes=0"], "aligner facemesh: passes must be 1 or more, got 0"),
    (["+detector=mtcnn", "detector.min_face_size=-3"], "detector mtcnn: min_face_size must be 1 or more, got -3"),
    (["+detector=blazeface", "detector.score_threshold=1.5"], "detector blazeface: score_threshold must be between 0 and 1"),
    # refused when the plugin builds its model, for the reference photos: the option's fault, not the photo's
    (["identity.backend=foo", f"filter.refs=[{SCENES / 'obama.jpg'}]"],
     "facekit: error: identity sface: backend 'foo' is not one of: litert, opencv"),
]


@pytest.mark.parametrize(("args", "fix"), OUT_OF_RANGE, ids=[" ".join(a) for a, _ in OUT_OF_RANGE])
def test_a_plugin_option_out_of_range_is_one_line_before_anything_is_written(tmp_path: Path, args: list[str],
                                                                              fix: str) -> None:
    require_data()
    photo = next(SCENES.glob("*.jpg"))
    line = one_line_error(run_facekit(*args, f"input={photo}", "output=out", cwd=tmp_path), alone=False)
    assert fix in line
    assert not (tmp_path / "out" / "alignments.json").exists()


#: Hides hydra-joblib-launcher from one Python process (Hydra finds launchers by listing the
#: hydra_plugins namespace package): the shared environment keeps it installed.
HIDE_JOBLIB = textwrap.dedent('''\
    import tempfile
    from pathlib import Path

    import hydra_plugins

    shadow = Path(tempfile.mkdtemp()) / "hydra_plugins"
    shadow.mkdir()
    for folder in list(hydra_plugins.__path__):
        for entry in Path(folder).iterdir():
            if entry.name != "hydra_joblib_launcher" and not (shadow / entry.name).exists():
                (shadow / entry.name).symlink_to(entry)
    hydra_plugins.__path__ = [str(shadow)]
''')


@pytest.fixture
def without_joblib(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_JOBLIB, encoding="utf-8")
    return path_with(site)


def test_a_sweep_launcher_that_is_not_installed_names_the_pip_extra(tmp_path: Path,
                                                                    without_joblib: dict[str, str]) -> None:
    hydra_sees = subprocess.run(
        [sys.executable, "-c", "from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher; "
                               "print([c.__name__ for c in Plugins.instance().discover(Launcher)])"],
        env={**os.environ, **without_joblib}, capture_output=True, text=True, check=True).stdout
    assert "BasicLauncher" in hydra_sees and "JoblibLauncher" not in hydra_sees  # hidden, as if not installed
    work = tmp_path / "work"
    work.mkdir()
    line = one_line_error(run_facekit("-m", "hydra/launcher=joblib", f"input={SCENES / 'obama.jpg'}",
                                      "output.size=128,256", cwd=work, env=without_joblib))
    assert line == ("facekit: error: hydra/launcher=joblib needs hydra-joblib-launcher, which is not installed: "
                    "pip install '.[sweep]' in facekit's repository")
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("refs", [[], [f"filter.refs=[{SCENES / 'obama2.jpg'}]"]], ids=["plain", "with a reference"])
def test_every_missing_model_is_named_at_once(tmp_path: Path, refs: list[str]) -> None:
    """s3fd's and FAN's weights are in no package: with neither in the (empty) cache and offline
    on, both are named in the one line, each with where to put it; also when a reference photo,
    embedded before the input, is the first to need them."""
    require_data()
    registry = default_registry()
    detector, aligner = registry.get("detector", "s3fd"), registry.get("aligner", "fan")
    line = one_line_error(run_facekit("+detector=s3fd", "+aligner=fan", f"input={SCENES / 'obama.jpg'}", *refs,
                                      f"output={tmp_path / 'faces'}", cwd=tmp_path))
    assert "reference photo" not in line and "failed on" not in line
    assert "2 models are missing" in line
    for model_id in (*detector.model_ids, *aligner.model_ids):
        assert f"model {model_id!r}" in line and f"models/{model_id}/" in line


def plugin_module(hook: str, spec: str, model: str) -> str:
    """A third-party plugin's module: ``model`` (source defining the class ``Model``), registered
    through ``hook`` with ``spec``'s PluginSpec arguments and a config that takes no options."""
    return ("from dataclasses import dataclass\n\nimport numpy as np\n\nimport facekit\n"
            "from facekit.imaging.geometry import MEAN_FACE_68\nfrom facekit.plugin.spec import PluginSpec\n\n\n"
            "@dataclass\nclass Config:\n    pass\n\n\n" + textwrap.dedent(model) +
            f"\n\n@facekit.hookimpl\ndef {hook}():\n    return [PluginSpec({spec}, config_class=Config, "
            "factory=lambda config, store: Model())]\n")


FAILING_IDENTITY = plugin_module("facekit_identities", 'name="broken-id", kind="identity", metric="cosine", '
                                 "default_threshold=0.5", '''
    class Model:
        def embed(self, image, landmarks):
            raise ValueError("cannot embed this face")
''')


def test_an_identity_plugin_failing_on_a_reference_photo_names_the_photo(tmp_path: Path) -> None:
    require_data()
    site = tmp_path / "site"
    install_module(site, "broken_identity", FAILING_IDENTITY, "broken-id")
    ref = SCENES / "obama2.jpg"
    line = one_line_error(run_facekit("+identity=broken-id", f"filter.refs=[{ref}]", f"input={SCENES / 'biden.jpg'}",
                                      f"output={tmp_path / 'faces'}", cwd=tmp_path, env=path_with(site)), alone=False)
    assert line == (f"facekit: error: identity 'broken-id' failed on reference photo '{ref}': "
                    "ValueError: cannot embed this face")


#: An aligner that answers the last detection of a frame with points all in one place, as a
#: heatmap aligner can on a region with no face.
ODD_ALIGNER = plugin_module("facekit_aligners", 'name="odd", kind="aligner"', '''
    class Model:
        def align(self, image, detections):
            found = [MEAN_FACE_68 * [d.box[2] - d.box[0], d.box[3] - d.box[1]] + d.box[:2] for d in detections]
            found[-1] = np.full((68, 2), 50.0)
            return found
''')


def test_points_that_span_no_face_leave_that_face_out_with_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    require_data()
    site = tmp_path / "site"
    install_module(site, "odd_aligner", ODD_ALIGNER, "odd")
    out = tmp_path / "faces"
    result = run_facekit("+aligner=odd", f"input={SCENES / 'two_people.jpg'}", f"output={out}", "runner.progress=false",
                         cwd=tmp_path, env=path_with(site))
    assert result.returncode == 0, result.stderr
    assert "two_people: aligner odd gave face(s) 1 points that span no face" in result.stderr
    faces = json.loads((out / "alignments.json").read_text())["frames"]["two_people"]["faces"]
    assert len(faces) == 1 and (out / faces[0]["crop"]).is_file()


def test_a_worker_process_warning_reaches_the_console_and_facekit_log_as_the_run_s_own(tmp_path: Path) -> None:
    """The same warning, from a worker process: once on the console in the run's format (not
    Python's bare last-resort line), and in facekit.log, as a warning on threads is."""
    require_data()
    site = tmp_path / "site"
    install_module(site, "odd_aligner", ODD_ALIGNER, "odd")
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("two_people.jpg", "obama.jpg"):
        (photos / name).symlink_to(SCENES / name)
    out = tmp_path / "faces"
    result = run_facekit("+aligner=odd", f"input={photos}", f"output={out}", "runner.progress=false",
                         "runner.workers=2", cwd=tmp_path, env=path_with(site))
    assert result.returncode == 0, result.stderr
    assert "parallel passes in 2 worker processes" in result.stderr
    warning = "two_people: aligner odd gave face(s) 1 points that span no face"
    said = [line for line in result.stderr.splitlines() if warning in line]
    assert len(said) == 1 and said[0].startswith("WARNING"), result.stderr
    logged = [line for line in (out / "facekit.log").read_text().splitlines() if warning in line]
    assert len(logged) == 1 and "[facekit][WARNING]" in logged[0]


@pytest.mark.parametrize(("deleted", "says"), [("~output", "~output deletes facekit's output settings"),
                                               ("~sample", "~sample deletes facekit's sample settings"),
                                               ("~task", "~task deletes a setting every run needs")])
def test_deleting_a_group_of_settings_is_refused_in_one_line_before_anything_is_written(
        tmp_path: Path, deleted: str, says: str) -> None:
    """Hydra composes the deletion; the run then met the missing node in a traceback, exit 1."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"")  # the refusal comes before any input is read
    assert says in one_line_error(run_facekit(f"input={photo}", "output=faces", deleted, cwd=tmp_path))
    assert not (tmp_path / "faces").exists()


@pytest.mark.parametrize(("typed", "says"), [("task=nope", "task=nope; choose one of: extract"),
                                             ("output.size=abc", "output.size must be a whole number, got 'abc'")])
def test_help_beside_a_mistyped_value_names_it_in_one_line(tmp_path: Path, typed: str, says: str) -> None:
    """Hydra composes the overrides beside --help too, and a bad one ended in a traceback, exit 1."""
    assert says in one_line_error(run_facekit(typed, "--help", cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "says"), [
    (["--resolve"], "--resolve goes with --cfg or --help"),
    (["-sc"], "--shell-completion needs what to do: facekit --shell-completion install=bash"),
    (["--shell-completion"], "--shell-completion needs what to do"),
    (["--cfg", "hydra", "--resolve", "input=x"], "--resolve goes with --cfg job"),
    (["-m", "--cfg", "job", "input=x", "output.size=64,128"], "--cfg prints one command's config and takes no -m"),
])
def test_a_hydra_flag_that_needs_another_is_one_line_not_a_traceback(tmp_path: Path, args: list[str],
                                                                     says: str) -> None:
    assert says in one_line_error(run_facekit(*args, cwd=tmp_path))


def test_resolve_beside_cfg_written_with_its_value_joined_prints_the_config(tmp_path: Path) -> None:
    result = run_facekit("--cfg=job", "--resolve", "output.size=128", cwd=tmp_path)
    assert result.returncode == 0 and "size: 128" in result.stdout, result.stderr


@pytest.mark.parametrize(("args", "says"), [
    (["~runner"], "~runner deletes facekit's runner settings"),
    (["+detector=yunet", "detector={score_threshold:0.9}"], "a plugin's options are set one at a time, detector.KEY"),
    (["output={dir:o6,size:64}"], "set output's keys one at a time (output.dir=DIR output.size=N ...)"),
    (["+masker={grow:1}"], "+masker takes a masker's name: +masker=NAME masker.KEY=VALUE"),
])
def test_a_group_deleted_or_set_as_a_dict_is_one_line_not_a_traceback(tmp_path: Path, args: list[str], says: str) -> None:
    """~runner composed (the schema fills the group back in) and ended in MissingMandatoryValue;
    the fix a dict of options was given led to a KeyError traceback."""
    assert says in one_line_error(run_facekit("input=x", "output=o", *args, cwd=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_plugin_s_options_added_without_its_name_are_the_default_plugin_s(tmp_path: Path) -> None:
    """'+detector={score_threshold:0.9}' named no plugin: a KeyError traceback."""
    require_data()
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", "output=o", "+detector={score_threshold:0.9}",
                         "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "o" / "alignments.json").read_text(encoding="utf-8"))["meta"]["plugins"]["detector"]
    assert meta["name"] == "yunet" and meta["config"]["score_threshold"] == 0.9


def test_deleting_a_plugin_a_command_added_is_hydra_s_way_and_not_refused(tmp_path: Path) -> None:
    """~detector drops a plugin a config file (or an earlier override) added; only the groups
    every run needs (~runner, ~output) are refused."""
    assert "does not exist" in one_line_error(run_facekit("input=nope", "output=o", "+detector=mtcnn", "~detector",
                                                          cwd=tmp_path))


def test_one_photo_in_refs_and_nrefs_is_refused_in_one_line(tmp_path: Path) -> None:
    """It ran, every face of that person kept at distance 0 and rejected as well: a filter that
    contradicts itself, said before any model loads."""
    require_data()
    photo = SCENES / "obama.jpg"
    line = one_line_error(run_facekit(f"input={photo}", "output=faces", f"filter.refs=[{photo}]",
                                      f"filter.nrefs=[{photo}]", cwd=tmp_path))
    assert "is in filter.refs" in line and "and filter.nrefs both" in line
    assert list(tmp_path.iterdir()) == []


def test_a_key_given_twice_is_named_with_the_value_the_run_takes(tmp_path: Path) -> None:
    """Hydra took the last without a word, and the run wrote where the user did not look."""
    result = run_facekit("--cfg", "job", "input=x", "output=a", "output.dir=b", "output.size=64", "output.size=64",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "facekit: warning: output.dir is given twice (output=a and output.dir=b); the last, output.dir=b, is used"]
    assert "dir: b" in result.stdout

