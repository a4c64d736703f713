"""runner=ray against the local worker-process runner, and a two-node Ray cluster against one.

    python bench/ray.py                      # 1,100-frame video and a 100-clip collection, best of 2
    python bench/ray.py --repeats 3 --clips 50

Prints frames/s of each run and the ratios. The 1,100-frame video is the Hamilton clip played
four times in a row; the collection is ``--clips`` clips of 11 frames each (1,100 frames in all)
cut from it. Each run is a whole ``facekit`` command in a child process: frames/s are frames over
the command's wall time (Ray's start and the workers' models included, which is what a user
waits for), and, where the run writes them, over its own time (run_summary.json's ``seconds``
locally; ray_summary.json's, from the workers' start to the last fold, on Ray). runner=ray runs
twice beside each local run: with a private Ray, which the command starts and stops (about 5 s
on 2 cores), and joining a Ray already running here with all the cores, as ``ray start --head``
leaves one. The runs are interleaved so all meet the same machine. The node comparison starts
``ray.cluster_utils.Cluster`` here (a head that runs nothing, then one or two nodes of half this
machine's cores each, all on 127.0.0.1). Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import cv2

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from extract import DATA, looped_video  # noqa: E402  (bench/extract.py, beside this file)

# this file is bench/ray.py: with its folder on the path, "import ray" would import it, not Ray
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def clips(source: Path, count: int, frames: int, folder: Path) -> Path:
    """``count`` clips of ``frames`` frames each, cut one after another from ``source`` (round again at its end)."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30
    decoded = []
    while (frame := capture.read()[1]) is not None:
        decoded.append(frame)
    capture.release()
    folder.mkdir(parents=True)
    height, width = decoded[0].shape[:2]
    for number in range(count):
        writer = cv2.VideoWriter(str(folder / f"clip{number:03d}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        for index in range(frames):
            writer.write(decoded[(number * frames + index) % len(decoded)])
        writer.release()
    return folder


def frames_done(output: Path) -> int:
    """Frames in the run's alignments files (one, or one per source of a collection)."""
    return sum(len(json.loads(path.read_text())["frames"]) for path in output.rglob("alignments.json"))


def measured(label: str, args: list[str], work: Path, tag: str) -> dict:
    output = work / tag
    command = [sys.executable, "-m", "facekit", *args, f"output={output}", "runner.progress=false"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "FACEKIT_OFFLINE": "1"})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"facekit failed: {done.stderr[-2000:]}")
    own = output / "ray_summary.json" if (output / "ray_summary.json").exists() else output / "run_summary.json"
    figures = json.loads(own.read_text()) if own.exists() else {}  # a local collection writes one per source
    frames = frames_done(output)
    return {"label": label, "frames": frames, "wall_s": wall, "rate_wall": frames / wall,
            "rate_own": frames / figures["seconds"] if figures.get("seconds") else None}


def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["rate_wall"])


def show(run: dict) -> None:
    own = f"{run['rate_own']:7.1f}" if run["rate_own"] else "      -"
    print(f"{run['label']:<34} {run['frames']:>6} frames  whole command {run['wall_s']:6.1f} s = {run['rate_wall']:6.1f} "
          f"frames/s; own time {own} frames/s")


def local_against_ray(name: str, input_path: Path, work: Path, repeats: int, ray_args: list[str]) -> None:
    """Three runs, interleaved: the local runner; runner=ray with a private Ray, started and
    stopped by the command (what it pays on a machine without Ray running); and runner=ray joining
    a Ray that already runs on this machine with all its cores (``ray start --head``, what a
    cluster's user has)."""
    print(f"\n== {name}: local worker-process runner against runner=ray, best of {repeats} ==")
    os.environ.update(LOOPBACK)
    from ray.cluster_utils import Cluster

    runs: dict[str, list[dict]] = {"local": [], "private": [], "joined": []}
    cluster = Cluster(initialize_head=True, head_node_args={"node_ip_address": "127.0.0.1", "num_cpus": os.cpu_count(),
                                                            "include_dashboard": False})
    try:
        for i in range(repeats):
            runs["local"].append(measured("local (runner.workers=auto)", [f"input={input_path}"], work, f"{name}_local{i}"))
            runs["private"].append(measured("runner=ray, private Ray", ["runner=ray", f"input={input_path}", *ray_args],
                                            work, f"{name}_private{i}"))
            runs["joined"].append(measured("runner=ray, Ray running", ["runner=ray", f"runner.address={cluster.address}",
                                                                       f"input={input_path}", *ray_args],
                                           work, f"{name}_joined{i}"))
    finally:
        cluster.shutdown()
    local = best(runs["local"])
    show(local)
    for kind in ("private", "joined"):
        ray = best(runs[kind])
        show(ray)
        own = f"; own time {ray['rate_own'] / local['rate_own']:.2f}" if ray["rate_own"] and local["rate_own"] else ""
        print(f"  {kind} ray / local frames/s: whole command {ray['rate_wall'] / local['rate_wall']:.2f}{own} "
              "(goal: at least 0.8)")


def one_node_against_two(video: Path, work: Path, repeats: int, shard_frames: int) -> None:
    os.environ.update(LOOPBACK)
    from ray.cluster_utils import Cluster

    cores = max(1, (os.cpu_count() or 2) // 2)
    results = {}
    for nodes in (1, 2):
        cluster = Cluster(initialize_head=True, head_node_args={"node_ip_address": "127.0.0.1", "num_cpus": 0,
                                                                "include_dashboard": False})
        try:
            for _ in range(nodes):
                cluster.add_node(node_ip_address="127.0.0.1", num_cpus=cores)
            cluster.wait_for_nodes()
            runs = [measured(f"{nodes} node(s) of {cores} CPU(s)", ["runner=ray", f"runner.address={cluster.address}",
                                                                    f"input={video}",
                                                                    f"runner.shard_frames={shard_frames}"],
                             work, f"nodes{nodes}_{i}") for i in range(repeats)]
        finally:
            cluster.shutdown()
        results[nodes] = best(runs)
        show(results[nodes])
    print(f"two nodes / one node frames/s: whole command {results[2]['rate_wall'] / results[1]['rate_wall']:.2f}, "
          f"own time {results[2]['rate_own'] / results[1]['rate_own']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--frames", type=int, default=1100, help="frames of the looped video")
    parser.add_argument("--clips", type=int, default=100, help="clips in the collection; 0 skips it")
    parser.add_argument("--clip-frames", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shard-frames", type=int, default=100, help="runner.shard_frames of the video runs")
    parser.add_argument("--parts", default="video,collection,nodes", help="which comparisons to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"facekit runner=ray bench, {date.today().isoformat()}: {os.cpu_count()} CPU cores, default plugins")
    with tempfile.TemporaryDirectory(prefix="facekit-bench-ray-") as tmp:
        work = Path(tmp)
        video = looped_video(args.video, args.frames, work / f"{args.video.stem}_{args.frames}.mp4")
        if "video" in parts:
            local_against_ray(f"video_{args.frames}", video, work, args.repeats,
                              [f"runner.shard_frames={args.shard_frames}"])
        if "collection" in parts and args.clips:
            tree = clips(args.video, args.clips, args.clip_frames, work / "collection")
            local_against_ray(f"collection_{args.clips}", tree, work, args.repeats, [])
        if "nodes" in parts:
            print(f"\n== {video.name} on a local Ray cluster: one node against two ==")
            one_node_against_two(video, work, args.repeats, args.shard_frames)


if __name__ == "__main__":
    main()
