"""The moment a run is accepted: every check that can refuse it has passed, so from here on it
writes. Hydra's own record of the run (``.hydra/``) and the log file are written here rather
than when Hydra starts the job, so a refused run leaves its output folder as it found it."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from facekit.console import open_run_log
from facekit.fileio import atomic_write_bytes
from facekit.ledger.run_folder import RunFolder

LOG_FILE = "facekit.log"


def accept_run(cfg: DictConfig, run: RunFolder) -> None:
    run.accept()
    _write_hydra_record(cfg, run.folder)
    open_run_log(run.folder / LOG_FILE)


def _write_hydra_record(cfg: DictConfig, folder: Path) -> None:
    """``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``, as Hydra writes them, for a
    plain run (the CLI turns Hydra's own writing off for those; a sweep's jobs keep Hydra's)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.MULTIRUN:
        return
    hydra = HydraConfig.get()
    record = folder / ".hydra"
    record.mkdir(exist_ok=True)
    for name, node in (("config.yaml", cfg), ("hydra.yaml", OmegaConf.create({"hydra": hydra})),
                       ("overrides.yaml", OmegaConf.create(list(hydra.overrides.task)))):
        atomic_write_bytes(record / name, OmegaConf.to_yaml(node).encode("utf-8"))
