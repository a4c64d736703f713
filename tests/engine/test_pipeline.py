"""The runner's passes on a rerun: frames an earlier run finished are not run again, in serial
passes (detect over every frame, then align) as in one parallel pass."""
from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import load_json, run_facekit
from test_batches import _batches_by_process, _noise_photos, recording_env  # noqa: F401 (a fixture)


@pytest.mark.parametrize("mode", ["serial", "parallel"])
def test_a_rerun_in_serial_or_parallel_passes_detects_only_the_frames_not_done(tmp_path: Path, recording_env: dict[str, str],
                                                         mode: str) -> None:
    """Three photos done, two added: the rerun's detector is given the two new ones only."""
    photos = _noise_photos(tmp_path / "photos", 5)
    later = tmp_path / "later"
    later.mkdir()
    for photo in sorted(photos.iterdir())[3:]:
        photo.rename(later / photo.name)
    out, log = tmp_path / "faces", tmp_path / "detected.txt"

    def run() -> int:
        """A run into ``out``: how many images its detector was given."""
        result = run_facekit("+detector=recording", f"detector.log={log}", f"input={photos}", f"output={out}",
                             f"runner.mode={mode}", "runner.progress=false", cwd=tmp_path, env=recording_env)
        assert result.returncode == 0, result.stderr
        detected = sum(map(sum, _batches_by_process(log).values()))
        log.unlink()  # the log's path is in the settings, so the rerun writes to the same one
        return detected

    first = run()
    for photo in later.iterdir():
        photo.rename(photos / photo.name)
    assert (first, run()) == (3, 2)
    assert load_json(out / "run_summary.json")["mode"] == mode
    assert list(load_json(out / "alignments.json")["frames"]) == [f"p{i:02d}" for i in range(5)]
