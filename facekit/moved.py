"""Old import paths of the modules that moved into layer packages (0.1 -> 0.2), kept for one
release: ``import facekit.types`` still works, warns once, and gives the module's new home, so a
third-party plugin written against the flat layout runs unchanged while its author updates it."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

#: old module -> where it lives now (several, space-separated, for a module that was split)
MOVED: dict[str, str] = {
    "facekit.types": "facekit.records",
    "facekit.hookspecs": "facekit.plugin.hookspecs",
    "facekit.registry": "facekit.plugin.registry",
    "facekit.pipeline": "facekit.faces.stages facekit.plugin.loading facekit.faces.extractor",
    "facekit.geometry": "facekit.imaging.geometry",
    "facekit.resize": "facekit.imaging.resize",
    "facekit.identity": "facekit.faces.identity",
    "facekit.evaluate": "facekit.faces.evaluate",
    "facekit.references": "facekit.app.references",
    "facekit.runner": "facekit.engine.pipeline",
    "facekit.engine.runner": "facekit.engine.pipeline",
    "facekit.threads": "facekit.engine.threads",
    "facekit.workers": "facekit.engine.workers",
    "facekit.frame_slots": "facekit.engine.frame_slots",
    "facekit.pixel_pipe": "facekit.engine.pixel_pipe",
    "facekit.gpu": "facekit.engine.gpu",
    "facekit.heif": "facekit.media.heif",
    "facekit.float_tiff": "facekit.media.float_tiff",
    "facekit.decoder_output": "facekit.media.decoder_output",
    "facekit.alignments": "facekit.output.alignments",
    "facekit.pngmeta": "facekit.output.pngmeta",
    "facekit.debug": "facekit.output.debug_frames",
    "facekit.analysis_cache": "facekit.sweep.cache",
    "facekit.sweep_report": "facekit.sweep.report",
    "facekit.contact_sheet": "facekit.sweep.contact_sheet",
    "facekit.cli": "facekit.app.cli",
    "facekit.tasks": "facekit.app.tasks",
    "facekit.tasks.extract": "facekit.app.tasks.extract",
    "facekit.tasks.plugins": "facekit.app.tasks.plugins",
    "facekit.tasks.settings": "facekit.app.tasks.settings",
    # 0.2 -> 0.3: "cluster" means curation's identity clusters only; the Ray runner is "distributed"
    "facekit.cluster": "facekit.distributed",
    "facekit.cluster.driver": "facekit.distributed.driver",
    "facekit.cluster.resources": "facekit.distributed.resources",
    "facekit.cluster.session": "facekit.distributed.session",
    "facekit.cluster.shard_journal": "facekit.ledger.shard_journal",
    "facekit.cluster.shard_worker": "facekit.distributed.shard_worker",
    "facekit.cluster.shared_output": "facekit.distributed.shared_output",
    "facekit.app.tasks.cluster": "facekit.app.tasks.distributed",
    # a shard's journal is the per-source ledger's, whichever executor writes it
    "facekit.distributed.shard_journal": "facekit.ledger.shard_journal",
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of old paths with the module at its new path (one module object, so
    ``isinstance`` checks and module state are shared by both names)."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:  # noqa: ANN001
        new = MOVED[spec.name]
        if " " in new:  # split: a module of its own holding the names of every part
            module = ModuleType(spec.name)
            for part in new.split():
                module.__dict__.update({k: v for k, v in vars(importlib.import_module(part)).items()
                                        if not k.startswith("__")})
        else:
            module = importlib.import_module(new)
            spec.loader_state = module.__spec__  # importlib sets the alias's spec on it; exec_module puts this back
        where = new if " " not in new else "one of " + ", ".join(new.split())
        warnings.warn(f"{spec.name} moved to {where}; import it from there (the old path goes in the next "
                      "release)" + ("; plugin authors: everything is in facekit.plugin" if _for_plugins(spec.name) else ""),
                      DeprecationWarning, stacklevel=2)  # warnings skips importlib's own frames
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module ran at its new path already; only its own spec is restored."""
        own = module.__spec__.loader_state
        if own is not None:
            module.__spec__ = own


def _for_plugins(old: str) -> bool:
    return old in ("facekit.types", "facekit.hookspecs", "facekit.geometry", "facekit.resize", "facekit.registry")


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # first: a moved package's old submodule paths must not load twice
