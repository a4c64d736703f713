"""``task=plugins``: every registered plugin, its models and whether their weights are here."""
from __future__ import annotations

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from facekit.models.store import ModelStore
from facekit.plugin.registry import PluginRegistry


def run_plugins(cfg: DictConfig, registry: PluginRegistry) -> None:
    store = ModelStore(registry.models, cache_dir=cfg.models.cache_dir)  # state() never downloads
    table = Table(title="facekit plugins")
    for column in ("kind", "name", "models", "GPU MB", "weights", "metric", "description"):
        table.add_column(column)
    for spec in registry.all():
        states = [store.state(m) if m in registry.models else "unknown id" for m in spec.model_ids]
        metric = f"{spec.metric} <= {spec.default_threshold}" if spec.metric else "-"
        table.add_row(spec.kind, spec.name, "\n".join(spec.model_ids) or "-", str(spec.gpu_memory_mb),
                      "\n".join(states) or "-", metric, spec.description)
    Console(width=180).print(table)
