"""Extraction speed and memory, and facekit against face_recognition, measured in one run.

    python bench/extract.py                      # everything, defaults from ../shared/data
    python bench/extract.py --long-frames 0      # skip the 10,000-frame memory run

Prints, for the default plugins on a video: end-to-end frames/s, each stage's busy time, the
models' own inference time (the bound) and end-to-end time / bound, and the default detector's
own speed on one core measured in the same run (a yardstick: shared CPUs here have varied by
1.5x within an hour, so compare frames/s only against it); the peak memory of a short
run against a long one made by looping the same clip, facekit and its worker processes together
(bounded memory means they match); the same clip on threads in one process (runner.workers=0),
interleaved with the default runs so both meet the same machine; a folder of the portraits
enlarged to phone-photo size, and the clip enlarged to 4K, each in worker processes against
threads; SFace's time a face on one core on LiteRT (the default) and on OpenCV's DNN; and, when
face_recognition is installed, both tools' time and recall on the portraits, in interleaved
rounds (best of --repeats each).
Figures only: nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def run_cli(*args: str, cwd: Path, memory: bool = False, summary: bool = True) -> tuple[dict, float]:
    """One ``facekit`` run in a child process: its run_summary.json (plus ``wall_s``, the whole
    command's time, start-up included) and, with ``memory``, the peak memory of it and its worker
    processes together in MB (sampled proportional set sizes, so pages they share count once).
    Speed runs are not sampled: reading smaps takes CPU and the sampled process's memory lock."""
    command = [sys.executable, "-m", "facekit", *args, "runner.progress=false"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "FACEKIT_OFFLINE": "1"})
    peak = 0.0
    while process.poll() is None:
        if memory:
            peak = max(peak, tree_pss_mb(process.pid))
        time.sleep(0.25 if memory else 0.02)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"facekit failed: {process.stderr.read()[-2000:]}")
    if not summary:  # a collection's figures are in its collection.json
        return {"wall_s": wall}, peak
    output = next(a.split("=", 1)[1] for a in args if a.startswith("output="))
    return {**json.loads((Path(output) / "run_summary.json").read_text()), "wall_s": wall}, peak


def tree_pss_mb(root: int) -> float:
    """Proportional set size of ``root`` and its descendants, in MB (0 for what has just ended)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total_kb = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total_kb / 1024


def detector_alone_ms(video: Path, most_frames: int = 300, **options: object) -> float:
    """The default detector's own time a frame on one core, outside the pipeline: the yardstick
    for this machine (shared CPUs vary by 1.5x from hour to hour), measured in the same run on
    the video's first ``most_frames`` frames (held in memory, so a long video stays cheap).
    ``options`` configure the detector (``backend="opencv"``: the yardstick of earlier sessions)."""
    import facekit
    from facekit.engine.pipeline import opencv_threads

    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < most_frames and (frame := capture.read()[1]) is not None:
        frames.append(frame)
    with opencv_threads(1):
        detector = facekit.Extractor(detector_options=options).stages.detector.model
        started = time.perf_counter()
        for frame in frames:
            detector.detect([frame])
        return 1000 * (time.perf_counter() - started) / len(frames)


def in_child(function, *args, **kwargs):
    """``function`` run in a fresh process, so the models it loads leave with it and the runs
    measured after it meet a machine with its memory back."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def speed(video: Path, repeats: int, work: Path) -> None:
    alone_ms = in_child(detector_alone_ms, video)
    opencv_ms = in_child(detector_alone_ms, video, backend="opencv")
    runs, threaded = [], []
    for i in range(repeats):  # interleaved, so both meet the same machine
        runs.append(run_cli(f"input={video}", f"output={work / f'speed{i}'}", cwd=work)[0])
        threaded.append(run_cli(f"input={video}", f"output={work / f'threads{i}'}", "runner.workers=0", cwd=work)[0])
    best = min(runs, key=lambda r: r["seconds"])
    bound = sum(best["model_s"].values())
    how = f"{best['workers']} worker processes" if best.get("workers") else "threads"
    print(f"\n== speed: {video.name}, default plugins, {best['mode']} passes in {how}, best of {repeats} ==")
    print(f"frames {best['frames']}, faces {best['faces']}")
    print(f"end to end      {best['seconds']:7.2f} s   {best['frames_per_s']:7.1f} frames/s "
          f"(median of runs {statistics.median(r['frames_per_s'] for r in runs):.1f})")
    print(f"whole command   {best['wall_s']:7.2f} s   (start-up included; workers took {best.get('start_s', 0):.2f} s "
          "to start and build their models, before the end-to-end time)")
    fastest_threads = max(r["frames_per_s"] for r in threaded)
    print(f"same run on threads (runner.workers=0): best {fastest_threads:.1f} frames/s, median "
          f"{statistics.median(r['frames_per_s'] for r in threaded):.1f}; whole command "
          f"{min(r['wall_s'] for r in threaded):.2f} s; default / threads = "
          f"{best['frames_per_s'] / fastest_threads:.2f} (best against best)")
    for name, seconds in best["stage_s"].items():
        print(f"stage {name:<9} {seconds:7.2f} s busy{' (summed over the workers)' if best.get('workers') else ''}")
    print(f"writing         {best['sink_s']:7.2f} s")
    for kind, seconds in best["model_s"].items():
        print(f"model {kind:<9} {seconds:7.2f} s   {1000 * seconds / max(best['frames'], 1):6.2f} ms/frame")
    print(f"bound (models)  {bound:7.2f} s   end to end / bound = {best['seconds'] / bound:.2f} (target <= 1.5)")
    print(f"target 60 frames/s: {'met' if best['frames_per_s'] >= 60 else 'missed'}")
    alone_fps = 1000 / alone_ms
    print(f"yardstick: the detector alone on one core, outside the pipeline: {alone_ms:.1f} ms a frame "
          f"({alone_fps:.0f} frames/s); end to end = {best['frames_per_s'] / alone_fps:.2f} x that")
    print(f"fixed yardstick: YuNet through OpenCV DNN (its backend before Dec 2026) on one core: "
          f"{opencv_ms:.1f} ms a frame ({1000 / opencv_ms:.0f} frames/s); end to end = "
          f"{best['frames_per_s'] * opencv_ms / 1000:.2f} x that (1.01-1.26 in the benches of 2 Dec 2026)")


def looped_video(source: Path, frames: int, dest: Path, height: int | None = None) -> Path:
    """``frames`` frames made by playing ``source`` again and again, enlarged (bicubic) to
    ``height`` when given."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30
    clip = []
    while (frame := capture.read()[1]) is not None:
        clip.append(frame)
    factor = height / clip[0].shape[0] if height else 1.0
    size = (round(clip[0].shape[1] * factor), round(clip[0].shape[0] * factor))
    writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for index in range(frames):
        frame = clip[index % len(clip)]
        writer.write(frame if factor == 1.0 else cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC))
    writer.release()
    return dest


def memory(video: Path, long_frames: int, work: Path) -> None:
    print(f"\n== memory: peak PSS of facekit and its workers, {video.name} against {long_frames} frames of it looped ==")
    started = time.perf_counter()
    long_video = looped_video(video, long_frames, work / "looped.mp4")
    print(f"(made {long_video.name} in {time.perf_counter() - started:.0f} s)")
    short, short_mb = run_cli(f"input={video}", f"output={work / 'mem_short'}", cwd=work, memory=True)
    long, long_mb = run_cli(f"input={long_video}", f"output={work / 'mem_long'}", cwd=work, memory=True)
    print(f"{short['frames']:>6} frames: peak {short_mb:7.0f} MB")
    print(f"{long['frames']:>6} frames: peak {long_mb:7.0f} MB   ({long['frames_per_s']:.1f} frames/s)")
    print(f"growth {long_mb - short_mb:+.0f} MB for {long['frames'] - short['frames']} more frames "
          "(bounded by runner.queue_size frames in flight per stage); "
          f"{long.get('workers') or 'no'} worker processes, counted in the peak")


def large_photos(people: Path, repeats: int, work: Path, side: int = 4000) -> None:
    """A folder of phone-sized photos: each worker decodes its own files, so workers should be
    at least as fast as threads (before Dec 2026 the main process decoded every photo and piped
    36 MB of pixels to a worker: workers 7.0-7.4 frames/s against threads 8.4-8.8)."""
    folder = work / "large_photos"
    folder.mkdir()
    for path in portraits(people):
        image = cv2.imread(str(path))
        factor = side / max(image.shape[:2])
        cv2.imwrite(str(folder / f"{path.parent.name}_{path.stem}.jpg"),
                    cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
    count = len(list(folder.iterdir()))
    print(f"\n== large photos: the {count} portraits enlarged to {side} px (JPEG), default plugins, best of {repeats} ==")
    workers_against_threads(folder, repeats, work)


def large_video(video: Path, height: int, frames: int, repeats: int, work: Path) -> None:
    """A video far larger than the detector's input: the calling process decodes each frame and
    sends its pixels to a worker (before Dec 2026, 4K: workers 16.2 frames/s against threads
    19.4, the pixels' trip through multiprocessing's buffers costing 50 ms of CPU a frame)."""
    large = looped_video(video, frames, work / f"{video.stem}_{height}p.mp4", height)
    width, tall = (int(cv2.VideoCapture(str(large)).get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
    print(f"\n== large video: {frames} frames of {video.name} enlarged to {width}x{tall}, default plugins, best of {repeats} ==")
    workers_against_threads(large, repeats, work)


def workers_against_threads(source: Path, repeats: int, work: Path) -> None:
    """Frames/s of the default run in 2 worker processes and on threads, interleaved so both
    meet the same machine."""
    rates: dict[str, list[float]] = {"2 worker processes": [], "threads": []}
    for i in range(repeats):
        for how, workers in (("2 worker processes", "2"), ("threads", "0")):
            summary, _ = run_cli(f"input={source}", f"output={work / f'{source.stem}_{workers}_{i}'}",
                                 f"runner.workers={workers}", cwd=work)
            rates[how].append(summary["frames_per_s"])
    for how, values in rates.items():
        print(f"{how:<20} best {max(values):5.1f} frames/s, median {statistics.median(values):5.1f}")
    print(f"workers / threads = {max(rates['2 worker processes']) / max(rates['threads']):.2f} (best against best)")


def portraits(people: Path) -> list[Path]:
    return sorted(people.glob("p*/*.jpg"))


def scaled(path: Path, side: int = 640):
    image = cv2.imread(str(path))
    factor = side / max(image.shape[:2])
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1 else image


def against_face_recognition(people: Path, repeats: int) -> None:
    print(f"\n== against face_recognition: detection, 68 landmarks and encodings on the portraits, best of {repeats} ==")
    try:
        import face_recognition
    except ImportError:
        print("face_recognition is not installed (pip install face_recognition); skipped")
        return
    import facekit
    from facekit.plugin.registry import default_registry

    files = portraits(people)
    if not files:
        print(f"no portraits in {people}; skipped")
        return
    images = [scaled(p) for p in files]
    rgb = [cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in images]
    extractor = facekit.Extractor()
    identity_name = "sface" if "sface" in default_registry().names("identity") else None
    embedder = _identity(identity_name) if identity_name else None

    def peer() -> int:
        found = 0
        for image in rgb:
            boxes = face_recognition.face_locations(image)
            face_recognition.face_landmarks(image, boxes)
            face_recognition.face_encodings(image, boxes)
            found += bool(boxes)
        return found

    def ours() -> int:
        found = 0
        for image in images:
            faces = extractor.extract(image)
            if embedder is not None and faces:
                embedder.embed(image, [f.landmarks for f in faces])
            found += bool(faces)
        return found

    rounds = [(timed(peer), timed(ours)) for _ in range(repeats)]  # interleaved: both meet the same machine
    (peer_found, _), (ours_found, _) = rounds[0]
    peer_s, ours_s = min(r[0][1] for r in rounds), min(r[1][1] for r in rounds)
    ratios = [p[1] / o[1] for p, o in rounds]
    n = len(files)
    print(f"face_recognition (HOG): {peer_s:6.2f} s, recall {peer_found}/{n} = {peer_found / n:.3f}")
    print(f"facekit (yunet + facemesh{' + ' + identity_name if identity_name else ''}): {ours_s:6.2f} s, "
          f"recall {ours_found}/{n} = {ours_found / n:.3f}")
    print(f"speed ratio: facekit is {peer_s / ours_s:.1f}x faster, best against best (each round: "
          f"{', '.join(f'{r:.1f}' for r in ratios)}; target >= 4x at equal or better recall)")


def timed(work) -> tuple[object, float]:
    """``work()``'s result and its wall time in seconds."""
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def embedding_ms(people: Path, backend: str) -> float:
    """SFace's time a face on one core with ``backend`` (litert: the default; opencv: OpenCV's
    DNN, its backend before Dec 2026), crops and normalisation included, on the portraits."""
    import facekit
    from facekit.engine.pipeline import opencv_threads

    with opencv_threads(1):
        extractor = facekit.Extractor()
        faces = [(image, f.landmarks) for image in map(scaled, portraits(people))
                 for f in extractor.extract(image)[:1]]
        model = _identity("sface", backend=backend)
        first_image, first_landmarks = faces[0]
        model.embed(first_image, [first_landmarks])  # the first call allocates
        started = time.perf_counter()
        for image, landmarks in faces:
            model.embed(image, [landmarks])
        return 1000 * (time.perf_counter() - started) / len(faces)


def identity_speed(people: Path) -> None:
    if not portraits(people):
        return
    litert, opencv = (in_child(embedding_ms, people, backend) for backend in ("litert", "opencv"))
    print(f"\n== identity: sface on one core, a face ==\nLiteRT (default) {litert:5.1f} ms, "
          f"OpenCV DNN {opencv:5.1f} ms: {opencv / litert:.1f}x")


def _identity(name: str, **options: object):
    from facekit.models.store import ModelStore
    from facekit.plugin.loading import load_plugin
    from facekit.plugin.registry import default_registry

    registry = default_registry()
    return load_plugin(registry, ModelStore(registry.models), "identity", name, options).model


def clip_faces(video: Path, most: int = 200) -> list:
    """Aligned 256 px face crops of the clip, as extraction cuts them (default plugins)."""
    import facekit

    capture, crops = cv2.VideoCapture(str(video)), []
    extractor = facekit.Extractor()
    while len(crops) < most and (frame := capture.read()[1]) is not None:
        crops.extend(face.crop for face in extractor.extract(frame))
    return crops[:most]


def _encoders() -> dict:
    """Each installed PNG encoder for a colour face, at its fastest: fpng (facekit's), and the
    "up" filter with zlib-ng's and zlib's deflate (and its strategies), ISA-L's (``isal``,
    facekit's before Dec 2026, not deterministic) and libdeflate's (``deflate``) when installed.
    Each returns a whole PNG file, as ``pngmeta._colour_png`` does."""
    import zlib

    from zlib_ng import zlib_ng

    from facekit.output import pngmeta

    def up_filtered(compress):
        return lambda rgb: pngmeta.up_filtered_png(rgb, compress)

    def strategy(name: str):
        def compress(data) -> bytes:
            stream = zlib_ng.compressobj(1, zlib_ng.DEFLATED, zlib_ng.MAX_WBITS, 8, getattr(zlib_ng, name))
            return stream.compress(data) + stream.flush()
        return compress

    found = {"fpng (facekit)": pngmeta._colour_png,
             "zlib-ng 1": up_filtered(lambda data: zlib_ng.compress(data, 1)),
             "zlib 1": up_filtered(lambda data: zlib.compress(data, 1)),
             "zlib-ng 1 huffman": up_filtered(strategy("Z_HUFFMAN_ONLY")), "zlib-ng 1 rle": up_filtered(strategy("Z_RLE"))}
    try:
        from isal import isal_zlib
        found["ISA-L 1 (before)"] = up_filtered(lambda data: isal_zlib.compress(data, 1))
    except ImportError:
        pass
    try:
        import deflate
        found["libdeflate 1"] = up_filtered(lambda data: deflate.zlib_compress(data, 1))
    except ImportError:
        pass
    return found


def deflate_cost(video: Path, rounds: int = 15) -> None:
    """What each PNG encoder costs a face file: encode_png of the clip's real crops with each,
    in interleaved rounds (best round each), its size, and whether a second encoding and one on
    another thread give the same bytes."""
    from concurrent.futures import ThreadPoolExecutor
    from facekit.output import pngmeta

    crops = clip_faces(video)
    original, encoders = pngmeta._colour_png, _encoders()
    times: dict[str, list[float]] = {}
    sizes, same = {}, {}
    try:
        for _ in range(rounds):
            for name, encode in encoders.items():
                pngmeta._colour_png = encode
                started = time.perf_counter()
                files = [pngmeta.encode_png(crop, {}) for crop in crops]
                times.setdefault(name, []).append(time.perf_counter() - started)
                sizes[name] = statistics.mean(len(f) for f in files)
                with ThreadPoolExecutor(2) as pool:
                    again = list(pool.map(lambda crop: pngmeta.encode_png(crop, {}), crops))
                same[name] = same.get(name, True) and again == files
    finally:
        pngmeta._colour_png = original
    base = min(times.get("ISA-L 1 (before)", times["fpng (facekit)"]))
    print(f"\n== PNG encoders: encode_png of {len(crops)} of the clip's 256 px faces, one thread, best of {rounds} interleaved rounds ==")
    for name, measured in times.items():
        print(f"{name:<20} {1000 * min(measured) / len(crops):6.3f} ms a face  {sizes[name] / 1000:6.1f} KB  "
              f"x{min(measured) / base:.2f}  {'same bytes again' if same[name] else 'BYTES DIFFER'}")


def masks_cost(video: Path, repeats: int, work: Path, masks: str = "components,extended") -> None:
    """End to end with and without ``output.masks=[...]`` (landmark masks, stored only), back to
    back in interleaved rounds so both meet the same machine: best of ``repeats`` each, the
    median of the rounds' ratios, and the CPU time of the runs and their worker processes
    (which a machine busy with other work inflates far less than the wall-clock time)."""
    import resource

    def cpu_s() -> float:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    plain, masked, ratios, cpu = [], [], [], {"plain": [], "masked": []}
    for i in range(repeats):
        for label, runs, extra in (("plain", plain, []), ("masked", masked, [f"output.masks=[{masks}]"])):
            before = cpu_s()
            runs.append(run_cli(f"input={video}", f"output={work / f'{label}{i}'}", *extra, cwd=work)[0])
            cpu[label].append(cpu_s() - before)
        ratios.append(masked[-1]["seconds"] / plain[-1]["seconds"])
    best_plain, best_masked = (min(runs, key=lambda r: r["seconds"]) for runs in (plain, masked))
    print(f"\n== masks: {video.name}, default plugins, output.masks=[{masks}], {repeats} interleaved rounds ==")
    print(f"frames {best_masked['frames']}, faces {best_masked['faces']}")
    for label, runs, best in (("without masks", plain, best_plain), ("with masks", masked, best_masked)):
        print(f"{label:<14} {best['seconds']:7.2f} s end to end, best (median {statistics.median(r['seconds'] for r in runs):.2f});"
              f" CPU {min(cpu['plain' if runs is plain else 'masked']):.2f} s, least")
    print(f"maskers' own time {best_masked['model_s'].get('masker', 0.0):.2f} s "
          f"({1000 * best_masked['model_s'].get('masker', 0.0) / max(best_masked['faces'], 1):.2f} ms a face)")
    ratio = best_masked["seconds"] / best_plain["seconds"]
    print(f"end to end with / without: best {ratio:.3f}, median of the rounds {statistics.median(ratios):.3f} "
          f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)}); target <= 1.05")
    print(f"CPU time with / without: least {min(cpu['masked']) / min(cpu['plain']):.3f}, median "
          f"{statistics.median(cpu['masked']) / statistics.median(cpu['plain']):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=DATA / "video" / "short_hamilton_clip.mp4")
    parser.add_argument("--people", type=Path, default=DATA / "images" / "people")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-frames", type=int, default=10_000, help="0 skips the memory run")
    parser.add_argument("--large-photos", type=int, default=4000, help="their longest side; 0 skips that run")
    parser.add_argument("--large-video", type=int, default=2160, help="its height (the clip enlarged); 0 skips that run")
    parser.add_argument("--large-video-frames", type=int, default=120)
    parser.add_argument("--deflate", action="store_true", help="only the PNG encoder comparison")
    parser.add_argument("--masks", action="store_true", help="only end to end with and without landmark masks")
    args = parser.parse_args()
    print(f"facekit extraction bench: {os.cpu_count()} CPU cores, OpenCV {cv2.__version__}")
    if args.deflate:
        deflate_cost(args.video)
        return
    if args.masks:
        with tempfile.TemporaryDirectory(prefix="facekit-bench-") as tmp:
            masks_cost(args.video, args.repeats, Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="facekit-bench-") as tmp:
        work = Path(tmp)
        speed(args.video, args.repeats, work)
        if args.long_frames:
            memory(args.video, args.long_frames, work)
        if args.large_photos:
            large_photos(args.people, args.repeats, work, args.large_photos)
        if args.large_video:
            large_video(args.video, args.large_video, args.large_video_frames, args.repeats, work)
        identity_speed(args.people)
        against_face_recognition(args.people, args.repeats)


if __name__ == "__main__":
    main()
