"""Derive facekit.imaging.geometry.MEAN_FACE_68 from dlib's PASCAL VOC 68-point landmark files.

    python bench/derive_mean_face.py            # print the table and how far it is from geometry.py
    python bench/derive_mean_face.py --write    # replace the table in facekit/imaging/geometry.py

Generalised Procrustes analysis: every face (and its mirror image, so the mean is left-right
symmetric) is fitted to the current mean with a similarity on the inner points 17-67, the same
fit ``alignment_matrix`` makes, and the mean is recomputed until it stops moving. The result is
turned upright, centred on its inner points and scaled into the unit square.
"""
from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from facekit.imaging.geometry import INNER, MEAN_FACE_68, mirrored_points, transform_points, umeyama

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "landmarks"
GEOMETRY = ROOT / "facekit" / "imaging" / "geometry.py"


def load_faces(paths: list[Path]) -> np.ndarray:
    """(n, 68, 2) landmarks of every box with 68 parts in dlib imglab XML files."""
    faces = []
    for path in paths:
        for box in ET.parse(path).getroot().iter("box"):
            parts = {int(p.get("name")): (float(p.get("x")), float(p.get("y"))) for p in box.iter("part")}
            if len(parts) == 68:
                faces.append([parts[i] for i in range(68)])
    return np.asarray(faces, dtype=np.float64)


def _normalised(shape: np.ndarray) -> np.ndarray:
    """Inner points centred on the origin with unit RMS radius: fixes GPA's free scale."""
    inner = shape[INNER]
    centre = inner.mean(axis=0)
    return (shape - centre) / np.sqrt(((inner - centre) ** 2).sum(axis=1).mean())


def procrustes_mean(faces: np.ndarray, tolerance: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Generalised Procrustes mean of (n, 68, 2) faces, each fitted on its inner points."""
    mean = _normalised(faces[0])
    for _ in range(max_iter):
        fitted = np.stack([transform_points(f, umeyama(f[INNER], mean[INNER])) for f in faces])
        new_mean = _normalised(fitted.mean(axis=0))
        new_mean = transform_points(new_mean, umeyama(new_mean[INNER], mean[INNER]))  # no drift
        if np.abs(new_mean - mean).max() < tolerance:
            return new_mean
        mean = new_mean
    return mean


def into_unit_square(shape: np.ndarray) -> np.ndarray:
    """Upright (eye centres level), inner points' bounding box centred at (0.5, 0.5), scaled so
    the farthest of all 68 points touches the square's edge.

    GPA never reflects and starts from a face in image coordinates (y down), so once the eye
    line is level the eyes are above the mouth and point 36 is left of 45.
    """
    left_eye, right_eye = shape[36:42].mean(axis=0), shape[42:48].mean(axis=0)
    angle = np.arctan2(*(right_eye - left_eye)[::-1])
    cos, sin = np.cos(-angle), np.sin(-angle)
    upright = shape @ np.array([[cos, sin], [-sin, cos]])
    inner = upright[INNER]
    centre = (inner.min(axis=0) + inner.max(axis=0)) / 2
    half = np.abs(upright - centre).max()
    return (upright - centre) / (2 * half) + 0.5


def derive(paths: list[Path]) -> np.ndarray:
    """The mean face as geometry.py holds it, rounded to 6 decimals."""
    faces = load_faces(paths)
    if len(faces) == 0:
        raise SystemExit(f"no 68-point faces in {', '.join(map(str, paths))}")
    mean = procrustes_mean(np.concatenate([faces, mirrored_points(faces)]))
    return np.round(into_unit_square(mean), 6)


def table(mean: np.ndarray) -> str:
    """The literal rows that go between the MEAN_FACE_68 markers in geometry.py."""
    rows = [f"    [{x:.6f}, {y:.6f}],  # {i}" for i, (x, y) in enumerate(mean)]
    return "\n".join(rows)


def write_table(mean: np.ndarray, path: Path = GEOMETRY) -> None:
    """Replace the rows between the markers in geometry.py."""
    source = path.read_text()
    pattern = re.compile(r"(# MEAN_FACE_68 BEGIN\n).*?^([ \t]*# MEAN_FACE_68 END)", re.S | re.M)
    if not pattern.search(source):
        raise SystemExit(f"{path}: MEAN_FACE_68 markers not found")
    path.write_text(pattern.sub(lambda m: m.group(1) + table(mean) + "\n" + m.group(2), source))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("xml", nargs="*", type=Path, help="dlib imglab XML files with 68 parts per box")
    parser.add_argument("--write", action="store_true", help="rewrite the table in facekit/imaging/geometry.py")
    args = parser.parse_args(argv)
    paths = args.xml or sorted(DATA.glob("*_with_face_landmarks.xml"))
    mean = derive(paths)
    print(f"{len(load_faces(paths))} faces from {len(paths)} files (+ their mirror images)")
    if args.write:
        write_table(mean)
        print(f"wrote {GEOMETRY}")
    else:
        print(table(mean))
        if MEAN_FACE_68.shape == mean.shape:
            print(f"largest difference from geometry.MEAN_FACE_68: {np.abs(MEAN_FACE_68 - mean).max():.2e}")


if __name__ == "__main__":
    sys.exit(main())
