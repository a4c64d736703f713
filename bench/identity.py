"""Identity accuracy of every installed identity plugin on the shared portraits.

    python bench/identity.py                     # ../shared/data, weights already on this machine
    python bench/identity.py --online            # also download weights a plugin lacks

Faces come from the default detector and aligner (YuNet + FaceMesh), the largest in each photo.
For each identity plugin (one whose weights are missing is skipped with the reason) it prints:

- pair accuracy on every pair of images/people/pairs.csv at the plugin's default threshold, with
  TP/FP/TN/FN, the farthest same-person and nearest different-person pair, the thresholds that
  hold the 99% bar, and the accuracy around the default (is the default on a knife-edge?);
- the identity filter with one reference photo per person (their first in identities.csv) over
  all the photos: precision and recall per person and overall, against the bar (precision 1.0,
  recall >= 0.95); then the same with every photo in turn as the reference, naming those that fail.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facekit import Extractor
from facekit.errors import FacekitError
from facekit.faces.evaluate import (PAIR_ACCURACY_BAR, Confusion, Embeddings, PhotoSet, embed_photos, face_landmarks,
                              filter_confusion, load_identity, pair_confusion, pair_distances)
from facekit.plugin.registry import default_registry

ROOT = Path(__file__).resolve().parents[1]
CURVE = (0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2)  # thresholds shown, as multiples of the default


def pair_report(photos: PhotoSet, embeddings: Embeddings, threshold: float, metric: str) -> None:
    at_default = pair_confusion(photos, embeddings, threshold, metric)
    verdict = "met" if at_default.accuracy >= PAIR_ACCURACY_BAR else "MISSED"
    print(f"pair accuracy at {threshold:g}: {at_default.accuracy:.4f} over {len(photos.pairs)} pairs "
          f"(TP {at_default.tp}, FP {at_default.fp}, TN {at_default.tn}, FN {at_default.fn}); "
          f"bar {PAIR_ACCURACY_BAR:.0%} {verdict}")
    gaps, same = pair_distances(photos, embeddings, metric)
    print(f"farthest same-person pair {gaps[same].max():.3f}, nearest different-person pair {gaps[~same].min():.3f}")
    low, high = bar_range(gaps, same)
    print(f"thresholds holding the {PAIR_ACCURACY_BAR:.0%} bar: {low:.3f} to {high:.3f}")
    print("accuracy around the default: " + ", ".join(
        f"{threshold * f:.3f}: {Confusion.count(gaps <= threshold * f, same).accuracy:.4f}" for f in CURVE))


def bar_range(gaps: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The lowest and highest pair distance which, used as the threshold, holds the accuracy bar
    (nan when none does); accuracy only changes at those distances."""
    holding = [t for t in np.sort(gaps) if Confusion.count(gaps <= t, same).accuracy >= PAIR_ACCURACY_BAR]
    return (min(holding), max(holding)) if holding else (float("nan"), float("nan"))


def filter_report(photos: PhotoSet, embeddings: Embeddings, threshold: float, metric: str) -> None:
    print(f"filter, one reference photo (each person's first), over all {len(photos.identities)} photos:")
    total = Confusion(0, 0, 0, 0)
    for person, files in photos.people().items():
        result = filter_confusion(photos, embeddings, files[0], threshold, metric)
        total += result
        print(f"  {person} ref {files[0]:<16} kept {result.tp + result.fp:2d} of {len(photos.identities)} "
              f"({len(files)} theirs): precision {result.precision:.3f} recall {result.recall:.3f} "
              f"{'meets the bar' if result.meets_filter_bar else 'MISSES the bar'}")
    print(f"  overall: precision {total.precision:.3f} recall {total.recall:.3f} "
          f"(TP {total.tp}, FP {total.fp}, FN {total.fn}); bar {'met' if total.meets_filter_bar else 'MISSED'}")
    failing = [(ref, filter_confusion(photos, embeddings, ref, threshold, metric)) for ref in photos.identities]
    failing = [(ref, result) for ref, result in failing if not result.meets_filter_bar]
    print(f"  every photo as the reference: {len(photos.identities) - len(failing)} of {len(photos.identities)} "
          "meet the bar" + "".join(f"; {ref} fails (precision {r.precision:.3f}, recall {r.recall:.3f})"
                                   for ref, r in failing))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the shared test data folder (default: ../shared/data next to the repository)")
    parser.add_argument("--online", action="store_true", help="let plugins download missing weights")
    args = parser.parse_args()
    photos = PhotoSet.read(args.data / "images" / "people")
    landmarks = face_landmarks(photos, Extractor(offline=not args.online))
    for name in default_registry().names("identity"):
        plugin = load_identity(name, offline=not args.online)
        print(f"\n== {name}: {plugin.spec.metric} distance, default threshold {plugin.spec.default_threshold} ==")
        try:
            embeddings = embed_photos(photos, landmarks, plugin.model)
        except FacekitError as exc:
            print(f"skipped: {exc}")
            continue
        pair_report(photos, embeddings, plugin.spec.default_threshold, plugin.spec.metric)
        filter_report(photos, embeddings, plugin.spec.default_threshold, plugin.spec.metric)


if __name__ == "__main__":
    main()
