"""``task=extract``: input in, aligned faces and an alignments file out; resumes a stopped run.

The one entry point of every extract run: the settings are checked once, then the input goes to
its executor (Ray, a collection's stream, or the single source's run), which keep their books
per source through ``facekit.ledger``. The executors import the planning they share from
``planning``, never this module: imports in ``app/tasks`` point one way.
"""
from __future__ import annotations

from omegaconf import DictConfig

from facekit.app.tasks.settings import check_settings, is_collection_input
from facekit.plugin.registry import PluginRegistry


def run_extract(cfg: DictConfig, registry: PluginRegistry) -> None:
    check_settings(cfg)
    if cfg.runner.get("executor") == "ray":  # runner=ray: every source's shards on a Ray cluster
        from facekit.app.tasks.distributed import run_on_ray

        run_on_ray(cfg, registry)
    elif is_collection_input(cfg):  # a tree or a list of sources, through one stream
        from facekit.app.tasks.collection import run_collection

        run_collection(cfg, registry)
    else:
        from facekit.app.tasks.single import run_single

        run_single(cfg, registry)
