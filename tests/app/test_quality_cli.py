"""Per-face measures and the quality filter through the command line: every face measured,
rejects kept in the alignments file with their reasons, counted in the summary, replayed from
the analysis cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import load_json, run_facekit
from conftest import SCENES, require_data

MEASURES = ("pose", "face_px", "misalignment", "sharpness")


def _run(tmp_path: Path, source: Path, *extra: str, out: str = "faces") -> Path:
    output = tmp_path / out
    result = run_facekit(f"input={source}", f"output={output}", "runner.progress=false", *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    return output


def _faces(output: Path) -> dict[str, list[dict]]:
    return {name: frame["faces"] for name, frame in load_json(output / "alignments.json")["frames"].items()}


@pytest.fixture(scope="module")
def portraits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A big face (obama.jpg), a tiny one (obama-240p.jpg) and a crowd (selfie-many-people.jpg)."""
    require_data()
    folder = tmp_path_factory.mktemp("portraits")
    for name in ("obama.jpg", "obama-240p.jpg", "selfie-many-people.jpg"):
        shutil.copy(SCENES / name, folder / name)
    return folder


def test_every_face_of_a_run_has_its_measures(tmp_path: Path) -> None:
    require_data()
    faces = [face for frame in _faces(_run(tmp_path, SCENES)).values() for face in frame]
    assert len(faces) > 20
    for face in faces:
        assert set(MEASURES) <= face.keys(), face.keys()
        assert set(face["pose"]) == {"yaw", "pitch", "roll"}
        assert face["face_px"] > 10 and face["sharpness"] > 0 and 0 <= face["misalignment"] < 0.2
        assert "keep" not in face  # no filter set: nothing judged


def test_min_face_px_rejects_the_tiny_face_with_its_reason(portraits: Path, tmp_path: Path) -> None:
    output = _run(tmp_path, portraits, "quality.min_face_px=100", "filter.save_rejected=true")
    tiny = _faces(output)["obama-240p"][0]
    assert tiny["keep"] is False and tiny["reason"] == f"face_px {tiny['face_px']:.1f} < 100"
    assert tiny["crop"] == "rejected/obama-240p_0.png" and (output / tiny["crop"]).is_file()
    big = _faces(output)["obama"][0]
    assert big.get("keep", True) and (output / big["crop"]).is_file()
    summary = load_json(output / "run_summary.json")
    assert summary["rejected"] == {"face_px": 1}
    assert load_json(output / "alignments.json")["meta"]["quality"] == {"min_face_px": 100.0}
    assert "rejected obama-240p face 0: face_px" in (output / "facekit.log").read_text(encoding="utf-8")


def test_max_faces_keeps_the_largest_of_each_frame(portraits: Path, tmp_path: Path) -> None:
    output = _run(tmp_path, portraits, "quality.max_faces=2")
    crowd = _faces(output)["selfie-many-people"]
    assert len(crowd) > 2
    kept = [face for face in crowd if face.get("keep", True)]
    assert len(kept) == 2
    assert min(face["face_px"] for face in kept) >= max(face["face_px"] for face in crowd if face not in kept)
    assert all(face["reason"].startswith("max_faces 2: ") for face in crowd if face not in kept)
    assert all(not face["crop"] for face in crowd if face not in kept)  # no rejected/ unless asked
    assert load_json(output / "run_summary.json")["rejected"] == {"max_faces": len(crowd) - 2}


def test_pose_limits_count_each_reason_in_the_summary(portraits: Path, tmp_path: Path) -> None:
    output = _run(tmp_path, portraits, "quality.max_yaw=20", "quality.min_face_px=100")  # two of the crowd turn more
    faces = [face for frame in _faces(output).values() for face in frame]
    counts: dict[str, int] = {}
    for face in faces:
        if face.get("keep", True):
            assert abs(face["pose"]["yaw"]) <= 20 and face["face_px"] >= 100
        else:
            kind = face["reason"].split()[0]
            counts[kind] = counts.get(kind, 0) + 1
    assert counts.get("yaw") and counts.get("face_px")
    assert load_json(output / "run_summary.json")["rejected"] == counts


def test_a_cached_replay_has_the_same_measures_and_decisions(portraits: Path, tmp_path: Path) -> None:
    first = _run(tmp_path, portraits, "cache.enabled=true", "quality.max_yaw=30", out="first")
    second = _run(tmp_path, portraits, "cache.enabled=true", "quality.max_yaw=30", "output.size=128", out="second")
    assert load_json(second / "run_summary.json")["mode"] == "cached"
    strip = ("crop", "crop_sha256", "crop_bytes", "matrix")  # the matrix maps to the crop at its size
    assert ({name: [{k: v for k, v in face.items() if k not in strip} for face in frame]
             for name, frame in _faces(first).items()} ==
            {name: [{k: v for k, v in face.items() if k not in strip} for face in frame]
             for name, frame in _faces(second).items()})


@pytest.mark.parametrize("workers", ["2", "0"])
def test_facekit_log_names_every_rejected_face_in_worker_processes_and_on_threads(tmp_path: Path, workers: str) -> None:
    """The summary sends the user to facekit.log for the reasons: each rejected face has its
    line there, whichever process judged it (worker processes logged theirs nowhere before), in
    the order of the frames, as the alignments file lists them (two workers' lines, taken as
    they came, interleaved)."""
    clip = require_data() / "video" / "short_hamilton_clip.mp4"
    output = _run(tmp_path, clip, "sample.end=3", "quality.min_sharpness=300", f"runner.workers={workers}")
    rejected = [f"{name} face {index}" for name, faces in _faces(output).items()
                for index, face in enumerate(faces) if not face.get("keep", True)]
    assert len(rejected) >= 100
    lines = [line for line in (output / "facekit.log").read_text().splitlines() if "[facekit.decisions]" in line]
    assert [line.split("] rejected ", 1)[1].split(":")[0] for line in lines] == rejected
    assert all(": sharpness " in line and " < 300" in line for line in lines)


def test_a_negative_limit_is_refused_with_its_key(tmp_path: Path) -> None:
    require_data()
    result = run_facekit(f"input={SCENES / 'obama.jpg'}", f"output={tmp_path / 'out'}", "quality.max_yaw=-5",
                         cwd=tmp_path)
    assert result.returncode != 0 and "quality.max_yaw" in result.stderr


def test_a_collections_closing_lines_count_the_faces_its_filters_rejected(tmp_path: Path) -> None:
    """A single source's run says how many faces it rejected and why; a collection said nothing
    of them, though each source's run_summary.json counted them."""
    require_data()
    tree = tmp_path / "tree"
    for person in ("p01", "p04"):
        (tree / person).mkdir(parents=True)
        for photo in (SCENES.parent / "people" / person).glob("*.jpg"):
            shutil.copy(photo, tree / person / photo.name)
    result = run_facekit(f"input={tree}", f"output={tmp_path / 'out'}", "runner.progress=false", "quality.max_yaw=5",
                         cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    counted = sum(sum(load_json(tmp_path / "out" / person / "run_summary.json")["rejected"].values())
                  for person in ("p01", "p04"))
    assert counted > 0
    said = " ".join(result.stderr.split())
    assert f"filter: {counted} face(s) rejected over 2 done source(s) (yaw {counted};" in said, result.stderr
