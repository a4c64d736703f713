"""``task=recrop runner=ray``: the re-crop's sources cut into shards on a Ray cluster, through
the extraction's driver (``run_on_ray``), with ``RestoredStages`` for the models. Each worker
reads the earlier alignments files itself, so the extraction's output folder, like the new one,
must be at the same path on every node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig

from facekit.app.tasks.distributed import RaySources, run_on_ray
from facekit.app.tasks.earlier import Earlier, EarlierSource, recrop_meta, recrop_settings, recrop_stages, sampling_of
from facekit.ledger.collection_state import CollectionState
from facekit.media.collection import COLLECTION_FILE, Source
from facekit.media.sources import FrameSource
from facekit.output.alignments import load_alignments


def recrop_on_ray(cfg: DictConfig, earlier: Earlier) -> None:
    found = [source for source in earlier.sources if not source.missing]
    first = load_alignments(found[0].alignments)["meta"] if found else {}

    def sources_for(root: Path) -> RaySources:
        return _RecropSources(cfg, root, recrop_stages(cfg, found), None, None, sampling_of(first), earlier=earlier)

    run_on_ray(cfg, None, sources_for)


@dataclass
class _RecropSources(RaySources):
    """The earlier output's sources, each with the meta of its re-crop."""

    earlier: Earlier | None = None
    by_key: dict[str, EarlierSource] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.earlier is not None
        self.by_key = {source.rel: source for source in self.earlier.sources}
        if self.earlier.collection:
            self.state = CollectionState.load(self.root / COLLECTION_FILE, str(self.cfg.input), recrop_settings(self.cfg))
            self.state.pause_saving()  # written once the run is accepted

    def plan_single(self) -> None:
        assert self.earlier is not None
        source = self.earlier.sources[0]
        self.plan_one(source.rel, source.path, self.root, source.named)

    def listed(self) -> Iterable[Source]:
        assert self.earlier is not None
        return [source.as_source() for source in self.earlier.sources]

    def meta(self, key: str, named: str, source: FrameSource) -> dict[str, Any]:
        earlier = self.by_key[key]
        return recrop_meta(load_alignments(earlier.alignments)["meta"], earlier, self.cfg.output.size,
                           self.cfg.output.padding, str(self.cfg.output.centering))
