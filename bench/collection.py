"""A collection of many short sources against one long one with the same frames, and the memory
a collection takes as its number of sources grows.

    python bench/collection.py                      # 100 clips of 30 frames against one of 3,000
    python bench/collection.py --clips 100 --frames 30 --repeats 3
    python bench/collection.py --memory 10,1000,10000   # peak memory over that many one-photo sources

Speed: the Hamilton clip played again and again makes one 3,000-frame video and, frame for frame,
100 videos of 30 frames; each is run as a collection (a tree holding it), interleaved, so both
meet the same machine. Printed per run: frames/s over the runners' own time (collection.json's
``run``, model loading and worker start left out) and over the whole command; then many / one.
The issue's bar is many / one >= 0.85.

Memory: N folders of one portrait each, run as one collection; the peak proportional set size of
facekit and its worker processes, per N. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract import DATA, run_cli  # noqa: E402  (bench/extract.py, beside this file)


def make_clips(source: Path, clips: int, frames: int, work: Path) -> tuple[Path, Path]:
    """``tree_one/clip.mp4`` of ``clips * frames`` frames and ``tree_many/clipNNN.mp4``, the same
    frames cut into ``clips`` videos, both made by playing ``source`` again and again."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30
    played = []
    while (frame := capture.read()[1]) is not None:
        played.append(frame)
    capture.release()
    size = (played[0].shape[1], played[0].shape[0])
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    one, many = work / "tree_one", work / "tree_many"
    one.mkdir(parents=True, exist_ok=True)
    many.mkdir(parents=True, exist_ok=True)
    whole = cv2.VideoWriter(str(one / "clip.mp4"), fourcc, fps, size)
    part = None
    for index in range(clips * frames):
        if index % frames == 0:
            if part is not None:
                part.release()
            part = cv2.VideoWriter(str(many / f"clip{index // frames:03d}.mp4"), fourcc, fps, size)
        frame = played[index % len(played)]
        whole.write(frame)
        part.write(frame)
    whole.release()
    part.release()
    return one, many


def run_collection(tree: Path, out: Path, memory: bool = False) -> tuple[dict, float, float]:
    """collection.json's ``run`` figures, the whole command's seconds and (with ``memory``) the
    peak MB, or else the CPU seconds of facekit and its worker processes together."""
    if memory:
        summary, measured = run_cli(f"input={tree}", f"output={out}", cwd=tree.parent, memory=True, summary=False)
        wall = summary["wall_s"]
    else:
        wall, measured = cpu_timed([sys.executable, "-m", "facekit", f"input={tree}", f"output={out}",
                                    "runner.progress=false"], cwd=tree.parent)
    document = json.loads((out / "collection.json").read_text())
    assert document["counts"] == {"done": len(document["sources"])}, document["counts"]
    return document["run"], wall, measured


def cpu_timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, worker processes included: facekit waits
    for them, so the kernel adds theirs to its own). CPU time shows the work a run adds when a
    busy machine makes its wall time vary from run to run."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "FACEKIT_OFFLINE": "1"})
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"facekit failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def speed(clips: int, frames: int, repeats: int, work: Path) -> None:
    one, many = make_clips(DATA / "video" / "short_hamilton_clip.mp4", clips, frames, work)
    print(f"== one clip of {clips * frames} frames against {clips} clips of {frames} frames, {date.today()} ==")
    rates: dict[str, list[float]] = {"one": [], "many": []}
    walls: dict[str, list[float]] = {"one": [], "many": []}
    cpus: dict[str, list[float]] = {"one": [], "many": []}
    for repeat in range(repeats):
        for label, tree in (("one", one), ("many", many)):
            run, wall, cpu = run_collection(tree, work / f"out_{label}_{repeat}")
            rates[label].append(run["frames_per_s"])
            walls[label].append(run["frames"] / wall)
            cpus[label].append(run["frames"] / cpu)
            print(f"  {label:>4}: {run['frames']} frames, {run['frames_per_s']:6.1f} frames/s (runners' time), "
                  f"{run['frames'] / wall:6.1f} frames/s (whole command, {wall:.1f} s), "
                  f"{1000 * cpu / run['frames']:5.1f} ms CPU a frame")
    for what, figures in (("runners' time", rates), ("whole command", walls), ("frames per CPU second", cpus)):
        ratio = statistics.median(figures["many"]) / statistics.median(figures["one"])
        print(f"many / one, medians, {what}: {ratio:.3f}")


def memory(counts: list[int], work: Path) -> None:
    portrait = next(iter(sorted((DATA / "images" / "people" / "p01").glob("*.jpg"))))
    print(f"== peak memory (PSS of facekit and its workers) against sources of one photo each, {date.today()} ==")
    for count in counts:
        tree = work / f"tree_{count}"
        for index in range(count):
            folder = tree / f"{index // 100:03d}" / f"{index:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / portrait.name).symlink_to(portrait)
        run, wall, peak = run_collection(tree, work / f"out_{count}", memory=True)
        print(f"  {count:>6} sources: peak {peak:7.0f} MB, {wall:6.1f} s, {run['frames']} frames")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=100)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory", type=str, default="", help="comma-separated source counts, e.g. 10,1000,10000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facekit-bench-") as temp:
        if args.memory:
            memory([int(n) for n in args.memory.split(",")], Path(temp))
        else:
            speed(args.clips, args.frames, args.repeats, Path(temp))


if __name__ == "__main__":
    main()
