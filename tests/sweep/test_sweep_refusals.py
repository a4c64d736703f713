"""A sweep refuses a value a plain run would refuse before any of its jobs runs: one line that
names the value, exit 2, nothing written (not a first job's folder, then a failure)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import run_facekit
from conftest import DATA, SCENES, require_data

#: What a sweep varies, with the run's own line for its bad value. Each is checked only once a
#: run builds its stages (the quality filter, the plugins) or starts its task (curation).
BAD_VALUES = [
    (["quality.max_yaw=30,-5"], "the sweep's quality.max_yaw=-5: quality.max_yaw must be a number >= 0 (or null: off)"),
    (["quality.max_faces=1,0"], "the sweep's quality.max_faces=0: quality.max_faces must be a whole number of faces"),
    (["detector.score_threshold=0.5,5"],
     "the sweep's detector.score_threshold=5: detector yunet: score_threshold must be between 0 and 1"),
    (["task=curate", "curate.dedupe=0.05,5"], "the sweep's curate.dedupe=5: curate.dedupe is a cosine distance"),
    ([f"filter.refs=[{SCENES / 'obama.jpg'}],[/nowhere/nope.jpg]"],
     "the sweep's filter.refs=[/nowhere/nope.jpg]: reference photo '/nowhere/nope.jpg' does not exist"),
    # found only once a job ran, after the jobs before it: weights not here (and a faceless reference, below)
    ([f"filter.refs=[{SCENES / 'obama.jpg'}]", "+identity=sface,vgg-face"],
     "the sweep's +identity=vgg-face: model 'vgg-face-v1': vgg_face_v1.caffemodel is not here"),
    (["hydra/launcher=bogus", "quality.max_yaw=10,30"],  # a launcher that does not exist: Hydra's search path, exit 1
     "Could not find 'hydra/launcher/bogus' Available options in 'hydra/launcher': basic"),
]


@pytest.mark.parametrize(("swept", "line"), BAD_VALUES, ids=[" ".join(swept) for swept, _ in BAD_VALUES])
def test_a_sweep_refuses_a_bad_value_in_one_line_before_any_job_runs(tmp_path: Path, swept: list[str], line: str) -> None:
    require_data()
    # a curation reads an extraction's output folder: its settings are checked before its input is read
    source = tmp_path / "extraction" if "task=curate" in swept else SCENES / "two_people.jpg"
    result = run_facekit("-m", f"input={source}", f"output={tmp_path / 'faces'}", "runner.progress=false", *swept,
                         cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facekit: error: ") and line in lines[0], result.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []  # no sweep folder, no job's folder, no multirun.yaml


@pytest.mark.parametrize("swept", ["input", "sample.start"])
def test_a_sweep_refuses_an_input_its_job_could_not_open_before_any_job_runs(tmp_path: Path, swept: str) -> None:
    """A video that does not open (or a start past its end) failed only when its job ran: the
    jobs before it wrote their folders, and the jobs after it never ran."""
    require_data()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(b"not a video")
    video = DATA / "video" / "faceswap_test.mp4"
    values = ([f"input={SCENES / 'two_people.jpg'},{damaged}"] if swept == "input"
              else [f"input={video}", "sample.start=1,60"])
    result = run_facekit("-m", *values, f"output={tmp_path / 'faces'}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    line = (f"the sweep's input={damaged}: input '{damaged}' cannot be opened as a video" if swept == "input" else
            f"the sweep's sample.start=60: sample.start=60 s is past the end of {video}")
    assert len(lines) == 1 and line in lines[0], result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.mp4"]


def test_a_sweep_of_task_plugins_is_refused_before_it_makes_a_folder(tmp_path: Path) -> None:
    """It lists the plugins; ``-m`` made ./faces/sweep_*/0/ and an empty report besides."""
    result = run_facekit("-m", "task=plugins", cwd=tmp_path)
    assert result.returncode == 2 and "task=plugins lists the plugins; it takes no -m" in result.stderr
    assert list(tmp_path.iterdir()) == []



def test_a_sweep_refuses_a_reference_without_a_face_before_its_first_job_runs(tmp_path: Path) -> None:
    """A plain run refuses it before reading its input; a sweep ran the jobs before it, then
    failed, leaving them without a report."""
    require_data()
    import cv2
    import numpy as np

    refs = tmp_path / "refs"
    refs.mkdir()
    cv2.imwrite(str(refs / "grey.jpg"), np.full((300, 300, 3), 128, np.uint8))
    result = run_facekit("-m", f"input={SCENES / 'two_people.jpg'}", "output=faces", "runner.progress=false",
                         f"filter.refs=[{SCENES / 'obama.jpg'}],[{refs / 'grey.jpg'}]", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"facekit: error: the sweep's filter.refs=[{refs / 'grey.jpg'}]: no face found in reference photo "
        f"'{refs / 'grey.jpg'}'"], result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refs"]


def test_a_sweep_with_hydra_job_chdir_reads_relative_paths_from_where_it_was_started(tmp_path: Path) -> None:
    """``hydra.job.chdir=true`` ran each job in its folder: "reference photo 'refs/obama.jpg'
    does not exist" for a photo that does, then a traceback as the refused job's folder went."""
    require_data()
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "obama.jpg").write_bytes((SCENES / "obama.jpg").read_bytes())
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "two.jpg").write_bytes((SCENES / "two_people.jpg").read_bytes())
    result = run_facekit("-m", "hydra.job.chdir=true", "input=in", "output=faces", "runner.progress=false",
                         "filter.refs=[refs/obama.jpg]", "filter.threshold=0.3,0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted((tmp_path / "faces").glob("sweep_*/[01]/alignments.json"))
    assert len(jobs) == 2, sorted(str(p) for p in (tmp_path / "faces").rglob("*"))
    refused = run_facekit("-m", "hydra.job.chdir=true", "input=in", "output=faces2", "runner.progress=false",
                          "filter.refs=[refs/nope.jpg]", "filter.threshold=0.3,0.5", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines()[-1] == (
        "facekit: error: reference photo 'refs/nope.jpg' does not exist"), refused.stderr[-3000:]
