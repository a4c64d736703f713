"""``task=extract``: input in, aligned faces and an alignments file out; resumes a stopped run.

The one entry point of every extract run: the settings are checked once, then the input goes to
one of two executors, Ray or this machine (``local``), which take the same sources (a single
input is a collection of one: ``sources``) and keep their books per source through
``facekit.ledger``. The executors import the planning they share from
``planning``, never this module: imports in ``app/tasks`` point one way.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from facekit.app.tasks.settings import check_settings, filter_is_set
from facekit.plugin.registry import PluginRegistry

log = logging.getLogger("facekit")


def run_extract(cfg: DictConfig, registry: PluginRegistry) -> None:
    check_settings(cfg)
    if not filter_is_set(cfg) and cfg.filter.threshold is not None:  # said once a run, not once a source
        log.warning("filter.threshold=%s does nothing without filter.refs or filter.nrefs: no identity filter runs, "
                    "every face is kept", cfg.filter.threshold)
    if cfg.runner.get("executor") == "ray":  # runner=ray: every source's shards on a Ray cluster
        from facekit.app.tasks.distributed import run_on_ray

        run_on_ray(cfg, registry)
    else:  # this machine: a collection, or a single input as a collection of one
        from facekit.app.tasks.local import run_local

        run_local(cfg, registry)
