"""The derived-model cache that YuNet's float model and SFace's LiteRT form share."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from facekit.models.derived import derived_model


def _source(tmp_path: Path, content: bytes = b"weights") -> Path:
    source = tmp_path / "model.onnx"
    source.write_bytes(content)
    return source


def test_parallel_users_make_the_file_once(tmp_path: Path) -> None:
    """Workers that load the same model at once wait for one maker rather than each making it."""
    source, made = _source(tmp_path), []

    def make(target: Path) -> None:
        made.append(target)
        time.sleep(0.3)  # long enough for every other thread to arrive while this one works
        target.write_bytes(b"made")

    results: list[str | bytes] = []
    threads = [threading.Thread(target=lambda: results.append(
        derived_model(source, tmp_path / "derived", "t.v1", ".bin", make, "making"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert len(set(results)) == 1 and Path(results[0]).read_bytes() == b"made"


def test_the_name_follows_the_source_and_the_tag(tmp_path: Path) -> None:
    """A new package version (other bytes) or a new maker (other tag) gets a file of its own."""
    def make(target: Path) -> None:
        target.write_bytes(target.name.encode())

    folder = tmp_path / "derived"
    first = derived_model(_source(tmp_path, b"one"), folder, "t.v1", ".bin", make, "making")
    again = derived_model(_source(tmp_path, b"one"), folder, "t.v1", ".bin", make, "making")
    new_tag = derived_model(_source(tmp_path, b"one"), folder, "t.v2", ".bin", make, "making")
    new_source = derived_model(_source(tmp_path, b"two"), folder, "t.v1", ".bin", make, "making")
    assert first == again
    assert len({first, new_tag, new_source}) == 3
    assert Path(first).name.startswith("model.t.v1.") and Path(first).suffix == ".bin"


def test_no_folder_or_an_unwritable_one_gives_bytes(tmp_path: Path) -> None:
    def make(target: Path) -> None:
        target.write_bytes(b"made")

    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would go")
    source = _source(tmp_path)
    assert derived_model(source, None, "t.v1", ".bin", make, "making") == b"made"
    assert derived_model(source, blocked / "derived", "t.v1", ".bin", make, "making") == b"made"
