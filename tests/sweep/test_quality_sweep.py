"""Sweeps over the ``quality.*`` limits: the measures computed once per face and every later job
served from the analysis cache without loading a model; a report with the swept limit's column,
the kept and rejected faces against it, and a contact sheet of the faces nearest each limit by
the measure it bounds; a sweep over two filters at once.

The input: six portraits of six people, a blurred and a rotated copy, a small face and a photo of
two people, so every limit has faces on both sides of it. The limits each sweep tries are chosen
from the measures a plain run finds, so the test does not hang on the models' exact numbers.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from cli_helpers import copy_flat, install_module, load_json, path_with, run_facekit
from conftest import DATA, SCENES, require_data
from facekit.faces.quality import LIMITS, measured
from facekit.output.alignments import face_from_dict
from facekit.sweep.contact_sheet import BORDER, CAPTION, GAP, TILE, nearest_faces, tile_caption
from facekit.sweep.report import CONTACT_SHEET, REPORT_CSV, REPORT_PLOT, plot_figure, read_job
from facekit.sweep.swept import SETTINGS, size_ranks, x_axis

pytestmark = pytest.mark.slow  # sweeps of every quality limit over a folder, each job a CLI run

PEOPLE = DATA / "images" / "people"
PORTRAITS = [PEOPLE / person / photo for person, photo in
             [("p01", "img1.jpg"), ("p04", "img13.jpg"), ("p05", "img16.jpg"), ("p06", "img18.jpg"),
              ("p07", "img20.jpg"), ("p08", "img23.jpg")]]
ROW_HEIGHT = TILE + 2 * BORDER + CAPTION + GAP  # of a contact-sheet row
QUALITY_KEYS = [f"quality.{name}" for name in (*LIMITS, "max_faces")]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_data()
    folder = copy_flat([*PORTRAITS, SCENES / "obama-240p.jpg", SCENES / "two_people.jpg"],
                       tmp_path_factory.mktemp("photos"))
    first, second = (cv2.imread(str(photo)) for photo in PORTRAITS[:2])
    cv2.imwrite(str(folder / "blurred.jpg"), cv2.GaussianBlur(first, (0, 0), 4))
    height, width = second.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), 25, 1.0)
    cv2.imwrite(str(folder / "rotated.jpg"), cv2.warpAffine(second, turn, (width, height),
                                                            borderMode=cv2.BORDER_REPLICATE))
    return folder


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, session_derived: Path) -> Path:
    """The module's model and analysis cache: the first run analyses the photos, every sweep
    after it replays them. Derived models are the session's, converted once."""
    folder = tmp_path_factory.mktemp("home")
    (folder / "derived").symlink_to(session_derived, target_is_directory=True)
    return folder


def _facekit(where: Path, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
    result = run_facekit(*args, "runner.progress=false", cwd=where, env={"FACEKIT_HOME": str(home), **(env or {})})
    assert result.returncode == 0, result.stderr[-4000:]


def sweep(photos: Path, where: Path, home: Path, *overrides: str, env: dict[str, str] | None = None) -> Path:
    """Runs ``facekit -m`` over ``overrides`` into ``where``; its sweep folder."""
    _facekit(where, home, "-m", f"input={photos}", f"output={where / 'faces'}", *overrides, env=env)
    (folder,) = (where / "faces").glob("sweep_*")
    return folder


def _frames(output: Path) -> dict[str, list[dict[str, Any]]]:
    return {name: frame["faces"] for name, frame in load_json(output / "alignments.json")["frames"].items()}


@pytest.fixture(scope="module")
def measured_faces(photos: Path, home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """Every face of a plain run with the cache on (the entry every sweep below replays)."""
    where = tmp_path_factory.mktemp("plain")
    _facekit(where, home, f"input={photos}", f"output={where / 'faces'}", "cache.enabled=true")
    frames = _frames(where / "faces")
    assert sum(map(len, frames.values())) == len(PORTRAITS) + 5, frames.keys()
    return frames


def _values(key: str, frames: dict[str, list[dict]]) -> list[float]:
    """Each face's value for the limit ``key``: its measure as the filter reads it, or its rank by size."""
    name = key.rpartition(".")[2]
    if name == "max_faces":
        return [rank for faces in frames.values() for rank in size_ranks(faces)]
    return [measured(face_from_dict(face), LIMITS[name].measure) for faces in frames.values() for face in faces]


def _limits(key: str, frames: dict[str, list[dict]]) -> tuple[float, float]:
    """Two limits with faces on both sides of each: midway between neighbouring values."""
    if key == "quality.max_faces":
        return 1, 2
    values = sorted(set(_values(key, frames)))
    assert len(values) >= 4, (key, values)
    lower, upper = len(values) // 3, 2 * len(values) // 3
    return tuple(round((values[i - 1] + values[i]) / 2, 5) for i in (lower, upper))


def _passes(key: str, value: float, limit: float) -> bool:
    name = key.rpartition(".")[2]
    return value <= limit if name == "max_faces" else LIMITS[name].passes(value, limit)


def _csv(folder: Path) -> list[dict[str, str]]:
    with (folder / REPORT_CSV).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("key", QUALITY_KEYS)
def test_each_quality_limit_sweeps_into_a_report_of_its_own(key: str, photos: Path, home: Path,
                                                           measured_faces: dict[str, list[dict]],
                                                           tmp_path: Path) -> None:
    limits = _limits(key, measured_faces)
    folder = sweep(photos, tmp_path, home, f"{key}={','.join(map(str, limits))}")
    values = _values(key, measured_faces)
    rows = _csv(folder)
    assert [row[key] for row in rows] == [str(v) for v in limits]  # as typed
    kind = "max_faces" if key.endswith("max_faces") else LIMITS[key.rpartition(".")[2]].measure
    for row, limit in zip(rows, limits):
        kept = sum(_passes(key, value, limit) for value in values)
        assert (int(row["kept"]), int(row["rejected"])) == (kept, len(values) - kept), (row, limit)
        assert int(row[f"rejected_{kind}"]) == len(values) - kept
    assert 0 < int(rows[0]["kept"]) < int(rows[-1]["kept"]) if key.startswith("quality.max") else \
        int(rows[0]["kept"]) > int(rows[-1]["kept"]) > 0
    assert all(load_json(folder / str(n) / "run_summary.json")["mode"] == "cached" for n in range(2))
    assert cv2.imread(str(folder / REPORT_PLOT)) is not None
    sheet = cv2.imread(str(folder / CONTACT_SHEET))
    assert sheet is not None and sheet.shape[0] == 2 * ROW_HEIGHT + GAP  # a row per limit
    for n, limit in enumerate(limits):
        job = read_job(folder / str(n), SETTINGS[key])
        assert job.limit == limit
        _assert_nearest(key, [face.value for face in job.nearest], values, limit)
        assert all(face.keep == _passes(key, face.value, limit) for face in job.nearest)


def _assert_nearest(key: str, chosen: list[float], values: list[float], limit: float) -> None:
    """The sheet's faces are the nearest to ``limit`` on each side: no face left out lies nearer."""
    assert len(chosen) == min(8, len(values)), (key, chosen)
    rest = list(values)
    for value in chosen:
        rest.remove(value)
    below, above = [v for v in chosen if v <= limit], [v for v in chosen if v > limit]
    assert bool(below) == any(v <= limit for v in values) and bool(above) == any(v > limit for v in values)
    assert all(v <= min(below) for v in rest if v <= limit), (key, chosen, rest, limit)
    assert all(v >= max(above) for v in rest if v > limit), (key, chosen, rest, limit)


@pytest.fixture(scope="module")
def two_filters(photos: Path, home: Path, measured_faces: dict[str, list[dict]],
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[float, float]]:
    """A sweep over the identity threshold and quality.max_yaw at once: its folder, the yaws."""
    yaws = _limits("quality.max_yaw", measured_faces)
    folder = sweep(photos, tmp_path_factory.mktemp("two_filters"), home, f"filter.refs=[{PORTRAITS[0]}]",
                   "filter.threshold=0.3,0.9", f"quality.max_yaw={yaws[0]},{yaws[1]}")
    return folder, yaws


def test_a_sweep_over_the_threshold_and_a_quality_limit_tabulates_both(
        two_filters: tuple[Path, tuple[float, float]]) -> None:
    folder, yaws = two_filters
    rows = _csv(folder)
    assert list(rows[0]) == ["job", "threshold", "quality.max_yaw", "kept", "rejected", "faces",
                             "rejected_identity", "rejected_yaw"]
    assert {(row["threshold"], row["quality.max_yaw"]) for row in rows} == \
        {(t, str(y)) for t in ("0.3", "0.9") for y in yaws}
    for row in rows:
        assert int(row["rejected"]) == int(row["rejected_identity"]) + int(row["rejected_yaw"])
        assert int(row["kept"]) + int(row["rejected"]) == int(row["faces"]) == len(PORTRAITS) + 5
    by_setting = {(row["threshold"], row["quality.max_yaw"]): row for row in rows}
    strict, loose = by_setting["0.3", str(yaws[0])], by_setting["0.9", str(yaws[1])]
    assert int(strict["kept"]) < int(loose["kept"])
    assert int(strict["rejected_identity"]) > int(loose["rejected_identity"])
    assert cv2.imread(str(folder / REPORT_PLOT)) is not None
    sheet = cv2.imread(str(folder / CONTACT_SHEET))
    assert sheet is not None and sheet.shape[0] == 4 * ROW_HEIGHT + GAP  # a row per job: each judges apart


def test_a_two_setting_sweep_plots_each_combination_apart_and_a_yaw_reject_says_so(
        two_filters: tuple[Path, tuple[float, float]]) -> None:
    folder, yaws = two_filters
    job_folders = [path.parent.parent for path in folder.glob("*/.hydra/overrides.yaml")]
    axis = x_axis([read_job(job).overrides for job in job_folders])
    jobs = [read_job(job, axis) for job in job_folders]
    other = "quality.max_yaw" if axis.key == "filter.threshold" else "filter.threshold"
    legend = plot_figure(jobs, [other], axis).axes[0].get_legend()
    entries = [text.get_text() for text in legend.get_texts()]
    values = [str(yaw) for yaw in yaws] if other == "quality.max_yaw" else ["0.3", "0.9"]
    assert sorted(entries) == sorted(f"{kind}, {other}={value}" for kind in ("kept", "rejected") for value in values)
    assert axis.key in legend.get_title().get_text()
    lines = {line.get_label(): line for line in legend.axes.get_lines()}
    colours = {lines[f"kept, {other}={value}"].get_color() for value in values}
    assert len(colours) == len(values)  # each combination its own colour
    loose = next(job for job in job_folders if read_job(job).overrides.items() >= {
        ("filter.threshold", "0.9"), ("quality.max_yaw", str(yaws[0]))})
    faces = nearest_faces(load_json(loose / "alignments.json")["frames"], 0.9, count=100)  # every face
    turned = [face for face in faces if (face.reason or "").startswith("yaw ")]
    assert turned
    for face in turned:
        assert re.fullmatch(rf"yaw \d+\.\d > {yaws[0]:g}", face.reason)
        assert tile_caption(face, ".3f") == [f"{face.value:.3f} REJECT", face.reason]
    kept = next(face for face in faces if face.keep)
    assert tile_caption(kept, ".3f") == [f"{kept.value:.3f} KEEP"]


#: Wrappers of the default detector and aligner under names of their own, whose factory (the
#: model's construction) first appends "<kind> <process id>" to the file $COUNTED_BUILDS.
COUNTED_MODULE = """\
import dataclasses
import os

import facekit
from facekit_plugins import facemesh, yunet


def _counted(spec):
    def factory(config, store):
        with open(os.environ["COUNTED_BUILDS"], "a", encoding="utf-8") as handle:
            handle.write(f"{spec.kind} {os.getpid()}\\n")
        return spec.factory(config, store)
    return dataclasses.replace(spec, name="counted-" + spec.name, factory=factory)


@facekit.hookimpl
def facekit_detectors():
    return [_counted(spec) for spec in yunet.facekit_detectors()]


@facekit.hookimpl
def facekit_aligners():
    return [_counted(spec) for spec in facemesh.facekit_aligners()]
"""


def test_a_quality_sweep_measures_each_face_once_and_later_jobs_load_no_model(
        photos: Path, session_derived: Path, tmp_path: Path) -> None:
    """A fresh cache: job 0 builds the detector and the aligner (one process: runner.workers=0)
    and stores the analysis; jobs 1 and 2 build neither, call no model, and judge the measures
    job 0 stored, so every job's faces carry the very same numbers."""
    site = tmp_path / "site"
    install_module(site, "counted_facekit", COUNTED_MODULE, "counted")
    home = tmp_path / "home"
    home.mkdir()
    (home / "derived").symlink_to(session_derived, target_is_directory=True)
    builds = tmp_path / "builds"
    folder = sweep(photos, tmp_path, home, "+detector=counted-yunet", "+aligner=counted-facemesh",
                   "runner.workers=0", "quality.min_sharpness=20,200,2000",
                   env={**path_with(site), "COUNTED_BUILDS": str(builds)})
    assert sorted(line.split()[0] for line in builds.read_text(encoding="utf-8").splitlines()) == \
        ["aligner", "detector"]
    summaries = [load_json(folder / str(n) / "run_summary.json") for n in range(3)]
    assert summaries[0]["mode"] != "cached" and set(summaries[0]["model_s"]) == {"detector", "aligner"}
    assert [summary["mode"] for summary in summaries[1:]] == ["cached", "cached"]
    assert all(not summary["model_s"] for summary in summaries[1:])
    measures = ("box", "landmarks", "pose", "face_px", "misalignment", "sharpness")
    jobs = [{name: [{key: face[key] for key in measures} for face in faces]
             for name, faces in _frames(folder / str(n)).items()} for n in range(3)]
    assert jobs[0] == jobs[1] == jobs[2]
    assert [int(row["kept"]) for row in _csv(folder)] == sorted((int(row["kept"]) for row in _csv(folder)),
                                                                reverse=True)


# --- the settings on their own --------------------------------------------------------------

def test_the_x_axis_is_the_first_swept_filter_setting_else_the_first_set_else_the_threshold() -> None:
    assert x_axis([{"quality.max_yaw": "10"}, {"quality.max_yaw": "40"}]).key == "quality.max_yaw"
    assert x_axis([{"filter.threshold": "0.3", "quality.max_yaw": "10"},
                   {"filter.threshold": "0.5", "quality.max_yaw": "40"}]).key == "filter.threshold"
    assert x_axis([{"output.size": "64"}, {"output.size": "128"}]).key == "filter.threshold"
    assert x_axis([{"output.size": "64", "quality.max_roll": "9"},
                   {"output.size": "128", "quality.max_roll": "9"}]).key == "quality.max_roll"


def test_a_face_is_placed_by_its_absolute_angle_and_ranked_by_size_among_those_max_faces_judged() -> None:
    box = {"box": [0, 0, 1, 1], "score": 1.0, "landmarks": [[0.0, 0.0]] * 68}
    faces = [{**box, "face_px": 50.0, "pose": {"yaw": -35.0, "pitch": 1.0, "roll": 2.0}},
             {**box, "face_px": 90.0, "pose": {"yaw": 20.0, "pitch": 1.0, "roll": 2.0}, "keep": False,
              "reason": "yaw 20.0 > 10"},
             {**box, "face_px": 70.0, "pose": None, "keep": False,
              "reason": "max_faces 1: face_px 70.0 is the 2nd largest"}]
    assert SETTINGS["quality.max_yaw"].values(faces) == [35.0, 20.0, None]
    assert size_ranks(faces) == [2.0, None, 1.0]
    assert np.isnan(face_from_dict({**box, "pose": {"yaw": None, "pitch": 0.0, "roll": 0.0}}).pose.yaw)


def test_a_quality_limit_has_its_rejects_column_even_where_no_job_dropped_a_face_for_it() -> None:
    """The CSV's columns followed the data: a sweep whose sharpness limits dropped nothing had no
    rejected_sharpness column, though docs/sweeps.md gives one per limit set."""
    from facekit.sweep.report import JobResult, table

    jobs = [JobResult(num=n, overrides={"quality.min_sharpness": str(v)}, kept=5, rejected=0, quality=True,
                      limited={"sharpness"}) for n, v in enumerate((20, 50))]
    header, rows = table(jobs, ["quality.min_sharpness"])
    assert header[-1] == "rejected_sharpness" and [row[-1] for row in rows] == ["0", "0"]


def test_the_printed_report_shows_bracketed_values_as_they_are_not_as_style_tags(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A sweep over lists (``filter.refs=[a.jpg],[b.jpg]``) or into a path in brackets: rich
    read '[/work/a.jpg]' as a closing tag, raised, and the plot and contact sheet were never
    drawn; '[a.jpg]' vanished from the table as an unknown style."""
    from facekit.sweep.report import _print_table

    _print_table(["job", "filter.refs"], [["0", "[/work/a.jpg]"], ["1", "[b.jpg]"]], Path("out/[draft]"))
    shown = capsys.readouterr().out
    assert "[/work/a.jpg]" in shown and "[b.jpg]" in shown and "out/[draft]" in shown, shown


def test_a_threshold_rows_label_reads_as_the_threshold_was_typed() -> None:
    """0.6371 and 0.6374 both read 't = 0.637' when rounded to three decimals."""
    from facekit.sweep.swept import SETTINGS

    threshold = SETTINGS["filter.threshold"]
    assert [threshold.row_label(t, 0).splitlines()[0] for t in (0.6371, 0.6374, 0.3, 2.0, 0.63761234, 0.63761239)] == [
        "t = 0.6371", "t = 0.6374", "t = 0.3", "t = 2", "t = 0.63761234", "t = 0.63761239"]
