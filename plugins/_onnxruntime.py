"""ONNX Runtime for the plugins that run on it: weight-only quantised graphs made runnable, and a
session that uses the threads it is given and no more.

OpenCV's zoo ships models "int8 block-quantised": each weight is int8 with a DequantizeLinear
node in front, and the arithmetic is float. ONNX Runtime (1.32) refuses some of those nodes at
run time (a per-tensor bias carrying a block size), so the weights are dequantised once, at load,
into float initialisers. That is what OpenCV computes anyway, so the detections do not change.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from facekit.plugin import atomic_write_bytes, derived_model


def dequantized_model(path: str | PathLike, dynamic_input: bool = False) -> bytes:
    """The ONNX model at ``path`` with every constant DequantizeLinear (and the Reshape of its
    result) folded into a float32 initialiser; ``dynamic_input`` frees the first input's height
    and width, for models whose graph does not depend on them (YuNet's reshapes use -1)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in values for name in node.input):
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            folded[node.output[0]] = _dequantize(*(values[name] for name in node.input),
                                                 axis=attributes.get("axis", 1),
                                                 block_size=attributes.get("block_size", 0))
        elif node.op_type == "Reshape" and node.input[0] in folded and node.input[1] in values:
            folded[node.output[0]] = folded[node.input[0]].reshape(values[node.input[1]])
        else:
            kept.append(node)
    used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
    initializers = [init for init in graph.initializer if init.name in used]
    initializers += [numpy_helper.from_array(array, name) for name, array in folded.items() if name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    # weights listed as graph inputs that the folding replaced: ONNX Runtime would demand them
    wanted = [i for i in graph.input if i.name in used]
    del graph.input[:]
    graph.input.extend(wanted)
    if dynamic_input:
        dims = graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_param, dims[3].dim_param = "height", "width"
    return model.SerializeToString()


#: Part of the cached file's name: raise it when ``dequantized_model``'s output changes.
FOLD_VERSION = 1


def dequantized_model_file(path: str | PathLike, cache_folder: Path | None,
                           dynamic_input: bool = False) -> str | bytes:
    """``dequantized_model`` kept in ``cache_folder`` (see ``facekit.models.derived``), so only
    the first run pays for it: importing ``onnx`` alone costs 1.1 s (its ml_dtypes extension),
    on every run and in every worker process."""
    source = Path(path)

    def fold(target: Path) -> None:
        atomic_write_bytes(target, dequantized_model(source, dynamic_input))

    tag = f"float32{'-dynamic' if dynamic_input else ''}.v{FOLD_VERSION}"
    return derived_model(source, cache_folder, tag, ".onnx", fold, f"folding {source.name} to float")


def _dequantize(quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None, *,
                axis: int, block_size: int) -> np.ndarray:
    """ONNX DequantizeLinear: per tensor, per axis, or per block of ``block_size`` along ``axis``."""
    zero = np.zeros_like(scale) if zero_point is None else zero_point
    scale, zero = np.asarray(scale, np.float32), np.asarray(zero, np.float32)
    axis = axis % quantized.ndim
    if scale.size > 1 and block_size:  # each scale covers block_size entries along axis
        scale = np.repeat(scale, block_size, axis=axis).take(range(quantized.shape[axis]), axis=axis)
        zero = np.repeat(zero, block_size, axis=axis).take(range(quantized.shape[axis]), axis=axis)
    elif scale.size > 1:  # one scale per entry along axis
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((quantized.astype(np.float32) - zero) * scale).astype(np.float32)


def session(model: bytes | str | PathLike, num_threads: int) -> Any:
    """A CPU session on ``num_threads`` threads. While the runner's stages share the cores, one
    thread each is right; the pool's threads never spin waiting for work, so an idle detector
    leaves its core to the aligner."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, num_threads)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # warnings about the model's unused initialisers are not the user's
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
