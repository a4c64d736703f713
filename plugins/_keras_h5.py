"""Reading Keras .h5 weight files with h5py, for the plugins whose published weights are Keras files.

faceswap publishes S3FD, FAN and VGGFace2 as Keras 2/3 .h5 files built with custom layers that
Keras 3 cannot always rebuild; the plugins build the same graphs themselves and copy the weights
in by layer name. This is the one reader they share.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from facekit.plugin import ModelError

Weights = dict[str, dict[str, np.ndarray]]  # layer name -> variable name (kernel, gamma...) -> array


def attr_strings(group: Any, name: str) -> list[str]:
    """A Keras string-list attribute; Keras splits one over 64 KB into ``name0``, ``name1``...
    An empty list is stored as an empty float array."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, index = [], 0
        while f"{name}{index}" in group.attrs:
            chunks.append(group.attrs[f"{name}{index}"])
            index += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v)
            for chunk in chunks for v in np.atleast_1d(chunk) if isinstance(v, (bytes, str))]


def read_weights(path: str) -> tuple[Weights, Any]:
    """Every weighted layer of a Keras ``.h5`` (a whole model or weights only, Keras 2 or 3), in
    the file's order, and the raw ``model_config`` attribute (None in a weights-only file)."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            group = file["model_weights"] if "model_weights" in file else file
            names = attr_strings(group, "layer_names")
            if not names:
                raise ModelError(f"{path} is not a Keras model or weights file (no layer_names)")
            found: Weights = {}
            for layer in names:
                values = {}
                for weight in attr_strings(group[layer], "weight_names"):
                    variable = weight.rsplit("/", 1)[-1].split(":", 1)[0]
                    values[variable] = np.asarray(group[layer][weight])
                if values:
                    found[layer] = values
            return found, file.attrs.get("model_config")
    except OSError as exc:
        raise ModelError(f"{path} is not a readable HDF5 file ({exc}); delete it to download it again") from None
    except KeyError as exc:
        raise ModelError(f"{path} is not a complete Keras model file ({exc})") from None
