"""Curation's figures: how well clusters match identities, and how curation scales.

    python bench/curate.py                        # the people set and the clip, default plugins
    python bench/curate.py --synthetic 1000000    # cluster and dedupe stages on 1M synthetic embeddings
    python bench/curate.py --methods              # the clustering methods compared, set by set

``--methods``: every method of ``bench/cluster_methods.py`` on the people set alone, with each
shared clip (all their frames) and with both, one person's photos alone (p01), five identical
copies of one face, and a synthetic set of one identity with 10,000 faces (in shots of 10) and 50
identities of 2-5 faces. Over the labelled faces (the people set's photos; every synthetic face):
purity, how many people of 2 or more faces are the majority of some cluster, how many clusters
hold labelled faces against the number of people, labelled faces left unclustered, and all
clusters. Embeddings are those SFace stored at extraction; the match distance is SFace's.

People set (27 portraits of 7 people, extracted as a collection with the default plugins):
cluster count, purity and adjusted Rand index (scikit-learn) of ``curate.cluster=true`` against
identities.csv, over each photo's largest face (the person the photo is labelled with; other
faces in a photo count as unlabelled). The whole clip: the same against hand labels
(hamilton_identities.csv), with clusters joined across shots and not, and what
``curate.dedupe`` then keeps.

``--synthetic N``: N 128-d unit embeddings in Gaussian blobs (N/500 identities, each face in a
"shot" of about 10 near-identical faces with one pose), timed through the same functions the
task calls (``cluster_labels``, ``near_duplicates``), with the peak memory of the process, and
the same at ``--baseline`` faces in the same run: the ratio of time per face says how far from
linear the large run is. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from facekit.curate import CurateSettings, decide, read_output
from cluster_methods import METHODS, QUADRATIC, without_singles
from facekit.curate.clusters import cluster_labels
from facekit.curate.dedupe import near_duplicates
from facekit.faces.stages import FaceStages
from facekit.models.store import ModelStore
from facekit.plugin.loading import load_plugin
from facekit.plugin.registry import default_registry

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PEOPLE = DATA / "images" / "people"
CLIP = DATA / "video" / "short_hamilton_clip.mp4"
SECOND_CLIP = DATA / "video" / "faceswap_test.mp4"
MATCH = 0.637  # SFace's match distance
LABELS = Path(__file__).with_name("hamilton_identities.csv")


def extract(source: Path, output: Path, *extra: str) -> Path:
    subprocess.run([sys.executable, "-m", "facekit", f"input={source}", f"output={output}", "runner.progress=false",
                    *extra], check=True, capture_output=True, text=True)
    return output


def stages() -> FaceStages:
    registry = default_registry()
    store = ModelStore(registry.models, cache_dir=None)
    return FaceStages(*(load_plugin(registry, store, kind, name) for kind, name in
                        (("detector", "yunet"), ("aligner", "facemesh"), ("identity", "sface"))))


def purity(truth: list[str], labels: list[int]) -> float:
    groups: dict[int, list[str]] = {}
    for person, label in zip(truth, labels):
        if label != -1:
            groups.setdefault(label, []).append(person)
    clustered = sum(map(len, groups.values()))
    return sum(Counter(members).most_common(1)[0][1] for members in groups.values()) / max(clustered, 1)


def people_figures(work: Path) -> None:
    output = extract(PEOPLE, work / "people-from-files")  # methods_table extracted work/people with embeddings
    started = time.perf_counter()
    curation = decide(read_output(output), CurateSettings(cluster=True), stages)
    seconds = time.perf_counter() - started
    with (PEOPLE / "identities.csv").open(encoding="utf-8", newline="") as handle:
        identity = {f"{Path(row['file']).with_suffix('').as_posix()}_0.png": row["identity"] for row in csv.DictReader(handle)}
    rows = [row for row, face in enumerate(curation.faces) if face.name in identity]
    truth = [identity[curation.faces[row].name] for row in rows]
    labels = [int(curation.labels[row]) for row in rows]
    print(f"\n== people set: {len(curation.faces)} faces ({len(rows)} labelled), {len(set(truth))} people ==")
    print(f"clusters {len(curation.clusters)} (true {len(set(truth))}), labelled faces unclustered "
          f"{labels.count(-1)}")
    print(f"purity {purity(truth, labels):.3f}  adjusted Rand index {adjusted_rand_score(truth, labels):.3f}  "
          f"(embedding from the face files and clustering: {seconds:.1f} s)")


def clip_figures(work: Path, dedupe: float) -> None:
    """The whole clip against hand labels (bench/hamilton_identities.csv: 610 of the 748 faces
    the default plugins find, by face file name; the dim, blurred audience faces of frames
    21-82 and hands taken for faces are left unlabelled), clusters joined and not."""
    output = extract(CLIP, work / "clip", "output.embeddings=true")
    stored = read_output(output)
    from_files = read_output(output)
    for face in from_files:
        face.embedding = None
    with LABELS.open(encoding="utf-8", newline="") as handle:
        identity = {row["face"]: row["identity"] for row in csv.DictReader(handle)}
    rows = [row for row, face in enumerate(stored) if face.name in identity]
    truth = [identity[stored[row].name] for row in rows]
    print(f"\n== clip, whole: {len(stored)} faces ({len(rows)} labelled), {len(set(truth))} people ==")
    for (vectors, faces), join in itertools.product((("stored at extraction", stored), ("from the face files", from_files)),
                                                   (0.0, None)):
        started = time.perf_counter()
        curation = decide(faces, CurateSettings(cluster=True, dedupe=dedupe, join=join), stages)
        seconds = time.perf_counter() - started
        labels = [int(curation.labels[row]) for row in rows]
        holding = {label for label in labels if label != -1}
        kept = [int(curation.kept[curation.labels == label].sum()) for label in curation.clusters]
        print(f"embeddings {vectors}, curate.join={'default' if join is None else join}: clusters {len(curation.clusters)}, holding labelled "
              f"faces {len(holding)} (true {len(set(truth))}), purity {purity(truth, labels):.3f}, adjusted Rand "
              f"index {adjusted_rand_score(truth, labels):.3f}, labelled faces unclustered {labels.count(-1)}")
        print(f"  dedupe={dedupe}: kept {int(curation.kept.sum())} of {len(faces)}; every cluster keeps faces: "
              f"{all(kept)}; {seconds:.1f} s")


def synthetic(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit embeddings, identity per face, pose (n, 3), sharpness): identities far apart
    (random directions), faces of one person at cosine distance ~0.25, shots of ~10 faces ~0.01."""
    rng = np.random.default_rng(seed)
    dim, people, shot = 128, max(2, count // 500), 10
    centres = rng.standard_normal((people, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shots = -(-count // shot)
    shot_person = rng.integers(0, people, shots)
    shot_centres = centres[shot_person] + rng.standard_normal((shots, dim), dtype=np.float32) * np.float32(0.6 / np.sqrt(dim))
    shot_pose = np.stack([rng.uniform(-60, 60, shots), rng.uniform(-20, 20, shots), rng.uniform(-10, 10, shots)], axis=1)
    of_shot = np.repeat(np.arange(shots), shot)[:count]
    unit = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, 100_000):  # in blocks: the noise of all faces at once would double the peak
        block = of_shot[start:start + 100_000]
        noise = rng.standard_normal((len(block), dim), dtype=np.float32) * np.float32(0.1 / np.sqrt(dim))
        unit[start:start + len(block)] = shot_centres[block] + noise
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    pose = shot_pose[of_shot] + rng.normal(0, 1.0, (count, 3))
    return unit, shot_person[of_shot], pose, rng.uniform(10, 500, count)


def synthetic_figures(count: int, dedupe: float) -> dict[str, float]:
    unit, truth, pose, sharpness = synthetic(count)
    started = time.perf_counter()
    labels = cluster_labels(unit, MATCH)
    cluster_s = time.perf_counter() - started
    started = time.perf_counter()
    found = near_duplicates(unit, dedupe, sharpness, pose, labels)
    dedupe_s = time.perf_counter() - started
    clustered = labels != -1
    figures = {"faces": count, "cluster_s": cluster_s, "dedupe_s": dedupe_s,
               "clusters": len(np.unique(labels[clustered])), "people": len(np.unique(truth)),
               "clustered": float(clustered.mean()),
               "ari": adjusted_rand_score(truth[clustered], labels[clustered]) if clustered.any() else float("nan"),
               "kept": int(found.kept.sum()), "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}
    print(f"{count:>9} faces: cluster {cluster_s:7.1f} s ({figures['clusters']} clusters of {figures['people']} people, "
          f"{figures['clustered']:.1%} clustered, ARI on those {figures['ari']:.3f}); dedupe={dedupe} {dedupe_s:7.1f} s "
          f"(kept {figures['kept']}, {figures['kept'] / count:.1%}); peak RSS {figures['peak_gb']:.2f} GB", flush=True)
    return figures


def agreement(truth: list[str | None], labels: np.ndarray) -> dict[str, object]:
    """The issue's figures over the faces with a label (``truth`` None: unlabelled)."""
    rows = [row for row, person in enumerate(truth) if person is not None]
    groups: dict[int, list[str]] = {}
    for row in rows:
        if labels[row] != -1:
            groups.setdefault(int(labels[row]), []).append(truth[row])  # type: ignore[arg-type]
    people = Counter(truth[row] for row in rows)
    several = [person for person, count in people.items() if count >= 2]
    majorities = set()
    for members in groups.values():
        person, count = Counter(members).most_common(1)[0]
        if 2 * count > len(members):
            majorities.add(person)
    return {"purity": purity([truth[r] for r in rows], [int(labels[r]) for r in rows]),  # type: ignore[misc]
            "majority": f"{sum(p in majorities for p in several)}/{len(several)}",
            "holding": f"{len(groups)}/{len(people)}", "unclustered": sum(labels[r] == -1 for r in rows),
            "clusters": len(set(labels.tolist()) - {-1})}


def unbalanced(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """One identity of 10,000 faces in shots of 10, then 50 identities of 2-5 faces each; faces
    of one identity about 0.27 apart (cosine), as in ``synthetic``."""
    rng = np.random.default_rng(seed)
    dim = 128
    sizes = [10_000, *rng.integers(2, 6, 50).tolist()]
    centres = rng.standard_normal((len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shots = centres[0] + rng.standard_normal((1_000, dim)) * 0.6 / np.sqrt(dim)
    main = np.repeat(shots, 10, axis=0) + rng.standard_normal((10_000, dim)) * 0.1 / np.sqrt(dim)
    owners = np.repeat(np.arange(1, len(sizes)), sizes[1:])
    rest = centres[owners] + rng.standard_normal((len(owners), dim)) * 0.6 / np.sqrt(dim)
    unit = np.vstack([main, rest]).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return unit, ["0"] * 10_000 + [str(owner) for owner in owners]


def method_sets(work: Path) -> dict[str, tuple[np.ndarray, list[str | None]]]:
    """Each set of the comparison: (unit vectors, label per face or None)."""
    with (PEOPLE / "identities.csv").open(encoding="utf-8", newline="") as handle:
        identity = {f"{Path(row['file']).with_suffix('').as_posix()}_0.png": row["identity"] for row in csv.DictReader(handle)}

    def vectors(source: Path, name: str) -> tuple[np.ndarray, list[str | None]]:
        faces = read_output(extract(source, work / name, "output.embeddings=true"))
        unit = np.stack([face.embedding for face in faces]).astype(np.float32)
        return unit / np.linalg.norm(unit, axis=1, keepdims=True), [identity.get(face.name) for face in faces]

    people, truth = vectors(PEOPLE, "people")
    clip, _ = vectors(CLIP, "clip")
    second, _ = vectors(SECOND_CLIP, "second_clip")
    one = [row for row, person in enumerate(truth) if person is not None and person == truth[0]]
    return {"people": (people, truth),
            f"people + {SECOND_CLIP.name}": (np.vstack([people, second]), truth + [None] * len(second)),
            f"people + {CLIP.name}": (np.vstack([people, clip]), truth + [None] * len(clip)),
            "people + both clips": (np.vstack([people, second, clip]), truth + [None] * (len(second) + len(clip))),
            "one person": (people[one], [truth[row] for row in one]),
            "5 identical copies": (np.repeat(people[:1], 5, axis=0), [truth[0]] * 5),
            "10,000 + 50 of 2-5": unbalanced()}


def methods_table(work: Path) -> None:
    print(f"\n== clustering methods at SFace's match distance {MATCH} ==")
    print(f"{'set':34} {'method':40} {'purity':>6} {'majority':>8} {'holding':>8} {'unclust':>7} {'all':>5} {'s':>6}")
    for name, (unit, truth) in method_sets(work).items():
        for method, run in METHODS.items():
            if method in QUADRATIC and len(unit) > 12_000:
                print(f"{name:34} {method:40} (left out: quadratic in {len(unit)} faces)")
                continue
            started = time.perf_counter()
            labels = without_singles(run(np.ascontiguousarray(unit), MATCH))
            seconds = time.perf_counter() - started
            figures = agreement(truth, labels)
            print(f"{name:34} {method:40} {figures['purity']:6.3f} {figures['majority']:>8} {figures['holding']:>8} "
                  f"{figures['unclustered']:7d} {figures['clusters']:5d} {seconds:6.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=0, help="time cluster and dedupe on N synthetic embeddings")
    parser.add_argument("--baseline", type=int, default=20_000, help="the small synthetic run to compare with")
    parser.add_argument("--methods", action="store_true", help="only the table of clustering methods")
    parser.add_argument("--dedupe", type=float, default=0.1, help="curate.dedupe for the clip and synthetic runs")
    args = parser.parse_args()
    print(f"facekit curation bench, {date.today()}")
    if args.synthetic:
        print(f"\n== synthetic 128-d embeddings: the baseline ({args.baseline}), then {args.synthetic} ==")
        small = synthetic_figures(args.baseline, args.dedupe)
        large = synthetic_figures(args.synthetic, args.dedupe)
        for stage in ("cluster_s", "dedupe_s"):
            ratio = (large[stage] / large["faces"]) / (small[stage] / small["faces"])
            print(f"{stage[:-2]}: time per face at {args.synthetic} / at {args.baseline}: {ratio:.2f}x")
        return
    with tempfile.TemporaryDirectory() as folder:
        methods_table(Path(folder))
        if args.methods:
            return
        people_figures(Path(folder))
        clip_figures(Path(folder), args.dedupe)


if __name__ == "__main__":
    main()
