"""TensorFlow and LiteRT for the plugins that run on them: a quiet start and one device choice.

TensorFlow's C++ side writes INFO lines, and on a machine without CUDA an "E0000 ... failed call
to cuInit" line, to stderr while it starts, before any log level applies (TF_CPP_MIN_LOG_LEVEL
does not reach them); TFLite adds "INFO: Created TensorFlow Lite XNNPACK delegate" for every
interpreter. A user who sees "CUDA error" in a CPU run that worked thinks it failed, so those
start-ups run with stderr pointed at /dev/null; setting TF_CPP_MIN_LOG_LEVEL yourself shows it
all again. Python exceptions are unaffected: they are printed after stderr is restored.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from os import PathLike
from typing import Any, Iterator


def tensorflow() -> Any:
    """The tensorflow module, started (GPUs listed) without its start-up chatter."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_native_start():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # where the cuInit line comes from
    return tf


def tf_device(name: str) -> str:
    """The TensorFlow device to run on; on a GPU, memory grows as needed instead of TensorFlow
    taking all of it, so ``gpu_memory_mb`` means something to the runner."""
    tf = tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the GPU is already initialised (another plugin came first)
            pass
    if name != "auto":
        return name
    return "GPU:0" if gpus else "CPU:0"


def litert_interpreter(model: str | PathLike | bytes, num_threads: int) -> Any:
    """A LiteRT (TFLite) interpreter for a model file (or a model's bytes), its tensors allocated,
    started quietly."""
    from ai_edge_litert.interpreter import Interpreter

    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interpreter = Interpreter(**source, num_threads=max(1, num_threads))
    with quiet_native_start():  # TFLite's "Created XNNPACK delegate" line
        interpreter.allocate_tensors()
    return interpreter


@contextmanager
def quiet_native_start() -> Iterator[None]:
    """Native code's start-up lines on stderr are dropped, unless TF_CPP_MIN_LOG_LEVEL is set.
    Only for start-up on the main thread: nothing else may be printing meanwhile."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
