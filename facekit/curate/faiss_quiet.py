"""faiss, imported without its loader's INFO lines: it tries its AVX-512 and AVX2 builds first
and logs each one a wheel lacks as a ModuleNotFoundError, which reads like a failure."""
from __future__ import annotations

import logging
from types import ModuleType


def faiss() -> ModuleType:
    loader = logging.getLogger("faiss.loader")
    level = loader.level
    loader.setLevel(logging.WARNING)
    try:
        import faiss as module
    finally:
        loader.setLevel(level)
    return module
