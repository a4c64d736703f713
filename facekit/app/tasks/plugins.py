"""``task=plugins``: every registered plugin, its models and whether their weights are here, as
wide as the terminal (80 columns at least): each plugin's first line holds its kind, name, GPU
memory, metric and first model; further models and its description wrap beneath."""
from __future__ import annotations

import textwrap

from omegaconf import DictConfig

from facekit.app.help import terminal_width
from facekit.models.store import ModelStore
from facekit.plugin.registry import PluginRegistry
from facekit.plugin.spec import PluginSpec

#: The fixed columns and their widths; "models: weights" takes what is left of the line.
COLUMNS = (("kind", 8), ("name", 11), ("GPU MB", 6), ("metric", 16))
INDENT = " " * (COLUMNS[0][1] + 1)  # descriptions start under the name


def run_plugins(cfg: DictConfig, registry: PluginRegistry) -> None:
    store = ModelStore(registry.models, cache_dir=cfg.models.cache_dir)  # state() never downloads
    width = terminal_width()
    print(textwrap.fill("facekit plugins; weights: present, downloadable (fetched on first use) or missing "
                        "(a run says where to put them)", width))
    print(_row(["kind", "name", "GPU MB", "metric"], ["models: weights"], width))
    for spec in registry.all():
        print(_row([spec.kind, spec.name, str(spec.gpu_memory_mb), _metric(spec)], _models(spec, store, registry),
                   width))
        if spec.description:
            print(textwrap.fill(spec.description, width, initial_indent=INDENT, subsequent_indent=INDENT,
                                break_on_hyphens=False))


def _row(cells: list[str], models: list[str], width: int) -> str:
    """The fixed cells padded to their columns (a longer one pushes the rest right), then the
    models, each on a line of its own, folded at ``width``."""
    line = "".join(f"{cell:<{size}} " for cell, (_, size) in zip(cells, COLUMNS))
    start = sum(size + 1 for _, size in COLUMNS)
    room = max(width - len(line), 20)
    folded = [part for model in models for part in _fold(model, room)]
    lines = [line + (folded[0] if folded else "-")]
    lines += [" " * start + part for part in folded[1:]]
    return "\n".join(text.rstrip() for text in lines)


def _fold(model: str, room: int) -> list[str]:
    """``id: state`` on one line when it fits, else the state on a line of its own."""
    if len(model) <= room:
        return [model]
    name, state = model.rsplit(": ", 1)
    return [*textwrap.wrap(name, room, break_on_hyphens=False), f"  {state}"]


def _models(spec: PluginSpec, store: ModelStore, registry: PluginRegistry) -> list[str]:
    return [f"{m}: {store.state(m) if m in registry.models else 'unknown id'}" for m in spec.model_ids]


def _metric(spec: PluginSpec) -> str:
    return f"{spec.metric} <= {spec.default_threshold}" if spec.metric else "-"
