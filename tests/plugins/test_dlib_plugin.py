"""The facekit-dlib package's own tests (plugins/dlib/tests), run as part of facekit's suite.

The package lives in plugins/dlib as a separate distribution; CI installs it with
``pip install ./plugins/dlib`` and then runs ``pytest``, whose testpaths cover tests/ only. This
module loads the package's test module and exposes its tests and fixtures here, so they run
once, from one source. Without the package installed, it skips.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("facekit_dlib", reason="facekit-dlib is not installed (pip install ./plugins/dlib)")

SOURCE = Path(__file__).resolve().parents[2] / "plugins" / "dlib" / "tests" / "test_facekit_dlib.py"
if not SOURCE.is_file():
    pytest.skip(f"facekit-dlib's tests are not at {SOURCE}", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("facekit_dlib_package_tests", SOURCE)
assert _spec is not None and _spec.loader is not None
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)

# pytest collects the test functions and fixtures it finds in this module's namespace.
globals().update({name: value for name, value in vars(_tests).items() if not name.startswith("__")})
