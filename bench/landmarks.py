"""Aligners' agreement with dlib's 68 points and detectors' recall on hand-drawn face boxes.

    python bench/landmarks.py                    # ../shared/data, every installed plugin
    python bench/landmarks.py --data DIR --detector mtcnn

Data: dlib's example set of PASCAL VOC photos in ``landmarks/`` (imglab XML files).

- Aligners, on ``*_with_face_landmarks.xml``: every installed aligner places 68 points on each
  annotated face, once from the annotated box (handed over as a Detection without 5 points) and
  once from the box the default detector draws around the same face (what a real run sees; a
  detection stands for a face when its IoU with the annotated box is at least 0.3, the best one
  when several do). The error of a face is the mean distance of its 68 points to the reference
  points divided by the inter-ocular distance (outer eye corners, points 36 and 45: the 300-W
  rule). The reference points come from dlib's shape_predictor_68_face_landmarks.dat, not from
  people, so the table measures agreement with dlib, and dlib's own aligner scores near zero.
- Detectors, on ``training.xml`` and ``testing.xml`` separately: recall on the hand-drawn boxes.
  A box counts as found when a detection overlaps it with IoU >= 0.5, each detection matching
  at most one box (greedily, highest IoU first); boxes marked ignore='1' are not counted, and a
  detection that lands on one is neither a hit nor unmatched. "unmatched" counts the detections
  that match no box: false alarms, or real faces nobody annotated, or faces boxed so differently
  from dlib's tight square boxes that the IoU stays under 0.5.

A plugin whose weights are not on this machine is listed as skipped (``--online`` lets plugins
download what they lack). Figures only: nothing here asserts a time or an accuracy.
"""
from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from facekit.media.sources import read_image
from facekit.models.store import ModelStore
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.registry import PluginRegistry, default_registry
from facekit.records import Detection

ROOT = Path(__file__).resolve().parents[1]
Box = tuple[float, float, float, float]  # x1, y1, x2, y2: facekit's convention, pixel edges
FOUND_IOU = 0.5  # a hand-drawn box is found by a detection at least this close (detector recall)
SAME_FACE_IOU = 0.3  # a detection stands for an annotated face (aligner input from a detector)
OUTER_EYE_CORNERS = (36, 45)


@dataclass
class Annotation:
    """One <box> of an imglab file: its pixels and, in the *_with_face_landmarks files, 68 points."""

    box: Box
    ignore: bool = False
    points: np.ndarray | None = None  # (68, 2), iBUG-300W order, pixel centres at integers


@dataclass
class AnnotatedImage:
    path: Path
    faces: list[Annotation] = field(default_factory=list)


def read_imglab(xml_file: Path) -> list[AnnotatedImage]:
    """dlib's imglab format: <images><image file=...><box top left width height [ignore='1']>
    with optional <part name='00' x y/> children. A box covers the pixels left .. left+width-1,
    so as a facekit box it runs from left to left+width."""
    images = []
    for node in ET.parse(xml_file).getroot().iter("image"):
        image = AnnotatedImage(xml_file.parent / node.attrib["file"])
        for box in node.iter("box"):
            left, top = float(box.attrib["left"]), float(box.attrib["top"])
            parts = {int(p.attrib["name"]): (float(p.attrib["x"]), float(p.attrib["y"])) for p in box.iter("part")}
            points = np.array([parts[i] for i in sorted(parts)], dtype=np.float64) if parts else None
            image.faces.append(Annotation(
                (left, top, left + float(box.attrib["width"]), top + float(box.attrib["height"])),
                ignore=box.attrib.get("ignore", "0") == "1", points=points))
        images.append(image)
    return images


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def match(boxes: Sequence[Box], found: Sequence[Box], least: float) -> dict[int, int]:
    """Greedy one-to-one matching, highest IoU first: box index -> detection index."""
    pairs = sorted(((iou(b, d), i, j) for i, b in enumerate(boxes) for j, d in enumerate(found)), reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < least:
            break
        if i not in matched and j not in used:
            matched[i] = j
            used.add(j)
    return matched


def normalised_error(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean point-to-point distance over the inter-ocular distance (outer eye corners)."""
    a, b = OUTER_EYE_CORNERS
    inter_ocular = float(np.linalg.norm(reference[a] - reference[b]))
    return float(np.linalg.norm(np.asarray(points, dtype=np.float64) - reference, axis=1).mean() / inter_ocular)


def default_detector() -> str:
    """The detector a run uses when it names none (``default_plugins.detector`` in config.yaml)."""
    config = yaml.safe_load((resources.files("facekit.conf") / "config.yaml").read_text())
    return config["default_plugins"]["detector"]


def loadable(registry: PluginRegistry, store: ModelStore, kind: str, name: str) -> tuple[LoadedPlugin | None, str]:
    """The plugin with its model built, or None and why not."""
    spec = registry.get(kind, name)
    missing = [m for m in spec.model_ids if m not in registry.models or store.state(m) != "present"]
    if missing and store.offline:
        return None, f"no weights here ({', '.join(missing)})"
    try:
        plugin = load_plugin(registry, store, kind, name)
        plugin.model  # noqa: B018 - builds it now, so a failure is reported here
        return plugin, ""
    except Exception as exc:  # a plugin that cannot run (any error of foreign code) is reported, not fatal
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def detections(detector: LoadedPlugin, images: Sequence[AnnotatedImage]) -> tuple[dict[Path, list[Detection]], float]:
    """Each image's detections and the seconds the detector took over all of them."""
    found, seconds = {}, 0.0
    for image in images:
        pixels = read_image(image.path)
        started = time.perf_counter()
        found[image.path] = detector.model.detect([pixels])[0]
        seconds += time.perf_counter() - started
    return found, seconds


@dataclass
class Recall:
    boxes: int = 0
    found: int = 0
    unmatched: int = 0
    seconds: float = 0.0
    images: int = 0
    missed: list[float] = field(default_factory=list)  # side (sqrt of area) of each box not found

    def cell(self) -> str:
        return f"{self.found}/{self.boxes} = {self.found / max(self.boxes, 1):.0%}"


def recall(found: dict[Path, list[Detection]], images: Sequence[AnnotatedImage], seconds: float) -> Recall:
    result = Recall(seconds=seconds, images=len(images))
    for image in images:
        boxes = [f.box for f in image.faces]
        hits = match(boxes, [d.box for d in found[image.path]], FOUND_IOU)
        counted = [i for i, face in enumerate(image.faces) if not face.ignore]
        result.boxes += len(counted)
        result.found += sum(1 for i in counted if i in hits)
        result.missed += [_side(image.faces[i].box) for i in counted if i not in hits]
        result.unmatched += len(found[image.path]) - len(hits)
    return result


def aligner_errors(aligner: LoadedPlugin, images: Sequence[AnnotatedImage],
                   detected: dict[Path, list[Detection]] | None) -> tuple[list[float], list[float], int]:
    """Normalised errors from the annotated boxes, from the detector's boxes, and the number of
    annotated faces the detector gave no box for."""
    from_boxes, from_detector, unfound = [], [], 0
    for image in images:
        faces = [f for f in image.faces if f.points is not None and not f.ignore]
        if not faces:
            continue
        pixels = read_image(image.path)
        points = aligner.model.align(pixels, [Detection(f.box, 1.0, None) for f in faces])
        from_boxes += [normalised_error(p, f.points) for p, f in zip(points, faces)]
        if detected is None:
            continue
        found = detected[image.path]
        pairs = match([f.box for f in faces], [d.box for d in found], SAME_FACE_IOU)
        unfound += len(faces) - len(pairs)
        if pairs:
            order = sorted(pairs)
            points = aligner.model.align(pixels, [found[pairs[i]] for i in order])
            from_detector += [normalised_error(p, faces[i].points) for p, i in zip(points, order)]
    return from_boxes, from_detector, unfound


def _side(box: Box) -> float:
    return float(np.sqrt((box[2] - box[0]) * (box[3] - box[1])))


def _stats(errors: Sequence[float]) -> tuple[str, str, str]:
    if not errors:
        return "-", "-", "-"
    values = np.asarray(errors)
    return f"{values.mean():.4f}", f"{np.median(values):.4f}", f"{values.max():.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the shared test data folder (default: ../shared/data next to the repository)")
    parser.add_argument("--detector", default=None,
                        help="the detector whose boxes the aligners also start from (default: facekit's default)")
    parser.add_argument("--online", action="store_true", help="let plugins download missing weights")
    args = parser.parse_args()

    folder = args.data / "landmarks"
    if not folder.is_dir():
        parser.error(f"no landmarks folder in {args.data} (the shared test data)")
    registry = default_registry()
    store = ModelStore(registry.models, offline=not args.online, quiet=True)
    console = Console(width=120)
    landmark_sets = {xml.name.removesuffix("_with_face_landmarks.xml"): read_imglab(xml)
                     for xml in sorted(folder.glob("*_with_face_landmarks.xml"))}
    box_sets = {name: read_imglab(folder / f"{name}.xml") for name in ("training", "testing")
                if (folder / f"{name}.xml").is_file()}
    landmark_images = [image for images in landmark_sets.values() for image in images]

    # Detectors: recall per hand-drawn set; the default detector's boxes also feed the aligners.
    base_detector = args.detector or default_detector()
    detector_table = Table(title="Detector recall on hand-drawn face boxes (each detector with its defaults)")
    detector_table.add_column("detector")
    for name in box_sets:
        detector_table.add_column(f"{name}.xml\nrecall", justify="right")
        detector_table.add_column(f"{name}.xml\nunmatched", justify="right")
    detector_table.add_column("missed boxes,\nmedian side px", justify="right")
    detector_table.add_column("s / image", justify="right")
    detector_table.add_column("note", overflow="fold")
    base_boxes: dict[Path, list[Detection]] | None = None
    for name in registry.names("detector"):
        detector, why = loadable(registry, store, "detector", name)
        if detector is None:
            detector_table.add_row(name, *["-"] * (2 * len(box_sets) + 2), f"skipped: {why}")
            continue
        cells, seconds, count, missed = [], 0.0, 0, []
        for images in box_sets.values():
            found, spent = detections(detector, images)
            result = recall(found, images, spent)
            cells += [result.cell(), str(result.unmatched)]
            seconds, count, missed = seconds + spent, count + len(images), missed + result.missed
        detector_table.add_row(name, *cells, f"{np.median(missed):.0f}" if missed else "-",
                               f"{seconds / max(count, 1):.2f}", "")
        if name == base_detector:
            base_boxes, _ = detections(detector, landmark_images)

    # Aligners: agreement with dlib's points, from the annotated boxes and from the detector's.
    faces = sum(1 for image in landmark_images for f in image.faces if f.points is not None)
    aligner_table = Table(title="Aligner error / inter-ocular distance against dlib's 68 points")
    aligner_table.add_column("aligner")
    for column in ("mean", "median", "max"):
        aligner_table.add_column(f"annotated box\n{column}", justify="right")
    for column in ("mean", "median"):
        aligner_table.add_column(f"{base_detector} box\n{column}", justify="right")
    aligner_table.add_column(f"faces {base_detector}\nmissed", justify="right")
    aligner_table.add_column("note", overflow="fold")
    for name in registry.names("aligner"):
        aligner, why = loadable(registry, store, "aligner", name)
        if aligner is None:
            aligner_table.add_row(name, *["-"] * 6, f"skipped: {why}")
            continue
        from_boxes, from_detector, unfound = aligner_errors(aligner, landmark_images, base_boxes)
        aligner_table.add_row(name, *_stats(from_boxes), *_stats(from_detector)[:2],
                              "-" if base_boxes is None else str(unfound), "")

    console.print(aligner_table)
    console.print(f"{faces} faces in {', '.join(f'{n}_with_face_landmarks.xml' for n in landmark_sets)}; error = mean "
                  "distance of the 68 points to the reference over the distance between the outer eye corners "
                  f"(points 36 and 45). 'annotated box': the aligner starts from the file's box; '{base_detector} "
                  f"box': from {base_detector}'s detection of the same face (IoU >= {SAME_FACE_IOU}).")
    console.print("[bold]The reference points come from dlib's shape_predictor_68_face_landmarks.dat[/bold] (so the "
                  "XML files say), not from people: this table measures agreement with dlib. dlib's own aligner "
                  "agrees closely by construction, and a low figure for another aligner means 'places points "
                  "like dlib does', not 'nearer the truth'.")
    if base_boxes is None:
        console.print(f"(the {base_detector} detector could not run, so there is no detector-box column)")
    console.print()
    console.print(detector_table)
    console.print(f"A box counts as found when a detection overlaps it with IoU >= {FOUND_IOU} (intersection over "
                  "union), one detection per box, best overlaps first; boxes marked ignore='1' are not counted. "
                  "'unmatched': detections that match no box (false alarms, unannotated faces, or faces boxed so "
                  "unlike dlib's tight squares that the IoU stays under 0.5).")


if __name__ == "__main__":
    main()
