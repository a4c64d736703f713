"""Worker processes: the same faces as threads, and a plugin that fails, exits, dies or hangs in a
worker ends the run promptly, naming plugin and frame and keeping the frames before it."""
from __future__ import annotations

import hashlib
import os
import pickle
import time
from subprocess import CompletedProcess
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from cli_helpers import HANG_S, file_hashes, load_json, run_facekit
from conftest import DATA, Extraction, require_data
from flaky_plugin import ctrl_c_once_hanging, install_flaky
from facekit.models.store import ModelStore
from facekit.plugin.loading import load_plugin
from facekit.plugin.registry import default_registry
from facekit.records import OneByOne
from facekit.engine.threads import Stage
from facekit.records import Frame, FrameRecord
from facekit.engine.cores import FRAMES_PER_WORKER, choose_workers
from facekit.engine.workers import WorkerPlan, WorkerPool

VIDEO = DATA / "video" / "faceswap_test.mp4"
MARKED_FRAME = 6  # the frame the flaky plugin misbehaves on (1-based, as frames are named)


def _frame_sha1(number: int) -> str:
    capture = cv2.VideoCapture(str(VIDEO))
    for _ in range(number):
        ok, image = capture.read()
        assert ok
    capture.release()
    return hashlib.sha1(image.tobytes()).hexdigest()


def _names(first: int, last: int) -> list[str]:
    return [f"faceswap_test_{n:06d}" for n in range(first, last + 1)]


@pytest.fixture(scope="module")
def flaky_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install_flaky(tmp_path_factory.mktemp("site"))


def _flaky_run(tmp_path: Path, env: dict[str, str], how: str) -> tuple[CompletedProcess[str], Path]:
    require_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=flaky", f"detector.how={how}", "detector.fail_on_call=0",
                         f"detector.frame_sha1={_frame_sha1(MARKED_FRAME)}",
                         f"input={VIDEO}", f"output={out}", "runner.progress=false", "runner.workers=2",
                         cwd=tmp_path, env=env, timeout=HANG_S)
    return result, out


def test_workers_give_the_same_faces_as_threads(extraction: Callable[..., Extraction]) -> None:
    require_data()
    runs = {workers: extraction(f"input={VIDEO}", "runner.mode=parallel", f"runner.workers={workers}")
            for workers in ("0", "2")}
    assert "in 2 worker processes" in " ".join(runs["2"].result.stderr.split())
    assert "worker processes" not in runs["0"].result.stderr
    frames = {workers: run.alignments["frames"] for workers, run in runs.items()}
    assert list(frames["2"]) == _names(1, 91)  # written in input order
    assert frames["2"] == frames["0"]  # boxes, landmarks, crop hashes
    assert runs["2"].files == runs["0"].files and len(runs["2"].files) >= 80  # the face files, byte for byte
    summary = load_json(runs["2"].out / "run_summary.json")
    assert summary["workers"] == 2 and set(summary["model_s"]) == {"detector", "aligner"}
    assert all(seconds > 0 for seconds in summary["model_s"].values())  # the workers' timings came back


@pytest.mark.slow
@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_plugin_failing_in_a_worker_names_plugin_and_frame(tmp_path: Path, flaky_env: dict[str, str],
                                                            how: str) -> None:
    result, out = _flaky_run(tmp_path, flaky_env, how)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(errors) == 1, result.stderr
    assert "'flaky'" in errors[0] and f"faceswap_test_{MARKED_FRAME:06d}" in errors[0], errors[0]
    # every frame before the failing one is kept, none after it: a rerun resumes there
    assert list(load_json(out / "alignments.json")["frames"]) == _names(1, MARKED_FRAME - 1)


@pytest.mark.slow
def test_a_worker_that_dies_ends_the_run_naming_plugin_and_frame(tmp_path: Path, flaky_env: dict[str, str]) -> None:
    result, out = _flaky_run(tmp_path, flaky_env, "kill")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("facekit: error:")]
    assert len(errors) == 1, result.stderr
    assert "died (killed by SIGKILL)" in errors[0], errors[0]
    assert f"faceswap_test_{MARKED_FRAME:06d}" in errors[0] and "detector 'flaky'" in errors[0], errors[0]
    assert list(load_json(out / "alignments.json")["frames"]) == _names(1, MARKED_FRAME - 1)


@pytest.mark.slow
def test_a_hung_worker_still_stops_on_ctrl_c(tmp_path: Path, flaky_env: dict[str, str]) -> None:
    """One worker hangs on the marked frame; once the frames before it are journaled, Ctrl-C: the
    run exits as interrupted, keeping every frame it had journaled (a hang fails after ``HANG_S``)."""
    require_data()
    out = tmp_path / "faces"
    args = ["detector.fail_on_call=0", f"detector.frame_sha1={_frame_sha1(MARKED_FRAME)}", f"input={VIDEO}",
            "runner.progress=false", "runner.workers=2"]
    before, code, stderr = ctrl_c_once_hanging(args, out, tmp_path, flaky_env, journaled=MARKED_FRAME - 1)
    assert code == 130, f"exit {code}, not interrupted: {stderr}"
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert before[:MARKED_FRAME - 1] == _names(1, MARKED_FRAME - 1)
    frames = list(load_json(out / "alignments.json")["frames"])
    # everything finished is kept (the other worker may have finished frames after the hung one)
    assert frames[:len(before)] == before
    assert f"faceswap_test_{MARKED_FRAME:06d}" not in frames


def test_auto_starts_a_worker_a_core_for_long_cpu_runs_only() -> None:
    cpu, gpu = [0, 0], [0, 500]  # each plugin's GPU memory
    long = 10 * FRAMES_PER_WORKER
    assert choose_workers("auto", cpu, "parallel", long, cores=4) == 4
    assert choose_workers("auto", cpu, "parallel", 3 * FRAMES_PER_WORKER, cores=4) == 3  # each worker repays its start
    assert choose_workers("auto", cpu, "parallel", FRAMES_PER_WORKER, cores=4) is None  # one worker: threads
    assert choose_workers("auto", cpu, "parallel", long, cores=1) is None
    assert choose_workers("auto", gpu, "parallel", long, cores=4) is None  # a copy of the model per worker on the GPU
    assert choose_workers("auto", cpu, "serial", long, cores=4) is None
    assert choose_workers(3, cpu, "parallel", 5, cores=2) == 3  # asked for: as many as asked
    assert choose_workers(1000, cpu, "parallel", 3, cores=2) == 3  # but no more than the frames (it started 1,000)
    assert choose_workers(8, cpu, "parallel", 1, cores=2) is None  # one photo: threads
    assert choose_workers(8, cpu, "parallel", 0, cores=2) == 8  # a count not known: as asked
    assert choose_workers(1, cpu, "parallel", long, cores=4) is None
    assert choose_workers(0, cpu, "parallel", long, cores=4) is None
    assert choose_workers(2, cpu, "serial", long, cores=4) is None
    # a value that is neither auto nor a whole number never gets here: the config's check refuses
    # it (tests/app/test_cli.py's wrong values)


def test_a_bad_workers_value_is_one_line_before_any_work(tmp_path: Path) -> None:
    require_data()
    result = run_facekit(f"input={VIDEO}", f"output={tmp_path / 'faces'}", "runner.workers=-2", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("facekit: error: runner.workers=-2")
    assert not (tmp_path / "faces").exists()


def test_a_plugin_travels_to_a_worker_by_name_and_config_without_its_model() -> None:
    registry = default_registry()
    store = ModelStore(registry.models)
    plugin = load_plugin(registry, store, "detector", "yunet", {"score_threshold": 0.7})
    plugin.model  # noqa: B018 - built here: a session that cannot be pickled
    copy = pickle.loads(pickle.dumps(plugin))
    assert copy.spec.name == "yunet" and copy.config == plugin.config and copy.config.score_threshold == 0.7
    assert "model" not in copy.__dict__  # built on first use, in the worker


def _mark(record: FrameRecord) -> None:
    """A stage for the pool test: what a worker writes into the record must come back."""
    record.width = record.frame.index * 2
    record.height = int(record.frame.image.sum())  # the pixels reached the worker whole
    if record.frame.index == 39:
        time.sleep(0.3)  # the last frame is slow: the other worker has left before it comes back


@pytest.mark.slow
def test_a_pool_returns_every_record_in_order_and_ends_cleanly() -> None:
    """Workers leave as soon as they have sent their last result; a run that ends that way is not
    a worker dying, however the exits and the last results interleave (run several times)."""
    stages = [Stage("mark", OneByOne(_mark))]
    plan = WorkerPlan(2)
    payload = plan.payload(stages)
    assert payload is not None
    for attempt in range(5):
        records = [FrameRecord(Frame(name=f"f{i}", source="x", index=i, image=np.full((3, 5, 3), i % 7, np.uint8)))
                   for i in range(40)]
        sunk: list[FrameRecord] = []
        WorkerPool(plan, stages, payload, queue_size=4).run(iter(records), sunk.append)
        assert [r.frame.name for r in sunk] == [f"f{i}" for i in range(40)], attempt
        assert [(r.width, r.height) for r in sunk] == [(2 * i, 45 * (i % 7)) for i in range(40)], attempt
    assert stages[0].busy_s > 0  # the workers' timings came back


def _sum_slowly(record: FrameRecord) -> None:
    record.height = int(record.frame.image.sum())
    time.sleep(0.01)  # each worker holds both its frames most of the time: every slot is in use


@pytest.mark.parametrize("slots", [True, False], ids=["shared-slots", "pipe-only"])
def test_video_frames_reach_workers_whole_whatever_their_size(slots: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoded frames go to a worker through shared slots sized by the first frame; a larger one
    goes on the pipe, a smaller one in a slot. Every frame's pixels must arrive as they were sent,
    none overwritten by a later frame while its worker still held it."""
    from facekit.engine import frame_slots

    monkeypatch.setattr(frame_slots, "AVAILABLE", frame_slots.AVAILABLE and slots)
    stages = [Stage("sum", OneByOne(_sum_slowly))]
    plan = WorkerPlan(2)
    payload = plan.payload(stages)
    assert payload is not None
    shapes = [(60, 80, 3)] * 20 + [(61, 80, 3)] * 5 + [(30, 40, 3)] * 15
    records = [FrameRecord(Frame(name=f"f{i}", source="x", index=i,
                                 image=np.random.default_rng(i).integers(0, 256, shape, dtype=np.uint8)))
               for i, shape in enumerate(shapes)]
    expected = [int(r.frame.image.sum()) for r in records]
    sunk: list[FrameRecord] = []
    WorkerPool(plan, stages, payload, queue_size=8).run(iter(records), sunk.append)
    assert [r.frame.name for r in sunk] == [f"f{i}" for i in range(len(shapes))]
    assert [r.height for r in sunk] == expected


def test_workers_decode_image_files_and_report_unreadable_ones_in_order(tmp_path: Path) -> None:
    """Frames of image files travel as paths and each worker decodes its own (a 12 MP photo is
    36 MB of pixels to pipe); a file no worker can decode comes back in its place in the order."""
    stages = [Stage("mark", OneByOne(_mark))]
    plan = WorkerPlan(2)
    payload = plan.payload(stages)
    assert payload is not None
    records = []
    for i in range(12):
        path = tmp_path / f"f{i}.png"
        if i in (3, 7):
            path.write_bytes(b"not a picture")
        else:
            cv2.imwrite(str(path), np.full((4, 6, 3), i, np.uint8))
        records.append(FrameRecord(Frame(name=f"f{i}", source=str(path), index=i, path=str(path))))
    events: list[str] = []
    WorkerPool(plan, stages, payload, queue_size=4).run(
        iter(records), lambda record: events.append(f"{record.frame.name} {record.height}"),
        unreadable=lambda path, why, said: events.append(f"unreadable {Path(path).name}: {why}"))
    assert events == [f"unreadable f{i}.png: not a readable image" if i in (3, 7) else f"f{i} {4 * 6 * 3 * i}"
                      for i in range(12)]


def _slow(record: FrameRecord) -> None:
    """A tenth of a second a frame, every frame alike: long enough that the reader, which needs
    little CPU, reads ahead as far as it may even on a loaded machine (the uncapped case must see
    it pass the cap); alike, so the workers finish in order and a finished frame waits for no
    earlier one (frames finished out of order wait for the in-order sink, holding no pixels)."""
    time.sleep(0.1)


@pytest.mark.parametrize("max_bytes", [25 * 2 ** 20, None])
def test_frames_read_ahead_for_workers_stay_under_the_byte_limit(max_bytes: int | None) -> None:
    """Video frames are decoded in this process before a worker takes them: 10 MB frames under a
    25 MB cap wait in at most 3, plus the 2 each worker holds; the counts alone allow 16."""
    stages = [Stage("slow", OneByOne(_slow))]
    plan = WorkerPlan(2)
    payload = plan.payload(stages)
    assert payload is not None
    sunk: list[str] = []
    out: list[int] = []

    def frames():
        for i in range(40):
            out.append(i + 1 - len(sunk))  # read and not yet back, this one included
            yield FrameRecord(Frame(name=f"f{i}", source="x", index=i, image=np.zeros((10, 2 ** 20), np.uint8)))

    WorkerPool(plan, stages, payload, queue_size=16, max_bytes=max_bytes).run(
        frames(), lambda record: sunk.append(record.frame.name))
    assert sunk == [f"f{i}" for i in range(40)]
    if max_bytes is None:
        assert max(out) > 3 + 2 * 2 + 1
    else:
        assert max(out) <= 3 + 2 * 2 + 1  # one more may be back and not yet sunk


def _runs_on_threads_in_a_daemon() -> bool:
    from facekit.engine.pipeline import Pass, Pipeline

    built = []
    plan = WorkerPlan(2, prepare=[lambda: built.append("models")])
    pipeline = Pipeline([Pass("mark", [Stage("mark", OneByOne(_mark))])], queue_size=16, workers=plan)
    return pipeline._worker_pool() is None and built == ["models"]  # built here, for the threads


def test_a_daemon_process_runs_the_stages_on_threads() -> None:
    """A daemonic process may not have children (a sweep launcher's pool, say): no workers there,
    and the models the workers would have built are built in the process itself."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_runs_on_threads_in_a_daemon)


@pytest.mark.slow
def test_workers_filter_and_debug_like_threads(tmp_path: Path) -> None:
    """The identity filter travels to the workers too (its plugin rebuilt there, its references
    pickled): decisions, distances, kept, rejected and debug files all equal the threaded run's."""
    require_data()
    people = DATA / "images" / "people"
    photos = tmp_path / "photos"
    photos.mkdir()
    for person, name in (("p01", "img2.jpg"), ("p01", "img4.jpg"), ("p04", "img14.jpg"), ("p04", "img15.jpg")):
        (photos / f"{person}_{name}").symlink_to(people / person / name)
    runs = {}
    for workers in ("0", "2"):
        out = tmp_path / f"faces_{workers}"
        result = run_facekit(f"input={photos}", f"output={out}", f"runner.workers={workers}",
                             f"filter.refs=[{people / 'p01' / 'img1.jpg'}]", "filter.save_rejected=true",
                             "output.debug=true", "runner.progress=false", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert ("in 2 worker processes" in " ".join(result.stderr.split())) == (workers == "2")
        runs[workers] = (load_json(out / "alignments.json")["frames"], file_hashes(out, "**/*.png", "**/*.jpg"))
    frames, files = runs["2"]
    assert frames == runs["0"][0] and files == runs["0"][1]
    kept = {name: face["keep"] for name, frame in frames.items() for face in frame["faces"]}
    assert kept == {"p01_img2": True, "p01_img4": True, "p04_img14": False, "p04_img15": False}
    assert sum(name.startswith("rejected/") for name in files) == 2
    assert sum(name.startswith("debug/") for name in files) == 4


def test_a_cgroup_quota_caps_the_cores_auto_counts() -> None:
    """A container limited to 2 CPUs on a big host must not start a worker for every host core."""
    from facekit.engine.cores import cpus_from_quota, usable_cores

    assert cpus_from_quota("200000", "100000") == 2
    assert cpus_from_quota("150000", "100000") == 2  # 1.5 CPUs: a second worker still has half a core
    assert cpus_from_quota("50000", "100000") == 1
    assert cpus_from_quota("max", "100000") is None  # cgroup v2: no quota
    assert cpus_from_quota("-1", "100000") is None  # cgroup v1: no quota
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def _blocked_signals(record: FrameRecord) -> None:
    """A stage that reads its worker's blocked signals (SigBlk, a hex mask) into the record."""
    status = Path("/proc/self/status").read_text()
    record.width = int(status.split("SigBlk:")[1].split()[0], 16)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the signal mask from /proc")
def test_every_worker_starts_with_ctrl_c_and_sigterm_blocked() -> None:
    """A Ctrl-C while a worker imported its modules (before it ignores the signal) printed a
    traceback from each worker; the first worker missed the mask, as starting multiprocessing's
    resource tracker unblocks both signals."""
    import signal

    stages = [Stage("mask", OneByOne(_blocked_signals))]
    plan = WorkerPlan(2)
    payload = plan.payload(stages)
    assert payload is not None
    records = [FrameRecord(Frame(name=f"f{i}", source="x", index=i, image=np.zeros((2, 2, 3), np.uint8)))
               for i in range(8)]
    sunk: list[FrameRecord] = []
    WorkerPool(plan, stages, payload, queue_size=4).run(iter(records), sunk.append)
    stops = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    assert [record.width & stops for record in sunk] == [stops] * 8
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}  # this process: as before
