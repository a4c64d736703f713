"""What a five-point threshold sweep costs against one filtered run (the target: at most 1.5x).

    python bench/sweep.py                                   # the Hamilton clip, a face of its first frame as the ref
    python bench/sweep.py --input DIR --refs a.jpg b.jpg --repeats 3
    python bench/sweep.py --save-rejected                   # every job writes every face: PNG cost bound
    python bench/sweep.py --sweep quality.min_sharpness=50,100,200,400,800 --no-filter   # a quality limit instead

Both are timed as a user runs them: the ``facekit`` command in a child process, each with an
empty FACEKIT_HOME, so the sweep's first job computes the analysis and the one run has no cache
to lean on. The sweep runs on the basic launcher (jobs one after another, in one process) and
includes its report. Beside the ratio it prints each job's own run time (run_summary.json) and
what lies outside the jobs' runs (start-up, Hydra, references, the report), which is where a
sweep that misses the target spends its time. Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
THRESHOLDS = "0.3,0.4,0.5,0.6,0.7"
SWEEP = f"filter.threshold={THRESHOLDS}"
TARGET = 1.5


def timed_cli(*args: str, home: Path, cwd: Path) -> float:
    """Wall seconds of one ``facekit`` command with its own model and analysis cache."""
    env = {**os.environ, "FACEKIT_OFFLINE": "1", "FACEKIT_HOME": str(home)}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "facekit", *args, "runner.progress=false"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"facekit {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return seconds


def summary(folder: Path) -> dict:
    return json.loads((folder / "run_summary.json").read_text(encoding="utf-8"))


def kept(folder: Path) -> tuple[int, int]:
    frames = json.loads((folder / "alignments.json").read_text(encoding="utf-8"))["frames"].values()
    keeps = [face.get("keep", True) for frame in frames for face in frame["faces"]]
    return sum(keeps), len(keeps)


def measure(common: list[str], sweep: str, work: Path, repeat: int) -> tuple[float, float, Path, Path]:
    """(one run's seconds, the sweep's seconds, the run's folder, the sweep's folder); the one
    run applies the sweep's first value."""
    one, swept = work / f"one{repeat}", work / f"sweep{repeat}"
    key, _, values = sweep.partition("=")
    one_s = timed_cli(*common, f"output={one}", f"{key}={values.split(',')[0]}", home=work / f"home_one{repeat}",
                      cwd=work)
    sweep_s = timed_cli("-m", *common, f"output={swept}", sweep, home=work / f"home_sweep{repeat}", cwd=work)
    (sweep_dir,) = swept.glob("sweep_*")
    return one_s, sweep_s, one, sweep_dir


def report(one_s: float, sweep_s: float, one: Path, sweep_dir: Path, key: str) -> None:
    from facekit.sweep.swept import SETTINGS

    run = summary(one)
    print(f"\none run           {one_s:7.2f} s wall, {run['seconds']:6.2f} s in the run "
          f"({run['frames']} frames, {run['faces']} faces, {run['mode']} passes; kept {kept(one)[0]})")
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    seconds = []
    for job in jobs:
        job_run = summary(job)
        seconds.append(job_run["seconds"])
        meta = json.loads((job / "alignments.json").read_text())["meta"]
        value = SETTINGS[key].limit(meta) if key in SETTINGS else "?"
        print(f"  sweep job {job.name} ({key} {value}): {job_run['seconds']:6.2f} s, "
              f"{job_run['mode']} passes, kept {kept(job)[0]} of {kept(job)[1]}")
    in_jobs = sum(seconds)
    print(f"{len(jobs)}-point sweep      {sweep_s:7.2f} s wall, {in_jobs:6.2f} s in the jobs' runs, "
          f"{sweep_s - in_jobs:6.2f} s outside them (start-up, Hydra, references, report)")
    if len(seconds) > 1:
        later = sum(seconds[1:]) / len(seconds[1:])
        print(f"a later job        {later:7.2f} s in its run, against {seconds[0]:.2f} s for the first "
              f"({later / seconds[0]:.2f}x)")
    ratio = sweep_s / one_s
    print(f"sweep / one run    {ratio:7.2f}   (target <= {TARGET}: {'met' if ratio <= TARGET else 'missed'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--refs", type=Path, nargs="+", default=None,
                        help="default: the largest face of the input's first frame, cut out, so the "
                             "filter keeps some faces as a real sweep does")
    parser.add_argument("--repeats", type=int, default=1, help="the fastest of each is reported")
    parser.add_argument("--save-rejected", action="store_true", help="write rejected faces too (filter.save_rejected)")
    parser.add_argument("--sweep", default=SWEEP, help=f"the swept override (default {SWEEP})")
    parser.add_argument("--no-filter", action="store_true", help="no refs: a quality limit's sweep alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facekit-sweep-bench-") as tmp:
        refs = [] if args.no_filter else args.refs or [first_frame_face(args.input, Path(tmp) / "ref.jpg")]
        run(args, refs, Path(tmp))


def first_frame_face(source: Path, dest: Path) -> Path:
    """The largest face of the first frame, with a margin, as a reference photo."""
    import cv2

    import facekit
    from facekit.media.sources import open_input

    frame = next(open_input(source).frames())
    faces = facekit.Extractor().extract(frame.image)
    x1, y1, x2, y2 = max((f.detection.box for f in faces), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    mx, my = (x2 - x1) / 2, (y2 - y1) / 2
    height, width = frame.image.shape[:2]
    cut = frame.image[int(max(0, y1 - my)):int(min(height, y2 + my)), int(max(0, x1 - mx)):int(min(width, x2 + mx))]
    cv2.imwrite(str(dest), cut)
    return dest


def run(args: argparse.Namespace, refs: list[Path], work: Path) -> None:
    args.refs = refs
    common = [f"input={args.input.resolve()}"]
    if refs:
        common.append(f"filter.refs=[{','.join(str(r.resolve()) for r in args.refs)}]")
    if args.save_rejected:
        common.append("filter.save_rejected=true")
    print(f"facekit sweep bench: {os.cpu_count()} CPU cores; input {args.input.name}; "
          f"refs {', '.join(r.name for r in args.refs) or 'none'}; {args.sweep}")
    runs = [measure(common, args.sweep, work, repeat) for repeat in range(args.repeats)]
    one_s, _, one, _ = min(runs, key=lambda r: r[0])
    _, sweep_s, _, sweep_dir = min(runs, key=lambda r: r[1])
    report(one_s, sweep_s, one, sweep_dir, args.sweep.partition("=")[0])


if __name__ == "__main__":
    main()
