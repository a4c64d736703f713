"""Threshold sweeps through the CLI: one job per value, the analysis computed once, the report.

The sweeps run on the shared portraits (27 photos of 7 people) with the first photo of p01 as
the only reference, at cosine distances 0.3, 0.5 and 0.7 (sface's default is about 0.6). The
analysis cache lives in a FACEKIT_HOME per sweep, so the first job of each sweep computes it.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest
from omegaconf import OmegaConf

from cli_helpers import load_json, run_facekit
from conftest import DATA, require_data
from facekit.alignments import FORMAT, VERSION
from facekit.contact_sheet import nearest_faces
from facekit.sweep_report import CONTACT_SHEET, REPORT_CSV, REPORT_PLOT, SweepReport

PEOPLE = DATA / "images" / "people"
REF = PEOPLE / "p01" / "img1.jpg"
THRESHOLDS = (0.3, 0.5, 0.7)
COMPUTED, CACHED = "parallel passes", "cached passes"  # how tasks/extract.py logs each job's mode
HAS_JOBLIB = importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portraits in one flat folder (the input reads images directly in a folder)."""
    require_data()
    folder = tmp_path_factory.mktemp("people")
    for photo in sorted(PEOPLE.glob("p*/*.jpg")):
        shutil.copy(photo, folder / f"{photo.parent.name}_{photo.name}")
    return folder


def sweep(people: Path, where: Path, home: Path, *extra: str, thresholds: tuple[float, ...] = THRESHOLDS) -> Path:
    """Runs a threshold sweep into ``where``; returns its sweep folder."""
    out = where / "faces"
    result = run_facekit("-m", f"input={people}", f"output={out}", f"filter.refs=[{REF}]",
                         f"filter.threshold={','.join(map(str, thresholds))}", "runner.progress=false", *extra,
                         cwd=where, env={"FACEKIT_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-4000:]
    (folder,) = out.glob("sweep_*")
    return folder


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sweep_home")


@pytest.fixture(scope="module")
def basic_sweep(people: Path, cache_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sweep(people, tmp_path_factory.mktemp("basic"), cache_home)


def job_alignments(folder: Path) -> list[dict[str, Any]]:
    return [load_json(folder / str(n) / "alignments.json") for n in range(len(THRESHOLDS))]


def counts(alignments: dict[str, Any]) -> tuple[int, int]:
    keeps = [face["keep"] for frame in alignments["frames"].values() for face in frame["faces"]]
    return sum(keeps), len(keeps) - sum(keeps)


def test_each_job_applies_its_threshold_and_keeps_more_as_it_grows(basic_sweep: Path) -> None:
    jobs = job_alignments(basic_sweep)
    assert [job["meta"]["filter"]["threshold"] for job in jobs] == list(THRESHOLDS)
    kept = [counts(job)[0] for job in jobs]
    assert kept == sorted(kept) and kept[0] > 0, kept
    assert len({sum(counts(job)) for job in jobs}) == 1  # every job judges the same faces


def test_later_jobs_restore_the_analysis_instead_of_running_models(basic_sweep: Path) -> None:
    logs = [(basic_sweep / str(n) / "facekit.log").read_text(encoding="utf-8") for n in range(len(THRESHOLDS))]
    assert COMPUTED in logs[0] and CACHED not in logs[0]
    assert all(CACHED in log for log in logs[1:])


def test_report_table_plot_and_contact_sheet(basic_sweep: Path) -> None:
    with (basic_sweep / REPORT_CSV).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = [{"job": str(n), "threshold": str(t), "kept": str(kept), "rejected": str(rejected),
                 "faces": str(kept + rejected)}
                for n, (t, job) in enumerate(zip(THRESHOLDS, job_alignments(basic_sweep)))
                for kept, rejected in [counts(job)]]
    assert rows == expected
    for name in (REPORT_PLOT, CONTACT_SHEET):
        image = cv2.imread(str(basic_sweep / name))
        assert image is not None and image.size > 0, name


def test_a_changed_plugin_config_misses_the_cache(people: Path, cache_home: Path, basic_sweep: Path,
                                                  tmp_path: Path) -> None:
    # yunet's default score_threshold is 0.6: that job matches the basic sweep's analysis, 0.7 does not
    folder = sweep(people, tmp_path, cache_home, "+detector=yunet", "detector.score_threshold=0.6,0.7",
                   thresholds=(0.5,))
    by_score = {}
    for job in folder.iterdir():
        if job.is_dir():
            score = load_json(job / "alignments.json")["meta"]["plugins"]["detector"]["config"]["score_threshold"]
            by_score.setdefault(score, []).append((job / "facekit.log").read_text(encoding="utf-8"))
    assert all(CACHED in log for log in by_score[0.6])
    assert sum(COMPUTED in log for log in by_score[0.7]) == 1  # computed once, then cached
    header = (folder / REPORT_CSV).read_text(encoding="utf-8").splitlines()[0]
    assert header == "job,threshold,detector.score_threshold,kept,rejected,faces"


@pytest.mark.skipif(not HAS_JOBLIB, reason="hydra-joblib-launcher is not installed (pip install 'facekit[sweep]')")
def test_joblib_launcher_gives_the_same_results(people: Path, basic_sweep: Path, tmp_path: Path) -> None:
    folder = sweep(people, tmp_path, tmp_path / "home", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    for parallel, serial in zip(job_alignments(folder), job_alignments(basic_sweep)):
        assert parallel["meta"]["filter"] == serial["meta"]["filter"]
        assert parallel["frames"] == serial["frames"]
    assert (folder / REPORT_CSV).read_text() == (basic_sweep / REPORT_CSV).read_text()


# --- the report on its own, on job folders written here -------------------------------------

def _job(sweep_dir: Path, num: int, overrides: list[str], alignments: str) -> None:
    hydra_dir = sweep_dir / str(num) / ".hydra"
    hydra_dir.mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": {"job": {"num": num}}}), hydra_dir / "hydra.yaml")
    (sweep_dir / str(num) / "alignments.json").write_text(alignments, encoding="utf-8")


def _unfiltered(faces: int) -> str:
    face = {"box": [0, 0, 1, 1], "score": 1.0, "points5": None, "landmarks": None, "crop": "a.png"}
    return json.dumps({"format": FORMAT, "version": VERSION, "meta": {},
                       "frames": {"a": {"source": "a.jpg", "index": 0, "width": 9, "height": 9,
                                        "faces": [face] * faces}}})


def _report(sweep_dir: Path) -> None:
    SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)},
                                                              "runtime": {"cwd": str(sweep_dir)}}}))


def test_unfiltered_jobs_are_reported_with_counts_only(tmp_path: Path) -> None:
    _job(tmp_path, 0, ["input=a", "output.size=64"], _unfiltered(2))
    _job(tmp_path, 1, ["input=a", "output.size=128"], _unfiltered(2))
    _report(tmp_path)
    assert (tmp_path / REPORT_CSV).read_text().splitlines() == [
        "job,threshold,output.size,kept,rejected,faces", "0,,64,2,0,2", "1,,128,2,0,2"]
    assert not (tmp_path / REPORT_PLOT).exists() and not (tmp_path / CONTACT_SHEET).exists()


def test_a_problem_in_the_report_is_a_warning_not_a_failed_sweep(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    _job(tmp_path, 0, ["filter.threshold=0.5"], "{not json")
    with caplog.at_level(logging.WARNING):
        _report(tmp_path)
    assert "sweep report not written" in caplog.text and "alignments.json" in caplog.text


def test_nearest_faces_come_from_both_sides_of_the_threshold() -> None:
    landmarks = [[0.0, 0.0]] * 68
    faces = [{"landmarks": landmarks, "distance": d / 10, "keep": d <= 4} for d in range(1, 10)]
    frames = {"a": {"source": "a.jpg", "index": 0, "faces": faces}}
    assert [f.distance for f in nearest_faces(frames, 0.45, count=4)] == [0.3, 0.4, 0.5, 0.6]
    assert [f.distance for f in nearest_faces(frames, 0.85, count=4)] == [0.6, 0.7, 0.8, 0.9]
    assert [f.keep for f in nearest_faces(frames, 0.45, count=2)] == [True, False]
