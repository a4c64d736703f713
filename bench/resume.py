"""What a rerun's check of the face files it keeps costs (``resume.verify``), on many files.

    python bench/resume.py                 # 100,000 face files of 40 KB (about 4 GB of disk)
    python bench/resume.py --faces 20000 --kb 40

Writes ``--faces`` files of ``--kb`` KB of random bytes (as incompressible as face PNGs) and
their entries, then times ``frames_to_redo`` as a rerun calls it: ``size`` (the default: one
stat a file) and ``full`` (reads and hashes every file), each run twice (the second finds the
files in the page cache, as a rerun soon after a run does). Figures only.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from facekit.ledger.verify import Verify, frames_to_redo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--kb", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facekit-resume-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        entries = []
        for number in range(args.faces):
            data = os.urandom(args.kb * 1000)
            name = f"clip_{number:07d}_0.png"
            (folder / name).write_bytes(data)
            entries.append((f"clip_{number:07d}", [{"crop": name, "crop_bytes": len(data),
                                                    "crop_sha256": hashlib.sha256(data).hexdigest()}]))
        print(f"== resume check: {args.faces} face files of {args.kb} KB (written in {time.perf_counter() - started:.0f} s) ==")
        for verify in (Verify.size, Verify.full):
            for attempt in ("first", "again"):
                started = time.perf_counter()
                redo = frames_to_redo(folder, entries, verify)
                seconds = time.perf_counter() - started
                print(f"resume.verify={verify:<5} {attempt:<6} {seconds:7.2f} s  "
                      f"{1e6 * seconds / args.faces:6.1f} us a face  ({len(redo)} to redo)")


if __name__ == "__main__":
    main()
