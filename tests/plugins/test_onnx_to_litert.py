"""ONNX convolution chains rewritten for LiteRT: each op the converter takes, in one small graph
this test writes (random weights, so a wrong layout or a misplaced pad shows), against ONNX Runtime
on the same graph; the cache; refusals; and SFace's fallback to OpenCV when conversion fails."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from facekit_plugins import sface
from facekit_plugins._onnx_to_litert import ConversionFailed, litert_model_file
from facekit_plugins._onnxruntime import dequantized_model, session
from facekit_plugins._tensorflow import litert_interpreter

pytestmark = pytest.mark.slow  # ONNX models converted to LiteRT, a conversion a test

SHAPE = (1, 3, 16, 16)


def _const(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def write_chain(path: Path, tail_op: str | None = None) -> Path:
    """Sub, Mul, Conv (3x3, bias), BN, PRelu, depthwise Conv (stride 2, int8 weights behind a
    per-channel DequantizeLinear), BN, PRelu, Conv 1x1, Dropout, Flatten, Gemm, BN; ``tail_op``
    appends one more op (one the converter does not take)."""
    rng = np.random.default_rng(7)
    f32 = np.float32
    inits = [
        _const("sub", np.array([127.5], f32)), _const("mul", np.array([1 / 128], f32)),
        _const("w1", rng.normal(0, 0.3, (8, 3, 3, 3)).astype(f32)), _const("b1", rng.normal(0, 0.1, 8).astype(f32)),
        _const("dw_q", rng.integers(-127, 128, (8, 1, 3, 3)).astype(np.int8)),
        _const("dw_scale", rng.uniform(0.001, 0.01, 8).astype(f32)),
        _const("w3", rng.normal(0, 0.3, (16, 8, 1, 1)).astype(f32)),
        _const("fc_w", rng.normal(0, 0.05, (10, 16 * 8 * 8)).astype(f32)), _const("fc_b", rng.normal(0, 0.1, 10).astype(f32)),
        _const("a1", rng.uniform(-0.5, 0.5, (8, 1, 1)).astype(f32)), _const("a2", rng.uniform(-0.5, 0.5, (8, 1, 1)).astype(f32)),
    ]
    for tag, channels in (("bn1", 8), ("bn2", 8), ("bn3", 10)):
        inits += [_const(f"{tag}_g", rng.uniform(0.5, 1.5, channels).astype(f32)),
                  _const(f"{tag}_b", rng.normal(0, 0.2, channels).astype(f32)),
                  _const(f"{tag}_m", rng.normal(0, 0.2, channels).astype(f32)),
                  _const(f"{tag}_v", rng.uniform(0.5, 2.0, channels).astype(f32))]

    def bn(x: str, tag: str, out: str) -> onnx.NodeProto:
        return helper.make_node("BatchNormalization", [x, f"{tag}_g", f"{tag}_b", f"{tag}_m", f"{tag}_v"], [out],
                                epsilon=1e-3)

    nodes = [
        helper.make_node("Sub", ["x", "sub"], ["s"]), helper.make_node("Mul", ["s", "mul"], ["m"]),
        helper.make_node("Conv", ["m", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        bn("c1", "bn1", "n1"), helper.make_node("PRelu", ["n1", "a1"], ["p1"]),
        helper.make_node("DequantizeLinear", ["dw_q", "dw_scale"], ["dw"], axis=0),
        helper.make_node("Conv", ["p1", "dw"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
                         group=8),
        bn("c2", "bn2", "n2"), helper.make_node("PRelu", ["n2", "a2"], ["p2"]),
        helper.make_node("Conv", ["p2", "w3"], ["c3"], kernel_shape=[1, 1]),
        helper.make_node("Dropout", ["c3"], ["d"]), helper.make_node("Flatten", ["d"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["g"], transB=1), bn("g", "bn3", "y"),
    ]
    output = "y"
    if tail_op:
        nodes.append(helper.make_node(tail_op, ["y"], ["tail"]))
        output = "tail"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    path.write_bytes(model.SerializeToString())
    return path


def litert_output(model: str | bytes, sample: np.ndarray) -> np.ndarray:
    interpreter = litert_interpreter(model, 1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample.transpose(0, 2, 3, 1).copy())
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def onnx_output(path: Path, sample: np.ndarray) -> np.ndarray:
    return session(dequantized_model(path), 1).run(None, {"x": sample})[0]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("chain")
    source = write_chain(folder / "chain.onnx")
    return source, folder / "derived", litert_model_file(source, folder / "derived")


def test_each_supported_op_matches_onnx_runtime(converted: tuple[Path, Path, str]) -> None:
    source, _, model = converted
    for seed in range(3):
        sample = np.random.default_rng(seed).uniform(0, 255, SHAPE).astype(np.float32)
        expected = onnx_output(source, sample)
        got = litert_output(model, sample)
        assert got.shape == expected.shape == (1, 10)
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_the_conversion_is_kept_in_the_cache_and_reused(converted: tuple[Path, Path, str]) -> None:
    source, derived, model = converted
    kept = Path(model)
    assert kept.parent == derived and kept.suffix == ".tflite"
    before = kept.stat().st_mtime_ns
    assert litert_model_file(source, derived) == model
    assert kept.stat().st_mtime_ns == before


def test_a_cache_that_cannot_be_written_still_gives_the_model(tmp_path: Path) -> None:
    source = write_chain(tmp_path / "chain.onnx")
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder would go")
    model = litert_model_file(source, blocked / "derived")
    assert isinstance(model, bytes)
    sample = np.full(SHAPE, 100.0, np.float32)
    assert np.allclose(litert_output(model, sample), onnx_output(source, sample), rtol=1e-4, atol=1e-4)


def test_an_op_outside_the_chain_rules_is_refused_by_name(tmp_path: Path) -> None:
    source = write_chain(tmp_path / "chain.onnx", tail_op="Sigmoid")
    with pytest.raises(ConversionFailed, match=r"^UnsupportedGraph: ONNX Sigmoid"):
        litert_model_file(source, tmp_path / "derived")
    assert not list((tmp_path / "derived").glob("*.tflite"))


def write_unconvertible_recogniser(path: Path) -> Path:
    """A 112x112 RGB -> 128-value network OpenCV runs but the converter refuses (a Sigmoid)."""
    weight = np.random.default_rng(3).normal(0, 1e-4, (128, 3, 112, 112)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["data", "w"], ["c"], kernel_shape=[112, 112]),
             helper.make_node("Sigmoid", ["c"], ["s"]), helper.make_node("Flatten", ["s"], ["fc1"])]
    graph = helper.make_graph(nodes, "recogniser",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, (1, 3, 112, 112))],
                              [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, (1, 128))], [_const("w", weight)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_sface_warns_and_uses_opencv_when_conversion_fails(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    weights = str(write_unconvertible_recogniser(tmp_path / "recogniser.onnx"))
    with caplog.at_level(logging.WARNING):
        model = sface.SFaceModel(sface.SFaceConfig(), weights, derived_folder=tmp_path / "derived")
    assert any("LiteRT conversion failed" in r.message and "Sigmoid" in r.message for r in caplog.records)
    image = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    landmarks = np.tile(np.linspace(60, 140, 68)[:, None], (1, 2))
    vectors = model.embed(image, [landmarks])
    opencv = sface.SFaceModel(sface.SFaceConfig(backend="opencv"), weights).embed(image, [landmarks])
    assert vectors.shape == (1, sface.EMBEDDING_SIZE) and np.allclose(vectors, opencv, atol=1e-6)


def test_sface_names_an_unknown_backend(tmp_path: Path) -> None:
    from facekit.errors import ConfigError

    with pytest.raises(ConfigError, match="backend 'tpu' is not one of: litert, opencv"):
        sface.SFaceModel(sface.SFaceConfig(backend="tpu"), str(tmp_path / "unused.onnx"))
