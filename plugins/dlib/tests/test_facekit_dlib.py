"""facekit-dlib, installed: its plugins are discovered, find the faces, place the points, tell
people apart, and run through the ``facekit`` command like built-ins.

Run it with ``pytest plugins/dlib/tests`` once the package is installed; facekit's own suite runs
it too (tests/test_dlib_plugin.py), so CI, which installs ``./plugins/dlib``, tests it. It uses the
shared test data (``../shared/data`` next to facekit's checkout, or ``$FACEKIT_TEST_DATA``) and
skips with the reason when that is absent. Everything runs offline on the CPU in about 30 s; most
of it is dlib's CNN detector, which sees each image at 800 px.

This module depends on nothing in facekit's tests/ folder, so the package can be tested on its own;
its small ``run_facekit`` does what facekit's ``tests/cli_helpers.run_facekit`` does.
"""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("facekit_dlib", reason="facekit-dlib is not installed (pip install ./plugins/dlib)")

from facekit.faces.identity import distances  # noqa: E402
from facekit.media.sources import read_image  # noqa: E402
from facekit.models.store import ModelStore, package_dir  # noqa: E402
from facekit.plugin.loading import LoadedPlugin, load_plugin  # noqa: E402
from facekit.plugin.registry import default_registry  # noqa: E402
from facekit.records import Detection  # noqa: E402

DATA = Path(os.environ.get("FACEKIT_TEST_DATA") or Path(__file__).resolve().parents[4] / "shared" / "data")
SCENES = DATA / "images" / "scenes"
PEOPLE = DATA / "images" / "people"
EXPECTED_FACES = {"obama.jpg": 1, "biden.jpg": 1, "two_people.jpg": 2}
SAME_PAIR = ("p01/img1.jpg", "p01/img2.jpg")
DIFFERENT_PAIR = ("p01/img1.jpg", "p08/img22.jpg")  # the nearest different-person pair for dlib


def need_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared test data not found at {DATA} (set FACEKIT_TEST_DATA)")
    return DATA


def run_facekit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``facekit`` command as a user runs it, offline."""
    env = {**os.environ, "FACEKIT_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "facekit", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache: the weights must come from the installed face_recognition_models."""
    home = tmp_path_factory.mktemp("facekit_home")
    monkeypatch.setenv("FACEKIT_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    return ModelStore(default_registry().models, cache_dir=tmp_path_factory.mktemp("empty_cache"), offline=True)


@pytest.fixture(scope="module")
def plugins(store: ModelStore) -> dict[str, LoadedPlugin]:
    registry = default_registry()
    return {name: load_plugin(registry, store, kind, name)
            for kind, name in (("detector", "dlib-hog"), ("detector", "dlib-cnn"), ("aligner", "dlib"),
                               ("identity", "dlib-resnet"))}


@pytest.fixture(scope="module")
def found(plugins: dict[str, LoadedPlugin]) -> dict[tuple[str, str], list[Detection]]:
    """Detections per (detector, image), each computed once (dlib's CNN takes seconds an image)."""
    need_data()
    return {(detector, name): plugins[detector].model.detect([read_image(SCENES / name)])[0]
            for detector in ("dlib-hog", "dlib-cnn") for name in EXPECTED_FACES}


def test_registry_lists_the_four_plugins(store: ModelStore) -> None:
    registry = default_registry()
    assert {"dlib-hog", "dlib-cnn"} <= set(registry.names("detector"))
    assert "dlib" in registry.names("aligner")
    assert "dlib-resnet" in registry.names("identity")
    resnet = registry.get("identity", "dlib-resnet")
    assert (resnet.metric, resnet.default_threshold) == ("euclidean", 0.6)
    for kind, name in (("detector", "dlib-hog"), ("detector", "dlib-cnn"), ("aligner", "dlib"),
                       ("identity", "dlib-resnet")):
        spec = registry.get(kind, name)
        assert spec.gpu_memory_mb == 0, name  # the dlib-bin wheels have no CUDA
        for model_id in spec.model_ids:
            assert store.state(model_id) == "present", (name, model_id)


def test_weights_come_verified_from_face_recognition_models(store: ModelStore) -> None:
    """Every file is found inside the installed package and matches its sha256 and size."""
    folder = package_dir("face_recognition_models") / "models"
    for model_id in ("dlib-mmod-human-face", "dlib-shape-predictor-68", "dlib-face-recognition-resnet-v1"):
        for name, path in store.ensure(model_id).items():
            assert path == folder / name


@pytest.mark.parametrize("detector", ["dlib-hog", "dlib-cnn"])
@pytest.mark.parametrize("name", list(EXPECTED_FACES))
def test_detectors_count_the_faces(found: dict, detector: str, name: str) -> None:
    detections = found[(detector, name)]
    assert len(detections) == EXPECTED_FACES[name], [d.box for d in detections]
    for d in detections:
        assert d.points5 is None and d.width > 50 and d.height > 50


def test_the_two_detectors_agree_on_where_the_faces_are(found: dict) -> None:
    """HOG runs at full size (up to 1280 px), the CNN on the image shrunk to 800 px: boxes mapped
    back to source pixels must land on the same faces."""
    for name in EXPECTED_FACES:
        hog = sorted(found[("dlib-hog", name)], key=lambda d: d.box[0])
        cnn = sorted(found[("dlib-cnn", name)], key=lambda d: d.box[0])
        for a, b in zip(hog, cnn):
            centre_gap = np.hypot((a.box[0] + a.box[2] - b.box[0] - b.box[2]) / 2,
                                  (a.box[1] + a.box[3] - b.box[1] - b.box[3]) / 2)
            assert centre_gap < 0.25 * a.width, (name, a.box, b.box)


@pytest.mark.parametrize("detector", ["dlib-hog", "dlib-cnn"])
def test_aligner_places_68_points_in_order_inside_the_box(plugins: dict, found: dict, detector: str) -> None:
    for name in EXPECTED_FACES:
        image = read_image(SCENES / name)
        detections = found[(detector, name)]
        for detection, points in zip(detections, plugins["dlib"].model.align(image, detections)):
            where = f"{detector} on {name}, box {[round(v) for v in detection.box]}"
            assert points.shape == (68, 2) and np.isfinite(points).all(), where
            x1, y1, x2, y2 = detection.box
            # dlib's boxes are tight: the jaw reaches their sides, and MMOD's stop about at the
            # chin, which lands up to a fifth of the box below them
            margin = 0.25 * (x2 - x1)
            assert (points[:, 0] > x1 - margin).all() and (points[:, 0] < x2 + margin).all(), where
            assert (points[:, 1] > y1 - margin).all() and (points[:, 1] < y2 + margin).all(), where
            left_eye, right_eye = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
            nose, mouth = points[30], points[48:68].mean(axis=0)
            assert left_eye[0] < right_eye[0], where
            assert max(left_eye[1], right_eye[1]) < nose[1] < mouth[1], where
            assert points[8, 1] > mouth[1], where  # the chin below the mouth


def test_aligner_reproduces_dlibs_own_points_from_dlibs_boxes(store: ModelStore) -> None:
    """The landmark files hold points dlib's predictor placed on their boxes: with one pass from
    the same box, the plugin must give the same points (box and pixel conventions are right)."""
    import xml.etree.ElementTree as ET

    folder = need_data() / "landmarks"
    aligner = load_plugin(default_registry(), store, "aligner", "dlib", {"passes": 1}).model
    errors = []
    for image_node in ET.parse(folder / "testing_with_face_landmarks.xml").getroot().iter("image"):
        image = read_image(folder / image_node.attrib["file"])
        for box in image_node.iter("box"):
            left, top = float(box.attrib["left"]), float(box.attrib["top"])
            detection = Detection((left, top, left + float(box.attrib["width"]), top + float(box.attrib["height"])), 1.0)
            reference = np.array([(float(p.attrib["x"]), float(p.attrib["y"])) for p in box.iter("part")])
            points = aligner.align(image, [detection])[0]
            errors.append(np.linalg.norm(points - reference, axis=1).mean()
                          / np.linalg.norm(reference[36] - reference[45]))
    assert len(errors) == 25
    assert np.mean(errors) < 0.01 and np.max(errors) < 0.05, np.round(errors, 4)


def test_resnet_embeddings_tell_people_apart(plugins: dict) -> None:
    need_data()
    with (PEOPLE / "pairs.csv").open(newline="") as table:
        same = {(row["file_a"], row["file_b"]): row["same"] == "1" for row in csv.DictReader(table)}
    assert same[SAME_PAIR] and not same[DIFFERENT_PAIR]
    vectors = {}
    for file in {*SAME_PAIR, *DIFFERENT_PAIR}:
        image = read_image(PEOPLE / file)
        detection = max(plugins["dlib-hog"].model.detect([image])[0], key=lambda d: d.width * d.height)
        landmarks = plugins["dlib"].model.align(image, [detection])
        embedding = plugins["dlib-resnet"].model.embed(image, landmarks)
        assert embedding.shape == (1, 128) and embedding.dtype == np.float32, file
        vectors[file] = embedding
    threshold = default_registry().get("identity", "dlib-resnet").default_threshold

    def distance(pair: tuple[str, str]) -> float:
        return float(distances(vectors[pair[0]], vectors[pair[1]], "euclidean")[0, 0])

    assert distance(SAME_PAIR) < threshold < distance(DIFFERENT_PAIR), (distance(SAME_PAIR), distance(DIFFERENT_PAIR))
    assert plugins["dlib-resnet"].model.embed(np.zeros((8, 8, 3), np.uint8), []).shape == (0, 128)


def test_cli_extracts_with_dlib_hog_and_the_dlib_aligner(tmp_path: Path) -> None:
    """``+detector=`` / ``+aligner=`` compose from the ConfigStore entries facekit makes for
    plugins that have no YAML in its conf/, options included."""
    need_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=dlib-hog", "+aligner=dlib", "detector.upsample=0",
                         f"input={SCENES / 'two_people.jpg'}", f"output={out}", "runner.progress=false",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    alignments = json.loads((out / "alignments.json").read_text(encoding="utf-8"))
    plugins = alignments["meta"]["plugins"]
    assert plugins["detector"]["name"] == "dlib-hog" and plugins["detector"]["config"]["upsample"] == 0
    assert plugins["aligner"] == {"name": "dlib", "config": {"passes": 2}}
    faces = alignments["frames"]["two_people"]["faces"]
    assert len(faces) == 2
    for face in faces:
        assert np.asarray(face["landmarks"]).shape == (68, 2)
        assert (out / face["crop"]).is_file()


def test_cli_filter_with_dlib_resnet_keeps_the_reference_person(tmp_path: Path) -> None:
    """two_people.jpg shows Obama (left) and Biden (right); obama.jpg is the reference."""
    need_data()
    out = tmp_path / "faces"
    result = run_facekit("+detector=dlib-hog", "+aligner=dlib", "+identity=dlib-resnet",
                         f"filter.refs=[{SCENES / 'obama.jpg'}]", f"input={SCENES / 'two_people.jpg'}",
                         f"output={out}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    faces = sorted(json.loads((out / "alignments.json").read_text(encoding="utf-8"))
                   ["frames"]["two_people"]["faces"], key=lambda f: f["box"][0])
    assert [f["keep"] for f in faces] == [True, False], [(f["keep"], f["distance"]) for f in faces]
    assert faces[0]["distance"] < 0.6 < faces[1]["distance"]
    assert len(faces[0]["embedding"]) == 128


def test_task_plugins_lists_them_as_present(tmp_path: Path) -> None:
    result = run_facekit("task=plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # each plugin's line starts with its kind and name; a model's state may wrap onto the next line
    rows = {name: [i for i, line in enumerate(lines) if re.match(rf"^\w+ +{re.escape(name)} ", line)]
            for name in ("dlib-hog", "dlib-cnn", "dlib", "dlib-resnet")}
    assert all(len(found) == 1 for found in rows.values()), result.stdout
    assert lines[rows["dlib-hog"][0]].startswith("detector ")
    for name, model_id in (("dlib-cnn", "dlib-mmod-human-face"), ("dlib", "dlib-shape-predictor-68"),
                           ("dlib-resnet", "dlib-face-recognition-resnet-v1")):
        row = rows[name][0]
        assert model_id in lines[row], lines[row]
        assert re.search(rf"{model_id}:?\s+present", " ".join(lines[row:row + 2])), lines[row:row + 2]
