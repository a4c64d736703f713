"""End-to-end speed of this install against another one (an older checkout's venv), back to back.

    python bench/speed_against.py --old-python ../old/.venv/bin/python
    python bench/speed_against.py --old-python A --rounds 8 --variant one-view=aligner.mirror_pose=false

Both sides run the same command as bench/extract.py's speed figure (the Hamilton clip, default
plugins and runner, two worker processes here), in rounds of old then new then each ``--variant``
of the new side (its overrides added), the order turned round every other round, so that each
pair meets the same machine: the shared 2-core machines here change speed by up to 1.5x within
minutes, more than the differences measured. Prints each run's frames/s (its run_summary.json,
the run's own end-to-end time, start-up excluded) and CPU seconds (the command and its worker
processes, start-up included), then per side: the best and median frames/s, and the median of
the rounds' new / old ratios of frames/s and of CPU time. Figures only.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def run(python: str, video: Path, output: Path, overrides: list[str]) -> tuple[float, float]:
    """(frames/s from the run's run_summary.json, CPU seconds of the command and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([python, "-m", "facekit", f"input={video}", f"output={output}", "runner.progress=false", *overrides],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=output.parent,
                   env={**os.environ, "FACEKIT_OFFLINE": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads((output / "run_summary.json").read_text())["frames_per_s"], cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-python", required=True, help="the other install's Python (its venv's bin/python)")
    parser.add_argument("--new-python", default=sys.executable)
    parser.add_argument("--video", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=KEY=VALUE[,KEY=VALUE...]: the new side again with these overrides")
    args = parser.parse_args()
    sides = {"old": (args.old_python, []), "new": (args.new_python, [])}
    for variant in args.variant:
        name, _, overrides = variant.partition("=")
        sides[name] = (args.new_python, overrides.split(","))
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    work = Path(tempfile.mkdtemp(prefix="speed_against_"))
    print(f"{args.video.name}, {args.rounds} rounds; old: {args.old_python}; new: {args.new_python}")
    for round_number in range(args.rounds):
        order = list(sides) if round_number % 2 == 0 else list(reversed(sides))
        for name in order:
            python, overrides = sides[name]
            fps, cpu = run(python, args.video, work / f"{name}{round_number}", overrides)
            figures[name].append((fps, cpu))
            print(f"round {round_number + 1} {name:<10} {fps:6.1f} frames/s  CPU {cpu:6.2f} s", flush=True)
    old = figures["old"]
    print("\nside        best fps  median fps  new/old fps (median of rounds)  new/old CPU (median of rounds)")
    for name, runs in figures.items():
        fps_ratio = statistics.median(new[0] / base[0] for new, base in zip(runs, old))
        cpu_ratio = statistics.median(new[1] / base[1] for new, base in zip(runs, old))
        print(f"{name:<10} {max(r[0] for r in runs):9.1f} {statistics.median(r[0] for r in runs):11.1f} "
              f"{fps_ratio:31.3f} {cpu_ratio:31.3f}")


if __name__ == "__main__":
    main()
