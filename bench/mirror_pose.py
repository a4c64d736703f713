"""What FaceMesh's mirror view for head pose (``aligner.mirror_pose``, on by default) costs, and
what writing its averaged points instead of one view's would change (why they are kept for pose).

    python bench/mirror_pose.py                  # ../shared/data
    python bench/mirror_pose.py --repeats 5

With the default detector's boxes and FaceMesh on one thread, one view (``align``) against the
view averaged with its mirror view (``align_for_pose``), on the same faces:

- the aligner's time a face over every face of the shared clip, in interleaved rounds (best of
  ``--repeats``), so both meet the same machine;
- how far the averaged points lie from one view's: each face's mean point distance over its
  outer-eye-corner span, the mean and largest over the clip's faces;
- the symmetry the average buys: on each portrait of the people set and a mirrored copy, the
  mean distance of the copy's points, flipped back, from the portrait's own (same units);
- the identity filter, were the averaged points written: with the default identity plugin at
  its default threshold, how many of its keep-or-reject decisions would differ, with every face
  as the one reference against every other face (the clip's faces; the people set's photos), and
  how many of one view's lie within 0.01 of the threshold either way.

Head pose with it: ``bench/pose.py``. Figures only.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from facekit.faces.evaluate import PhotoSet, load_identity
from facekit.faces.identity import distances
from facekit.imaging.geometry import mirrored_points
from facekit.media.sources import read_image
from facekit.models.store import ModelStore
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.registry import default_registry
from facekit.records import Detection

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("one view", "with mirror")
Align = Callable[[np.ndarray, Sequence[Detection]], list[np.ndarray]]


def models() -> tuple[Any, dict[str, Align]]:
    """The default detector, and the aligner's points each way: one view's, and those head pose
    is read from."""
    registry = default_registry()
    store = ModelStore(registry.models, offline=True, quiet=True)
    aligner = load_plugin(registry, store, "aligner", "facemesh").model

    def for_pose(image: np.ndarray, found: Sequence[Detection]) -> list[np.ndarray]:
        return [pose for _, pose in aligner.align_for_pose(image, found)]

    return load_plugin(registry, store, "detector", "yunet").model, {"one view": aligner.align, "with mirror": for_pose}


def largest(found: list[Detection]) -> Detection:
    """A portrait's subject: its largest face."""
    return max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))


def clip_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (found := capture.read())[0]:
        frames.append(found[1])
    return frames


def timed(align: Align, frames: list[np.ndarray], boxes: list[list[Detection]]) -> tuple[float, list]:
    start = time.perf_counter()
    points = [align(frame, found) for frame, found in zip(frames, boxes)]
    return time.perf_counter() - start, points


def span(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[45] - points[36]))


def decisions_differ(embeddings: dict[str, np.ndarray], identity: LoadedPlugin) -> tuple[int, int, int]:
    """(decisions that differ, decisions in all, those within 0.01 of the threshold) over every
    ordered pair of distinct faces."""
    threshold, metric = identity.spec.default_threshold, identity.spec.metric
    one, mirror = (distances(embeddings[name], embeddings[name], metric) for name in VIEWS)
    off_diagonal = ~np.eye(len(one), dtype=bool)
    differ = ((one <= threshold) != (mirror <= threshold)) & off_diagonal
    near = (np.abs(one - threshold) < 0.01) & off_diagonal
    return int(differ.sum()), int(off_diagonal.sum()), int(near.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    detector, loaded = models()
    identity = load_identity("sface")  # the default identity plugin

    frames = clip_frames(args.data / "video" / "short_hamilton_clip.mp4")
    boxes = [detector.detect([frame])[0] for frame in frames]
    faces = sum(map(len, boxes))
    best = dict.fromkeys(VIEWS, np.inf)
    points: dict[str, list] = {}
    for _ in range(args.repeats):
        for name, align in loaded.items():
            seconds, points[name] = timed(align, frames, boxes)
            best[name] = min(best[name], seconds)
    print(f"FaceMesh's points for head pose with and without its mirror view, {time.strftime('%Y-%m-%d')}")
    print(f"clip: {len(frames)} frames, {faces} faces; aligner ms a face, best of {args.repeats}: "
          + ", ".join(f"{name} {1000 * best[name] / faces:.2f}" for name in VIEWS)
          + f" (x{best['with mirror'] / best['one view']:.2f})")
    moved = np.array([np.linalg.norm(a - b, axis=1).mean() / span(a)
                      for one, two in zip(*(points[name] for name in VIEWS)) for a, b in zip(one, two)])
    print(f"points moved (mean over the eye span): mean {moved.mean():.4f}, largest {moved.max():.4f}")
    embeddings = {name: np.concatenate([identity.model.embed(frame, found) for frame, found
                                        in zip(frames, points[name]) if found]) for name in VIEWS}
    print("clip, identity decisions that would differ: {} of {} ({} within 0.01 of the threshold)".format(
        *decisions_differ(embeddings, identity)))

    photos = PhotoSet.read(args.data / "images" / "people")
    images = [read_image(photos.folder / file) for file in photos.identities]
    mirrors = [np.ascontiguousarray(image[:, ::-1]) for image in images]
    pick = [largest(detector.detect([image])[0]) for image in images]
    flipped = [largest(detector.detect([mirror])[0]) for mirror in mirrors]
    portraits: dict[str, np.ndarray] = {}
    for name, align in loaded.items():
        seen = [align(image, [d])[0] for image, d in zip(images, pick)]
        back = [mirrored_points(align(mirror, [d])[0], image.shape[1] - 1)
                for image, mirror, d in zip(images, mirrors, flipped)]
        apart = np.array([np.linalg.norm(a - b, axis=1).mean() / span(a) for a, b in zip(seen, back)])
        print(f"people set, {name}: a mirrored copy's points from the photo's own, mean {apart.mean():.4f}, "
              f"largest {apart.max():.4f}")
        portraits[name] = np.concatenate([identity.model.embed(image, [p]) for image, p in zip(images, seen)])
    print("people set, identity decisions that would differ: {} of {} ({} within 0.01 of the threshold)".format(
        *decisions_differ(portraits, identity)))


if __name__ == "__main__":
    main()
