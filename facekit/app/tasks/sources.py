"""The sources a run reads, for either executor: a collection's, listed as the run goes, or the
input alone as a collection of one.

A single file or a flat folder of images is a collection of one: the same per-source code runs
it, into ``output.dir`` itself (its source's ``output`` is ``.``), and it fails as its source fails
(the source's own error is the run's, exit 2), where a collection marks a failed source and goes
on. Its state is kept in memory only: ``collection.json`` is written for collections alone, so
the output layout of a single input is what it always was.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig

from facekit.app.tasks.collection_settings import collection_settings, default_settings, effective_settings
from facekit.app.tasks.settings import is_collection_input, selection
from facekit.ledger.collection_state import CollectionState, refuse_another_kind, same_file
from facekit.errors import FacekitError
from facekit.media.collection import COLLECTION_FILE, Source, sources_of
from facekit.output.alignments import ALIGNMENTS_FILE, load_alignments_meta


@dataclass
class RunSources:
    """The run's sources and their states (``collection.json`` for a collection)."""

    cfg: DictConfig
    root: Path  # output.dir
    state: CollectionState
    alone: bool  # the input is a single source: a collection of one

    @classmethod
    def of(cls, cfg: DictConfig, root: Path) -> RunSources:
        """A collection's state is loaded here, and a rerun with other settings refused as a
        whole, before anything is written."""
        alone = not is_collection_input(cfg)
        refuse_another_kind(root, collection=not alone)
        if alone:
            return cls(cfg, root, CollectionState(None, str(cfg.input)), alone=True)
        state = CollectionState.load(root / COLLECTION_FILE, str(cfg.input), collection_settings(cfg),
                                     defaults=default_settings, effective=effective_settings)
        state.reopen_done = str(cfg.resume.verify) == "full"
        return cls(cfg, root, state, alone=False)

    def listing(self) -> Iterator[Source]:
        """Each source, in order; a collection's as its walk (or list) finds them."""
        named = Path(str(self.cfg.input)).expanduser()
        if self.alone:
            yield Source(named, "folder" if named.is_dir() else "video", str(self.cfg.input), ".")
            return
        yield from self.state.pinned(sources_of(named, selection(self.cfg), exclude=self.root))

    def unfinished(self, source: Source) -> str | None:
        """Why a source that ran to its end is still not done (its state stays ``partial``, so
        the same command reopens it), or None: an extraction's source is done when it ends."""
        return None

    def named(self, source: Source) -> str:
        """The source as its alignments meta, frames and face files name it: the input as given,
        or a collection's source's path (a single input's meta has always named it as the user
        wrote it). A rerun that names the same file otherwise (relative, absolute, through a
        link) keeps the earlier run's spelling: it resumed that run, and half its frames naming
        the file one way and half the other matched no run."""
        if not self.alone:
            return str(self.state.spelled(source))
        typed = str(self.cfg.input)
        try:
            earlier = str(load_alignments_meta(self.root / ALIGNMENTS_FILE).get("input"))
        except (OSError, ValueError, FacekitError):
            return typed
        return earlier if earlier != typed and same_file(earlier, typed) else typed

    def opened(self, source: Source) -> Path:
        """The path the source is read from: as ``named`` spells it, so its frames name it so."""
        return Path(self.named(source)).expanduser()


