"""What a plugin declares, and the small interfaces each kind of model implements."""
from __future__ import annotations

import warnings
from dataclasses import InitVar, dataclass
from typing import Any, Callable, Literal, Protocol, Sequence, runtime_checkable

import numpy as np

from facekit.records import Detection, MaskRequest

PluginKind = Literal["detector", "aligner", "identity", "masker"]
PLUGIN_KINDS: tuple[PluginKind, ...] = ("detector", "aligner", "identity", "masker")


@runtime_checkable
class Detector(Protocol):
    """Finds faces. Takes a batch so models that batch can; others loop."""

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """BGR uint8 images in, one list of detections per image out."""
        ...


@runtime_checkable
class Aligner(Protocol):
    """Places 68 iBUG-300W landmarks on each detected face."""

    def align(self, image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        """One (68, 2) float array per detection, in the image's pixel coordinates."""
        ...


@runtime_checkable
class PoseAligner(Protocol):
    """An aligner that also has points better suited to head pose than those it writes (FaceMesh:
    averaged with its mirror view's, so a mirror image reads the same pitch), kept apart so that
    the written points, and everything cut and embedded from them, stay as ``align`` gives them."""

    def align_for_pose(self, image: np.ndarray, detections: Sequence[Detection],
                       outline: bool = False) -> list[tuple[np.ndarray, ...]]:
        """Per detection: ``align``'s (68, 2) points, and the (68, 2) points head pose is read
        from; with ``outline`` (asked of an aligner that has ``align_outlined``), the face's
        outline third, from the same model run."""
        ...


@runtime_checkable
class IdentityModel(Protocol):
    """Embeds a face so faces of one person lie near each other."""

    def embed(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(n, d) embeddings for the faces with these 68-point landmarks."""
        ...


@runtime_checkable
class Masker(Protocol):
    """Draws one mask a face, in the square the face's ``MaskRequest`` names (see
    ``facekit.records.MaskRequest``)."""

    def mask(self, image: np.ndarray | None, requests: Sequence[MaskRequest]) -> list[np.ndarray]:
        """One (size, size) uint8 mask per request, 255 on the face. ``image`` is the BGR frame
        when the spec's ``needs`` holds "image", else None (masks added to an existing output
        from landmarks alone read no frame)."""
        ...


#: What a masker may say it ``needs`` besides the 68 landmarks.
MASKER_NEEDS = ("image", "outline")
#: The distances an identity plugin's ``metric`` may name (``facekit.faces.identity`` computes them).
DISTANCE_METRICS = ("cosine", "euclidean", "euclidean_l2")


@dataclass(frozen=True)
class PluginSpec:
    """A plugin's declaration, returned by a ``facekit_*`` hook.

    ``factory(config, store)`` builds the model from its config dataclass instance and a
    ``ModelStore`` (to resolve ``model_ids`` to files); it runs in whichever process runs the
    stage, so it must not depend on state from the registry's process.
    """

    name: str
    kind: PluginKind
    factory: Callable[[Any, Any], Any]
    config_class: type
    model_ids: tuple[str, ...] = ()
    gpu_memory_mb: int = 0  # at ``batch_size``; 0 for a plugin that runs on the CPU
    batch_size: int = 1  # the default; a config field ``batch_size`` overrides it (``LoadedPlugin``)
    gpu_memory_per_item_mb: int = 0  # what each item of a batch adds, so memory follows the configured batch
    description: str = ""
    metric: str | None = None  # identity plugins: one of DISTANCE_METRICS (None: cosine)
    default_threshold: float | None = None  # identity plugins
    # maskers: what they read besides the 68 landmarks: "image" (the frame's pixels), "outline"
    # (the face outline an aligner traces: FaceMesh's)
    needs: tuple[str, ...] = ()
    # Never read by facekit, so no longer stored; still accepted, with a warning, for one release.
    input_size: InitVar[Any] = None
    extras: InitVar[Any] = None

    def __post_init__(self, input_size: Any, extras: Any) -> None:
        if input_size is not None or extras is not None:
            warnings.warn(f"plugin {self.name!r}: PluginSpec's input_size and extras were never used and go in "
                          "the next release; drop them", DeprecationWarning, stacklevel=3)
