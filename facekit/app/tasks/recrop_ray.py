"""``task=recrop runner=ray``: the re-crop's sources cut into shards on a Ray cluster, through
the extraction's driver (``run_on_ray``), with ``RestoredStages`` for the models. Its sources
are the earlier output's (``EarlierRuns``), planned as an extraction's are. Each worker reads
the earlier alignments files itself, so the extraction's output folder, like the new one, must be
at the same path on every node.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from omegaconf import DictConfig

from facekit.app.tasks.distributed import RaySources, run_on_ray
from facekit.app.tasks.earlier import Earlier, EarlierRuns, recrop_meta, recrop_stages, sampling_of
from facekit.app.tasks.sources import RunSources
from facekit.media.shards import FILES, VIDEO, Shard
from facekit.media.sources import FrameSource
from facekit.output.alignments import load_alignments, load_alignments_meta


def recrop_on_ray(cfg: DictConfig, earlier: Earlier) -> None:
    found = [source for source in earlier.sources if not source.missing]
    first = load_alignments_meta(found[0].alignments) if found else {}

    def sources_for(root: Path) -> RaySources:
        return _RecropSources(cfg, root, recrop_stages(cfg, found), None, None, sampling_of(first), earlier=earlier)

    run_on_ray(cfg, None, sources_for)


@dataclass
class _RecropSources(RaySources):
    """The earlier output's sources, each with the meta of its re-crop."""

    earlier: Earlier | None = None

    def run_sources(self) -> RunSources:
        assert self.earlier is not None
        return EarlierRuns.of_earlier(self.cfg, self.root, self.earlier)

    def frames_of(self, key: str) -> Callable[[Shard], Sequence[str]]:
        """The extraction's frames in each shard's stretch of the source, as they are now: a
        shard re-cropped before its extraction went on holds fewer, and runs again."""
        assert isinstance(self.runs, EarlierRuns)
        indexes = {name: int(entry.get("index", -1))
                   for name, entry in load_alignments(self.runs.source(key).alignments)["frames"].items()}

        def frames(shard: Shard) -> list[str]:
            if shard.kind == VIDEO:
                return [name for name, index in indexes.items() if shard.first <= index <= shard.last]
            if shard.kind == FILES:
                return [name for name in shard.names if name in indexes]
            return list(indexes)
        return frames

    def meta(self, key: str, named: str, source: FrameSource) -> dict[str, Any]:
        assert isinstance(self.runs, EarlierRuns)
        earlier = self.runs.source(key)
        return recrop_meta(load_alignments_meta(earlier.alignments), earlier, self.cfg.output.size,
                           self.cfg.output.padding, str(self.cfg.output.centering))
