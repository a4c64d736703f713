"""vgg-face: the VGG-Face descriptor (Parkhi, Vedaldi, Zisserman 2015; Caffe, VGG-16, 224x224)
run by OpenCV DNN on the CPU, as faceswap's face filter used it.

Weights: faceswap publishes the Oxford VGG-Face Caffe model as ``vgg_face_v1`` (a zip holding
``vgg_face_v1.caffemodel`` and ``vgg_face_v1.prototxt``; faceswap's model id 7, release v7.1).
No checksum is published: the model store records each file's sha256 on first download and
checks it from then on. The caffemodel is about 580 MB (fc6 alone is 25088 x 4096 floats).

Embedding, per face:

- crop: facekit's similarity alignment of the 68 landmarks (``alignment_matrix`` and
  ``warp_face``) at 224 px with ``CROP_PADDING``. faceswap fed this net its "legacy" aligned
  face at 224 px (an Umeyama fit of points 17-67 to its mean face with 18.75% padding per
  side); fitting that mean face to facekit's shows the same framing is facekit's crop at
  padding 0.023 (scale equal, centre within 4 px), tight brow-to-chin like the detector boxes
  VGG-Face was trained on. facekit's own alignment is used, not faceswap's, so the crop follows
  facekit's mean face and anti-aliased warp like every other crop facekit makes.
- input: BGR, minus the VGG-Face average image's mean, (B, G, R) = (93.5940, 104.7624,
  129.1863) (published as R, G, B = 129.1863, 104.7624, 93.5940 with the model; faceswap passed
  those three in R, G, B order to a BGR blob, i.e. swapped).
- output: the ``fc7`` layer (4096-d), as faceswap used it. OpenCV returns fc7's inner product
  before the in-place ``relu7`` (measured with OpenCV 4.14: about half the values are negative),
  which is also the vector faceswap's 0.4 default threshold was chosen on.
- L2-normalised, so cosine distance is ``1 - a . b``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from facekit.plugin import ModelFile, ModelSpec, PluginSpec, geometry, hookimpl

MODEL_ID = "vgg-face-v1"
URL = "https://github.com/deepfakes-models/faceswap-models/releases/download/v7.1/vgg_face_v1.zip"
CAFFEMODEL = "vgg_face_v1.caffemodel"
PROTOTXT = "vgg_face_v1.prototxt"

INPUT_SIZE = 224
MEAN_BGR = (93.5940, 104.7624, 129.1863)
EMBEDDING_LAYER = "fc7"
EMBEDDING_SIZE = 4096
CROP_PADDING = 0.023


@dataclass
class VggFaceConfig:
    # Faces per forward pass: VGG-16 holds about 60 MB of activations per face at 224 px, so a
    # frame with many faces is embedded in chunks of this many.
    faces_per_pass: int = 16


class VggFaceModel:
    def __init__(self, config: VggFaceConfig, prototxt: str, caffemodel: str) -> None:
        import cv2

        self.config = config
        self._cv2 = cv2
        self._net = cv2.dnn.readNetFromCaffe(prototxt, caffemodel)
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The 224 px aligned face the net sees (BGR uint8)."""
        matrix = geometry.alignment_matrix(landmarks, INPUT_SIZE, padding=CROP_PADDING)
        return geometry.warp_face(image, matrix, INPUT_SIZE)

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, 4096) float32 unit vectors, one per face's 68 landmarks."""
        crops = [self.crop(image, np.asarray(points, dtype=np.float64).reshape(68, 2)) for points in landmarks]
        step = max(1, int(self.config.faces_per_pass))
        chunks = [self._forward(crops[i:i + step]) for i in range(0, len(crops), step)]
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, EMBEDDING_SIZE), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def _forward(self, crops: list[np.ndarray]) -> np.ndarray:
        blob = self._cv2.dnn.blobFromImages(crops, 1.0, (INPUT_SIZE, INPUT_SIZE), MEAN_BGR, swapRB=False, crop=False)
        self._net.setInput(blob)
        return np.asarray(self._net.forward(EMBEDDING_LAYER), dtype=np.float32).reshape(len(crops), -1)


def _build(config: VggFaceConfig, store) -> VggFaceModel:
    caffemodel = store.path(MODEL_ID, CAFFEMODEL)  # first: the one download extracts both
    prototxt = store.path(MODEL_ID, PROTOTXT)
    return VggFaceModel(config, str(prototxt), str(caffemodel))


@hookimpl
def facekit_identities() -> list[PluginSpec]:
    return [PluginSpec(
        name="vgg-face", kind="identity", factory=_build, config_class=VggFaceConfig,
        model_ids=(MODEL_ID,), gpu_memory_mb=0, batch_size=1,
        metric="cosine", default_threshold=0.4,
        description="VGG-Face fc7 (4096-d, Caffe, OpenCV DNN, CPU), cosine distance",
    )]


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [ModelSpec(
        id=MODEL_ID, version="v7.1",
        files=(ModelFile(CAFFEMODEL, sha256=None, size=None, url=URL, archive=True),
               ModelFile(PROTOTXT, sha256=None, size=None, url=URL, archive=True)),
        description="VGG-Face (Oxford VGG, 2015) Caffe model, as published by faceswap (vgg_face_v1); "
                    "about 580 MB",
    )]
