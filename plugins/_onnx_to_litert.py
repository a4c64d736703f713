"""ONNX models of one plain chain of convolutions, rewritten for LiteRT (TFLite with XNNPACK).

Why: on the 2-core CPU machine, XNNPACK runs these networks about twice as fast as OpenCV's DNN
module or ONNX Runtime (SFace: 17 ms a face against 36 ms through ``cv2.FaceRecognizerSF``, one
core each, same run; FaceMesh: 2.8 ms against 7.5 ms under ONNX Runtime). The arithmetic is the
same float32 graph, so the outputs agree to rounding (each conversion is checked against ONNX
Runtime before it is kept).

What converts: a chain (each node feeds the next) of Sub, Mul or Add by a constant, Conv (plain or
depthwise), BatchNormalization (folded into the Conv or Gemm before it), PRelu, Dropout (an
identity at inference), Flatten and Gemm, with int8 weights behind DequantizeLinear folded to float
first. Anything else raises ``UnsupportedGraph`` naming the node.

TensorFlow's converter does the writing. It runs in a child process, once per model file, and the
result is kept in the model cache's ``derived/`` folder: importing TensorFlow costs about 3 s and
0.5 GB that the run using the model should not carry.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from facekit.plugin import atomic_write_bytes, derived_model

#: Part of the cached file's name: raise it when the conversion's output changes.
CONVERT_VERSION = 1
#: Largest difference from ONNX Runtime accepted, relative to the output's largest magnitude.
MAX_RELATIVE_ERROR = 1e-3
#: A conversion takes about 10 s here; a stuck one gives up (and the plugin falls back) well
#: before a worker process that is building its models counts as stuck (5 minutes).
CONVERT_TIMEOUT_S = 240


class UnsupportedGraph(ValueError):
    """The ONNX graph is not a chain of the operations this module converts."""


class ConversionFailed(RuntimeError):
    """The converter process failed; the message is its last line of error output."""


@dataclass
class Layer:
    """One step of the chain in NCHW/ONNX terms; ``kind`` is one of: scale, shift, conv, prelu,
    flatten, dense, affine (a BatchNormalization with no Conv or Gemm before it)."""

    kind: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    group: int = 1
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right


@dataclass
class Chain:
    """A float ONNX model as layers, with its one input's name and shape (NCHW)."""

    layers: list[Layer]
    input_name: str
    input_shape: tuple[int, ...]


def chain_layers(model_bytes: bytes) -> Chain:
    """The layers of a float ONNX model, BatchNormalization folded, and its input."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    values = {init.name: numpy_helper.to_array(init).astype(np.float32) for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in values]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedGraph(f"{len(inputs)} inputs and {len(graph.output)} outputs; one of each converts")
    shape = tuple(d.dim_value for d in inputs[0].type.tensor_type.shape.dim)
    if len(shape) != 4 or shape[0] != 1 or not all(shape):
        raise UnsupportedGraph(f"input shape {shape}: a fixed (1, channels, height, width) converts")
    current = inputs[0].name
    layers: list[Layer] = []
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        if not node.input or node.input[0] != current:
            raise UnsupportedGraph(f"node {node.name or node.op_type} does not take the previous node's output")
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        constants = [values[name] for name in node.input[1:] if name in values]
        layers.extend(_layers_of(node.op_type, attributes, constants, layers))
        current = node.output[0]
    if current != graph.output[0].name:
        raise UnsupportedGraph("the chain does not end at the graph's output")
    return Chain(layers, inputs[0].name, shape)


def _layers_of(op: str, attributes: dict[str, Any], constants: list[np.ndarray],
               before: list[Layer]) -> list[Layer]:
    if op in ("Sub", "Add", "Mul") and len(constants) == 1 and constants[0].size == 1:
        value = float(constants[0].ravel()[0])
        return [Layer("scale", np.float32(value))] if op == "Mul" else \
            [Layer("shift", np.float32(-value if op == "Sub" else value))]
    if op == "Conv" and len(attributes.get("kernel_shape", ())) == 2:
        weight = constants[0]
        group = int(attributes.get("group", 1))
        if group not in (1, weight.shape[0]) or (group > 1 and weight.shape[1] != 1):
            raise UnsupportedGraph(f"Conv with {group} groups: only plain and depthwise convert")
        if any(d != 1 for d in attributes.get("dilations", (1, 1))):
            raise UnsupportedGraph("dilated Conv")
        pads = tuple(attributes.get("pads", (0, 0, 0, 0)))
        return [Layer("conv", weight, constants[1] if len(constants) > 1 else np.zeros(weight.shape[0], np.float32),
                      group=group, strides=tuple(attributes.get("strides", (1, 1))),
                      pads=(pads[0], pads[1], pads[2], pads[3]))]
    if op == "BatchNormalization":
        gamma, beta, mean, variance = constants
        scale = gamma / np.sqrt(variance + np.float32(attributes.get("epsilon", 1e-5)))
        previous = before[-1] if before else None
        if previous is not None and previous.kind in ("conv", "dense"):
            previous.weight = previous.weight * scale.reshape((-1,) + (1,) * (previous.weight.ndim - 1))
            previous.bias = (previous.bias - mean) * scale + beta
            return []
        return [Layer("affine", scale, beta - mean * scale)]
    if op == "PRelu":
        return [Layer("prelu", constants[0].reshape(-1))]
    if op == "Dropout":
        return []
    if op == "Flatten" and attributes.get("axis", 1) == 1:
        return [Layer("flatten")]
    if op == "Gemm" and attributes.get("transB") == 1 and not attributes.get("transA") \
            and attributes.get("alpha", 1.0) == 1.0 and attributes.get("beta", 1.0) == 1.0:
        return [Layer("dense", constants[0], constants[1])]
    raise UnsupportedGraph(f"ONNX {op} with {attributes} does not convert")


def to_litert(layers: list[Layer], input_shape: tuple[int, ...]) -> bytes:
    """The chain as a LiteRT flatbuffer taking NHWC float32 (TensorFlow imported here)."""
    import tensorflow as tf

    _, channels, height, width = input_shape
    prelus = [tf.keras.layers.PReLU(shared_axes=[1, 2], alpha_initializer=tf.constant_initializer(
        layer.weight.reshape(1, 1, -1))) for layer in layers if layer.kind == "prelu"]

    def forward(x: Any) -> Any:
        flattened_from = None
        next_prelu = iter(prelus)
        for layer in layers:
            if layer.kind == "scale":
                x = x * layer.weight
            elif layer.kind == "shift":
                x = x + layer.weight
            elif layer.kind == "affine":
                x = x * layer.weight + layer.bias
            elif layer.kind == "prelu":
                # the Keras layer is what the converter turns into one PRELU op, which XNNPACK runs
                x = next(next_prelu)(x)
            elif layer.kind == "conv":
                x = _conv(tf, x, layer)
            elif layer.kind == "flatten":
                flattened_from = x.shape
                x = tf.reshape(x, [1, -1])
            elif layer.kind == "dense":
                x = tf.matmul(x, _dense_weight(layer.weight, flattened_from).T) + layer.bias
        return x

    function = tf.function(forward, input_signature=[tf.TensorSpec([1, height, width, channels], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
    return converter.convert()


def _conv(tf: Any, x: Any, layer: Layer) -> Any:
    top, left, bottom, right = layer.pads
    if any(layer.pads):
        x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    if layer.group == 1:
        x = tf.nn.conv2d(x, np.transpose(layer.weight, (2, 3, 1, 0)), strides=list(layer.strides), padding="VALID")
    else:
        x = tf.nn.depthwise_conv2d(x, np.transpose(layer.weight, (2, 3, 0, 1)),
                                   strides=[1, *layer.strides, 1], padding="VALID")
    return tf.nn.bias_add(x, layer.bias)


def _dense_weight(weight: np.ndarray, flattened_from: Any) -> np.ndarray:
    """Gemm's weight reordered for an NHWC flatten: ONNX flattened the tensor channel-first."""
    if flattened_from is None or len(flattened_from) != 4:
        return weight
    _, height, width, channels = (int(d) for d in flattened_from)
    return weight.reshape(-1, channels, height, width).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def checked_conversion(model_bytes: bytes) -> bytes:
    """``to_litert`` of the model, refused unless it matches ONNX Runtime on a random image-like
    input (values 0-255)."""
    from facekit_plugins._onnxruntime import session
    from facekit_plugins._tensorflow import litert_interpreter

    chain = chain_layers(model_bytes)
    converted = to_litert(chain.layers, chain.input_shape)
    sample = np.random.default_rng(0).uniform(0, 255, size=chain.input_shape).astype(np.float32)
    reference = session(model_bytes, 1).run(None, {chain.input_name: sample})[0]
    interpreter = litert_interpreter(converted, 1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sample.transpose(0, 2, 3, 1).copy())
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    error = float(np.abs(output.reshape(reference.shape) - reference).max() / max(np.abs(reference).max(), 1e-12))
    if not error <= MAX_RELATIVE_ERROR:
        raise ConversionFailed(f"the converted model differs from ONNX Runtime by {error:.2g} (relative)")
    return converted


def litert_model_file(path: str | PathLike, cache_folder: Path | None) -> str | bytes:
    """The LiteRT form of the ONNX model at ``path``, converted by the first run and kept in
    ``cache_folder`` (see ``facekit.models.derived``: one conversion even with parallel workers;
    bytes, converted each run, when the folder cannot be written). Raises ``ConversionFailed``
    with the child's one-line reason (an ``UnsupportedGraph`` there comes back as a
    ConversionFailed whose message starts "UnsupportedGraph:")."""
    source = Path(path)
    return derived_model(source, cache_folder, f"litert.v{CONVERT_VERSION}", ".tflite",
                         lambda target: _convert_in_child(source, target),
                         f"converting {source.name} to LiteRT (about 10 s)")


def _convert_in_child(source: Path, target: Path) -> None:
    command = [sys.executable, "-m", "facekit_plugins._onnx_to_litert", str(source), str(target)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        raise ConversionFailed(f"the converter took more than {CONVERT_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        ours = [line for line in lines if line.startswith(("UnsupportedGraph:", "ConversionFailed:"))]
        raise ConversionFailed((ours or lines or [f"the converter exited with code {done.returncode}"])[-1])


def main(argv: list[str]) -> int:
    """``python -m facekit_plugins._onnx_to_litert SOURCE.onnx TARGET.tflite``"""
    from facekit_plugins._onnxruntime import dequantized_model

    source, target = argv
    try:
        converted = checked_conversion(dequantized_model(source))
    except (UnsupportedGraph, ConversionFailed) as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    atomic_write_bytes(Path(target), converted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
