"""Plugin discovery, config composition and the serial/parallel decision."""
from __future__ import annotations

import dataclasses
from importlib import resources

import pytest
import yaml

from facekit.errors import ConfigError
from facekit.gpu import FAKE_FREE_ENV, choose_mode, free_gpu_memory_mb
from facekit.plugin import PluginSpec
from facekit.registry import default_registry


def _spec(name: str, gpu_mb: int) -> PluginSpec:
    return PluginSpec(name=name, kind="detector", factory=lambda c, s: None, config_class=dict,
                      gpu_memory_mb=gpu_mb)


def test_builtins_arrive_through_entry_points() -> None:
    registry = default_registry()
    assert {"yunet", "mtcnn", "blazeface"} <= set(registry.names("detector"))
    assert "facemesh" in registry.names("aligner")
    for spec in registry.all():
        for model_id in spec.model_ids:
            assert model_id in registry.models, f"{spec.name} needs unknown model {model_id}"


def test_packaged_yaml_matches_plugin_dataclass() -> None:
    """conf/<group>/<name>.yaml and the plugin's config dataclass must not drift apart."""
    registry = default_registry()
    conf = resources.files("facekit.conf")
    checked = 0
    for spec in registry.all():
        file = conf / spec.kind / f"{spec.name}.yaml"
        if not file.is_file():
            continue
        values = yaml.safe_load(file.read_text())
        assert values.pop("name") == spec.name
        assert values == dataclasses.asdict(spec.config_class()), spec.name
        checked += 1
    assert checked >= 4


def test_build_config_type_checks_values() -> None:
    registry = default_registry()
    spec = registry.get("detector", "yunet")
    assert registry.build_config(spec, {"score_threshold": "0.8"}).score_threshold == 0.8
    with pytest.raises(ConfigError, match="yunet"):
        registry.build_config(spec, {"score_threshold": "high"})
    with pytest.raises(ConfigError, match="yunet"):
        registry.build_config(spec, {"no_such_option": 1})


def test_unknown_plugin_lists_choices() -> None:
    with pytest.raises(ConfigError, match="choose one of: .*yunet"):
        default_registry().get("detector", "nosuch")


@pytest.mark.parametrize(
    ("requested", "gpu", "free_mb", "expected"),
    [
        ("auto", (0, 0), None, "parallel"),          # no GPU
        ("auto", (4000, 2200), None, "parallel"),    # no GPU: both on the CPU side by side
        ("auto", (4000, 0), 3000, "parallel"),       # one plugin needs no GPU memory
        ("auto", (4000, 2200), 8000, "parallel"),    # room for both plus the margin
        ("auto", (4000, 2200), 6000, "serial"),      # both fit, the margin does not
        ("auto", (4000, 2200), 3000, "serial"),      # small GPU
        ("serial", (0, 0), None, "serial"),
        ("parallel", (4000, 2200), 1000, "parallel"),
    ],
)
def test_choose_mode(requested: str, gpu: tuple[int, int], free_mb: int | None, expected: str) -> None:
    plugins = [_spec("a", gpu[0]), _spec("b", gpu[1])]
    assert choose_mode(requested, plugins, free_mb, margin_mb=1024) == expected


def test_choose_mode_rejects_unknown() -> None:
    with pytest.raises(ConfigError, match="auto, serial, parallel"):
        choose_mode("fast", [], None)


@pytest.mark.parametrize(("free_mb", "expected"), [("4096", "serial"), ("24000", "parallel"), ("none", "parallel")])
def test_s3fd_with_fan_runs_serially_on_a_small_gpu(monkeypatch: pytest.MonkeyPatch, free_mb: str,
                                                    expected: str) -> None:
    """The runner's choice from the memory the plugins report and a faked free-memory report."""
    registry = default_registry()
    if "s3fd" not in registry.names("detector"):
        pytest.skip("the s3fd plugin is not registered")
    plugins = [registry.get("detector", "s3fd"), registry.get("aligner", "fan")]
    assert all(p.gpu_memory_mb > 1000 for p in plugins)  # published figures: ~4 GB and ~2.2 GB
    monkeypatch.setenv(FAKE_FREE_ENV, free_mb)
    assert choose_mode("auto", plugins, free_gpu_memory_mb()) == expected
