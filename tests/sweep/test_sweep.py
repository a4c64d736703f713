"""Threshold sweeps through the CLI: one job per value, the analysis computed once, the report.

The sweeps run on the shared portraits (27 photos of 7 people) with the first photo of p01 as
the only reference, at cosine distances 0.3, 0.5 and 0.7 (sface's default is about 0.6). The
analysis cache lives in a FACEKIT_HOME per sweep, so the first job of each sweep computes it.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import pytest
from omegaconf import OmegaConf

from cli_helpers import (HANG_S, facekit_process, install_module, load_json, path_with, run_facekit,
                         wait_for_exit)
from conftest import DATA, require_data
from facekit.ledger.summary import SUMMARY_FILE
from facekit.output.alignments import FORMAT, VERSION
from facekit.sweep.contact_sheet import nearest_faces
from facekit.sweep.report import CONTACT_SHEET, REPORT_CSV, REPORT_PLOT, SweepReport

PEOPLE = DATA / "images" / "people"
REF = PEOPLE / "p01" / "img1.jpg"
THRESHOLDS = (0.3, 0.5, 0.7)
COMPUTED, CACHED = "parallel passes", "cached passes"  # how tasks/extract.py logs each job's mode


@pytest.fixture(scope="module")
def joblib_launcher() -> None:
    """An optional extra: the tests that need it skip without it (first, before any sweep runs
    for them), and this module still collects. Looked up only here: ``hydra_plugins`` is a
    namespace that only such plugins create, so where none is installed even ``find_spec`` for
    the launcher raises."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher",
                        reason="hydra-joblib-launcher is not installed (pip install 'facekit[sweep]')")


@pytest.fixture(scope="module")
def ray_launcher() -> None:
    """Hydra's Ray launcher is no facekit extra (it pins cloudpickle below 3, which pip then
    moves back from 3.x, and pulls in boto3): its test skips unless it is installed, before any
    sweep runs for it."""
    pytest.importorskip("ray", reason="the Ray launcher needs Ray: pip install 'facekit[ray]'")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher",
                        reason="hydra-ray-launcher is not installed (pip install hydra-ray-launcher)")


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


@pytest.mark.slow
def test_each_job_applies_its_threshold_and_keeps_more_as_it_grows(basic_sweep: Path) -> None:
    jobs = job_alignments(basic_sweep)
    assert [job["meta"]["filter"]["threshold"] for job in jobs] == list(THRESHOLDS)
    kept = [counts(job)[0] for job in jobs]
    assert kept == sorted(kept) and kept[0] > 0, kept
    assert len({sum(counts(job)) for job in jobs}) == 1  # every job judges the same faces


@pytest.mark.slow
def test_later_jobs_restore_the_analysis_instead_of_running_models(basic_sweep: Path) -> None:
    logs = [(basic_sweep / str(n) / "facekit.log").read_text(encoding="utf-8") for n in range(len(THRESHOLDS))]
    assert COMPUTED in logs[0] and CACHED not in logs[0]
    assert all(CACHED in log for log in logs[1:])


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_joblib_launcher_gives_the_same_results(joblib_launcher: None, people: Path, basic_sweep: Path,
                                                tmp_path: Path) -> None:
    folder = sweep(people, tmp_path, tmp_path / "home", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    for parallel, serial in zip(job_alignments(folder), job_alignments(basic_sweep)):
        assert parallel["meta"]["filter"] == serial["meta"]["filter"]
        assert parallel["frames"] == serial["frames"]
    assert (folder / REPORT_CSV).read_text() == (basic_sweep / REPORT_CSV).read_text()


def test_the_ray_launcher_on_a_cluster_gives_the_same_results(ray_launcher: None, people: Path, basic_sweep: Path,
                                                             tmp_path: Path) -> None:
    """The jobs run as Ray tasks on a cluster of two one-CPU nodes and a head that runs nothing,
    all on 127.0.0.1; every node reads the sweep's analysis cache (FACEKIT_HOME), as a shared
    filesystem would give it on real machines."""
    from ray_cluster import start_cluster, stopped

    home = tmp_path / "home"
    with contextmanager(stopped)(start_cluster(2, {"FACEKIT_HOME": str(home)})) as cluster:
        # the launcher asks for a 75 MB object store unless told otherwise, which ray.init refuses
        # when it joins a running cluster: null leaves it to the cluster
        folder = sweep(people, tmp_path, home, "hydra/launcher=ray", f"hydra.launcher.ray.init.address={cluster.address}",
                       "+hydra.launcher.ray.init.object_store_memory=null", "+hydra.launcher.ray.remote.num_cpus=1")
    for on_ray, serial in zip(job_alignments(folder), job_alignments(basic_sweep)):
        assert on_ray["meta"]["filter"] == serial["meta"]["filter"]
        assert on_ray["frames"] == serial["frames"]
    assert (folder / REPORT_CSV).read_text() == (basic_sweep / REPORT_CSV).read_text()


@pytest.mark.slow
def test_a_job_served_from_the_cache_aligns_exactly_like_an_uncached_run(people: Path, cache_home: Path,
                                                                           basic_sweep: Path, tmp_path: Path) -> None:
    """Job 1 of the basic sweep (threshold 0.5) replayed the analysis that job 0 stored; a run at
    0.5 with ``cache.enabled=false`` runs every model itself. Entry by entry they agree: boxes,
    scores, points, landmarks, embeddings, distances, and each keep/reason decision."""
    cached_job = basic_sweep / "1"
    assert load_json(cached_job / SUMMARY_FILE)["mode"] == "cached"
    out = tmp_path / "faces"
    result = run_facekit(f"input={people}", f"output={out}", f"filter.refs=[{REF}]", "filter.threshold=0.5",
                         "cache.enabled=false", "runner.progress=false", cwd=tmp_path,
                         env={"FACEKIT_HOME": str(cache_home)})  # its models; the cache is off
    assert result.returncode == 0, result.stderr[-4000:]
    assert load_json(out / SUMMARY_FILE)["mode"] != "cached"
    cached, computed = (load_json(folder / "alignments.json")["frames"] for folder in (cached_job, out))
    assert list(cached) == list(computed)
    faces = [(name, index, face, cached[name]["faces"][index])
             for name, frame in computed.items() for index, face in enumerate(frame["faces"])]
    assert all(len(cached[name]["faces"]) == len(frame["faces"]) for name, frame in computed.items())
    assert {face["keep"] for _, _, face, _ in faces} == {True, False}  # both decisions are compared
    for name, index, face, replayed in faces:
        for key in ("box", "score", "points5", "landmarks", "embedding", "distance", "keep", "reason"):
            assert replayed.get(key) == face.get(key), f"{name} face {index}: {key}"
    assert cached == computed  # the rest of each entry too: sizes, face file names and hashes


#: A detector for counting what runs: it finds one fixed box, and appends to files in its
#: ``folder`` the id of each process that builds its config (just before a run looks the input up
#: in the analysis cache) and each frame it detects. Its first call waits for a ``go`` file there,
#: so a test can hold one job inside the analysis until another has arrived.
COUNTING_MODULE = """\
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import facekit
from facekit.plugin.spec import PluginSpec
from facekit.records import Detection


def _append(path, line):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\\n")


@dataclass
class CountingConfig:
    folder: str = ""

    def __post_init__(self):
        if self.folder:
            _append(os.path.join(self.folder, "configured"), str(os.getpid()))


class CountingDetector:
    def __init__(self, config):
        self.folder = Path(config.folder)

    def detect(self, images):
        _append(self.folder / "detecting", str(os.getpid()))
        deadline = time.monotonic() + 300  # a bound for a test that failed to say go
        while not (self.folder / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        for image in images:
            _append(self.folder / "detected", f"{os.getpid()} {hashlib.sha1(image.tobytes()).hexdigest()}")
        time.sleep(0.2)  # the analysis stays unfinished a while, for a job that would not wait for it
        return [[Detection((40.0, 40.0, 200.0, 220.0), 0.9)] for _ in images]


@facekit.hookimpl
def facekit_detectors():
    return [PluginSpec(name="counting", kind="detector", factory=lambda config, store: CountingDetector(config),
                       config_class=CountingConfig)]
"""


def _wait_for_line(path: Path, line: str, process: subprocess.Popen[str]) -> None:
    """Until ``path`` holds ``line``; fails if ``process`` exits first or ``HANG_S`` passes."""
    deadline = time.monotonic() + HANG_S
    while not (path.is_file() and line in path.read_text(encoding="utf-8").splitlines()):
        assert process.poll() is None, f"exit {process.returncode} before {path.name} said {line}: " \
                                       f"{process.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, f"facekit hung: {path.name} still without {line} after {HANG_S} s"
        time.sleep(0.01)


@pytest.mark.slow
def test_two_jobs_at_once_on_one_input_compute_its_analysis_once(tmp_path: Path) -> None:
    """Two runs with the cache on, same input, same cache folder, at the same time: the first is
    held inside its analysis until the second is about to look the input up. The detector then
    sees each photo once, all in the first run; the second replays the first's analysis."""
    require_data()
    photos = tmp_path / "photos"
    photos.mkdir()
    chosen = sorted(PEOPLE.glob("p*/*.jpg"))[::5]  # six photos, of several people
    for photo in chosen:
        shutil.copy(photo, photos / f"{photo.parent.name}_{photo.name}")
    site, marks = tmp_path / "site", tmp_path / "marks"
    site.mkdir()
    marks.mkdir()
    install_module(site, "toy_counting_facekit", COUNTING_MODULE, "counting")
    env = {**path_with(site), "FACEKIT_HOME": str(tmp_path / "home")}
    args = ["+detector=counting", f"detector.folder={marks}", f"input={photos}", "cache.enabled=true",
            "runner.workers=0", "runner.progress=false"]
    with facekit_process(*args, f"output={tmp_path / 'first'}", cwd=tmp_path, env=env) as first:
        _wait_for_line(marks / "detecting", str(first.pid), first)  # inside the analysis, holding its entry
        with facekit_process(*args, f"output={tmp_path / 'second'}", cwd=tmp_path, env=env) as second:
            _wait_for_line(marks / "configured", str(second.pid), second)  # about to look the input up
            (marks / "go").touch()
            stderr = [wait_for_exit(process) for process in (first, second)]
    detected = [line.split() for line in (marks / "detected").read_text(encoding="utf-8").splitlines()]
    by_process = Counter(pid for pid, _ in detected)
    assert by_process == {str(first.pid): len(chosen)}, (f"frames detected by process {dict(by_process)}, "
                                                         f"first {first.pid}, second {second.pid}: "
                                                         f"{[text[-1500:] for text in stderr]}")
    assert len({sha1 for _, sha1 in detected}) == len(chosen)  # each photo once
    assert first.returncode == 0 and second.returncode == 0, stderr
    assert load_json(tmp_path / "second" / SUMMARY_FILE)["mode"] == "cached"
    assert (load_json(tmp_path / "second" / "alignments.json")["frames"]
            == load_json(tmp_path / "first" / "alignments.json")["frames"])


#: A ``sitecustomize`` for a Python that behaves as if no Hydra plugin were installed: no
#: ``hydra_plugins`` namespace at all, as in an environment without ``facekit[sweep]``.
WITHOUT_HYDRA_PLUGINS = """\
import sys


class NoHydraPlugins:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "hydra_plugins" or name.startswith("hydra_plugins."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoHydraPlugins)
"""


@pytest.mark.slow
def test_without_the_joblib_launcher_the_suite_collects_and_its_test_skips(tmp_path: Path) -> None:
    (tmp_path / "shim").mkdir()
    (tmp_path / "shim" / "sitecustomize.py").write_text(WITHOUT_HYDRA_PLUGINS, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "shim"),
                                                                     os.environ.get("PYTHONPATH")]))}
    tests = Path(__file__).parents[1]  # the whole test tree

    def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                               f"--basetemp={tmp_path / 'inner'}", *args], cwd=tests.parent, env=env,
                              capture_output=True, text=True, timeout=HANG_S)

    collected = pytest_run("--collect-only", str(tests))
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-2000:]
    assert "error" not in collected.stdout.splitlines()[-1], collected.stdout[-3000:]
    ran = pytest_run(f"{__file__}::test_joblib_launcher_gives_the_same_results")
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert "1 skipped" in ran.stdout and "hydra-joblib-launcher is not installed" in ran.stdout, ran.stdout[-3000:]


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


def test_unfiltered_jobs_are_reported_with_counts_only_and_no_threshold_column(tmp_path: Path) -> None:
    _job(tmp_path, 0, ["input=a", "output.size=64"], _unfiltered(2))
    _job(tmp_path, 1, ["input=a", "output.size=128"], _unfiltered(2))
    _report(tmp_path)
    assert (tmp_path / REPORT_CSV).read_text().splitlines() == [
        "job,output.size,kept,rejected,faces", "0,64,2,0,2", "1,128,2,0,2"]
    assert not (tmp_path / REPORT_PLOT).exists() and not (tmp_path / CONTACT_SHEET).exists()


def test_the_report_shows_swept_values_as_typed_without_the_quotes_hydra_reads(tmp_path: Path) -> None:
    """The command line quotes input=fötos for Hydra as input='fötos': the report shows fötos."""
    _job(tmp_path, 0, ["input='fötos'", "output.size=64"], _unfiltered(1))
    _job(tmp_path, 1, ["input='Photos (2024)'", "output.size=64"], _unfiltered(1))
    _report(tmp_path)
    assert (tmp_path / REPORT_CSV).read_text(encoding="utf-8").splitlines() == [
        "job,input,kept,rejected,faces", "0,fötos,1,0,1", "1,Photos (2024),1,0,1"]


def test_a_sweep_of_one_value_names_that_value_in_its_report(tmp_path: Path) -> None:
    """``-m quality.max_yaw=30``: nothing varies between one job, and the report's table said
    nothing of the value it tried."""
    _job(tmp_path, 0, ["input=a", "quality.max_yaw=30"], _unfiltered(1))
    _report(tmp_path)
    assert (tmp_path / REPORT_CSV).read_text().splitlines()[:2] == ["job,quality.max_yaw,kept,rejected,faces", "0,30,1,0,1"]


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
    assert [f.value for f in nearest_faces(frames, 0.45, count=4)] == [0.3, 0.4, 0.5, 0.6]
    assert [f.value for f in nearest_faces(frames, 0.85, count=4)] == [0.6, 0.7, 0.8, 0.9]
    assert [f.keep for f in nearest_faces(frames, 0.45, count=2)] == [True, False]
