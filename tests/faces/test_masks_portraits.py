"""The landmark masks on every shared portrait (the people set and the single-face scene
portraits), with the default detector and the facemesh aligner: ``components`` covers the
filled convex hull of the 68 points, ``extended`` holds all of it and reaches above the brows,
and ``mesh`` (FaceMesh's outline) agrees with ``components``."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from conftest import require_data
from facekit.faces.masks import MaskMaker, exactly_transformed
from facekit.faces.pose_check import shared_portraits
from facekit.faces.stages import FaceStages
from facekit.models.store import ModelStore
from facekit.plugin.loading import load_plugin
from facekit.plugin.registry import default_registry
from facekit.records import Frame, FrameRecord
from facekit_plugins.landmark_masks import fill_hulls

SIZE = 128


@dataclass(frozen=True)
class PortraitMasks:
    name: str
    hull: np.ndarray  # the filled convex hull of the 68 points, in the mask's square
    brow_top: float  # the highest brow point's row there
    masks: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def portraits() -> list[PortraitMasks]:
    registry = default_registry()
    store = ModelStore(registry.models)
    maker = MaskMaker([load_plugin(registry, store, "masker", name) for name in ("components", "extended", "mesh")],
                      SIZE)
    stages = FaceStages(load_plugin(registry, store, "detector", "yunet"),
                        load_plugin(registry, store, "aligner", "facemesh"), masks=maker)
    found = []
    for name, path in shared_portraits(require_data() / "images"):
        record = FrameRecord(Frame(name, name, 0, cv2.imread(str(path))))
        stages.analyse([record])
        stages.finish(record)
        face = max(record.faces, key=lambda f: f.face_px)
        points = exactly_transformed(face.landmarks, face.masks["components"].matrix)
        found.append(PortraitMasks(name, fill_hulls(SIZE, [points]), float(points[17:27, 1].min()),
                                   {key: mask.pixels for key, mask in face.masks.items()}))
    assert len(found) == 34
    return found


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 127, b > 127
    return float((a & b).sum() / (a | b).sum())


def test_components_covers_the_filled_hull_of_the_68_points_with_an_iou_of_at_least_0_9(portraits) -> None:
    assert [f"{p.name}: {iou(p.masks['components'], p.hull):.3f}" for p in portraits
            if not iou(p.masks["components"], p.hull) >= 0.9] == []


def test_extended_holds_every_pixel_of_components_and_adds_pixels_above_the_brows(portraits) -> None:
    for portrait in portraits:
        components, extended = portrait.masks["components"] > 127, portrait.masks["extended"] > 127
        assert not (components & ~extended).any(), portrait.name
        added_rows = np.nonzero(extended & ~components)[0]
        assert (added_rows < portrait.brow_top).sum() > 0, portrait.name


def test_the_mesh_outline_agrees_with_components_with_an_iou_of_at_least_0_85(portraits) -> None:
    assert [f"{p.name}: {iou(p.masks['mesh'], p.masks['components']):.3f}" for p in portraits
            if not iou(p.masks["mesh"], p.masks["components"]) >= 0.85] == []


def test_each_mask_is_a_uint8_square_at_the_stored_size(portraits) -> None:
    for portrait in portraits:
        assert {name: (mask.dtype, mask.shape) for name, mask in portrait.masks.items()} == \
            {name: (np.uint8, (SIZE, SIZE)) for name in ("components", "extended", "mesh")}


def test_the_library_extractor_gives_each_face_the_masks_it_names() -> None:
    import facekit

    extractor = facekit.Extractor(masks=["components", "mesh"], mask_size=64)
    face, = extractor.extract(cv2.imread(str(require_data() / "images" / "scenes" / "biden.jpg")))
    assert set(face.masks) == {"components", "mesh"} and face.masks["mesh"].pixels.shape == (64, 64)
    assert face.outline is not None and face.masks["components"].centering == "legacy"
