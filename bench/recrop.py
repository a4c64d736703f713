"""What a re-crop costs against an extraction: the clip extracted, then re-cropped from that
extraction's landmarks (``task=recrop``), back to back.

    python bench/recrop.py                       # the Hamilton clip, default plugins, best of 3
    python bench/recrop.py --size 512 --repeats 1

For each round (extraction, then re-crops of it, so all meet the same machine): the extraction at
``output.size=--base`` (256), a re-crop of it at the same size (the same files: only the models'
work is gone) and at ``--size`` (512, with ``--centering``). Prints each run's end-to-end time
(run_summary.json) and whole command (start-up included), then extraction / re-crop, the goal
being at least 3x; an extraction at ``--size`` is run too, for the re-crop at ``--size`` to be
compared with. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import DATA, run_cli  # noqa: E402  (bench/extract.py, beside this file)


def rounds(video: Path, base: int, size: int, centering: str, repeats: int, work: Path) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for i in range(repeats):
        extracted = work / f"extract{base}_{i}"
        plan = [(f"extract {base}", [f"input={video}", f"output={extracted}", f"output.size={base}"]),
                (f"recrop {base}", ["task=recrop", f"input={extracted}", f"output={work / f'recrop{base}_{i}'}",
                                    f"output.size={base}"]),
                (f"extract {size}", [f"input={video}", f"output={work / f'extract{size}_{i}'}", f"output.size={size}",
                                     f"output.centering={centering}"]),
                (f"recrop {size}", ["task=recrop", f"input={extracted}", f"output={work / f'recrop{size}_{i}'}",
                                    f"output.size={size}", f"output.centering={centering}"])]
        for label, args in plan:
            runs.setdefault(label, []).append(run_cli(*args, cwd=work)[0])
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--base", type=int, default=256, help="the extraction's output.size")
    parser.add_argument("--size", type=int, default=512, help="the second re-crop's output.size")
    parser.add_argument("--centering", default="legacy", help="the second re-crop's output.centering")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facekit-recrop-") as folder:
        runs = rounds(args.video, args.base, args.size, args.centering, args.repeats, Path(folder))
    print(f"\n== {args.video.name}: default plugins and workers, best of {args.repeats} ==")
    best = {}
    for label, results in runs.items():
        fastest = min(results, key=lambda r: r["seconds"])
        best[label] = (fastest["seconds"], min(r["wall_s"] for r in results))
        print(f"{label:<12} {fastest['frames']:>5} frames {fastest['faces']:>5} faces  "
              f"end to end {best[label][0]:6.2f} s  whole command {best[label][1]:6.2f} s")
    for size in (args.base, args.size):
        extracted, recropped = best[f"extract {size}"], best[f"recrop {size}"]
        print(f"extract {args.base} -> recrop {size} against extract {size}: end to end "
              f"{extracted[0] / recropped[0]:.1f}x, whole command {extracted[1] / recropped[1]:.1f}x (goal: at least 3x)")


if __name__ == "__main__":
    main()
