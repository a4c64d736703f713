"""Derive facekit.imaging.face3d.MEAN_FACE_3D_68, the 3D face head pose is measured against, from
FaceMesh's own 3D vertices on the shared landmark photos (the photos MEAN_FACE_68 came from).

    python bench/derive_mean_face_3d.py            # print the table and how far it is from face3d.py
    python bench/derive_mean_face_3d.py --write    # replace the table in facekit/imaging/face3d.py

Each face the default detector finds is meshed by FaceMesh (two passes, as the aligner runs) with
its depth kept (MediaPipe's z, in the crop's pixel scale, larger away from the camera), reduced to
the 68 iBUG points as the aligner reduces x and y. Generalised Procrustes analysis in 3D, as
``derive_mean_face.py`` does in 2D: every face and its mirror image is fitted to the current mean
with a similarity (which removes its pose), the mean recomputed until it stops moving. The mean
is then turned to face the camera: x along the line from each point to its mirror partner, y from
the eyes down to the mouth, z away from the camera; made exactly symmetric; centred on the nose
tip (30) and scaled to an outer-eye-corner span of 1; and tilted about x so that the median
photo's pitch is 0 (eyes to mouth is not a level head: the face leans back from brow to chin).
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import cv2
import numpy as np

import facekit
from facekit.imaging.geometry import MIRROR_68, mirrored_points
from facekit_plugins.facemesh import INPUT_SIZE, NUM_VERTICES, Roi, apply_affine, crop, roi_from_mesh

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "landmarks"
TABLE = ROOT / "facekit" / "imaging" / "face3d.py"
ITERATIONS = 30


def mesh_3d(aligner: object, image: np.ndarray, roi: Roi) -> np.ndarray:
    """(468, 3) one FaceMesh pass: x, y in image pixels, z in the same scale."""
    interpreter = aligner._interpreter  # type: ignore[attr-defined]
    tensor = cv2.cvtColor(crop(image, roi, INPUT_SIZE), cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
    interpreter.set_tensor(aligner._input, tensor)  # type: ignore[attr-defined]
    interpreter.invoke()
    vertices = interpreter.get_tensor(aligner._mesh).reshape(NUM_VERTICES, 3).astype(np.float64)  # type: ignore[attr-defined]
    matrix = roi.crop_to_image(INPUT_SIZE)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    return np.hstack([apply_affine(matrix, vertices[:, :2]), vertices[:, 2:] * scale])


def shapes(extractor: facekit.Extractor) -> np.ndarray:
    """(n, 68, 3) every face of the landmark photos."""
    from facekit_plugins.facemesh_68 import _FIRST, _SECOND

    aligner = extractor.stages.aligner.model
    found = []
    for path in sorted(DATA.glob("*.jpg")):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for face in extractor.extract(image):
            start = Roi(*((face.landmarks.min(0) + face.landmarks.max(0)) / 2),
                        float((face.landmarks.max(0) - face.landmarks.min(0)).max()) * 1.8, 0.0)
            mesh = mesh_3d(aligner, image, start)
            mesh = mesh_3d(aligner, image, roi_from_mesh(mesh[:, :2], aligner.config.roi_scale))
            found.append((mesh[_FIRST] + mesh[_SECOND]) / 2)
    return np.asarray(found)


def rotation_onto(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """The rotation and scale that move centred ``source`` (68, 3) onto centred ``target`` (Umeyama)."""
    a, b = source - source.mean(0), target - target.mean(0)
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    return u @ d @ vt, float((s * np.diag(d)).sum() / (a ** 2).sum())


def similarity_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``source`` (68, 3) moved onto ``target`` by a rotation, a scale and a shift."""
    rotation, scale = rotation_onto(source, target)
    return scale * (source - source.mean(0)) @ rotation.T + target.mean(0)


def level(mean: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``mean`` turned about x so that the median face of ``faces`` has no pitch: "looking
    straight at the camera" is how people in photos most often hold their heads."""
    pitches = []
    for face in faces:
        rotation, _ = rotation_onto(mean, face)  # the model turned as this face is
        pitches.append(math.atan2(rotation[2, 1], rotation[2, 2]))
    angle = float(np.median(pitches))
    turn = np.array([[1, 0, 0], [0, math.cos(angle), -math.sin(angle)], [0, math.sin(angle), math.cos(angle)]])
    levelled = mean @ turn.T
    return levelled - levelled[30]


def upright(mean: np.ndarray) -> np.ndarray:
    """Camera axes, symmetric, nose tip at the origin, outer eye corners 1 apart."""
    sides = [i for i in range(68) if MIRROR_68[i] != i]
    x = (mean[MIRROR_68[sides]] - mean[sides]).mean(0)
    x /= np.linalg.norm(x)
    if x[0] < 0:  # points are numbered from the image's left on an upright face
        x = -x
    down = mean[48:68].mean(0) - mean[36:48].mean(0)
    y = down - (down @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    turned = mean @ np.stack([x, y, z]).T
    turned = (turned + mirrored_points(turned)) / 2
    turned -= turned[30]
    return turned / np.linalg.norm(turned[45] - turned[36])


def derive(faces: np.ndarray) -> np.ndarray:
    faces = np.concatenate([faces, mirrored_points(faces)])
    mean = faces[0] - faces[0].mean(0)
    for _ in range(ITERATIONS):
        fitted = np.stack([similarity_fit(face, mean) for face in faces])
        new = fitted.mean(0)
        new = (new - new.mean(0)) / np.sqrt((new - new.mean(0)) ** 2).sum(1).mean()
        if np.abs(new - mean).max() < 1e-9:
            break
        mean = new
    return level(upright(mean), faces)


def table(mean: np.ndarray) -> str:
    rows = "\n".join(f"    [{x: .5f}, {y: .5f}, {z: .5f}],  # {i}" for i, (x, y, z) in enumerate(mean))
    return f"MEAN_FACE_3D_68 = np.array([\n{rows}\n])"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {TABLE.relative_to(ROOT)}")
    args = parser.parse_args()
    faces = shapes(facekit.Extractor(detector="yunet", aligner="facemesh"))
    mean = derive(faces)
    print(f"{len(faces)} faces (and their mirror images)")
    print(table(mean))
    if args.write:
        text = TABLE.read_text(encoding="utf-8")
        TABLE.write_text(re.sub(r"MEAN_FACE_3D_68 = np\.array\(\[\n.*?\n\]\)", table(mean), text, flags=re.S),
                         encoding="utf-8")
        print(f"written to {TABLE}")
    else:
        from facekit.imaging.face3d import MEAN_FACE_3D_68

        print(f"largest difference from face3d.py: {np.abs(mean - MEAN_FACE_3D_68).max():.5f}", file=sys.stderr)


if __name__ == "__main__":
    main()
