"""What frame sampling saves: ``sample.every_n=10`` against every frame of a video.

    python bench/sampling.py                     # the Hamilton clip, default plugins, best of 3
    python bench/sampling.py --every-n 5 --loops 10

Prints, for each of the two runs (interleaved, so both meet the same machine): frames read,
frames/s, and the time per second of video, from the run's own end-to-end time (run_summary.json)
and from the whole command (start-up and model loading included); then every frame / sampled,
the speed-up per source second. ``--loops N`` also measures the clip played N times in a row
(made with OpenCV), where start-up weighs less. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import DATA, looped_video, run_cli  # noqa: E402  (bench/extract.py, beside this file)


def source_seconds(video: Path) -> float:
    capture = cv2.VideoCapture(str(video))
    try:
        return capture.get(cv2.CAP_PROP_FRAME_COUNT) / capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()


def compare(video: Path, every_n: int, repeats: int, work: Path, extra: list[str]) -> None:
    seconds = source_seconds(video)
    runs: dict[str, list[dict]] = {"every frame": [], f"every_n={every_n}": []}
    for i in range(repeats):  # interleaved
        for label, args in (("every frame", []), (f"every_n={every_n}", [f"sample.every_n={every_n}"])):
            out = work / f"{video.stem}_{label.replace('=', '')}_{i}"
            runs[label].append(run_cli(f"input={video}", f"output={out}", *args, *extra, cwd=work)[0])
    print(f"\n== {video.name}: {seconds:.2f} s of video, default plugins{' ' + ' '.join(extra) if extra else ''}, "
          f"best of {repeats} ==")
    best = {}
    for label, results in runs.items():
        fastest = min(results, key=lambda r: r["seconds"])
        whole = min(r["wall_s"] for r in results)
        best[label] = (fastest["seconds"], whole)
        print(f"{label:<14} {fastest['frames']:>6} frames  {fastest['frames_per_s']:7.1f} frames/s "
              f"(median {statistics.median(r['frames_per_s'] for r in results):.1f})  "
              f"end to end {fastest['seconds']:6.2f} s = {fastest['seconds'] / seconds:.3f} s a video second; "
              f"whole command {whole:6.2f} s = {whole / seconds:.3f} s a video second")
    (full_run, full_whole), (sampled_run, sampled_whole) = best.values()
    print(f"every frame / every_n={every_n}, per video second: end to end {full_run / sampled_run:.1f}x, "
          f"whole command {full_whole / sampled_whole:.1f}x (goal: at least 3x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--every-n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loops", type=int, default=10, help="also the clip played this many times; 0 skips it")
    parser.add_argument("--workers", default=None, help="runner.workers for both runs (default: facekit's own)")
    args = parser.parse_args()
    extra = [f"runner.workers={args.workers}"] if args.workers is not None else []
    print(f"facekit sampling bench, {date.today().isoformat()}: {os.cpu_count()} CPU cores, OpenCV {cv2.__version__}")
    with tempfile.TemporaryDirectory(prefix="facekit-bench-") as tmp:
        work = Path(tmp)
        compare(args.video, args.every_n, args.repeats, work, extra)
        if args.loops > 1:
            capture = cv2.VideoCapture(str(args.video))
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) * args.loops
            capture.release()
            compare(looped_video(args.video, frames, work / f"{args.video.stem}_x{args.loops}.mp4"),
                    args.every_n, args.repeats, work, extra)


if __name__ == "__main__":
    main()
