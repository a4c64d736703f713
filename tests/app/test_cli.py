"""The command line as a user types it: defaults, plugin choice, tasks, help and errors."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import cv2
import pytest

from cli_helpers import ctrl_c_default, facekit_process, load_json, run_facekit, stop_with
from facekit.plugin.registry import default_registry
from conftest import SCENES, require_data


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_defaults_extract_one_face_per_portrait(tmp_path: Path) -> None:
    require_data()
    out = tmp_path / "faces"
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", f"output={out}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    alignments = load_json(out / "alignments.json")
    assert alignments["meta"]["plugins"]["detector"]["name"] == "yunet"
    assert alignments["meta"]["plugins"]["aligner"]["name"] == "facemesh"
    faces = alignments["frames"]["obama"]["faces"]
    assert len(faces) == 1
    crop = cv2.imread(str(out / faces[0]["crop"]))
    assert crop.shape == (256, 256, 3)
    assert len(faces[0]["landmarks"]) == 68


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_plus_detector_and_aligner_as_written(tmp_path: Path) -> None:
    require_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=mtcnn", "+aligner=facemesh", f"input={SCENES / 'two_people.jpg'}",
                         f"output={out}", "output.size=128", "output.debug=true", "runner.progress=false",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    alignments = load_json(out / "alignments.json")
    assert alignments["meta"]["plugins"]["detector"]["name"] == "mtcnn"
    faces = alignments["frames"]["two_people"]["faces"]
    assert len(faces) == 2
    assert all(cv2.imread(str(out / f["crop"])).shape == (128, 128, 3) for f in faces)
    assert (out / "debug" / "two_people.jpg").is_file()


def test_plugin_options_reach_the_plugin(tmp_path: Path) -> None:
    require_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=yunet", "detector.score_threshold=0.999", f"input={SCENES / 'obama.jpg'}",
                         f"output={out}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    alignments = load_json(out / "alignments.json")
    assert alignments["meta"]["plugins"]["detector"]["config"]["score_threshold"] == 0.999
    assert alignments["frames"]["obama"]["faces"] == []


def test_an_option_alone_is_the_default_plugins(tmp_path: Path) -> None:
    """``aligner.mirror_pose=false`` with no ``+aligner=``: the run uses the default aligner, so
    the option is its; the same run resumes under the same words."""
    require_data()
    out = tmp_path / "faces"
    args = ("aligner.mirror_pose=false", "detector.score_threshold=0.7", f"input={SCENES / 'obama.jpg'}",
            f"output={out}", "runner.progress=false")
    result = run_facekit(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plugins = load_json(out / "alignments.json")["meta"]["plugins"]
    assert (plugins["aligner"]["name"], plugins["aligner"]["config"]["mirror_pose"]) == ("facemesh", False)
    assert (plugins["detector"]["name"], plugins["detector"]["config"]["score_threshold"]) == ("yunet", 0.7)
    again = run_facekit(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "nothing to do: 1 frame already done" in again.stderr, again.stderr


def test_task_plugins_lists_every_plugin_with_weights_state(tmp_path: Path) -> None:
    result = run_facekit("task=plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("yunet", "mtcnn", "blazeface", "facemesh"):
        assert name in result.stdout
    for column in ("kind", "models", "GPU MB", "weights"):
        assert column in result.stdout
    assert "present" in result.stdout
    assert "cosine <= 0.637" in result.stdout  # sface's metric and default threshold
    assert list(tmp_path.iterdir()) == []  # it writes nothing: no output folder, no .hydra/


def test_help_lists_groups_and_options(tmp_path: Path) -> None:
    result = run_facekit("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    registry = default_registry()
    assert f"detector: {', '.join(registry.names('detector'))}" in result.stdout
    assert f"aligner: {', '.join(registry.names('aligner'))}" in result.stdout
    assert "runner: default" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["+detector=nosuch", "input=x.jpg"], f"choose one of: {', '.join(default_registry().names('detector'))}"),
        (["+aligner=nosuch", "input=x.jpg"], f"choose one of: {', '.join(default_registry().names('aligner'))}"),
        ([], "input is required"),
        (["input=x.jpg", "output.size=-5"], "output.size must be a whole number of pixels from 1 to 8192, got -5"),
        (["input=/no/such/file.jpg"], "does not exist"),
        (["input=x.jpg", "task=nosuch"],
         "task=nosuch; choose one of: extract, plugins, curate, mask, recrop"),
        (["input=x.jpg", "runner.mode=fast"], "runner.mode=fast; choose one of: auto, serial, parallel"),
        (["input=x.jpg", "output.centering=middle"], "output.centering=middle; choose one of: legacy, face, head"),
        (["input=x.jpg", "runner.queue_mb=0"], "runner.queue_mb must be a positive"),
        (["input=x.jpg", "output.save_every=0"], "output.save_every must be a positive"),
        (["input=x.jpg", "output.padding=0.5"], "output.padding is a fraction"),
        (["input=x.jpg", "runner.workers=x"], "runner.workers='x'; use auto, or a whole number"),
        (["input=x.jpg", "runner.workers=-1"], "runner.workers=-1; use auto, or a whole number"),
        (["input=x.jpg", "runner.workers=2.5"], "runner.workers=2.5; use auto, or a whole number"),
        (["input=x.jpg", "runner.workers=true"], "runner.workers=True; use auto, or a whole number"),
        (["input=x.jpg", "cache.enabled=maybe"], "cache.enabled='maybe'; choose one of: auto, true, false"),
    ],
)
def test_wrong_values_give_one_line_errors(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "x.jpg").write_bytes(b"")
    line = _one_line_error(run_facekit(*args, f"output={tmp_path / 'out'}", cwd=tmp_path))
    assert expected in line
    assert not (tmp_path / "out").exists()  # a refused run leaves no folder behind


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["output.size=abc"], "output.size must be a whole number, got 'abc'"),
        (["runner.queue_size=x"], "runner.queue_size must be a whole number, got 'x'"),
        (["filter.save_rejected=maybe"], "filter.save_rejected must be true or false, got 'maybe'"),
        (["output.save_every=1.5"], "output.save_every must be a whole number, got '1.5'"),
        (["output.padding=wide"], "output.padding must be a number, got 'wide'"),
        (["quality=strict"], "quality is a group of keys, not a value ('strict'): set one of them, quality.<key>=..."),
        (["filter.refs=a.jpg"], "filter.refs=a.jpg Invalid value assigned: str is not a ListConfig"),
    ],
)
def test_a_wrong_type_is_refused_by_the_schema_in_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    """The config's types are facekit.app.schema's: Hydra refuses the value, facekit prints the one line."""
    (tmp_path / "x.jpg").write_bytes(b"")
    result = run_facekit("input=x.jpg", *args, f"output={tmp_path / 'out'}", cwd=tmp_path)
    line = _one_line_error(result)
    assert line == result.stderr.strip()  # nothing else on stderr
    assert expected in line
    assert not (tmp_path / "out").exists()


def test_a_list_key_given_one_word_says_how_lists_are_written(tmp_path: Path) -> None:
    line = _one_line_error(run_facekit("input=x.jpg", "filter.nrefs=a.jpg", cwd=tmp_path))
    assert line.endswith("(filter.nrefs is a list: 'filter.nrefs=[a.jpg,b.jpg]')")


@pytest.mark.slow  # over 5 s: the README's fast tier keeps within its 8 minutes
@pytest.mark.parametrize("detector", ["yunet", "mtcnn"])
def test_a_run_prints_no_native_start_up_chatter(tmp_path: Path, detector: str) -> None:
    """TensorFlow's and TFLite's C++ start-up lines ("I0000 ... oneDNN", "E0000 ... cuInit",
    "Created TensorFlow Lite XNNPACK delegate") are not facekit's output; a CPU run that worked
    must not print an "error" line."""
    require_data()
    result = run_facekit(f"+detector={detector}", f"input={SCENES / 'obama.jpg'}", f"output={tmp_path / 'faces'}",
                         "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for chatter in ("I0000", "E0000", "W0000", "XNNPACK", "absl::InitializeLog"):
        assert chatter not in result.stderr, result.stderr
    assert "done: 1 frame, 1 face in" in " ".join(result.stderr.split())


def test_a_renamed_key_keeps_its_old_spelling_with_a_line_that_names_the_new_one(tmp_path: Path) -> None:
    """``runner.engine`` became ``runner.executor`` (the word "engine" is the stage engine's)."""
    result = run_facekit("task=plugins", "runner.engine=ray", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runner.engine is now runner.executor" in result.stderr


@pytest.mark.parametrize("setting", ["curate.best=3", "recrop.sources=elsewhere", "mask.import=masks"])
def test_a_key_that_only_another_task_reads_is_named_and_the_run_goes_on(tmp_path: Path, setting: str) -> None:
    result = run_facekit("task=plugins", setting, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    key, task = setting.partition("=")[0], setting.partition(".")[0]
    assert f"{key} is read by task={task} only; this task=plugins run does not use it" in result.stderr, result.stderr
    own = run_facekit(f"task={task}", f"input={tmp_path / 'none'}", "output=out", setting, cwd=tmp_path)
    assert "is read by task=" not in own.stderr, own.stderr


@pytest.mark.parametrize(("argv", "expected"), [
    (["runner.executor=ray", "input=a"], ["input=a", "runner=ray"]),
    (["runner=ray", "runner.executor=ray"], ["runner=ray", "runner.executor=ray"]),
    (["runner=ray", "runner.executor=local"], ["runner=ray", "runner.executor=null"]),
    (["runner.executor=null"], ["runner.executor=null"]),
], ids=["alone", "with runner=ray", "local", "null"])
def test_runner_executor_ray_alone_picks_ray_as_runner_ray_does(argv: list[str], expected: list[str]) -> None:
    from facekit.app.cli import executor_as_runner

    assert executor_as_runner(argv) == expected


def test_an_unknown_executor_is_one_line(tmp_path: Path) -> None:
    result = run_facekit("runner.executor=slurm", f"input={SCENES / 'obama.jpg'}", f"output={tmp_path / 'o'}", cwd=tmp_path)
    assert _one_line_error(result) == ("facekit: error: runner.executor=slurm: choose ray (a Ray cluster, as "
                                       "runner=ray) or null (this machine)")
    assert not (tmp_path / "o").exists()


def test_a_rerun_with_debug_draws_the_new_frames_and_says_the_finished_ones_get_no_debug_image(tmp_path: Path) -> None:
    require_data()
    photos, out = tmp_path / "photos", tmp_path / "faces"
    photos.mkdir()
    (photos / "obama.jpg").symlink_to(SCENES / "obama.jpg")
    assert run_facekit(f"input={photos}", f"output={out}", "runner.progress=false", cwd=tmp_path).returncode == 0
    (photos / "two_people.jpg").symlink_to(SCENES / "two_people.jpg")
    result = run_facekit(f"input={photos}", f"output={out}", "output.debug=true", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "debug").iterdir()) == ["two_people.jpg"]
    assert "output.debug=true: 1 frame(s) an earlier run finished" in result.stderr, result.stderr
    again = run_facekit(f"input={photos}", f"output={out}", "output.debug=true", "runner.progress=false", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert "output.debug=true: 2 frame(s) an earlier run finished" in again.stderr, again.stderr


def test_a_rerun_that_saves_rejected_faces_says_the_finished_frames_are_not_done_again(tmp_path: Path) -> None:
    require_data()
    photos, out = tmp_path / "photos", tmp_path / "faces"
    photos.mkdir()
    (photos / "two_people.jpg").symlink_to(SCENES / "two_people.jpg")
    args = [f"input={photos}", f"output={out}", "quality.max_faces=1", "runner.progress=false"]
    assert run_facekit(*args, cwd=tmp_path).returncode == 0
    (photos / "obama.jpg").symlink_to(SCENES / "obama.jpg")
    result = run_facekit(*args, "filter.save_rejected=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "filter.save_rejected=true: 1 frame(s) an earlier run finished are not done again" in result.stderr, \
        result.stderr
    again = run_facekit(*args, "filter.save_rejected=true", cwd=tmp_path)
    assert again.returncode == 0 and "nothing to do" in again.stderr, again.stderr
    assert "filter.save_rejected=true: 2 frame(s) an earlier run finished" in again.stderr, again.stderr


@pytest.mark.parametrize("after_s", [0.25, 0.6])
def test_ctrl_c_while_facekit_still_starts_is_one_line_and_exit_130(tmp_path: Path, after_s: float) -> None:
    """While Python still imports Hydra, OpenCV and the model runtimes (the first second or so),
    Ctrl-C printed a traceback through the import system."""
    with facekit_process(f"input={SCENES}", f"output={tmp_path / 'o'}", cwd=tmp_path, preexec=ctrl_c_default) as process:
        time.sleep(after_s)
        stderr = stop_with(process, signal.SIGINT)
    # 130, or ended by the signal itself (-2) once the line is out: a shell shows both as 130
    assert process.returncode in (130, -signal.SIGINT) and "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last in ("facekit: interrupted before the run began; nothing was written",
                    "facekit: interrupted; finished frames are saved, rerun to resume"), stderr


@pytest.mark.parametrize(("task", "says"), [("extract", "finished frames are saved, rerun to resume"),
                                            ("curate", "curation writes its result only when it ends, so nothing was written"),
                                            ("plugins", "nothing was written")])
def test_an_interruption_says_what_it_keeps_in_the_tasks_own_terms(task: str, says: str) -> None:
    from omegaconf import OmegaConf

    from facekit.app.cli import _what_an_interruption_keeps

    assert _what_an_interruption_keeps(OmegaConf.create({"task": task})) == says


def test_a_curation_stopped_after_its_result_landed_says_it_was_written(tmp_path: Path) -> None:
    """A stop while the clusters' commands were printed said "nothing was written" beside a
    complete result; a result from before this command started is not this one's."""
    from omegaconf import OmegaConf

    from facekit.app import cli

    cfg = OmegaConf.create({"task": "curate", "output": {"dir": str(tmp_path)}})
    (tmp_path / "curation.json").write_text("{}")
    assert cli._what_an_interruption_keeps(cfg) == f"the curation result had been written whole to {tmp_path}"
    os.utime(tmp_path / "curation.json", (cli._STARTED_AT - 60, cli._STARTED_AT - 60))
    assert cli._what_an_interruption_keeps(cfg) == "curation writes its result only when it ends, so nothing was written"
