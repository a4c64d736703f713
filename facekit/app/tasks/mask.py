"""``task=mask input=OUT 'output.masks=[components]'``: masks added to (or replaced in) an
extraction's output, single or collection, from its alignments files; ``mask.import=DIR`` reads
edited masks back. The mask keys are extraction's (``output.masks``, ``+masker=``,
``output.mask_size``, ``output.mask_format``); the work is ``facekit.ledger.remask``."""
from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

from omegaconf import DictConfig

from facekit.app.tasks.mask_settings import check_mask_settings, mask_maker, masks_meta
from facekit.app.tasks.planning import cache_root
from facekit.errors import ConfigError
from facekit.ledger.collection_state import unfinished_folders
from facekit.ledger.remask import MaskRequestSettings, output_folders, remask_folder
from facekit.ledger.run_folder import RunFolder
from facekit.models.store import ModelStore
from facekit.plugin.loading import ensure_all_weights
from facekit.plugin.registry import PluginRegistry

log = logging.getLogger("facekit")


def run_mask(cfg: DictConfig, registry: PluginRegistry) -> None:
    request = mask_request(cfg, registry)
    if cfg.runner.get("executor") == "ray":  # task=mask has no shards yet: said, not silently ignored
        log.info("task=mask runs on this machine; runner=ray is for extraction and re-crops")
    root = Path(str(cfg.input)).expanduser()
    folders = output_folders(root)
    with ExitStack() as held:
        run = held.enter_context(RunFolder(root, leave_no_lock=True))  # no extraction (or task=mask) writes meanwhile
        run.accept()
        if request.maker is not None:
            ensure_all_weights(request.maker.plugins)
        done = skipped = left = masks_imported = 0
        unfinished = unfinished_folders(root)
        for folder in folders:
            if folder in unfinished:
                left += 1
                log.warning("%s: its extraction is %s; masks go to finished sources only, so that the extraction "
                            "can resume: run it again to finish this source, then this command", folder,
                            unfinished[folder])
                continue
            result = remask_folder(folder, request)
            if result is None:
                skipped += 1
            else:
                faces, found = result
                done += faces
                masks_imported += found
                log.info("%s: %d face(s)", folder, faces)
    offered = _mask_files(request.import_dir) if request.import_dir is not None else 0
    if request.import_dir is not None and 0 < masks_imported < offered and not left:
        log.warning("mask.import=%s: %d of its %d mask files are named as no face file of %s (<mask name>/<face "
                    "file>, e.g. components/%s) and were left out", request.import_dir, offered - masks_imported,
                    offered, root, _a_face_file(folders))
    if request.import_dir is not None and not masks_imported and done:
        log.warning("mask.import=%s: no mask file there is named as a face file of %s (it holds <mask name>/<face "
                    "file>, e.g. components/%s): no mask was imported", request.import_dir, root,
                    _a_face_file(folders))
    names = ", ".join(request.maker.names) if request.maker is not None else "none made"
    imported = f"; imported from {request.import_dir}" if request.import_dir is not None else ""
    log.info("masks (%s%s) in %d source folder(s), %d face(s)%s%s", names, imported, len(folders) - skipped - left,
             done, f"; {skipped} already done" if skipped else "", f"; {left} unfinished, left out" if left else "")


def mask_request(cfg: DictConfig, registry: PluginRegistry) -> MaskRequestSettings:
    """The checked request: at least one masker or an import folder, both readable."""
    if not cfg.input:
        raise ConfigError("input is required: facekit task=mask input=<extraction output folder> "
                          "'output.masks=[components]'")
    root = Path(str(cfg.input)).expanduser()
    if not root.is_dir():
        raise ConfigError(f"input {str(root)!r} is not a folder: give an extraction's output folder")
    check_mask_settings(cfg)
    imported = cfg.mask.get("import")
    import_dir = None if imported is None else Path(str(imported)).expanduser()
    if import_dir is not None and not import_dir.is_dir():
        raise ConfigError(f"mask.import={str(import_dir)!r} is not a folder (it holds <mask name>/<face file>.png)")
    if import_dir is not None and not any(p.is_file() for folder in import_dir.iterdir() if folder.is_dir()
                                          for p in folder.iterdir()):
        raise ConfigError(f"mask.import={str(import_dir)!r} holds no <mask name>/<face file>.png (a folder of "
                          "each mask's files, as output.mask_format=file writes them under masks/)")
    store = ModelStore(registry.models, cache_dir=cache_root(cfg), offline=bool(cfg.models.offline))
    maker = mask_maker(cfg, registry, store)
    if maker is None and import_dir is None:
        raise ConfigError("task=mask needs masks to make or import: 'output.masks=[components]' or mask.import=DIR")
    meta = masks_meta(maker)
    return MaskRequestSettings(maker, str(cfg.output.mask_format), int(cfg.output.mask_size), import_dir,
                               meta["maskers"] if meta else {})


def _mask_files(folder: Path) -> int:
    """The files ``mask.import`` offers: one a mask name's folder holds."""
    return sum(1 for names in folder.iterdir() if names.is_dir() for path in names.iterdir() if path.is_file())


def _a_face_file(folders: list[Path]) -> str:
    """A face file's name from the first folder that has one, for the message's example."""
    for folder in folders:
        for path in sorted(folder.glob("*.png")):
            return path.name
    return "<face file>.png"
