"""Batches: a plugin's stage gets the batch it is configured for, on threads and in worker
processes, the faces of a batched run are a batch-size-1 run's, and the GPU memory a plugin
reports follows its configured batch."""
from __future__ import annotations

import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import install_module, load_json, path_with, run_facekit
from conftest import SCENES, require_data
from facekit.errors import StageError
from facekit.engine.gpu import FAKE_FREE_ENV
from facekit.models.store import ModelStore
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.spec import PluginSpec
from facekit.plugin.registry import default_registry
from facekit.engine.threads import Stage, run_stages
from facekit.records import Frame, FrameRecord
from facekit.engine.workers import WorkerPlan, WorkerPool
from facekit_plugins import s3fd
from test_s3fd import LAYERS, write_published_file

HANG_S = 60  # a run that has not ended by then never will: far beyond what any of these takes
#: Photos of different sizes and shapes (910x1137 to 320x240), one to 19 people in them.
PHOTOS = ("obama.jpg", "two_people.jpg", "obama_small.jpg", "faceswap_test_img3.jpg", "selfie-many-people.jpg")


# -- a plugin's stage gets its configured batch ---------------------------------------------------

# A detector that appends the size of every batch it gets (and its process) to the file in its config.
RECORDING_MODULE = '''\
import os
from dataclasses import dataclass

import facekit
from facekit.plugin.spec import PluginSpec
from facekit.records import Detection


@dataclass
class RecordingConfig:
    log: str = ""
    batch_size: int = 1


class RecordingDetector:
    def __init__(self, config):
        self.config = config

    def detect(self, images):
        with open(self.config.log, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {len(images)}\\n")
        return [[Detection((4.0, 4.0, 60.0, 70.0), 0.9)] for _ in images]


@facekit.hookimpl
def facekit_detectors():
    return [PluginSpec(name="recording", kind="detector", factory=lambda config, store: RecordingDetector(config),
                       config_class=RecordingConfig)]
'''


@pytest.fixture(scope="module")
def recording_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    install_module(site, "toy_recording_facekit", RECORDING_MODULE, "recording")
    return path_with(site)


def _batches_by_process(log: Path) -> dict[int, list[int]]:
    batches: dict[int, list[int]] = defaultdict(list)
    for line in log.read_text(encoding="utf-8").splitlines():
        pid, size = line.split()
        batches[int(pid)].append(int(size))
    return dict(batches)


def _noise_photos(folder: Path, count: int) -> Path:
    """``count`` PNGs of noise, no two the same size, each slower to decode than the recording
    detector is to run: a detect stage that took what was queued would get them one at a time."""
    import cv2

    folder.mkdir()
    for index in range(count):
        shape = (600 + 23 * index, 800 - 31 * index, 3)
        pixels = np.random.default_rng(index).integers(0, 256, shape, dtype=np.uint8)
        cv2.imwrite(str(folder / f"p{index:02d}.png"), pixels)
    return folder


@pytest.mark.parametrize("workers", [0, 2], ids=["threads", "worker-processes"])
def test_detector_batch_size_3_gives_the_detector_batches_of_3(tmp_path: Path, recording_env: dict[str, str],
                                                               workers: int) -> None:
    """Seven photos at detector.batch_size=3: on threads the detector gets 3, 3 and the last 1;
    in worker processes each worker gets batches of 3 but for its last, and every photo once."""
    photos = _noise_photos(tmp_path / "photos", 7)
    log, out = tmp_path / "batches.txt", tmp_path / "faces"
    result = run_facekit("+detector=recording", f"detector.log={log}", "detector.batch_size=3", f"input={photos}",
                         f"output={out}", "runner.mode=parallel", f"runner.workers={workers}", "runner.progress=false",
                         cwd=tmp_path, env=recording_env)
    assert result.returncode == 0, result.stderr
    assert load_json(out / "run_summary.json")["workers"] == workers
    assert list(load_json(out / "alignments.json")["frames"]) == [f"p{i:02d}" for i in range(7)]
    batches = _batches_by_process(log)
    if workers == 0:
        assert list(batches.values()) == [[3, 3, 1]]
        return
    assert len(batches) == 2 and sum(map(sum, batches.values())) == 7, batches
    for sizes in batches.values():
        assert all(size == 3 for size in sizes[:-1]) and 1 <= sizes[-1] <= 3, batches


def test_the_batch_size_in_the_config_overrides_the_plugins_default() -> None:
    registry = default_registry()
    store = ModelStore(registry.models)
    assert load_plugin(registry, store, "detector", "s3fd").batch_size == s3fd.S3FDConfig.batch_size == 4
    assert load_plugin(registry, store, "detector", "s3fd", {"batch_size": 7}).batch_size == 7


def _sizes_into(seen: list[int]):
    def work(batch: list[FrameRecord]) -> None:
        seen.append(len(batch))

    return work


def _records(count: int, nbytes: int = 16) -> list[FrameRecord]:
    return [FrameRecord(Frame(f"f{i}", "x", i, np.zeros(nbytes, np.uint8))) for i in range(count)]


def test_a_batching_stage_on_threads_waits_for_a_full_batch_from_a_slow_reader() -> None:
    """Frames read one every 20 ms still reach a stage of batch 4 four at a time: a plugin gets
    its configured batch whatever the pace of the input, and the rest at the end."""
    seen: list[int] = []

    def slowly():
        for record in _records(10):
            time.sleep(0.02)
            yield record

    sunk: list[str] = []
    run_stages(slowly(), [Stage("detect", _sizes_into(seen), batch_size=4)], lambda r: sunk.append(r.frame.name),
               queue_size=16)
    assert seen == [4, 4, 2]
    assert sunk == [f"f{i}" for i in range(10)]


def test_a_batching_stage_under_the_byte_limit_takes_what_fits_rather_than_wait_for_ever() -> None:
    """Only two 1 MB frames may be in flight: a stage of batch 4 that waited for four would wait
    for ever (the reader waits for frames to leave); it runs the two it has."""
    seen: list[int] = []
    sunk: list[str] = []
    run = threading.Thread(target=run_stages, daemon=True, kwargs=dict(
        records=iter(_records(7, 2 ** 20)), stages=[Stage("detect", _sizes_into(seen), batch_size=4)],
        sink=lambda r: sunk.append(r.frame.name), queue_size=16, max_bytes=2 * 2 ** 20))
    run.start()
    run.join(timeout=HANG_S)
    assert not run.is_alive(), f"the stage waited for a batch that could not come; it got {seen}"
    assert sunk == [f"f{i}" for i in range(7)]
    assert sum(seen) == 7 and max(seen) <= 2


class _Sizes:
    """A batching stage for a worker pool: records its batch sizes in the records themselves (what a
    worker writes into a record comes back), and fails on a batch holding frame ``fail_at``."""

    def __init__(self, fail_at: int = -1) -> None:
        self.fail_at = fail_at

    def __call__(self, batch: list[FrameRecord]) -> None:
        if any(record.frame.index == self.fail_at for record in batch):
            raise StageError(f"failed on frame {', '.join(r.frame.name for r in batch)}")
        for record in batch:
            record.width = len(batch)


def test_one_worker_process_gets_its_frames_in_batches_of_the_stages_size() -> None:
    stages = [Stage("detect", _Sizes(), batch_size=3)]
    plan = WorkerPlan(1)
    sunk: list[FrameRecord] = []
    WorkerPool(plan, stages, plan.payload(stages), queue_size=4).run(iter(_records(8)), sunk.append)
    assert [r.frame.name for r in sunk] == [f"f{i}" for i in range(8)]
    assert [r.width for r in sunk] == [3, 3, 3, 3, 3, 3, 2, 2]


def test_a_batch_failing_in_a_worker_keeps_the_frames_before_the_batch() -> None:
    stages = [Stage("detect", _Sizes(fail_at=7), batch_size=3)]
    plan = WorkerPlan(1)
    sunk: list[str] = []
    with pytest.raises(StageError, match="f6, f7, f8"):
        WorkerPool(plan, stages, plan.payload(stages), queue_size=4).run(
            iter(_records(12)), lambda r: sunk.append(r.frame.name))
    assert sunk == [f"f{i}" for i in range(6)]


# -- s3fd in batches finds what it finds one photo at a time ---------------------------------------

def _weights_that_see(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """Weights in the published layout whose detections depend on the pixels: He-scaled random
    convolutions keep the image's signal through VGG-16 (test_s3fd's small ones wash it out), and
    the stride-32 head turns it into face scores and box offsets that vary from cell to cell; the
    other heads say 'background'. Padding (zero after the mean) scores 0.5, under the threshold."""
    values: dict[str, list[np.ndarray]] = {}
    for name, shapes in LAYERS.items():
        if len(shapes) == 1:  # an L2 normalisation's scale
            values[name] = [np.ones(shapes[0], np.float32)]
            continue
        kernel, bias = shapes
        fan_in = int(np.prod(kernel[:3]))
        values[name] = [rng.normal(0, np.sqrt(2 / fan_in), kernel).astype(np.float32), np.zeros(bias, np.float32)]
    for name, weights in values.items():
        if "mbox" not in name:
            continue
        kernel, bias = weights
        if name == "fc7_mbox_conf":
            kernel[..., 0] = 0  # background logit 0; the face logit varies with the features
            kernel[..., 1] = rng.normal(0, 4e-4, kernel.shape[:3])
        elif name == "fc7_mbox_loc":
            kernel[:] = rng.normal(0, 1.5e-4, kernel.shape)  # offsets of about 0.5
        else:
            kernel[:] = 0
            if name.endswith("conf"):
                bias[0] = 10.0  # background
    return values


@pytest.fixture(scope="module")
def s3fd_run(tmp_path_factory: pytest.TempPathFactory):
    """A model cache holding test-made S3FD weights, a folder of photos (links to the shared data),
    and a way to run the CLI on them; with the batch-size-1 run's frames as the reference."""
    require_data()
    home = tmp_path_factory.mktemp("facekit_home")
    folder = home / "models" / s3fd.MODEL_ID
    folder.mkdir(parents=True)
    write_published_file(folder / s3fd.MODEL_FILE, _weights_that_see(np.random.default_rng(0)))
    photos = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        (photos / name).symlink_to(SCENES / name)

    def run(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Plenty of free GPU memory is pretended, so ``auto`` runs detect and align side by side
        and says what s3fd needs; the model itself runs on the CPU."""
        result = run_facekit("+detector=s3fd", "detector.device=cpu", "+aligner=facemesh", "aligner.passes=1",
                             f"input={photos}", f"output={out}", "runner.mode=auto", "runner.progress=false", *args,
                             cwd=out.parent, env={"FACEKIT_HOME": str(home), FAKE_FREE_ENV: "100000"}, timeout=600)
        assert result.returncode == 0, result.stderr
        return result

    reference = tmp_path_factory.mktemp("one_at_a_time") / "faces"
    run(reference, "detector.batch_size=1", "runner.workers=0")
    summary = load_json(reference / "run_summary.json")
    assert summary["mode"] == "parallel" and "s3fd 2048 MB" in summary["gpu"]["decision"]  # 4928 - 3 x 960
    return run, load_json(reference / "alignments.json")["frames"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2], ids=["threads", "worker-processes"])
def test_s3fd_in_batches_of_3_finds_the_faces_it_finds_one_photo_at_a_time(s3fd_run, tmp_path: Path,
                                                                          workers: int) -> None:
    """Five photos of different sizes at detector.batch_size=3 give every photo the boxes and
    scores of a batch-size-1 run: each is letterboxed on its own, and its detections are mapped
    back to its own size. A batched convolution sums in another order, so raw boxes move by about
    1e-4 px: boxes and scores are compared as stored (2 and 4 decimals) give or take one step of
    that rounding, and the landmarks FaceMesh puts on these random boxes (one pass; a second
    pass from the first mesh turns 1e-4 px into up to 2 px on boxes that hold no face) within
    half a pixel. A photo given another photo's detections, or mapped at another's scale, is
    off by tens of pixels."""
    run, alone = s3fd_run
    out = tmp_path / "faces"
    result = run(out, "detector.batch_size=3", f"runner.workers={workers}")
    summary = load_json(out / "run_summary.json")
    assert summary["workers"] == workers
    assert "s3fd 3968 MB" in summary["gpu"]["decision"]  # the memory reported at batch 3: 4928 - 960
    if workers:
        assert "in 2 worker processes" in " ".join(result.stderr.split())
    together = load_json(out / "alignments.json")["frames"]
    assert list(together) == list(alone) and sorted(alone) == sorted(Path(name).stem for name in PHOTOS)
    assert all(alone[name]["faces"] for name in alone), {name: len(alone[name]["faces"]) for name in alone}
    for name, frame in alone.items():
        got = together[name]
        assert (got["width"], got["height"]) == (frame["width"], frame["height"])
        assert len(got["faces"]) == len(frame["faces"]), name
        for mine, theirs in zip(got["faces"], frame["faces"]):
            np.testing.assert_allclose(mine["box"], theirs["box"], rtol=0, atol=0.0101, err_msg=name)
            assert mine["score"] == pytest.approx(theirs["score"], rel=0, abs=1.01e-4), name
            np.testing.assert_allclose(mine["landmarks"], theirs["landmarks"], rtol=0, atol=0.5, err_msg=name)


# -- the GPU memory a plugin reports follows its configured batch -----------------------------------

def test_s3fd_reports_gpu_memory_for_its_configured_batch() -> None:
    registry = default_registry()
    store = ModelStore(registry.models)
    assert load_plugin(registry, store, "detector", "s3fd").gpu_memory_mb == 4928  # faceswap's figure at 4
    assert load_plugin(registry, store, "detector", "s3fd", {"batch_size": 8}).gpu_memory_mb == 4928 + 960 * 4
    assert load_plugin(registry, store, "detector", "s3fd", {"batch_size": 1}).gpu_memory_mb == 4928 - 960 * 3


def test_a_cpu_plugin_reports_no_gpu_memory_whatever_its_batch() -> None:
    from dataclasses import dataclass

    @dataclass
    class Config:
        batch_size: int = 2

    spec = PluginSpec(name="cpu", kind="detector", factory=lambda config, store: None, config_class=Config,
                      gpu_memory_mb=0, batch_size=2, gpu_memory_per_item_mb=50)
    assert LoadedPlugin(spec, Config(batch_size=16), None).gpu_memory_mb == 0
    assert LoadedPlugin(spec, Config(batch_size=16), None).batch_size == 16
