"""The top-level config's schema (facekit.app.schema): types from the dataclasses, defaults from conf/."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from facekit.app.schema import FacekitSchema, RayRunnerSchema, RunnerMode, RunnerSchema, Task, register_schema
from facekit.app.tasks import TASKS
from facekit.engine.gpu import MODES


def _compose(*overrides: str):
    register_schema()
    with initialize_config_module(config_module="facekit.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_the_schema_names_every_task_and_runner_mode() -> None:
    assert [t.value for t in Task] == list(TASKS)
    assert tuple(m.value for m in RunnerMode) == MODES


def test_the_composed_config_is_typed_down_to_the_runner_group() -> None:
    cfg = _compose()
    assert OmegaConf.get_type(cfg) is FacekitSchema
    assert OmegaConf.get_type(cfg.runner) is RunnerSchema  # runner/default.yaml merged into the typed node
    with pytest.raises(ValidationError):
        cfg.runner.queue_size = "lots"


def test_runner_ray_has_a_schema_of_its_own_and_runner_default_has_none_of_its_keys() -> None:
    """Ray's keys are typed by RayRunnerSchema (runner/ray.yaml extends it), with their defaults
    written once, in that YAML; under runner=default the node has none of them."""
    ray = _compose("runner=ray")
    assert OmegaConf.get_type(ray.runner) is RayRunnerSchema
    assert (ray.runner.executor, ray.runner.shard_frames, ray.runner.cpus_per_task, ray.runner.mode) == \
        ("ray", 500, 1.0, "auto")  # runner/default.yaml's keys keep their defaults under runner=ray
    with pytest.raises(ValidationError):
        ray.runner.shard_frames = "many"
    plain = _compose()
    assert plain.runner.executor is None and "shard_frames" not in plain.runner


def test_the_yaml_defaults_compose_and_compare_as_words() -> None:
    cfg = _compose()
    assert cfg.task == "extract" and cfg.runner.mode == "auto" and f"{cfg.runner.mode}" == "auto"
    assert cfg.cache.enabled == "auto" and cfg.runner.workers == "auto"
    assert cfg.get("detector") is None and cfg.get("aligner") is None and cfg.get("identity") is None


@pytest.mark.parametrize(("override", "value"), [("cache.enabled=true", True), ("cache.enabled=false", False),
                                                 ("runner.workers=3", 3), ("runner.mode=serial", "serial"),
                                                 ("filter.threshold=1", 1.0)])
def test_values_as_users_type_them(override: str, value: object) -> None:
    key = override.split("=")[0]
    assert OmegaConf.select(_compose(override), key) == value


def test_a_plugin_group_added_with_plus_fills_its_node() -> None:
    cfg = _compose("+detector=yunet", "detector.score_threshold=0.5")
    assert cfg.detector.name == "yunet" and cfg.detector.score_threshold == 0.5
    assert cfg.get("aligner") is None


def test_the_yaml_gives_every_key_its_default() -> None:
    """The schema holds types only (every value MISSING); conf/'s YAML fills them all."""
    assert OmegaConf.missing_keys(_compose()) == set()


def test_the_schema_names_every_mask_format() -> None:
    from facekit.app.schema import MaskFormat
    from facekit.faces.masks import MASK_FORMATS

    assert tuple(f.value for f in MaskFormat) == MASK_FORMATS


def test_a_masker_added_with_plus_fills_its_node_and_mask_import_takes_a_folder() -> None:
    cfg = _compose("+masker=extended", "masker.brow_shift=0.6", "mask.import=edits/", "output.masks=[components]")
    assert cfg.masker.name == "extended" and cfg.masker.brow_shift == 0.6
    assert cfg.mask["import"] == "edits/" and list(cfg.output.masks) == ["components"]
    assert _compose().mask["import"] is None and list(_compose().output.masks) == []
