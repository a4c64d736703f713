"""The orders ``curate.sort`` writes a folder in: by head turn, by sharpness, by size or by
identity, each with the same tie-breaks so that a rerun names every file the same."""
from __future__ import annotations

import numpy as np

#: sort key -> (what it orders by, highest first?)
SORTS = {"yaw": False, "pitch": False, "sharpness": True, "face_px": True, "identity": False}


def sort_order(key: str, values: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """Row order for ``key``: yaw and pitch from most negative to most positive (turned to its
    own right, looking down, first); sharpness and face_px highest first; identity by cluster
    (unclustered last), sharpest first within one. Unknown values last; ties by sharpness, then row."""
    if key not in SORTS:
        raise ValueError(f"unknown sort {key!r}; choose one of: {', '.join(SORTS)}")
    values = np.asarray(values, dtype=np.float64)
    if key == "identity":
        values = np.where(values < 0, np.inf, values)
    primary = -values if SORTS[key] else values
    primary = np.nan_to_num(primary, nan=np.inf, posinf=np.inf)
    sharp = -np.nan_to_num(np.asarray(sharpness, dtype=np.float64), nan=-np.inf)
    return np.lexsort((np.arange(len(values)), sharp, primary))
