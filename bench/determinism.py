"""Identical runs give identical face files: the Hamilton clip looped four times (1,100 frames),
extracted twice in two worker processes and once on a private Ray (``runner=ray``), each round
``--rounds`` times; every face file's bytes and every ``crop_sha256`` compared with the first run's.

    python bench/determinism.py              # 3 rounds
    python bench/determinism.py --rounds 1 --no-ray

Prints, for each round and run, how many face files differ from the first run's in their bytes,
and how many of those have equal pixels (an encoder's difference, not a crop's).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from extract import DATA, looped_video  # noqa: E402  (bench/extract.py, beside this file)

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "FACEKIT_OFFLINE": "1"}


def extract(video: Path, output: Path, *extra: str) -> None:
    command = [sys.executable, "-m", "facekit", f"input={video}", f"output={output}", "runner.progress=false", *extra]
    result = subprocess.run(command, env={**os.environ, **LOOPBACK}, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"facekit failed: {result.stderr[-2000:]}")


def crop_hashes(output: Path) -> dict[str, str]:
    """Every face's ``crop_sha256`` in the alignments file(s) under ``output``, by face file."""
    hashes = {}
    for alignments in output.rglob("alignments.json"):
        for frame in json.loads(alignments.read_text(encoding="utf-8"))["frames"].values():
            hashes.update({face["crop"]: face["crop_sha256"] for face in frame["faces"] if face.get("crop")})
    return hashes


def compared(first: Path, other: Path) -> tuple[int, int, int, int]:
    """Face files, files whose bytes differ, of those the ones with equal pixels, and
    ``crop_sha256`` values that differ."""
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    differ = [f for f in files if not (other / f).exists() or (first / f).read_bytes() != (other / f).read_bytes()]
    same_pixels = sum(1 for f in differ if (other / f).exists()
                      and np.array_equal(cv2.imread(str(first / f)), cv2.imread(str(other / f))))
    hashes, others = crop_hashes(first), crop_hashes(other)
    return len(files), len(differ), same_pixels, sum(1 for k, v in hashes.items() if others.get(k) != v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--loops", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facekit-determinism-") as tmp:
        work = Path(tmp)
        frames = int(cv2.VideoCapture(str(args.video)).get(cv2.CAP_PROP_FRAME_COUNT)) * args.loops
        video = looped_video(args.video, frames, work / "looped.mp4")
        print(f"== determinism: {video.name}, {frames} frames, {args.rounds} round(s) ==")
        runs = {"workers=2 (again)": ("runner.workers=2",)}
        if not args.no_ray:
            runs["runner=ray"] = ("runner=ray",)
        all_equal = True
        for number in range(1, args.rounds + 1):
            first = work / f"r{number}_first"
            extract(video, first, "runner.workers=2")
            for name, extra in runs.items():
                other = work / f"r{number}_{name.split()[0].replace('=', '')}"
                extract(video, other, *extra)
                files, differ, same_pixels, hashes = compared(first, other)
                all_equal &= differ == 0 and hashes == 0
                print(f"round {number}: {name:<18} {files} face files, {differ} differ in bytes "
                      f"({same_pixels} of them with equal pixels), {hashes} crop_sha256 differ")
        print("identical in every round" if all_equal else "NOT identical")


if __name__ == "__main__":
    main()
