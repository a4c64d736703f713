"""Measures an identity plugin on a labelled photo set, the way the filter uses it.

Two figures, shared by ``bench/identity.py`` (which prints them) and the accuracy tests (which
hold them to the acceptance bars), so both measure exactly the same thing:

- pair accuracy: every pair of photos, called "same person" when their distance is within the
  threshold (``<=``, as the filter's "within");
- filter precision and recall: :class:`facekit.faces.identity.IdentityFilter` with one reference photo
  run over every photo of the set (the reference itself included, as a user's run would see it).

Each photo stands for one face: the largest, as a reference photo does in a real run. Faces come
from the default detector and aligner, so the figures include their errors.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from facekit.errors import FacekitError
from facekit.faces.identity import IdentityFilter, distances, reference_face
from facekit.media.sources import read_image

if TYPE_CHECKING:
    from facekit.faces.extractor import Extractor
    from facekit.plugin.loading import LoadedPlugin
    from facekit.plugin.spec import IdentityModel
    from facekit.plugin.registry import PluginRegistry

Embeddings = Mapping[str, np.ndarray]  # photo (relative path) -> its face's embedding

# The acceptance bars: pair accuracy of the default identity plugin at its default threshold, and
# a filter with one reference photo: no stranger kept, and (nearly) every photo of the person.
PAIR_ACCURACY_BAR = 0.99
FILTER_PRECISION_BAR = 1.0
FILTER_RECALL_BAR = 0.95


@dataclass(frozen=True)
class PhotoSet:
    """A folder of portraits with ``identities.csv`` (file, identity) and ``pairs.csv``
    (file_a, file_b, same), paths relative to the folder."""

    folder: Path
    identities: dict[str, str]  # file -> person, in the order identities.csv lists them
    pairs: tuple[tuple[str, str, bool], ...]

    @classmethod
    def read(cls, folder: str | Path) -> PhotoSet:
        folder = Path(folder)
        identities = {row["file"]: row["identity"] for row in _rows(folder / "identities.csv")}
        pairs = tuple((row["file_a"], row["file_b"], row["same"].strip() == "1") for row in _rows(folder / "pairs.csv"))
        return cls(folder, identities, pairs)

    def people(self) -> dict[str, list[str]]:
        """Person -> their photos, both in identities.csv order."""
        grouped: dict[str, list[str]] = {}
        for file, person in self.identities.items():
            grouped.setdefault(person, []).append(file)
        return grouped


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass(frozen=True)
class Confusion:
    """Counts of a yes/no call against the truth ("yes": same person, or kept by the filter)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def count(cls, called: np.ndarray, truth: np.ndarray) -> Confusion:
        called, truth = np.asarray(called, dtype=bool), np.asarray(truth, dtype=bool)
        return cls(int((called & truth).sum()), int((called & ~truth).sum()),
                   int((~called & ~truth).sum()), int((~called & truth).sum()))

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn)

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / max(self.tp + self.fp + self.tn + self.fn, 1)

    @property
    def precision(self) -> float:
        """1.0 when nothing was called "yes": no wrong face was let through."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def meets_filter_bar(self) -> bool:
        return self.precision >= FILTER_PRECISION_BAR and self.recall >= FILTER_RECALL_BAR


def load_identity(name: str, registry: PluginRegistry | None = None, offline: bool = True) -> LoadedPlugin:
    """An installed identity plugin with its default config, built as a run builds it. Offline by
    default: measuring should never start a download."""
    from facekit.models.store import ModelStore
    from facekit.plugin.loading import load_plugin
    from facekit.plugin.registry import default_registry

    registry = registry or default_registry()
    return load_plugin(registry, ModelStore(registry.models, offline=offline, quiet=True), "identity", name)


def face_landmarks(photos: PhotoSet, extractor: Extractor) -> dict[str, np.ndarray]:
    """The largest face's 68 landmarks in each photo. Computed once and shared by every identity
    plugin, so plugins are compared on the very same faces."""
    found = {}
    for file in photos.identities:
        faces = extractor.extract(_image(photos.folder / file))
        found[file] = faces[reference_face(faces, file)].landmarks
    return found


def embed_photos(photos: PhotoSet, landmarks: Mapping[str, np.ndarray], model: IdentityModel) -> dict[str, np.ndarray]:
    """Each photo's face embedded by ``model`` (an identity plugin's built model)."""
    return {file: np.asarray(model.embed(_image(photos.folder / file), [points]))[0]
            for file, points in landmarks.items()}


def _image(path: Path) -> np.ndarray:
    image = read_image(path)
    if image is None:
        raise FacekitError(f"cannot read {path}")
    return image


def pair_distances(photos: PhotoSet, embeddings: Embeddings, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Each pair's distance and whether it is one person, in pairs.csv order."""
    files = list(embeddings)
    row = {file: i for i, file in enumerate(files)}
    vectors = np.stack([embeddings[file] for file in files])
    table = distances(vectors, vectors, metric)
    gaps = np.array([table[row[a], row[b]] for a, b, _ in photos.pairs])
    return gaps, np.array([same for _, _, same in photos.pairs])


def pair_confusion(photos: PhotoSet, embeddings: Embeddings, threshold: float, metric: str) -> Confusion:
    """Pairs called "same person" when their distance is within ``threshold``."""
    gaps, same = pair_distances(photos, embeddings, metric)
    return Confusion.count(gaps <= threshold, same)


def filter_confusion(photos: PhotoSet, embeddings: Embeddings, ref: str, threshold: float,
                     metric: str) -> Confusion:
    """The identity filter with ``ref`` as its only reference, over every photo: a photo of the
    ref's person should be kept, every other photo rejected."""
    vector = np.asarray(embeddings[ref])
    face_filter = IdentityFilter(vector[None], np.zeros((0, vector.size)), threshold, metric)
    files = list(photos.identities)
    kept = [face_filter.decide(embeddings[file]).keep for file in files]
    return Confusion.count(np.array(kept), np.array([photos.identities[f] == photos.identities[ref] for f in files]))
