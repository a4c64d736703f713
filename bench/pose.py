"""Head pose on every shared portrait, checked against the photo itself (no hand-labelled angles).

    python bench/pose.py
    python bench/pose.py --one-view

Over the people set's 27 photos and the 7 single-face scene portraits, with the default detector
and aligner (``facekit.faces.pose_check`` says how each figure is taken): the median, mean and
largest error of the yaw of a mirrored copy (it should be the photo's negated) and its pitch (the
same), of the roll of a copy turned 20 degrees clockwise (20 more), and the same of the |yaw| of
the portraits that face the camera. Then every portrait's figures. ``--one-view``: the pose from
FaceMesh's one view (``aligner.mirror_pose=false``), without its mirror view. Figures only.
"""
from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import facekit
from facekit.faces.pose_check import TURNED, portrait_poses, shared_portraits, summary

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one-view", action="store_true", help="pose from FaceMesh's one view (aligner.mirror_pose=false)")
    one_view = parser.parse_args().one_view
    print(f"facekit head pose on the shared portraits, {date.today()}" + (", one view" if one_view else ""))
    extractor = facekit.Extractor(detector="yunet", aligner="facemesh", aligner_options={"mirror_pose": not one_view})
    results = [found for name, path in shared_portraits(IMAGES) if (found := portrait_poses(path, extractor, name))]
    frontal = [result.name for result in results if result.name not in TURNED]
    print(f"{len(results)} portraits, {len(frontal)} frontal")
    for key, (median, mean, largest) in summary(results, frontal).items():
        print(f"{key:>20}: median {median:5.2f}  mean {mean:5.2f}  largest {largest:5.2f} degrees")
    print(f"\n{'portrait':28} {'yaw':>6} {'pitch':>6} {'roll':>6} | {'mirror yaw err':>14} {'pitch err':>9} {'roll err':>8}")
    for result in results:
        yaw, pitch, roll = result.photo
        print(f"{result.name:28} {yaw:6.1f} {pitch:6.1f} {roll:6.1f} | {result.mirrored_yaw_error:14.2f} "
              f"{result.mirrored_pitch_error:9.2f} {result.roll_error:8.2f}")


if __name__ == "__main__":
    main()
