"""What a rerun's reading of the alignments file it extends costs, on a long video's file.

    python bench/resume_alignments.py                  # 11,000 frames, 3 faces each (about 50 MB)
    python bench/resume_alignments.py --frames 100000

Writes an alignments file of ``--frames`` frames with ``--faces`` faces each (68 landmarks, a
matrix, pose and measures, as a run stores them), then, in a fresh process each time (so its
peak memory is its own): opens an ``AlignmentsWriter`` on it as a resumed run does, reads every
frame's faces as the face-file check does, writes one more frame and closes it (the fold). Prints
each step's seconds and the process's peak RSS against one that only imports facekit. Figures only.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from facekit.output.alignments import AlignmentsWriter
from facekit.records import Detection, Face, Frame, FrameRecord, Pose

META = {"input": "long.mp4", "fingerprint": {"detector": "yunet", "aligner": "facemesh", "size": 256}}

RESUME = """
import json, sys, time
from facekit.output.alignments import AlignmentsWriter
path, meta = sys.argv[1], json.loads(sys.argv[2])
started = time.perf_counter()
writer = AlignmentsWriter(path, meta)
opened = time.perf_counter()
faces = sum(len(f) for _, f in writer.done_faces())
checked = time.perf_counter()
writer.close()
print(json.dumps({"open": opened - started, "check": checked - opened, "fold": time.perf_counter() - checked, "faces": faces}))
"""


def record(index: int, faces: int, rng: np.random.Generator) -> FrameRecord:
    found = [Face(Detection((10.5, 20.25, 110.75, 140.0), 0.93, rng.uniform(0, 640, (5, 2))),
                  landmarks=rng.uniform(0, 640, (68, 2)), matrix=rng.uniform(-2, 2, (2, 3)), centering="legacy",
                  crop_file=f"long_{index:06d}_{n}.png", crop_sha256="ab" * 32, crop_bytes=49_000,
                  pose=Pose(*rng.uniform(-30, 30, 3)), face_px=120.5, misalignment=0.0213, sharpness=512.3)
             for n in range(faces)]
    return FrameRecord(Frame(f"long_{index:06d}", "long.mp4", index), width=640, height=360, faces=found)


def peak_kb(code: str, *args: str) -> tuple[int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before), done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=11_000)
    parser.add_argument("--faces", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="facekit-resume-alignments-") as tmp:
        path = Path(tmp) / "alignments.json"
        with AlignmentsWriter(path, META, sync_every=1000) as writer:
            for index in range(args.frames):
                writer.write(record(index, args.faces, rng))
        print(f"== a rerun's alignments file: {args.frames} frames, {args.faces} faces each, "
              f"{path.stat().st_size / 1e6:.1f} MB ==")
        imported, _ = peak_kb("import facekit.output.alignments")  # the first child: its own peak
        resumed, out = peak_kb(RESUME, str(path), json.dumps(META))
        times = json.loads(out)
        print(f"open {times['open']:.2f} s, face-file check of {times['faces']} faces {times['check']:.2f} s, "
              f"fold {times['fold']:.2f} s")
        print(f"peak RSS {resumed / 1024:.0f} MB (a process that only imports: {imported / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
