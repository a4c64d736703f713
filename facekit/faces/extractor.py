"""``Extractor``: the library's plain surface over the stages, for numpy frames in memory."""
from __future__ import annotations

import threading
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from facekit.faces.masks import DEFAULT_MASK_SIZE, MaskMaker
from facekit.faces.stages import FaceStages
from facekit.imaging.geometry import check_crop_size
from facekit.models.store import ModelStore
from facekit.plugin.loading import load_plugin
from facekit.plugin.registry import PluginRegistry, default_registry
from facekit.records import Face, Frame, FrameRecord


class Extractor:
    """Faces from numpy frames, without Hydra or files: for converters that extract on the fly.
    With ``identity`` (an identity plugin's name) every face also gets its embedding, as
    insightface's ``FaceAnalysis.get`` gives, for ``facekit.distance`` / ``compare`` and
    ``facekit.IdentityFilter``.

    >>> extractor = Extractor(detector="yunet", aligner="facemesh", identity="sface")
    >>> faces = extractor.extract(image)          # image: BGR uint8, as cv2.imread gives
    >>> faces[0].landmarks.shape, faces[0].crop.shape, faces[0].embedding.shape
    ((68, 2), (256, 256, 3), (128,))

    ``centering`` is ``output.centering``'s: legacy, face or head (``facekit.imaging.centering``).

    Threads may share one: its calls take turns, a frame at a time. The models hold one input
    buffer each, and two frames in them at once gave one frame's faces to the other.
    """

    def __init__(self, detector: str = "yunet", aligner: str = "facemesh", identity: str | None = None, *,
                 size: int = 256, centering: str = "legacy", detector_options: Mapping[str, Any] | None = None,
                 aligner_options: Mapping[str, Any] | None = None,
                 identity_options: Mapping[str, Any] | None = None, masks: Sequence[str] = (),
                 mask_size: int = DEFAULT_MASK_SIZE,
                 offline: bool = False, registry: PluginRegistry | None = None) -> None:
        """``masks``: masker names (``["components", "extended"]``); each face's ``masks`` then
        holds them by name (``StoredMask``: pixels at ``mask_size``, matrix from the frame)."""
        if not isinstance(offline, bool):
            raise TypeError(f"Extractor's offline is True or False, got {offline!r}")
        check_crop_size(size, "Extractor's size")
        check_crop_size(mask_size, "Extractor's mask_size")
        masks = [masks] if isinstance(masks, str) else list(masks or ())  # one name, as IdentityFilter takes refs
        if identity_options is not None and not identity:
            raise ValueError("Extractor's identity_options set the options of an identity plugin: name one "
                             "with identity=, e.g. identity=\"sface\"")
        registry = registry or default_registry()
        store = ModelStore(registry.models, offline=offline)
        maker = MaskMaker([load_plugin(registry, store, "masker", name) for name in masks], mask_size) if masks else None
        self.stages = FaceStages(
            load_plugin(registry, store, "detector", detector, detector_options),
            load_plugin(registry, store, "aligner", aligner, aligner_options),
            load_plugin(registry, store, "identity", identity, identity_options) if identity else None,
            size=size, centering=centering, masks=maker,
        )
        self.stages.load_models()
        self._one_frame_at_a_time = threading.Lock()

    @property
    def identity(self) -> str | None:
        """The identity plugin's name, None without one."""
        return self.stages.identity.spec.name if self.stages.identity is not None else None

    def reference_embedding(self, photo: np.ndarray, name: str) -> np.ndarray:
        """The embedding of the largest face in ``photo`` (a reference photo's, which ``name``
        names in errors), taking its turn with ``extract``'s calls."""
        from facekit.faces.reference_photos import reference_embedding

        with self._one_frame_at_a_time:
            return reference_embedding(photo, self.stages, name)

    def extract(self, image: np.ndarray) -> list[Face]:
        """Every face in one BGR image, with box, score, 68 landmarks and aligned crop. A grey
        image (height, width) and a BGRA one (``cv2.IMREAD_UNCHANGED`` of a PNG with alpha) are
        taken as the CLI reads such files: as BGR."""
        return next(self.extract_many([image]))

    def extract_many(self, images: Iterable[np.ndarray]) -> Iterator[list[Face]]:
        """Faces frame by frame, lazily, so a long video never sits in memory."""
        for index, image in enumerate(images):
            image = as_bgr(image)
            record = FrameRecord(Frame(name=f"frame_{index:06d}", source="<array>", index=index, image=image))
            with self._one_frame_at_a_time:
                self.stages.analyse([record])
                self.stages.finish(record)
            yield record.faces


def as_bgr(image: Any) -> np.ndarray:
    """``image`` as BGR uint8 (height, width, 3), or a ValueError that says what it was."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"Extractor takes BGR uint8 images (numpy arrays, as cv2.imread gives), got {type(image).__name__}")
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else None
    if image.dtype != np.uint8 or channels not in (1, 3, 4) or 0 in image.shape:
        raise ValueError(f"Extractor takes BGR uint8 images of shape (height, width, 3), grey (height, width) or "
                         f"BGRA (height, width, 4), none of the sides 0; got {image.dtype} {image.shape}")
    if channels == 3:
        return image
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if channels == 1 else cv2.COLOR_BGRA2BGR)
