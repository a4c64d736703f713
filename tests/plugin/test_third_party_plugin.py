"""A third-party plugin, installed the way pip would leave it, runs end to end through the CLI.

The test writes a throwaway package into a temporary site folder: a module that declares a
detector backed by OpenCV's Haar cascade (real weights, shipped inside opencv-python-headless)
and a ``*.dist-info`` whose ``entry_points.txt`` registers it in the ``facekit`` group. Putting
that folder on PYTHONPATH is all it takes for ``importlib.metadata`` to find it, exactly as for
an installed package; nothing in facekit knows about it.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import pytest

from facekit.plugin.registry import default_registry
from cli_helpers import install_module, load_json, path_with, run_facekit
from conftest import SCENES, require_data

CASCADE = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
BUILT_IN_DETECTORS = tuple(default_registry().names("detector"))

# The module a third party would publish. {sha256} and {size} are filled in from the cascade
# file that this machine's OpenCV ships, so the model store really verifies what it loads.
PLUGIN_MODULE = '''\
"""A toy third-party facekit plugin: OpenCV's Haar cascade as a face detector."""
from dataclasses import dataclass

import facekit.plugin.hookspecs
from facekit.models.spec import ModelFile, ModelSpec
from facekit.plugin.spec import PluginSpec
from facekit.records import Detection

MODEL_ID = "toy-haar-frontalface"
MODEL_FILE = "haarcascade_frontalface_default.xml"


@dataclass
class HaarConfig:
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 30


class HaarDetector:
    def __init__(self, config: HaarConfig, model_path: str) -> None:
        import cv2

        self.config = config
        self.cascade = cv2.CascadeClassifier(model_path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load a cascade from {{model_path}}")

    def detect(self, images):
        import cv2

        found = []
        for image in images:
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            boxes = self.cascade.detectMultiScale(
                gray, scaleFactor=self.config.scale_factor, minNeighbors=self.config.min_neighbors,
                minSize=(self.config.min_size, self.config.min_size))
            found.append([Detection((float(x), float(y), float(x + w), float(y + h)), 1.0)
                          for x, y, w, h in boxes])
        return found


def _build(config: HaarConfig, store) -> HaarDetector:
    return HaarDetector(config, str(store.path(MODEL_ID, MODEL_FILE)))


@facekit.plugin.hookspecs.hookimpl
def facekit_detectors():
    return [PluginSpec(name="haar", kind="detector", factory=_build, config_class=HaarConfig,
                       model_ids=(MODEL_ID,), gpu_memory_mb=0,
                       description="toy: OpenCV Haar cascade, frontal faces")]


@facekit.plugin.hookspecs.hookimpl
def facekit_models():
    return [ModelSpec(id=MODEL_ID, package="cv2", package_dir="data",
                      files=(ModelFile(MODEL_FILE, "{sha256}", {size}),),
                      description="OpenCV frontal face Haar cascade")]
'''


@pytest.fixture(scope="module")
def haar_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    data = CASCADE.read_bytes()
    install_module(site, "toy_haar_facekit",
                   PLUGIN_MODULE.format(sha256=hashlib.sha256(data).hexdigest(), size=len(data)), "haar")
    return path_with(site)


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("facekit: error:"), result.stderr
    return lines[0]


def test_third_party_detector_runs_end_to_end(tmp_path: Path, haar_env: dict[str, str]) -> None:
    require_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=haar", f"input={SCENES / 'obama.jpg'}", f"output={out}",
                         "runner.progress=false", cwd=tmp_path, env=haar_env)
    assert result.returncode == 0, result.stderr
    alignments = load_json(out / "alignments.json")
    detector = alignments["meta"]["plugins"]["detector"]
    assert detector == {"name": "haar", "config": {"scale_factor": 1.1, "min_neighbors": 5, "min_size": 30}}
    assert alignments["meta"]["plugins"]["aligner"]["name"] == "facemesh"
    frame = alignments["frames"]["obama"]
    assert len(frame["faces"]) == 1
    face = frame["faces"][0]
    assert face["score"] == 1.0 and face["points5"] is None  # what the Haar plugin reports
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= frame["width"] and 0 <= y1 < y2 <= frame["height"]
    assert len(face["landmarks"]) == 68
    # the aligner worked from the Haar box: the landmarks' centre lies inside it
    cx = sum(p[0] for p in face["landmarks"]) / 68
    cy = sum(p[1] for p in face["landmarks"]) / 68
    assert x1 < cx < x2 and y1 < cy < y2
    crop = cv2.imread(str(out / face["crop"]))
    assert crop is not None and crop.shape == (256, 256, 3)


def test_third_party_options_reach_the_plugin_config(tmp_path: Path, haar_env: dict[str, str]) -> None:
    require_data()
    out = tmp_path / "faces"
    # min_neighbors=1 keeps weak cascade hits that the default (5) merges away: more faces
    result = run_facekit("+detector=haar", "detector.min_neighbors=1", "detector.scale_factor=1.1",
                         f"input={SCENES / 'obama.jpg'}", f"output={out}", "runner.progress=false",
                         cwd=tmp_path, env=haar_env)
    assert result.returncode == 0, result.stderr
    alignments = load_json(out / "alignments.json")
    assert alignments["meta"]["plugins"]["detector"]["config"]["min_neighbors"] == 1
    assert len(alignments["frames"]["obama"]["faces"]) > 1


def test_task_plugins_lists_the_third_party_plugin(tmp_path: Path, haar_env: dict[str, str]) -> None:
    result = run_facekit("task=plugins", cwd=tmp_path, env=haar_env)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.search(r"\bhaar\b", line)]
    assert len(rows) == 1, result.stdout
    assert "detector" in rows[0] and "toy-haar-frontalface" in rows[0] and "present" in rows[0]
    for name in BUILT_IN_DETECTORS:
        assert re.search(rf"\b{name}\b", result.stdout), name


def test_help_lists_the_third_party_plugin_under_detector(tmp_path: Path, haar_env: dict[str, str]) -> None:
    result = run_facekit("--help", cwd=tmp_path, env=haar_env)
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("== Config ==")[0]  # the groups; the config below has "detector: null"
    groups = dict(line.split(": ", 1) for line in listing.splitlines()
                  if re.match(r"^(detector|aligner): ", line))
    assert set(groups["detector"].split(", ")) == {"haar", *BUILT_IN_DETECTORS}
    assert "haar" not in groups["aligner"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["+detector=haar", "+detector.no_such=1"], "no_such"),
        (["+detector=haar", "detector.min_neighbors=many"], "haar"),
        (["+detector=nosuch"], f"choose one of: {', '.join(sorted({'haar', *BUILT_IN_DETECTORS}))}"),
        (["+detector=haar", "detector.no_such=1"], "no_such"),
    ],
    ids=["unknown-option-appended", "bad-value", "unknown-plugin", "unknown-option"],
)
def test_wrong_third_party_options_give_one_line_errors(tmp_path: Path, haar_env: dict[str, str],
                                                        args: list[str], expected: str) -> None:
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8")  # exists: the input check is not what fails
    result = run_facekit(*args, f"input={tmp_path / 'x.jpg'}", f"output={tmp_path / 'out'}",
                         "runner.progress=false", cwd=tmp_path, env=haar_env)
    assert expected in _one_line_error(result)


def test_a_third_party_module_that_fails_to_import_is_skipped(tmp_path: Path) -> None:
    require_data()
    site = tmp_path / "site"
    install_module(site, "toy_broken_facekit", 'raise RuntimeError("toy plugin broken on purpose")\n', "broken")
    env = path_with(site)

    listed = run_facekit("task=plugins", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    warnings = [line for line in listed.stderr.splitlines() if "'broken'" in line]
    assert len(warnings) == 1, listed.stderr
    assert "toy_broken_facekit" in warnings[0] and "broken on purpose" in warnings[0]
    assert "Traceback" not in listed.stderr
    for name in (*BUILT_IN_DETECTORS, "facemesh"):
        assert re.search(rf"\b{name}\b", listed.stdout), name

    out = tmp_path / "faces"
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", f"output={out}", "runner.progress=false",
                         cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "'broken'" in result.stderr
    alignments = load_json(out / "alignments.json")
    assert alignments["meta"]["plugins"]["detector"]["name"] == "yunet"
    assert len(alignments["frames"]["obama"]["faces"]) == 1


def _toy_module(hook_body: str, head: str = "") -> str:
    """A one-hook third-party module: ``facekit_detectors`` with ``hook_body``; ``C`` is an empty config."""
    return (f"from dataclasses import dataclass\nfrom typing import Literal\n\nfrom facekit.plugin import hookimpl\n"
            f"from facekit.plugin.spec import PluginSpec\n\n{head}\n@dataclass\nclass C:\n    pass\n\n\n"
            f"@hookimpl\ndef facekit_detectors():\n    {hook_body}\n")


BADLY_DECLARED = {
    "raising-hook": (_toy_module("raise RuntimeError('hook broken on purpose')"), "hook broken on purpose"),
    "no-defaults": (_toy_module("return [PluginSpec('nodefaults', 'detector', lambda c, s: None, Needy)]",
                                "@dataclass\nclass Needy:\n    needed: int\n"), "cannot be made from its defaults"),
    "wrong-kind": (_toy_module("return [PluginSpec('wrongkind', 'aligner', lambda c, s: None, C)]"),
                   "gave kind 'aligner', not a detector PluginSpec"),
}


@pytest.mark.parametrize("declared", list(BADLY_DECLARED))
def test_a_badly_declared_package_is_skipped_with_a_warning_naming_it_and_every_command_still_runs(
        tmp_path: Path, declared: str) -> None:
    """A hook that raises, a config class without defaults, a spec of another kind: each ended
    every command, --help and task=plugins included, in a traceback (or an error naming no
    package), though none of them used it."""
    require_data()
    source, said = BADLY_DECLARED[declared]
    site = tmp_path / "site"
    install_module(site, "toy_bad_facekit", source, "bad")
    env = path_with(site)
    listed = run_facekit("task=plugins", cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    warnings = [line for line in listed.stderr.splitlines() if "package bad" in line]
    assert len(warnings) == 1 and said in warnings[0], listed.stderr
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", "output=faces", "runner.progress=false", cwd=tmp_path, env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(load_json(tmp_path / "faces" / "alignments.json")["frames"]["obama"]["faces"]) == 1


def test_an_entry_point_named_like_a_built_in_hides_nothing(tmp_path: Path) -> None:
    """Entry point names are each package's own: a package whose entry point is called "yunet"
    took the name, so the built-in yunet module was never registered and the default run failed."""
    site = tmp_path / "site"
    install_module(site, "toy_clash_facekit", _toy_module("return [PluginSpec('clash-det', 'detector', "
                                                          "lambda c, s: None, C)]"), "yunet")
    listed = run_facekit("task=plugins", cwd=tmp_path, env=path_with(site))
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"\byunet\b", listed.stdout) and "clash-det" in listed.stdout, listed.stdout


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_factory_that_raises_is_one_line_naming_the_plugin(tmp_path: Path, workers: str) -> None:
    """It was a Hydra traceback (threads) or "stage failed: RuntimeError" (worker processes)."""
    require_data()
    site = tmp_path / "site"
    install_module(site, "toy_unbuildable_facekit", _toy_module(
        "return [PluginSpec('unbuildable', 'detector', build, C)]",
        "def build(config, store):\n    raise RuntimeError('factory broken on purpose')\n"), "unbuildable")
    result = run_facekit("+detector=unbuildable", f"input={SCENES / 'obama.jpg'}", "output=faces",
                         "runner.progress=false", f"runner.workers={workers}", cwd=tmp_path, env=path_with(site))
    assert _one_line_error(result) == ("facekit: error: detector 'unbuildable' could not be built: "
                                       "RuntimeError: factory broken on purpose")


def test_a_config_class_of_types_omegaconf_cannot_check_is_one_line_naming_the_plugin(tmp_path: Path) -> None:
    require_data()
    site = tmp_path / "site"
    install_module(site, "toy_literal_facekit", _toy_module(
        "return [PluginSpec('literal', 'detector', lambda c, s: None, Speed)]",
        "@dataclass\nclass Speed:\n    speed: Literal['fast', 'slow'] = 'fast'\n"), "literal")
    result = run_facekit("+detector=literal", f"input={SCENES / 'obama.jpg'}", "output=faces", "runner.progress=false",
                         cwd=tmp_path, env=path_with(site))
    assert _one_line_error(result).startswith("facekit: error: detector literal: its config class cannot be checked")


@pytest.mark.parametrize("declared, said", [
    ("metric='manhattan', default_threshold=0.5", "its metric 'manhattan' is none of cosine, euclidean, euclidean_l2"),
    ("metric='cosine', default_threshold=-1.0", "its default_threshold -1.0 is not a distance"),
], ids=["metric", "threshold"])
def test_an_identity_plugin_declaring_a_metric_or_threshold_facekit_cannot_use_is_skipped_naming_it(
        tmp_path: Path, declared: str, said: str) -> None:
    """It was listed as "manhattan <= 0.5", then a filter failed with "unknown distance metric"
    (naming no plugin) or blamed the user's filter.threshold, which the user never set."""
    site = tmp_path / "site"
    install_module(site, "toy_metric_facekit", (
        "from dataclasses import dataclass\n\nfrom facekit.plugin import hookimpl\nfrom facekit.plugin.spec import "
        "PluginSpec\n\n\n@dataclass\nclass C:\n    pass\n\n\n@hookimpl\ndef facekit_identities():\n"
        f"    return [PluginSpec('oddmetric', 'identity', lambda c, s: None, C, {declared})]\n"), "oddmetric")
    listed = run_facekit("task=plugins", cwd=tmp_path, env=path_with(site))
    assert listed.returncode == 0 and "oddmetric" not in listed.stdout, listed.stdout
    assert f"package oddmetric: identity 'oddmetric' skipped: {said}" in listed.stderr, listed.stderr


def test_the_metrics_a_plugin_may_declare_are_those_the_filter_computes() -> None:
    from facekit.faces.identity import _METRICS
    from facekit.plugin.spec import DISTANCE_METRICS

    assert tuple(_METRICS) == DISTANCE_METRICS
