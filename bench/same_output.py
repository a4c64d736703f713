"""Two facekit installs give the same output: the same command line run with each (an older
checkout's venv against this one's), then every alignments entry and every face's pixels compared.

    python bench/same_output.py --old-python ../wt-old/.venv/bin/python --new-python .venv/bin/python
    python bench/same_output.py --old-python A --new-python B --only clip-workers2 --keep /tmp/same
    python bench/same_output.py --compare OLD_OUTPUT NEW_OUTPUT      # two folders already written

Scenarios: the shared scenes; the Hamilton clip in two worker processes and on threads; a tree of
both videos and the people folders (a collection, through symlinks under /tmp); runner=ray on a
private Ray and on a two-node Ray cluster on 127.0.0.1 (started with each side's own Python, so
its workers run that side's code). Each run has an empty model cache of its own (the derived
models shared per side) and writes to the same path, so paths in the output are equal too.

Face files' bytes are not compared: they may differ by design (a change of PNG deflate encoder);
the pixels decoded from them (cv2.IMREAD_UNCHANGED) and their PNG text must be equal. The table
counts byte differences only to show that the two sides really ran different code. Everything
else is compared exactly, but for the fields named below (FACE_FIELDS_OF_FILE_BYTES,
RECOMPUTED_POSE, SUMMARY_COUNTS, COLLECTION_TIMINGS, SETTINGS_ADDED), each with its reason.
Run it with the new side's Python: it recomputes the old side's poses with that install's head_pose.
Exits 1 if anything differs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLIP = DATA / "video" / "short_hamilton_clip.mp4"
SCENES = DATA / "images" / "scenes"
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}

#: Face fields that legitimately differ between two installs that write the same pixels:
#: crop_sha256 and crop_bytes are the sha256 and size of the face file's bytes, which follow the
#: PNG deflate encoder (ISA-L before, zlib-ng now), not the face.
FACE_FIELDS_OF_FILE_BYTES = ("crop_sha256", "crop_bytes")
#: The pose is not compared as stored: commit a328caa (issue 27) replaced the head-pose method
#: (six-point solvePnP) by a robust fit of all 68 points to a mean 3D face. Instead the old
#: side's pose, where it differs from the new side's, is recomputed by this install's head_pose
#: from the old side's own stored landmarks (as float32, as a run holds them after rounding),
#: and that is compared exactly with the new side's pose; the landmarks themselves are compared
#: as stored. Two installs of one pose method store equal poses and are compared as stored.
RECOMPUTED_POSE = "pose"
#: Since issue 27's second step FaceMesh reads head pose from its points averaged with its crop's
#: mirror view (``aligner.mirror_pose``, default true), points no output stores: the pose of a
#: side made that way cannot be recomputed from stored landmarks, so it is not compared (noted).
MIRROR_POSE = "mirror_pose"
#: Sharpness is measured only over the pixels of its crop inside the frame since 7 Dec 2026 (the
#: black beyond a frame's edge made a step that outweighed the face): a face whose sharpness crop
#: reaches past the frame's edge may store another number, and only such a face (found from its
#: stored landmarks and the frame's size) is let differ there; every other face compares exactly.
EDGE_SHARPNESS = "sharpness"
#: run_summary.json's keys that say what a run did; the rest (seconds, frames_per_s, start_s,
#: stage_s, sink_s, model_s, mode, workers, gpu, shards, nodes...) say how fast and where it ran.
#: One the old side left null (it had no figure) is not compared but noted: commit 11d8ed4
#: (issue 25, one ledger for every executor) gave Ray runs a ``resumed`` count (null before).
SUMMARY_COUNTS = ("frames", "faces", "resumed", "skipped", "rejected")
#: collection.json's keys that time the run, wherever they are (top level, ``run``, per source).
COLLECTION_TIMINGS = ("seconds", "busy_s", "frames_per_s")
#: Settings that collection.json records only since they exist, ignored where the old side has
#: none (a collection the older install wrote resumes under them when they are at their default):
#: ``resume`` (commit 3ca6704, issue 26; no setting of a collection since), and output's
#: ``masks``, ``mask_size``, ``mask_format`` and ``centering`` (issue 29). Compared where both have it.
SETTINGS_ADDED = ("resume", "masker", "output.masks", "output.mask_size", "output.mask_format", "output.centering")
#: Settings collection.json no longer records (they change no source's output), ignored where only
#: the old side has them: ``curate`` (task=curate's own node).
SETTINGS_DROPPED = ("curate",)
#: A source's entry field written only since it exists: ``signature`` (a done source's, so one
#: that changed since is reopened). And ``run`` (the run's frames and time), which Ray's
#: collection.json holds only since, as a local run's always did.
SOURCE_FIELDS_ADDED = ("signature",)
#: Face fields written only since they exist, ignored where the old side has none: ``centering``
#: and ``matrix`` (the crop's centering and its frame -> crop affine, issue 29). Compared where both have them.
FACE_FIELDS_ADDED = ("centering", "matrix")


@dataclass
class Comparison:
    """What differs between two output folders; each list holds one line per difference."""

    frames: int = 0
    faces: int = 0
    face_files: int = 0
    entries: list[str] = field(default_factory=list)      # alignments entries (frames) that differ
    pixels: list[str] = field(default_factory=list)       # face files whose pixels differ (or one side lacks)
    text: list[str] = field(default_factory=list)         # face files whose PNG text differs
    other: list[str] = field(default_factory=list)        # meta, run summaries, collection.json, missing sources
    notes: list[str] = field(default_factory=list)        # differences the rules above allow, said
    bytes_differ: int = 0                                 # face files whose bytes differ (expected)
    poses_recomputed: int = 0                             # faces whose stored poses differ (RECOMPUTED_POSE)
    edge_sharpness: int = 0                               # faces past the frame's edge whose sharpness differs

    @property
    def equal(self) -> bool:
        return not (self.entries or self.pixels or self.text or self.other)


def compare_outputs(old: Path, new: Path) -> Comparison:
    """Every source folder under ``old`` and ``new`` (one, or a collection's, found by their
    alignments files) and collection.json's states, compared."""
    result = Comparison()
    sources = sorted({p.parent.relative_to(old) for p in old.rglob("alignments.json")}
                     | {p.parent.relative_to(new) for p in new.rglob("alignments.json")})
    for source in sources:
        _compare_source(old / source, new / source, str(source), result)
    _compare_collection(old / "collection.json", new / "collection.json", result)
    return result


def _compare_source(old: Path, new: Path, name: str, result: Comparison) -> None:
    if not (old / "alignments.json").is_file() or not (new / "alignments.json").is_file():
        result.other.append(f"{name}: alignments.json on one side only")
        return
    a, b = _load(old / "alignments.json"), _load(new / "alignments.json")
    frames_a, frames_b = a.pop("frames"), b.pop("frames")
    result.frames += len(frames_b)
    result.faces += sum(len(entry.get("faces", [])) for entry in frames_b.values())
    mirror = _mirror_pose(a.get("meta", {}), b.get("meta", {}))
    if mirror:  # the pose is read from points neither side stores: not comparable (MIRROR_POSE)
        result.notes.append(f"{name}: pose not compared: the new side reads it from FaceMesh's mirror view")
        for entry in [*frames_a.values(), *frames_b.values()]:
            for face in entry.get("faces", []):
                face.pop(RECOMPUTED_POSE, None)
    if _source_signature_added(a.get("meta", {}), b.get("meta", {})):
        result.notes.append(f"{name}: the new side's fingerprint also holds the video's signature (source)")
    if a != b:
        result.other.append(f"{name}/alignments.json: " + "; ".join(_differences(a, b)))
    if list(frames_a) != list(frames_b) and set(frames_a) == set(frames_b):
        result.other.append(f"{name}/alignments.json: the same frames in another order")
    for frame in sorted(set(frames_a) | set(frames_b)):
        if frame not in frames_a or frame not in frames_b:
            result.entries.append(f"{name}/{frame}: only in {'new' if frame in frames_b else 'old'}")
            continue
        old_fields = {k for face in frames_a[frame].get("faces", []) for k in face}
        added = frozenset(f for f in FACE_FIELDS_ADDED if f not in old_fields)
        entry_a, entry_b = _without_file_bytes(frames_a[frame], added), _without_file_bytes(frames_b[frame], added)
        result.poses_recomputed += _recompute_poses(entry_a, entry_b)
        result.edge_sharpness += _edge_sharpness(entry_a, entry_b)
        diffs = _differences(entry_a, entry_b)
        if diffs:
            result.entries.append(f"{name}/{frame}: " + "; ".join(diffs))
    _compare_summaries(old / "run_summary.json", new / "run_summary.json", name, result)
    _compare_faces(old, new, name, result)


def _compare_faces(old: Path, new: Path, name: str, result: Comparison) -> None:
    import cv2
    import numpy as np
    from facekit.output.pngmeta import read_png_text

    files = sorted({p.relative_to(old) for p in _face_files(old)} | {p.relative_to(new) for p in _face_files(new)})
    result.face_files += len(files)
    for file in files:
        a, b = old / file, new / file
        if not a.is_file() or not b.is_file():
            result.pixels.append(f"{name}/{file}: only in {'new' if b.is_file() else 'old'}")
            continue
        bytes_a, bytes_b = a.read_bytes(), b.read_bytes()
        if bytes_a == bytes_b:
            continue
        result.bytes_differ += 1
        pixels_a, pixels_b = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (a, b))
        if pixels_a is None or pixels_b is None or pixels_a.shape != pixels_b.shape:
            result.pixels.append(f"{name}/{file}: shapes {_shape(pixels_a)} and {_shape(pixels_b)}")
        elif not np.array_equal(pixels_a, pixels_b):
            diff = np.abs(pixels_a.astype(int) - pixels_b.astype(int))
            result.pixels.append(f"{name}/{file}: {int(np.count_nonzero(diff))} values differ, by up to {int(diff.max())}")
        text_a, text_b = read_png_text(bytes_a), read_png_text(bytes_b)
        if list(text_a.items()) != list(text_b.items()):
            keys = sorted(k for k in text_a.keys() | text_b.keys() if text_a.get(k) != text_b.get(k))
            result.text.append(f"{name}/{file}: text differs ({', '.join(keys) or 'in order'})")


def _face_files(folder: Path) -> list[Path]:
    """The face files of one source folder (its own and rejected/), not those of sources nested in it."""
    return sorted([*folder.glob("*.png"), *folder.glob("rejected/*.png")])


def _compare_summaries(old: Path, new: Path, name: str, result: Comparison) -> None:
    if old.is_file() != new.is_file():
        result.other.append(f"{name}/run_summary.json on one side only")
    elif old.is_file():
        a, b = _load(old), _load(new)
        added = [k for k in SUMMARY_COUNTS if a.get(k) is None and b.get(k) is not None]
        result.notes += [f"run_summary.json: {k} null before, {b[k]} now" for k in added]
        keys = [k for k in SUMMARY_COUNTS if k not in added]
        diffs = _differences({k: a.get(k) for k in keys}, {k: b.get(k) for k in keys})
        if diffs:
            result.other.append(f"{name}/run_summary.json: " + "; ".join(diffs))


def _compare_collection(old: Path, new: Path, result: Comparison) -> None:
    if old.is_file() != new.is_file():
        result.other.append("collection.json on one side only")
    elif old.is_file():
        a, b = (_without(_load(path), COLLECTION_TIMINGS) for path in (old, new))
        # settings are kept as the run uses them since 7 Dec 2026 (every plugin option written out):
        # the old side's read as a rerun reads an older file, by the same function
        from facekit.app.tasks.collection_settings import effective_settings

        if isinstance(a.get("settings"), dict) and a["settings"] != effective_settings(a["settings"]):
            a["settings"] = effective_settings(a["settings"])
            result.notes.append("collection.json: the old side's settings read as the run uses them (effective_settings)")
        for key in SETTINGS_ADDED:
            *parents, name = key.split(".")
            there, here = a.get("settings", {}), b.get("settings", {})
            for parent in parents:
                there, here = there.get(parent, {}), here.get(parent, {})
            if name not in there and name in here:
                result.notes.append(f"collection.json: settings.{key} only in new: {_short(here.pop(name))}")
        for key in SETTINGS_DROPPED:
            if key in a.get("settings", {}) and key not in b.get("settings", {}):
                result.notes.append(f"collection.json: settings.{key} only in old (no setting of a collection now)")
                a["settings"].pop(key)
        old_sources = {entry.get("source"): entry for entry in a.get("sources", [])}
        for field_name in SOURCE_FIELDS_ADDED:
            added = [entry for entry in b.get("sources", [])
                     if field_name in entry and field_name not in old_sources.get(entry.get("source"), {})]
            for entry in added:
                entry.pop(field_name)
            if added:
                result.notes.append(f"collection.json: sources' {field_name} only in new ({len(added)} sources)")
        if "run" in b and "run" not in a:
            result.notes.append(f"collection.json: run only in new: {_short(b.pop('run'))}")
        if "root" in b and "root" not in a:  # the folder the input resolved to, kept since 7 Dec 2026
            result.notes.append(f"collection.json: root only in new: {_short(b.pop('root'))}")
        diffs = _differences(a, b)
        if diffs:
            result.other.append("collection.json: " + "; ".join(diffs))


def _without(value: Any, keys: tuple[str, ...]) -> Any:
    """A JSON value without ``keys`` at any depth (collection.json's timings: at the top, in
    ``run`` and in each source)."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return [_without(v, keys) for v in value] if isinstance(value, list) else value


def _without_file_bytes(entry: dict[str, Any], added: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The entry without the fields of the file's bytes, nor ``added`` (FACE_FIELDS_ADDED the old side lacks)."""
    faces = [{k: v for k, v in face.items() if k not in FACE_FIELDS_OF_FILE_BYTES and k not in added}
             for face in entry.get("faces", [])]
    return {**entry, "faces": faces}


def _mirror_pose(old_meta: dict[str, Any], new_meta: dict[str, Any]) -> bool:
    """Whether only the new side's aligner reads pose from its mirror view; if so, that option
    is taken out of both metas (it is the one allowed difference there)."""
    found = False
    for meta in (old_meta, new_meta):
        for where in (meta.get("plugins", {}), meta.get("fingerprint", {}).get("plugins", {})):
            config = where.get("aligner", {}).get("config", {}) if isinstance(where, dict) else {}
            if isinstance(config, dict) and config.pop(MIRROR_POSE, None) and meta is new_meta:
                found = True
    return found


def _source_signature_added(old_meta: dict[str, Any], new_meta: dict[str, Any]) -> bool:
    """Whether only the new side's fingerprint holds the input video's signature (``source``,
    kept since c263d44 so a video replaced under its name is refused); if so it is taken out."""
    old, new = old_meta.get("fingerprint") or {}, new_meta.get("fingerprint") or {}
    return "source" not in old and new.pop("source", None) is not None


def _recompute_poses(old: dict[str, Any], new: dict[str, Any]) -> int:
    """Replaces each old face's pose that differs from the new side's by this install's
    head_pose of its stored landmarks (RECOMPUTED_POSE); how many it replaced."""
    import numpy as np
    from facekit.imaging.measures import head_pose
    from facekit.output.alignments import POSE_KEYS
    from facekit.records import MEASURE_DECIMALS

    differed = 0
    for index, face in enumerate(old["faces"]):
        other = new["faces"][index] if index < len(new["faces"]) else {}
        if face.get(RECOMPUTED_POSE) in (None, other.get(RECOMPUTED_POSE)) or face.get("landmarks") is None:
            continue
        differed += 1
        angles = head_pose(np.asarray(face["landmarks"], dtype=np.float32))  # as a run holds them
        face[RECOMPUTED_POSE] = {key: round(a, MEASURE_DECIMALS) if np.isfinite(a) else None
                                 for key, a in zip(POSE_KEYS, angles)}
    return differed


def _edge_sharpness(old: dict[str, Any], new: dict[str, Any]) -> int:
    """Takes the new side's sharpness for each old face whose sharpness crop reaches past the
    frame's edge and whose stored sharpness differs (EDGE_SHARPNESS); how many it took."""
    import numpy as np
    from facekit.imaging.geometry import DEFAULT_PADDING, alignment_matrix
    from facekit.imaging.measures import SHARPNESS_SIZE, inside_frame

    taken = 0
    for index, face in enumerate(old["faces"]):
        other = new["faces"][index] if index < len(new["faces"]) else {}
        if face.get(EDGE_SHARPNESS) == other.get(EDGE_SHARPNESS) or face.get("landmarks") is None:
            continue
        matrix = alignment_matrix(np.asarray(face["landmarks"], dtype=np.float32), SHARPNESS_SIZE,
                                  padding=DEFAULT_PADDING)
        if inside_frame(matrix, int(old["width"]), int(old["height"]), SHARPNESS_SIZE) is not None:
            face[EDGE_SHARPNESS] = other.get(EDGE_SHARPNESS)
            taken += 1
    return taken


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ: one line per differing leaf (exact: floats as stored)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in [*a, *(k for k in b if k not in a)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(f"{where} only in {'new' if key in b else 'old'}")
            else:
                out += _differences(a[key], b[key], where)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if type(a) is not type(b) or a != b:
        return [f"{path}: {_short(a)} -> {_short(b)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _shape(image: Any) -> str:
    return "unreadable" if image is None else "x".join(map(str, image.shape))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# ---- running the scenarios ----------------------------------------------------------------

RAY_SHARDS = ("runner.shard_frames=100", "runner.files_per_shard=10")


@dataclass(frozen=True)
class Scenario:
    name: str
    input: str          # a path, or "tree" for the symlinked collection
    args: tuple[str, ...] = ()
    cluster: bool = False  # joins the side's two-node cluster (runner.address)


SCENARIOS = (
    Scenario("scenes", str(SCENES)),
    Scenario("clip-workers2", str(CLIP), ("runner.workers=2",)),
    Scenario("clip-threads", str(CLIP), ("runner.workers=0",)),
    Scenario("tree", "tree"),
    Scenario("ray-private-clip", str(CLIP), ("runner=ray", *RAY_SHARDS)),
    Scenario("ray-private-tree", "tree", ("runner=ray", *RAY_SHARDS)),
    Scenario("ray-cluster-clip", str(CLIP), ("runner=ray", *RAY_SHARDS), cluster=True),
    Scenario("ray-cluster-tree", "tree", ("runner=ray", *RAY_SHARDS), cluster=True),
)


def make_tree(folder: Path) -> Path:
    """Both shared videos and every people folder, linked into ``folder``: a collection of
    two video sources and one folder source per person."""
    folder.mkdir(parents=True)
    for video in sorted((DATA / "video").glob("*.mp4")):
        (folder / video.name).symlink_to(video)
    for person in sorted(p for p in (DATA / "images" / "people").iterdir() if p.is_dir()):
        (folder / person.name).symlink_to(person, target_is_directory=True)
    return folder


@dataclass
class Side:
    """One install: its Python, a derived-model folder its runs share, and its cluster's address."""

    name: str
    python: str
    derived: Path
    address: str | None = None


def run(side: Side, scenario: Scenario, input_path: str, work: Path) -> tuple[Path | None, float, str]:
    """The scenario's command with ``side``'s Python, into ``work/<scenario>/out``, then moved to
    ``work/<scenario>/<side>``: both sides write to the same path. The folder (None if it
    failed), seconds, and stderr's tail."""
    place = work / scenario.name
    out, home = place / "out", place / f"home-{side.name}"
    if (place / side.name).is_dir():
        return place / side.name, 0.0, ""  # kept from an earlier run of this script (--keep)
    shutil.rmtree(out, ignore_errors=True)  # a failed run's
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "derived").symlink_to(side.derived, target_is_directory=True)
    args = [f"input={input_path}", f"output={out}", "runner.progress=false", *scenario.args]
    if scenario.cluster:
        args.append(f"runner.address={side.address}")
    env = {**os.environ, **LOOPBACK, "FACEKIT_OFFLINE": "1", "FACEKIT_HOME": str(home)}
    start = time.monotonic()
    done = subprocess.run([side.python, "-m", "facekit", *args], cwd=place, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        return None, seconds, done.stderr.strip()[-1500:]
    out.rename(place / side.name)
    return place / side.name, seconds, ""


@contextmanager
def cluster_of(side: Side, nodes: int, cwd: Path) -> Iterator[None]:
    """A Ray cluster on 127.0.0.1 started by ``side``'s Python (this script's --serve-cluster),
    so its workers import that side's facekit; ``side.address`` while it runs. ``cwd`` holds no
    facekit package: nothing there may shadow the side's own (the runs' drivers, whose current
    folder Ray puts on the workers' path, start in their scenario's folder for the same reason)."""
    # -P: this folder's ray.py must not hide Ray from the cluster's Python
    server = subprocess.Popen([side.python, "-P", __file__, "--serve-cluster", str(nodes)], cwd=cwd,
                              env={**os.environ, **LOOPBACK}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        lines = iter(server.stdout.readline, "")
        side.address = next((line.split()[1] for line in lines if line.startswith("address ")), None)
        if not side.address:
            raise SystemExit(f"the {side.name} side's Ray cluster did not start (exit code {server.wait()})")
        yield
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        side.address = None


def serve_cluster(nodes: int) -> None:
    """A head that runs nothing and ``nodes`` one-CPU nodes, all on 127.0.0.1 (as
    tests/distributed/ray_cluster.py starts them); prints the address, stops when stdin closes."""
    os.environ.update(LOOPBACK)
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"node_ip_address": "127.0.0.1", "num_cpus": 0,
                                                            "include_dashboard": False})
    try:
        for _ in range(nodes):
            cluster.add_node(node_ip_address="127.0.0.1", num_cpus=1)
        cluster.wait_for_nodes()
        print("address", cluster.address, flush=True)
        sys.stdin.read()
    finally:
        cluster.shutdown()


def report(rows: list[tuple[str, Comparison | None, str]]) -> bool:
    header = f"{'scenario':<18} {'frames':>6} {'faces':>6} {'entries equal (differ)':>23} " \
             f"{'pixels equal (differ)':>22} {'text equal (differ)':>20} {'other':>5} {'bytes differ':>15} " \
             f"{'poses recomputed':>16} {'edge sharpness':>14}"
    print("\n" + header + "\n" + "-" * len(header))
    all_equal = True
    for name, c, note in rows:
        if c is None:
            print(f"{name:<18} run failed: {note}")
            all_equal = False
            continue
        all_equal &= c.equal
        print(f"{name:<18} {c.frames:>6} {c.faces:>6} {_verdict(c.entries):>23} {_verdict(c.pixels):>22} "
              f"{_verdict(c.text):>20} {len(c.other):>5} {f'{c.bytes_differ} of {c.face_files}':>15} "
              f"{c.poses_recomputed:>16} {c.edge_sharpness:>14}")
    for name, c, _ in rows:
        for line in ([*c.entries, *c.pixels, *c.text, *c.other] if c else [])[:20]:
            print(f"  {name}: {line}")
        for line, count in sorted(Counter(c.notes if c else []).items()):  # one a source of a collection
            print(f"  {name}: allowed: {line}" + (f" ({count} sources)" if count > 1 else ""))
    print("\nALL EQUAL" if all_equal else "\nDIFFERENCES FOUND")
    return all_equal


def _verdict(differences: list[str]) -> str:
    return f"{'yes' if not differences else 'NO'} ({len(differences)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-python", help="the older install's Python (its venv's bin/python)")
    parser.add_argument("--new-python", default=sys.executable, help="this install's Python (default: this one)")
    parser.add_argument("--only", action="append", choices=[s.name for s in SCENARIOS], help="run these scenarios only")
    parser.add_argument("--keep", type=Path, help="write the runs here and keep them (default: a temporary folder); "
                                                  "a run already there is reused, not run again")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="only compare two output folders")
    parser.add_argument("--serve-cluster", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_cluster:
        return serve_cluster(args.serve_cluster)
    if args.compare:
        raise SystemExit(0 if report([("compared", compare_outputs(*args.compare), "")]) else 1)
    if not args.old_python:
        parser.error("--old-python is required (or --compare)")
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    with tempfile.TemporaryDirectory(prefix="facekit-same-", dir="/tmp") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        tree = work / "input-tree" if (work / "input-tree").is_dir() else make_tree(work / "input-tree")
        sides = [Side(n, p, work / f"derived-{n}") for n, p in (("old", args.old_python), ("new", args.new_python))]
        for side in sides:
            side.derived.mkdir(exist_ok=True)
        print(f"facekit same output, {date.today().isoformat()}: old {args.old_python}, new {args.new_python}; "
              f"tree {tree}; runs in {work}", flush=True)
        outputs: dict[tuple[str, str], tuple[Path | None, str]] = {}

        def run_all(side: Side, scenarios: list[Scenario]) -> None:
            for scenario in scenarios:
                path, seconds, error = run(side, scenario, str(tree) if scenario.input == "tree" else scenario.input, work)
                outputs[scenario.name, side.name] = path, error
                how = "FAILED" if not path else "kept from an earlier run" if not seconds else "done"
                print(f"  {scenario.name:<18} {side.name}: {how} in {seconds:.0f} s", flush=True)

        for scenario in (s for s in chosen if not s.cluster):
            for side in sides:
                run_all(side, [scenario])
        clustered = [s for s in chosen if s.cluster]
        for side in sides if clustered else []:
            with cluster_of(side, nodes=2, cwd=work):
                run_all(side, clustered)
        rows = []
        for scenario in chosen:
            (old, old_error), (new, new_error) = outputs[scenario.name, "old"], outputs[scenario.name, "new"]
            rows.append((scenario.name, compare_outputs(old, new) if old and new else None,
                         f"old: {old_error}" if not old else f"new: {new_error}"))
        equal = report(rows)
    raise SystemExit(0 if equal else 1)


if __name__ == "__main__":
    main()
