"""Running the installed ``facekit`` command the way a user does, in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_facekit(*args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "FACEKIT_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "facekit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
