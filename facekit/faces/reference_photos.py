"""A reference photo of the identity filter stands for one face: its largest. The CLI's
``filter.refs`` and the library's ``IdentityFilter`` both embed it here, so both judge against
the very same vector."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from facekit.errors import FacekitError, StageError
from facekit.faces.identity import reference_face
from facekit.faces.stages import FaceStages
from facekit.media.sources import decoded_image_caught
from facekit.records import Frame, FrameRecord

log = logging.getLogger("facekit")


def reference_path(name: str | Path) -> Path:
    """A reference photo's path, ``~`` expanded; a missing file, or a folder (which exists: "does
    not exist" would send the user looking for the wrong mistake), is an error naming it."""
    path = Path(name).expanduser()
    if path.is_dir():
        raise FacekitError(f"reference photo {str(name)!r} is a folder, not a photo")
    if not path.is_file():
        raise FacekitError(f"reference photo {str(name)!r} does not exist")
    return path


def read_reference(path: Path) -> np.ndarray:
    """A reference photo's pixels; an unreadable file is an error naming it."""
    image, _, said = decoded_image_caught(path)
    damage = f" ({'; '.join(said)})" if said else ""
    if image is None:
        raise FacekitError(f"reference photo {str(path)!r} cannot be read as an image{damage}")
    if said:
        log.warning("reference photo %s: decoded despite damage, some pixels may be wrong%s", path, damage)
    return image


def reference_embedding(image: np.ndarray, stages: FaceStages, name: str) -> np.ndarray:
    """The embedding of the largest face in ``image`` (``stages`` must hold an identity
    plugin). A plugin that fails on it is named with the reference photo, not a frame: the
    photo is the user's to check or replace."""
    stages.ensure_weights()  # every missing model named at once, before the first is needed
    record = FrameRecord(Frame(name=Path(name).stem, source=name, index=0, image=image))

    def keep_largest(found: FrameRecord) -> None:
        found.faces = [found.faces[reference_face(found.faces, name)]]

    try:
        stages.analyse([record], narrow=keep_largest)
    except StageError as exc:
        if not exc.plugin:
            raise
        raise StageError(f"{exc.plugin} failed on reference photo {name!r}: {exc.cause}", exc.plugin,
                         exc.cause) from exc
    if not record.faces:  # the aligner's points or the embedding were not numbers: left out, with a warning
        plugin = stages.identity.label if stages.identity is not None else "the identity plugin"
        raise StageError(f"reference photo {name!r}: its face was left out (the warning above says why: an aligner's "
                         f"points or {plugin}'s embedding that are not numbers); choose another photo", plugin,
                         "its face was left out")
    return record.faces[0].embedding
