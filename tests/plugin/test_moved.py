"""Old import paths from before the core was grouped by layer keep working for one release."""
from __future__ import annotations

import json
import subprocess
import sys

from facekit.moved import MOVED

CHECK = '''
import importlib, json, warnings
from facekit.moved import MOVED

report = {}
for old, new in MOVED.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    parts = [importlib.import_module(part) for part in new.split()]
    same = module is parts[0] if len(parts) == 1 else all(
        getattr(module, name) is value for part in parts for name, value in vars(part).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == part.__name__)
    report[old] = {"same": same, "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
                   "spec": module.__spec__.name if module.__spec__ else None}
print(json.dumps(report))
'''

OLD_STYLE_PLUGIN = '''
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
from facekit.hookspecs import hookimpl
from facekit.types import Detection
from facekit import geometry
from facekit.plugin import PluginSpec
spec = PluginSpec(name="old", kind="detector", factory=lambda config, store: None, config_class=dict)
print(hookimpl(lambda: [spec]).__name__, Detection((0.0, 0.0, 1.0, 1.0), 0.5).width, geometry.__name__)
'''


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_every_old_path_gives_the_module_at_its_new_home_with_one_deprecation_warning() -> None:
    report = json.loads(run_python(CHECK).splitlines()[-1])
    assert set(report) == set(MOVED) and {"facekit.types", "facekit.hookspecs", "facekit.geometry"} <= set(MOVED)
    for old, new in MOVED.items():
        entry = report[old]
        assert entry["same"], old
        assert len(entry["warnings"]) == 1 and entry["warnings"][0].startswith("DeprecationWarning: "), (old, entry)
        assert new.split()[0] in entry["warnings"][0], (old, entry)
        if " " not in new:
            assert entry["spec"] == new, (old, entry)  # the module keeps its own spec under both names


def test_a_plugin_written_against_the_old_paths_still_declares_itself() -> None:
    assert run_python(OLD_STYLE_PLUGIN).split() == ["<lambda>", "1.0", "facekit.imaging.geometry"]
