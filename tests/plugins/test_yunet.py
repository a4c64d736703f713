"""YuNet's two backends on real photos and video frames: ONNX Runtime (the default, on weights
dequantised at load) must find exactly the faces OpenCV's FaceDetectorYN finds, in the same
order, with boxes, points and scores equal to float precision."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import run_facekit
from conftest import DATA, SCENES, require_data
from facekit.errors import ConfigError
from facekit.media.sources import read_image
from facekit.models.store import ModelStore
from facekit.plugin.registry import default_registry
from facekit_plugins import yunet


@pytest.fixture(scope="module")
def model_path() -> str:
    return str(ModelStore(default_registry().models, offline=True).path(yunet.MODEL_ID, yunet.MODEL_FILE))


def _images() -> list[tuple[str, np.ndarray]]:
    require_data()
    images = [(p.name, read_image(p)) for p in sorted(SCENES.iterdir())]
    capture = cv2.VideoCapture(str(DATA / "video" / "short_hamilton_clip.mp4"))
    for index in range(0, 275, 9):  # every scene of the clip
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        assert ok, index
        images.append((f"hamilton frame {index}", frame))
    return [(name, image) for name, image in images if image is not None]


@pytest.mark.slow
@pytest.mark.parametrize("threshold", [0.6, 0.3])
def test_onnxruntime_finds_what_opencv_finds(model_path: str, threshold: float) -> None:
    reference = yunet.YuNetDetector(yunet.YuNetConfig(backend="opencv", score_threshold=threshold), model_path)
    default = yunet.YuNetDetector(yunet.YuNetConfig(score_threshold=threshold), model_path)
    assert default.config.backend == "onnxruntime"
    faces = 0
    for name, image in _images():
        expected, got = reference.detect([image])[0], default.detect([image])[0]
        assert len(got) == len(expected), name
        for a, b in zip(expected, got):
            np.testing.assert_allclose(b.box, a.box, atol=0.01, err_msg=name)
            np.testing.assert_allclose(b.points5, a.points5, atol=0.01, err_msg=name)
            assert b.score == pytest.approx(a.score, abs=1e-4), name
        faces += len(got)
    assert faces > 50  # the comparison saw real faces, not a run of empty frames


def test_faces_do_not_depend_on_the_image_before(model_path: str) -> None:
    """Images are padded to a multiple of 32. A photo cut off through its face, detected right
    after the whole photo (same padded size), must not see the rest of the face in its padding:
    a folder's results would then depend on the order a worker got its files."""
    require_data()
    photo = read_image(SCENES / "obama.jpg")
    detector = yunet.YuNetDetector(yunet.YuNetConfig(), model_path)
    (face,) = detector.detect([photo])[0]
    cut = int((face.box[1] + face.box[3]) / 2) // 32 * 32 + 1  # through the face, a row past a multiple of 32
    whole, cut_off = photo[:cut + 31], photo[:cut]
    alone = yunet.YuNetDetector(yunet.YuNetConfig(), model_path).detect([cut_off])[0]
    detector.detect([whole])
    after_whole = detector.detect([cut_off])[0]
    assert len(alone) == len(after_whole) == 1
    assert after_whole[0].box == alone[0].box and after_whole[0].score == alone[0].score


@pytest.mark.parametrize("shape", [(17, 23, 3), (32, 32, 3), (301, 97, 3)])
def test_odd_sizes_and_empty_images(model_path: str, shape: tuple[int, int, int]) -> None:
    """Sizes that are not multiples of the largest stride are padded, as OpenCV pads them."""
    detector = yunet.YuNetDetector(yunet.YuNetConfig(), model_path)
    assert detector.detect([np.zeros(shape, np.uint8)]) == [[]]


def test_the_float_model_is_made_once_and_kept(model_path: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The first load writes the dequantised model to the derived folder; later loads (each
    worker process, each run) use that file and never import onnx, and find the same faces."""
    require_data()
    from facekit_plugins import _onnxruntime

    image = read_image(SCENES / "two_people.jpg")
    expected = yunet.YuNetDetector(yunet.YuNetConfig(), model_path).detect([image])  # made in memory
    first = yunet.YuNetDetector(yunet.YuNetConfig(), model_path, derived_folder=tmp_path / "derived")
    kept = list((tmp_path / "derived").glob("*.onnx"))
    assert len(kept) == 1

    def no_fold(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("folded again although the folded model is kept")

    monkeypatch.setattr(_onnxruntime, "dequantized_model", no_fold)
    second = yunet.YuNetDetector(yunet.YuNetConfig(), model_path, derived_folder=tmp_path / "derived")
    for detector in (first, second):
        found = detector.detect([image])
        assert len(found[0]) == len(expected[0]) == 2
        for got, want in zip(found[0], expected[0]):
            assert got.box == want.box and got.score == want.score
    assert list((tmp_path / "derived").glob("*.onnx")) == kept


def test_an_unwritable_derived_folder_still_loads(model_path: str, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would go")
    detector = yunet.YuNetDetector(yunet.YuNetConfig(), model_path, derived_folder=blocked / "derived")
    assert detector.detect([np.zeros((64, 64, 3), np.uint8)]) == [[]]


def test_an_unknown_backend_is_refused_in_one_line(model_path: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="onnxruntime, opencv"):
        yunet.YuNetDetector(yunet.YuNetConfig(backend="tensorrt"), model_path)
    require_data()
    result = run_facekit("+detector=yunet", "detector.backend=tensorrt", f"input={SCENES / 'obama.jpg'}",
                         "output=faces", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "facekit: error: detector yunet: backend 'tensorrt' is not one of: onnxruntime, opencv"]


@pytest.mark.parametrize("axis, block_size, scale_shape", [
    (0, 0, ()),          # per tensor
    (0, 0, (6,)),        # per output channel
    (1, 0, (4,)),        # per input channel
    (1, 2, (6, 2, 3, 3)),  # blocks of 2 input channels, the int8bq layout
    (1, 3, (6, 2, 3, 3)),  # a last block cut short (4 channels, blocks of 3)
])
def test_dequantize_matches_onnx_reference(axis: int, block_size: int, scale_shape: tuple[int, ...]) -> None:
    """The load-time fold gives exactly what ONNX's own reference DequantizeLinear gives."""
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    from facekit_plugins._onnxruntime import _dequantize

    rng = np.random.default_rng(7)
    quantized = rng.integers(-128, 128, (6, 4, 3, 3), dtype=np.int8)
    scale = rng.uniform(0.001, 0.1, scale_shape).astype(np.float32)
    zero = rng.integers(-5, 6, scale_shape, dtype=np.int8)
    node = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=axis, block_size=block_size)
    graph = helper.make_graph(
        [node], "dq",
        [helper.make_tensor_value_info("q", TensorProto.INT8, quantized.shape),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, scale.shape),
         helper.make_tensor_value_info("z", TensorProto.INT8, zero.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (expected,) = ReferenceEvaluator(model).run(None, {"q": quantized, "s": scale, "z": zero})
    got = _dequantize(quantized, scale, zero, axis=axis, block_size=block_size)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
