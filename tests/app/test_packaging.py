"""The wheel must carry every core package, the configs and the built-in plugins."""
from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_core_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "facekit").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_installed_package_carries_configs_and_plugins() -> None:
    conf = resources.files("facekit.conf")
    for name in ("config.yaml", "runner/default.yaml", "detector/yunet.yaml", "aligner/facemesh.yaml",
                 "hydra/job_logging/facekit.yaml", "hydra/hydra_logging/facekit.yaml"):
        assert (conf / name).is_file(), name
    plugins = resources.files("facekit_plugins")
    for name in ("yunet.py", "mtcnn.py", "blazeface.py", "facemesh.py"):
        assert (plugins / name).is_file(), name
