"""How ``output.masks``, ``+masker=NAME`` and the other mask keys become a run's ``MaskMaker``,
shared by extraction and ``task=mask``.

``output.masks`` lists the masker plugins a face gets a mask from, by name; ``+masker=NAME``
composes one masker's options (``masker.brow_shift=0.6``) and makes that mask too, whether or
not the list names it. A masker not composed runs on its defaults.
"""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from facekit.errors import ConfigError
from facekit.faces.masks import MASK_FORMATS, MaskMaker
from facekit.imaging.geometry import check_crop_size
from facekit.models.store import ModelStore
from facekit.plugin.loading import load_plugin
from facekit.plugin.registry import PluginRegistry


def mask_names(cfg: DictConfig) -> list[str]:
    """The masks a run makes, in order: ``output.masks``, then ``+masker=``'s if not listed."""
    names = [str(name) for name in cfg.output.get("masks") or []]
    composed = cfg.get("masker")
    if composed is not None and composed.get("name") is None:  # +masker={grow:1}: no masker named
        raise ConfigError("+masker takes a masker's name: +masker=NAME masker.KEY=VALUE (facekit task=plugins lists "
                          "the maskers)")
    if composed is not None and composed.name not in names:
        names.append(str(composed.name))
    return names


def check_mask_settings(cfg: DictConfig) -> None:
    """One line for each mistake in the mask keys, before anything loads."""
    names = mask_names(cfg)
    if len(set(names)) != len(names):
        raise ConfigError(f"output.masks names a mask twice: {names}")
    check_crop_size(cfg.output.mask_size, "output.mask_size", ConfigError)
    file_format = str(cfg.output.mask_format)
    if file_format not in MASK_FORMATS:
        raise ConfigError(f"output.mask_format={file_format!r}; choose one of: {', '.join(MASK_FORMATS)}")
    if file_format != "none" and not names:
        raise ConfigError(f"output.mask_format={file_format} writes masks, but none is asked for: "
                          "add 'output.masks=[components]'")


def writes_mask_files(cfg: DictConfig) -> bool:
    """Whether the run writes each face's masks as files beside it (``output.mask_format=file``),
    which a rerun then checks as it checks the face files."""
    return str(cfg.output.mask_format) == "file"


def mask_maker(cfg: DictConfig, registry: PluginRegistry, store: ModelStore) -> MaskMaker | None:
    """The run's maskers, by name and options (built on first use); None when it makes no mask,
    so a run without masks is exactly the run before masks existed."""
    names = mask_names(cfg)
    if not names:
        return None
    composed = cfg.get("masker")
    options: dict[str, Any] = {} if composed is None else OmegaConf.to_container(composed, resolve=True)
    plugins = [load_plugin(registry, store, "masker", name, options if options.get("name") == name else None)
               for name in names]
    return MaskMaker(plugins, int(cfg.output.mask_size), str(cfg.output.mask_format))


def masks_meta(maker: MaskMaker | None) -> dict[str, Any] | None:
    """What alignments.json's meta (and its fingerprint) says of the masks: each masker's name
    and config, and the stored size; None without masks (files from before masks still resume)."""
    if maker is None:
        return None
    return {"size": maker.size, "maskers": {p.spec.name: p.fingerprint()["config"] for p in maker.plugins}}
