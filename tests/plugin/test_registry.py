"""Plugin discovery, config composition and the serial/parallel decision."""
from __future__ import annotations

import dataclasses
from importlib import resources

import pytest
import yaml

from facekit.errors import ConfigError
from facekit.engine.gpu import FAKE_FREE_ENV, StageNeed, free_gpu_memory_mb, plan_passes_for_gpu
from facekit.plugin.spec import PluginSpec
from facekit.plugin.registry import default_registry


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


@pytest.mark.parametrize(("free_mb", "expected"), [("4096", "serial"), ("24000", "parallel"), ("none", "parallel")])
def test_s3fd_with_fan_runs_serially_on_a_small_gpu(monkeypatch: pytest.MonkeyPatch, free_mb: str,
                                                    expected: str) -> None:
    """The runner's choice from the memory the plugins report and a faked free-memory report."""
    registry = default_registry()
    if "s3fd" not in registry.names("detector"):
        pytest.skip("the s3fd plugin is not registered")
    plugins = [registry.get("detector", "s3fd"), registry.get("aligner", "fan")]
    assert all(p.gpu_memory_mb > 1000 for p in plugins)  # published figures: ~4.9 GB and ~3 GB
    monkeypatch.setenv(FAKE_FREE_ENV, free_mb)
    needs = [StageNeed(stage, p.name, p.gpu_memory_mb) for stage, p in zip(("detect", "align"), plugins)]
    assert plan_passes_for_gpu("auto", needs, free_gpu_memory_mb(), 1024).mode == expected


def test_the_unused_spec_fields_are_gone_but_old_plugins_still_declare_with_a_warning() -> None:
    """input_size and extras were never read; a third party passing them keeps working this release."""
    assert {"input_size", "extras"}.isdisjoint(f.name for f in dataclasses.fields(PluginSpec))
    with pytest.warns(DeprecationWarning, match="input_size and extras"):
        spec = PluginSpec(name="old", kind="detector", factory=lambda c, s: None, config_class=dict, input_size=(1, 1))
    assert spec.name == "old"


def test_a_model_id_no_package_declares_is_named_with_the_plugin_that_needs_it() -> None:
    """It said "unknown model id 'x'; known: ..." without the plugin that asked for it."""
    from facekit.errors import ModelError
    from facekit.models.store import ModelStore
    from facekit.plugin.loading import LoadedPlugin
    from facekit.plugin.spec import PluginSpec

    registry = default_registry()
    spec = PluginSpec("needy", "detector", lambda config, store: None, object, model_ids=("no-such-model",))
    with pytest.raises(ModelError, match=r"^detector 'needy' needs model 'no-such-model', which no installed package"):
        LoadedPlugin(spec, None, ModelStore(registry.models, cache_dir=None)).ensure_weights()


def test_a_config_field_the_config_computes_follows_the_options_set() -> None:
    """A ``field(init=False)`` set in ``__post_init__`` came into the plugin's config node with
    the defaults' value, which then came back over the one computed from the options set."""
    @dataclasses.dataclass
    class Levels:
        level: int = 100
        derived: int = dataclasses.field(init=False)

        def __post_init__(self) -> None:
            self.derived = 2 * self.level

    registry = default_registry()
    spec = PluginSpec("levels", "masker", lambda config, store: None, Levels)
    node = registry.config_node(spec)
    assert node == {"name": "levels", "level": 100}
    assert registry.build_config(spec, {**node, "level": 7}).derived == 14


@pytest.mark.parametrize("config_class, said", [
    (dataclasses.make_dataclass("Named", [("name", str, dataclasses.field(default="soft"))]), "an option called 'name'"),
    (dict, "is not a dataclass"),
], ids=["name-option", "not-a-dataclass"])
def test_a_config_class_that_cannot_be_a_plugin_s_options_is_skipped_naming_why(config_class, said, caplog) -> None:
    """An option called 'name' took the plugin's name's place (unknown masker 'soft'); a config
    class that is no dataclass failed every command when its config node was made."""
    from facekit.plugin.registry import PluginRegistry

    registry = PluginRegistry.__new__(PluginRegistry)
    registry.plugins, registry._origins = {"masker": {}}, {}
    registry._add("masker", PluginSpec("odd", "masker", lambda config, store: None, config_class), "toy_package")
    assert registry.plugins["masker"] == {} and said in caplog.text and "package toy_package" in caplog.text


def test_a_masker_needing_what_facekit_does_not_give_is_skipped_naming_it(caplog) -> None:
    """needs=("imgae",) was accepted: the masker then got no frame, without a word."""
    from facekit.plugin.registry import PluginRegistry

    @dataclasses.dataclass
    class Plain:
        pass

    registry = PluginRegistry.__new__(PluginRegistry)
    registry.plugins, registry._origins = {"masker": {}}, {}
    registry._add("masker", PluginSpec("typo", "masker", lambda c, s: None, Plain, needs=("imgae",)), "toy_package")
    registry._add("masker", PluginSpec("fine", "masker", lambda c, s: None, Plain, needs=("image",)), "toy_package")
    assert list(registry.plugins["masker"]) == ["fine"]
    assert "masker 'typo' skipped: it needs 'imgae', which facekit does not give (it gives: image, outline)" in caplog.text


def test_a_computed_config_field_with_a_default_follows_the_options_set_too() -> None:
    """``field(init=False, default=0)``: OmegaConf set the default back after __post_init__."""
    @dataclasses.dataclass
    class Area:
        size: int = 2
        area: int = dataclasses.field(init=False, default=0)

        def __post_init__(self) -> None:
            self.area = self.size * self.size

    spec = PluginSpec("area", "masker", lambda config, store: None, Area)
    assert default_registry().build_config(spec, {"name": "area", "size": 3}).area == 9
