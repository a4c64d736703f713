"""What every extract run decides once from its settings, whichever executor runs it: the
plugins (``build_stages``), the identity filter and its references, which stages share a pass,
and the alignments file's meta (with the fingerprint a rerun must match)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from facekit.app.references import reference_embeddings
from facekit.app.tasks.mask_settings import mask_maker, masks_meta, writes_mask_files
from facekit.app.tasks.settings import filter_is_set, identity_is_needed
from facekit.engine.gpu import PassPlan, StageNeed, free_gpu_memory_mb, plan_passes_for_gpu
from facekit.errors import ConfigError, FacekitError
from facekit.faces.quality import QualityFilter
from facekit.faces.stages import FaceStages
from facekit.imaging import geometry
from facekit.ledger.source import LedgerSettings, SourceLedger
from facekit.ledger.verify import Verify
from facekit.media import FrameSource
from facekit.media.sources import frame_names, utf8_text, video_signature
from facekit.models.store import ModelStore, default_cache_dir
from facekit.output.face_files import FaceWriter
from facekit.output.reference_digests import references_by_content
from facekit.plugin.loading import LoadedPlugin, load_plugin
from facekit.plugin.registry import PluginRegistry
from facekit.plugin.spec import PluginKind
from facekit.sweep.cache import ReferenceCache

if TYPE_CHECKING:
    from facekit.faces.identity import IdentityFilter


def gpu_plan(cfg: DictConfig, stages: FaceStages) -> PassPlan:
    """Which stages share a pass, from the GPU memory each step's plugin reports."""
    needs = [StageNeed(step.name, step.plugin.spec.name, step.plugin.gpu_memory_mb) for step in stages.steps()]
    if stages.masks is not None and stages.masks.plugins:  # maskers run with the last pass's finishing stage
        needs.append(StageNeed("mask", "+".join(stages.masks.names), sum(p.gpu_memory_mb for p in stages.masks.plugins)))
    return plan_passes_for_gpu(cfg.runner.mode, needs, free_gpu_memory_mb(), cfg.runner.gpu_margin_mb)


def identity_filter(cfg: DictConfig, stages: FaceStages, refs_cache: ReferenceCache | None,
                     fingerprint: Any) -> IdentityFilter | None:
    if stages.identity is None or not filter_is_set(cfg):  # output.embeddings alone: stored, not judged
        return None
    from facekit.faces.identity import IdentityFilter

    spec = stages.identity.spec
    threshold = spec.default_threshold if cfg.filter.threshold is None else float(cfg.filter.threshold)
    if threshold is None:
        raise ConfigError(f"identity {spec.name} declares no default threshold; set filter.threshold")
    refs = reference_embeddings(list(cfg.filter.refs), stages, refs_cache, fingerprint)
    nrefs = reference_embeddings(list(cfg.filter.nrefs), stages, refs_cache, fingerprint)
    return IdentityFilter(refs, nrefs, threshold, spec.metric or "cosine")


def build_stages(cfg: DictConfig, registry: PluginRegistry, with_identity: bool = False) -> FaceStages:
    """The run's plugins by name and config (not built yet: models load on first use), the
    identity plugin only when a filter or ``output.embeddings`` needs embeddings (or
    ``with_identity``: curation embeds face files)."""
    store = ModelStore(registry.models, cache_dir=cache_root(cfg), offline=bool(cfg.models.offline))
    stages = FaceStages(_load(cfg, registry, store, "detector"), _load(cfg, registry, store, "aligner"),
                        _load(cfg, registry, store, "identity") if with_identity or identity_is_needed(cfg) else None,
                        size=cfg.output.size, padding=cfg.output.padding, centering=str(cfg.output.centering),
                        masks=mask_maker(cfg, registry, store))
    _check_outline(stages)
    return stages


def _check_outline(stages: FaceStages) -> None:
    """A masker that draws the face's outline (``mesh``) needs an aligner that traces one: refused
    before the run, not on its first frame. Only then is the aligner built here to ask it."""
    if stages.masks is None or not stages.masks.needs_outline:
        return
    if not hasattr(stages.aligner.model, "align_outlined"):
        needing = [p.spec.name for p in stages.masks.plugins if "outline" in p.spec.needs]
        raise ConfigError(f"masker {needing[0]!r} draws the face outline an aligner traces, and aligner "
                          f"{stages.aligner.spec.name!r} traces none: extract with +aligner=facemesh (the default), "
                          "or name another masker in output.masks")


def cache_root(cfg: DictConfig) -> Path:
    """The model cache: weights, derived models and the analysis cache."""
    return Path(cfg.models.cache_dir).expanduser() if cfg.models.cache_dir else default_cache_dir()


def _load(cfg: DictConfig, registry: PluginRegistry, store: ModelStore, kind: PluginKind) -> LoadedPlugin:
    node = cfg.get(kind)
    if node is None:
        return load_plugin(registry, store, kind, cfg.default_plugins[kind], None)
    options = OmegaConf.to_container(node, resolve=True)
    # options without a name ('detector={score_threshold:0.9}') are the default plugin's, as detector.KEY=... are
    return load_plugin(registry, store, kind, options.pop("name", None) or cfg.default_plugins[kind], options)


def alignments_meta(cfg: DictConfig, input_value: str, stages: FaceStages, face_filter: IdentityFilter | None,
                    source: FrameSource, quality: QualityFilter | None = None) -> dict[str, Any]:
    """What produced a source's file (``input_value``: the source as named, a collection's
    source's own path). ``fingerprint`` holds what must match for a rerun to resume: a
    sampled video's sampling too (frames of two samplings mixed would be neither), added only
    when set, so an unsampled run resumes the files written before sampling existed."""
    padding = geometry.DEFAULT_PADDING if cfg.output.padding is None else float(cfg.output.padding)
    plugins = {p.spec.kind: {"name": p.spec.name, "config": p.fingerprint()["config"]} for p in stages.plugins()
               if p.spec.kind != "masker"}  # the masks have their own entry (below)
    meta: dict[str, Any] = {
        "input": utf8_text(input_value),
        "plugins": plugins,
        "output": {"size": cfg.output.size, "padding": padding},
    }
    if face_filter is not None:
        meta["filter"] = {"refs": list(cfg.filter.refs), "nrefs": list(cfg.filter.nrefs),
                          "threshold": face_filter.threshold, "metric": face_filter.metric}
    meta["fingerprint"] = {"input": utf8_text(Path(input_value).resolve()), "plugins": plugins,
                           "size": cfg.output.size, "padding": padding,
                           "filter": references_by_content(meta).get("filter")}
    if source.kind == "video":  # a video replaced under the same name is another input
        meta["fingerprint"]["source"] = video_signature(source.path)
    if (sample := source.sampling.fingerprint()) is not None:
        meta["sample"] = meta["fingerprint"]["sample"] = sample
    if quality is not None:  # only when set, like sample: files from before it still resume
        meta["quality"] = meta["fingerprint"]["quality"] = quality.as_dict()
    if cfg.output.embeddings:  # likewise: a rerun without it would leave later frames without them
        meta["embeddings"] = meta["fingerprint"]["embeddings"] = True
    if (centering := str(cfg.output.centering)) != "legacy":  # likewise: files from before centerings still resume
        meta["output"]["centering"] = meta["fingerprint"]["centering"] = centering
    if (masks := masks_meta(stages.masks)) is not None:  # likewise
        meta["masks"] = meta["fingerprint"]["masks"] = masks
    return meta


def face_encoder(cfg: DictConfig, output: Path) -> FaceWriter:
    """A FaceWriter with the run's output settings that only encodes (in the worker processes,
    off the writer's thread): a source's ledger lands the files it makes."""
    books = ledger_settings(cfg)  # the writer's folders are the ledger's
    return FaceWriter(output, debug=books.debug, save_rejected=books.save_rejected, create=False)


def ledger_settings(cfg: DictConfig) -> LedgerSettings:
    """Every source's ledger settings, from the run's: the one place they are read, for either
    executor (Ray's shard jobs take the same)."""
    return LedgerSettings(debug=bool(cfg.output.debug), save_rejected=bool(cfg.filter.save_rejected),
                          save_every=int(cfg.output.save_every), verify=Verify(cfg.resume.verify),
                          mask_files=writes_mask_files(cfg))


def source_ledger(cfg: DictConfig, output: Path, meta: dict[str, Any],
                  frames: FrameSource | None = None) -> SourceLedger:
    """A source's ledger with the run's output and resume settings (not entered yet). A folder
    that ``task=mask`` gave masks since its extraction is this run's when ``frames`` are all
    done there (a rerun with nothing to do); with frames left, their faces would lack the
    masks, so the run is refused as for other settings, the folder left as it was."""
    photos = None if frames is None or frames.kind == "video" else list(zip(frame_names(frames.files), frames.files))
    ledger = SourceLedger(output, meta, ledger_settings(cfg), photos=photos)
    refusal = ledger.alignments.refused_unless_done
    if refusal is not None and (frames is None or not frames.all_done(ledger.done)):
        with ledger:
            raise FacekitError(refusal)
    if (renamed := _named_anew(output, ledger.alignments.earlier_meta, meta, frames)) is not None:
        with ledger:
            raise FacekitError(renamed)
    ledger.say_what_resumes()
    return ledger


def _named_anew(output: Path, earlier: dict[str, Any], meta: dict[str, Any], frames: FrameSource | None) -> str | None:
    """Why a video or photo given under another name than the one its output was made from
    (a link, a copy named anew) cannot resume it, though the settings' fingerprint finds the
    same file: its frames are named by the name given, so every frame would be done again under
    new names beside the old ones."""
    if frames is None or frames.kind not in ("video", "image") or not earlier.get("input"):
        return None
    before, now = Path(str(earlier["input"])).name, Path(str(meta.get("input", ""))).name
    if before == now:
        return None
    return (f"{output} holds the frames of {before!r}, and {now!r} is the same file under another name, whose frames "
            f"would be named anew beside them: rerun with the file named {before!r}, or choose another output folder")
