"""The README's library example runs as written (from the repository root, like its set-up)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import require_data

ROOT = Path(__file__).resolve().parents[2]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_library_example_runs() -> None:
    require_data()
    blocks = [b for b in _python_blocks((ROOT / "README.md").read_text()) if "facekit.Extractor(" in b]
    assert blocks, "README has no facekit.Extractor example"
    result = subprocess.run([sys.executable, "-c", blocks[0]], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if "(68, 2)" in line]
    assert len(printed) == 2, result.stdout  # two_people.jpg: two faces, each with 68 landmarks


def test_plugin_examples_are_valid_python_and_import_only_from_facekit_plugin() -> None:
    blocks = [b for b in _python_blocks((ROOT / "README.md").read_text()) if "from facekit.plugin import" in b]
    assert blocks, "README has no plugin example"
    for block in blocks:
        compile(block, "README plugin example", "exec")
        imports = re.findall(r"^(?:from|import) (facekit(?:\.[\w.]+)?)\s", block, flags=re.MULTILINE)
        assert set(imports) == {"facekit.plugin"}, imports
