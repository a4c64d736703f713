"""An extraction's output folder read back for ``task=recrop``: its sources, where each is now,
and what a re-crop of them is made of, whichever executor runs it: the stages, the collection's
settings, and the alignments meta each source's re-crop writes.

A single source's folder holds ``alignments.json``; a collection's holds ``collection.json``,
which lists every source with its path and its folder. A source that is not where extraction
read it is looked for under ``recrop.sources`` by its name in the collection (a single
source's: its file or folder name). One that is found nowhere, or whose extraction left no
alignments file, is named and left out; the others go on.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig

from facekit.app.tasks.collection_settings import collection_settings, effective_settings
from facekit.app.tasks.sources import RunSources
from facekit.errors import ConfigError, FacekitError
from facekit.faces.restored import RestoredStages, StoredSource
from facekit.imaging.geometry import DEFAULT_PADDING
from facekit.ledger.collection_state import CollectionState
from facekit.media.collection import COLLECTION_FILE, Source, listed_sources
from facekit.media.sampling import Sampling
from facekit.media.sources import from_utf8_text, utf8_text, video_signature
from facekit.ledger.lock import check_finished
from facekit.ledger.states import SourceState
from facekit.output.alignments import ALIGNMENTS_FILE, load_alignments_meta


@dataclass(frozen=True)
class EarlierSource:
    """One source of the extraction: its name (``rel``: its place in the collection, or the
    input as named), where it is read now, its folder below the output, its alignments file."""

    rel: str
    path: Path
    kind: str
    output: str
    alignments: Path
    named: str  # the source as the alignments meta names it
    missing: str | None = None  # why it cannot be re-cropped
    extraction: str = SourceState.DONE  # the extraction's state of it (collection.json); a single source's is not kept
    moved: bool = False  # read under recrop.sources: a copy there has its own change times

    def as_source(self) -> Source:
        return Source(self.path, self.kind, self.rel, self.output, self.missing)


@dataclass(frozen=True)
class Earlier:
    """The extraction's folder and its sources; ``collection`` when it holds ``collection.json``."""

    folder: Path
    sources: list[EarlierSource]
    collection: bool


@dataclass
class EarlierRuns(RunSources):
    """An earlier output's sources as a run's sources: a re-crop plans them as an extraction
    plans its input's, a single source's output as a collection of one. A collection's state is
    kept under the re-crop's own settings (``recrop_settings``)."""

    earlier: Earlier

    @classmethod
    def of_earlier(cls, cfg: DictConfig, root: Path, earlier: Earlier) -> EarlierRuns:
        if not earlier.collection:
            return cls(cfg, root, CollectionState(None, str(cfg.input)), alone=True, earlier=earlier)
        return cls(cfg, root, CollectionState.load(root / COLLECTION_FILE, str(cfg.input), recrop_settings(cfg),
                                                 effective=effective_settings),
                   alone=False, earlier=earlier)

    def listing(self) -> Iterator[Source]:
        return (source.as_source() for source in self.earlier.sources)

    def named(self, source: Source) -> str:
        return self.source(source.rel).named

    def opened(self, source: Source) -> Path:
        return source.path  # where the source was found (moved, perhaps), named as the extraction named it

    def unfinished(self, source: Source) -> str | None:
        """A source whose extraction is not done (stopped, or some shards failed) is re-cropped
        as far as it goes and stays partial: the re-crop run again once the extraction is
        finished reopens it and cuts the frames added since."""
        state = self.source(source.rel).extraction
        if state == SourceState.DONE:
            return None
        return (f"its extraction is {state}, so this re-crop holds only the frames it had; run the re-crop again "
                "once the extraction is finished")

    def source(self, rel: str) -> EarlierSource:
        """The earlier source named ``rel`` in the collection (or, alone, its input)."""
        return next(source for source in self.earlier.sources if source.rel == rel)


def read_earlier(folder: Path, moved_to: Path | None) -> Earlier:
    """The extraction in ``folder``: a collection's sources, or its single source."""
    if (folder / COLLECTION_FILE).is_file():
        try:
            entries = listed_sources(folder)
        except (OSError, ValueError) as exc:
            raise FacekitError(f"{folder / COLLECTION_FILE} is damaged ({exc}); it lists the sources to re-crop") from None
        return Earlier(folder, [_collection_source(folder, entry, moved_to) for entry in entries], True)
    if not (folder / ALIGNMENTS_FILE).is_file():
        check_finished(folder)  # an extraction stopped before its first fold left its journal alone
        raise ConfigError(f"{folder} holds no {ALIGNMENTS_FILE} or {COLLECTION_FILE}: give task=recrop an extraction's "
                          "output folder")
    alignments = folder / ALIGNMENTS_FILE
    named = str(load_alignments_meta(alignments).get("input", ""))
    path, missing = _located(Path(named).expanduser(), alignments, Path(named).name, moved_to)
    return Earlier(folder, [EarlierSource(named, path, "folder" if path.is_dir() else "file", ".", alignments,
                                          named if path == Path(named).expanduser() else str(path), missing,
                                          moved=_under(path, moved_to, Path(named).name))], False)


def _collection_source(folder: Path, entry: dict[str, Any], moved_to: Path | None) -> EarlierSource:
    was = Path(entry["path"])
    alignments = folder / entry.get("alignments", f"{entry['output']}/{ALIGNMENTS_FILE}")
    if not alignments.is_file():
        missing = f"extraction left no alignments for it ({entry.get('state')}: {entry.get('reason', 'no reason given')})"
        return EarlierSource(entry["source"], was, entry["kind"], entry["output"], alignments, str(was), missing)
    path, missing = _located(was, alignments, entry["source"], moved_to)
    return EarlierSource(entry["source"], path, entry["kind"], entry["output"], alignments,
                         entry["path"] if path == was else str(path), missing, str(entry.get("state", SourceState.DONE)),
                         _under(path, moved_to, entry["source"]))


def _under(path: Path, moved_to: Path | None, rel: str) -> bool:
    """Whether ``_located`` found the source under ``recrop.sources``."""
    return moved_to is not None and path in (moved_to / rel, Path(from_utf8_text(str(moved_to / rel))))


def _located(was: Path, alignments: Path, rel: str, moved_to: Path | None) -> tuple[Path, str | None]:
    """Where a source is now: as named, else ``moved_to / rel``, else where the alignments
    fingerprint resolved it when it was extracted; else why not. A relative path as named is
    taken from this folder only when it is that same file (or the fingerprint names none): a
    re-crop run from another folder must not take ``.`` or ``photos`` there for the extraction's."""
    fingerprint = load_alignments_meta(alignments).get("fingerprint", {})
    resolved = fingerprint.get("input")
    here = was if was.is_absolute() or resolved is None or _same_file(was, Path(str(resolved))) else None
    moved = None if moved_to is None else moved_to / rel
    # recrop.sources before the resolved path: a link's frames are named after the link
    for candidate in (here, moved, None if resolved is None else Path(str(resolved))):
        # a name that is not UTF-8 is stored as utf8_text wrote it (v%E9.mp4): its bytes back
        for path in () if candidate is None else dict.fromkeys((candidate, Path(from_utf8_text(str(candidate))))):
            if path.exists():
                return path, _replaced(path, fingerprint.get("source"))
    if moved is not None:
        return was, f"not found at {was} nor at {moved} (recrop.sources)"
    return was, f"not found at {was}; if it moved, recrop.sources=DIR names the folder it is in now"


def _replaced(path: Path, signature: object) -> str | None:
    """Why a video found under its name is not the one extracted (its signature, as the
    extraction's rerun check reads it), or None: its stored points would cut another video's
    frames, and one of the same size gave no error."""
    if not isinstance(signature, str) or not path.is_file() or video_signature(path) == signature:
        return None
    return f"{path} is not the video extracted (another file under its name); extract it again"


def _same_file(named: Path, resolved: Path) -> bool:
    try:
        return named.resolve() == resolved
    except OSError:
        return False


def sampling_of(meta: dict[str, Any]) -> Sampling:
    """The sampling the extraction read the source with, so the same frames come back."""
    sample = meta.get("sample") or {}
    return Sampling(**{key: sample[key] for key in ("every_n", "fps", "start", "end") if key in sample})


def recrop_meta(earlier: dict[str, Any], source: EarlierSource, size: int, padding: float | None,
                centering: str) -> dict[str, Any]:
    """The extraction's meta with this run's crop: size, padding and centering replaced, and
    ``recrop`` naming the alignments file the faces came from (a rerun must name the same)."""
    meta = copy.deepcopy(earlier)
    padding = DEFAULT_PADDING if padding is None else float(padding)
    output: dict[str, Any] = {"size": size, "padding": padding}
    fingerprint = meta.setdefault("fingerprint", {})
    fingerprint.pop("centering", None)
    fingerprint.update(input=utf8_text(Path(source.named).resolve()), size=size, padding=padding)
    if centering != "legacy":  # as an extraction records it: only when set
        output["centering"] = fingerprint["centering"] = centering
    meta["input"], meta["output"] = utf8_text(source.named), output
    meta["recrop"] = fingerprint["recrop"] = {"from": utf8_text(source.alignments.resolve())}
    return meta


def recrop_stages(cfg: DictConfig, sources: list[EarlierSource]) -> RestoredStages:
    """The stages that restore ``sources`` and cut them at the run's size, padding and centering."""
    return RestoredStages([StoredSource(utf8_text(s.path), str(s.alignments), not s.moved) for s in sources],
                          size=cfg.output.size,
                          padding=cfg.output.padding, centering=str(cfg.output.centering))


def recrop_settings(cfg: DictConfig) -> dict:
    """What a rerun must match to keep the sources an earlier re-crop finished."""
    return {**collection_settings(cfg), "recrop": str(Path(str(cfg.input)).expanduser().resolve())}
