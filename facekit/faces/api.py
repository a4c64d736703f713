"""The identity side of the library, as plain functions in face_recognition's manner
(``face_distance``, ``compare_faces``): distances in the identity plugin's own metric, a yes/no
at its default threshold, and the CLI's identity filter built from photos or embeddings.

>>> extractor = facekit.Extractor(identity="sface")
>>> a, b = extractor.extract(photo_a)[0], extractor.extract(photo_b)[0]
>>> facekit.distance(a, b, identity="sface"), facekit.compare(a, b, identity="sface")
(0.21, True)
>>> wanted = facekit.IdentityFilter(refs=["alice.jpg"], extractor=extractor)
>>> kept = wanted.filter(extractor.extract(group_photo))
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np

from facekit.errors import ConfigError
from facekit.faces.extractor import Extractor, as_bgr
from facekit.faces.identity import Decision, as_threshold, distances
from facekit.faces.identity import IdentityFilter as Rules
from facekit.faces.reference_photos import read_reference, reference_path
from facekit.plugin.registry import PluginRegistry, default_registry
from facekit.plugin.spec import PluginSpec
from facekit.records import Face

#: An embedding, or a face that carries one (``Extractor(identity=...)`` gives them).
Embedded = Union[Face, np.ndarray, Sequence[float]]
#: What a reference can be: a photo's path, its BGR pixels, an embedding or an embedded face.
Reference = Union[str, Path, Face, np.ndarray, Sequence[float]]


def distance(a: Embedded | Sequence[Embedded], b: Embedded, identity: str = "sface",
             registry: PluginRegistry | None = None) -> float | np.ndarray:
    """The distance between two faces in ``identity``'s metric (cosine for sface): a float, or
    one distance for each of several faces in ``a`` (face_recognition's ``face_distance``)."""
    if not _is_single(b):  # distances() would compare against b's first face only
        raise ValueError("b is one face or embedding, which every face in a is compared with; pass several as a")
    if not _is_single(a) and not len(a):  # face_recognition's face_distance([], face): no distances
        return np.zeros(0)
    metric = _identity(identity, registry).metric or "cosine"
    table = distances(_embeddings(a, identity), _embeddings(b, identity), metric)[:, 0]
    return float(table[0]) if _is_single(a) else table


def compare(a: Embedded | Sequence[Embedded], b: Embedded, identity: str = "sface", threshold: float | None = None,
            registry: PluginRegistry | None = None) -> bool | np.ndarray:
    """Whether ``a`` and ``b`` are one person: their distance within ``threshold`` (``<=``, as
    the filter's "within"; None: the plugin's default), one answer for each face in ``a``."""
    within = _threshold(_identity(identity, registry), threshold)
    found = distance(a, b, identity, registry)
    return bool(found <= within) if isinstance(found, float) else found <= within


class IdentityFilter:
    """The CLI's identity filter (``filter.refs`` / ``filter.nrefs`` / ``filter.threshold``) for
    faces in memory: the same rules (facekit.faces.identity), the same reference embedding (the
    largest face of each photo), so it keeps exactly the faces a CLI run keeps.

    ``refs`` and ``nrefs`` hold photos (paths or BGR arrays) or embeddings (arrays or faces);
    photos are embedded by ``extractor``, built on first need when not given.
    """

    def __init__(self, refs: Sequence[Reference] = (), nrefs: Sequence[Reference] = (), *,
                 identity: str | None = None, threshold: float | None = None, extractor: Extractor | None = None,
                 offline: bool = False, registry: PluginRegistry | None = None) -> None:
        if extractor is not None and extractor.identity is None:
            raise ConfigError("the extractor has no identity plugin: build it with Extractor(identity=...)")
        if identity is not None and extractor is not None and identity != extractor.identity:
            raise ConfigError(f"identity={identity!r} but the extractor embeds with {extractor.identity!r}")
        self.identity = identity or (extractor.identity if extractor is not None else "sface")
        self._extractor, self._offline, self._registry = extractor, offline, registry
        spec = _identity(self.identity, registry)
        self.rules = Rules(self._embed_all(refs), self._embed_all(nrefs), _threshold(spec, threshold),
                           spec.metric or "cosine")

    @property
    def threshold(self) -> float:
        return self.rules.threshold

    def decide(self, face: Embedded) -> Decision:
        """Keep or reject one face (or embedding), with the reason and the distance the CLI records."""
        return self.rules.decide(_embeddings(face, self.identity)[0])

    def filter(self, faces: Face | Sequence[Face]) -> list[Face]:
        """The faces kept (of one face, or several). Each face's ``keep``, ``reason`` and
        ``distance`` are set as a CLI run records them in alignments.json."""
        faces = [faces] if isinstance(faces, Face) else list(faces)
        for face in faces:
            decision = self.decide(face)
            face.keep, face.reason, face.distance = decision.keep, decision.reason, decision.distance
        return [face for face in faces if face.keep]

    def _embed_all(self, references: Reference | Sequence[Reference]) -> np.ndarray:
        if _one_reference(references):
            references = [references]  # one photo (not a string of characters, nor rows of pixels) or face
        elif not isinstance(references, (Sequence, np.ndarray)):
            raise ValueError(f"refs and nrefs hold photos (paths or BGR arrays), embeddings or faces; got "
                             f"{type(references).__name__}")
        vectors = [self._embed(reference, index) for index, reference in enumerate(references)]
        return np.asarray(vectors, dtype=np.float32) if vectors else np.zeros((0, 0), dtype=np.float32)

    def _embed(self, reference: Reference, index: int) -> np.ndarray:
        if isinstance(reference, (str, Path)):
            path = reference_path(reference)
            return self._photos_extractor().reference_embedding(read_reference(path), str(path))
        if isinstance(reference, np.ndarray) and (reference.ndim in (2, 3) or reference.dtype == np.uint8):
            try:  # grey and BGRA taken as BGR, as Extractor.extract takes them
                photo = as_bgr(reference)
            except ValueError:
                raise ValueError(f"reference #{index}: a photo is uint8 pixels of shape (height, width, 3), grey "
                                 f"(height, width) or BGRA (height, width, 4), got {reference.dtype} {reference.shape} "
                                 "(an embedding is 1-D)") from None
            return self._photos_extractor().reference_embedding(photo, f"#{index}")
        return _embeddings(reference, self.identity)[0]

    def _photos_extractor(self) -> Extractor:
        """The extractor, built on first need (only photos need one)."""
        if self._extractor is None:
            self._extractor = Extractor(identity=self.identity, offline=self._offline, registry=self._registry)
        return self._extractor


def _one_reference(value: object) -> bool:
    """A reference alone, not a sequence of them: a path, a face, an embedding (1-D), or a
    photo's pixels (uint8, 2-D grey or 3-D): ``refs=photo`` is one photo, not its rows."""
    if isinstance(value, (str, Path, Face)):
        return True
    return isinstance(value, np.ndarray) and (value.ndim == 1 or (value.dtype == np.uint8 and value.ndim in (2, 3)))


def _identity(name: str, registry: PluginRegistry | None) -> PluginSpec:
    return (registry or default_registry()).get("identity", name)


def _threshold(spec: PluginSpec, threshold: float | None) -> float:
    if threshold is not None:
        return as_threshold(threshold, "threshold")
    if spec.default_threshold is None:
        raise ConfigError(f"identity {spec.name} declares no default threshold; pass threshold=")
    return spec.default_threshold


def _is_single(value: Embedded | Sequence[Embedded]) -> bool:
    """One face or embedding, not a sequence of them (a list of floats is one embedding)."""
    if isinstance(value, (Face, np.ndarray)):
        return isinstance(value, Face) or value.ndim == 1
    items = list(value)
    return bool(items) and not isinstance(items[0], (Face, np.ndarray, Sequence))


def _embeddings(value: Embedded | Sequence[Embedded], identity: str) -> np.ndarray:
    """(n, d) float64 from one face or embedding, or a sequence of them, to be judged in
    ``identity``'s metric: a face embedded by another plugin is refused, as its distance there
    would be a number with no meaning (a bare vector names no plugin, and is taken as given)."""
    items = [value] if _is_single(value) else list(value)
    rows = []
    for item in items:
        vector = item.embedding if isinstance(item, Face) else item
        if vector is None:
            raise ConfigError("a face without an embedding: extract it with Extractor(identity=...)")
        if isinstance(item, Face) and item.embedded_by is not None and item.embedded_by != identity:
            raise ConfigError(f"identity={identity!r} but the face is embedded with {item.embedded_by!r}")
        rows.append(np.asarray(vector, dtype=np.float64).ravel())
    return np.stack(rows) if rows else np.zeros((0, 0))
