"""A third party's masker, installed the way pip installs a package: a small "neural" masker
(one linear layer over each pixel's colour) whose weights are a file this test writes, found by
its model id in the model cache. It is named with ``+masker=``, reads the frame's pixels, counts
in the GPU rule, and ``task=mask`` gives the masks that extracting with it gave."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import install_module, load_json, path_with, run_facekit
from conftest import require_data
from facekit.engine.gpu import FAKE_FREE_ENV
from facekit.output.masks import mask_from_dict

MODEL_ID, WEIGHTS = "tone-linear-v1", "tone.npy"
#: per-pixel logit = w . (B, G, R) / 255 + bias, thresholded at 0: warm, bright pixels (skin)
LAYER = np.array([-0.6, 0.1, 1.0, -0.25], dtype=np.float32)
GPU_MB = 700

TONE_MODULE = '''\
from dataclasses import dataclass

import cv2
import numpy as np

import facekit
from facekit.plugin import ModelFile, ModelSpec, PluginSpec


@dataclass
class ToneConfig:
    threshold: float = 0.0


class ToneMasker:
    def __init__(self, config, weights):
        self.config, self.layer = config, np.load(weights)

    def mask(self, image, requests):
        masks = []
        for request in requests:
            square = cv2.warpAffine(image, request.matrix, (request.size, request.size)).astype(np.float32) / 255
            logit = square @ self.layer[:3] + self.layer[3]
            masks.append(np.where(logit > self.config.threshold, 255, 0).astype(np.uint8))
        return masks


@facekit.hookimpl
def facekit_maskers():
    return [PluginSpec(name="tone", kind="masker", config_class=ToneConfig, model_ids=("%s",), needs=("image",),
                       gpu_memory_mb=%d, factory=lambda config, store: ToneMasker(config, store.path("%s", "%s")))]


@facekit.hookimpl
def facekit_models():
    return [ModelSpec(id="%s", files=(ModelFile("%s", "%s", %d),))]
'''


def weights_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, LAYER)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tone_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = weights_bytes()
    site = tmp_path_factory.mktemp("site")
    source = TONE_MODULE % (MODEL_ID, GPU_MB, MODEL_ID, WEIGHTS, MODEL_ID, WEIGHTS, hashlib.sha256(data).hexdigest(),
                            len(data))
    install_module(site, "facekit_tone_masker", source, "tone")
    return path_with(site)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache")
    (folder / "models" / MODEL_ID).mkdir(parents=True)
    (folder / "models" / MODEL_ID / WEIGHTS).write_bytes(weights_bytes())
    return folder


def _run(tmp_path: Path, env: dict[str, str], *args: str):
    result = run_facekit(*args, "runner.progress=false", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    return result


def _expected(frame: np.ndarray, entry: dict) -> np.ndarray:
    stored = mask_from_dict(entry)
    square = cv2.warpAffine(frame, stored.matrix, (128, 128)).astype(np.float32) / 255
    return np.where(square @ LAYER[:3] + LAYER[3] > 0, 255, 0).astype(np.uint8)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory, tone_env: dict[str, str], cache: Path) -> Path:
    out = tmp_path_factory.mktemp("tone") / "faces"
    _run(out.parent, {**tone_env, FAKE_FREE_ENV: "1500"}, f"input={require_data() / 'images' / 'scenes'}",
         f"output={out}", "+masker=tone", "output.masks=[components]", f"models.cache_dir={cache}")
    return out


def test_a_third_party_masker_named_with_plus_masker_masks_each_face_from_the_frames_pixels(extracted: Path) -> None:
    scenes = require_data() / "images" / "scenes"
    frames = load_json(extracted / "alignments.json")["frames"]
    checked = 0
    for frame in frames.values():
        image = cv2.imread(str(scenes / Path(frame["source"]).name))
        for face in frame["faces"]:
            assert set(face["mask"]) == {"components", "tone"}
            tone = mask_from_dict(face["mask"]["tone"]).pixels
            assert np.array_equal(tone, _expected(image, face["mask"]["tone"]))
            checked += 1
    assert checked == 33


def test_a_maskers_gpu_memory_counts_in_the_pass_plan(extracted: Path) -> None:
    decision = load_json(extracted / "run_summary.json")["gpu"]["decision"]
    assert decision.startswith(f"serial: components+tone {GPU_MB} MB + margin 1024 MB > 1500 MB free"), decision


def test_task_mask_with_the_third_party_masker_reads_the_frames_again_and_gives_the_same_masks(
        tmp_path: Path, extracted: Path, tone_env: dict[str, str], cache: Path) -> None:
    out = tmp_path / "faces"
    _run(tmp_path, tone_env, f"input={require_data() / 'images' / 'scenes'}", f"output={out}")
    _run(tmp_path, tone_env, "task=mask", f"input={out}", "+masker=tone", "output.masks=[components]",
         f"models.cache_dir={cache}")
    mine, theirs = load_json(out / "alignments.json")["frames"], load_json(extracted / "alignments.json")["frames"]
    assert [[face["mask"] for face in frame["faces"]] for frame in mine.values()] == \
        [[face["mask"] for face in frame["faces"]] for frame in theirs.values()]


def test_a_third_party_maskers_missing_weights_stop_the_run_with_one_line(tmp_path: Path,
                                                                         tone_env: dict[str, str]) -> None:
    result = run_facekit(f"input={require_data() / 'images' / 'scenes' / 'biden.jpg'}", f"output={tmp_path / 'o'}",
                         "+masker=tone", f"models.cache_dir={tmp_path / 'empty'}", cwd=tmp_path, env=tone_env)
    assert result.returncode == 2 and WEIGHTS in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
