"""Checks and derived values of an extract run's settings, shared by the CLI's pre-check and the task."""
from __future__ import annotations

import tempfile
from pathlib import Path

from omegaconf import DictConfig

from facekit.app.tasks.mask_settings import check_mask_settings
from facekit.errors import ConfigError, FacekitError
from facekit.faces.identity import as_threshold
from facekit.faces.quality import QualityFilter
from facekit.faces.reference_photos import reference_path
from facekit.imaging.geometry import check_crop_size
from facekit.media.sampling import Sampling, checked_sampling
from facekit.media.collection import (LIST_PREFIX, OUTPUT_MARKERS, Selection, check_leaves_a_source,
                                      first_media_file, holds_output, is_collection, is_list, names_nothing, read_list)
from facekit.media.sources import existing_input


def check_settings(cfg: DictConfig) -> None:
    """Catch the common mistakes with one line each, before any model loads; the output folder
    is made last, so a run refused here leaves nothing behind. Types are the schema's
    (facekit.app.schema): Hydra refuses ``output.size=abc`` before this runs; what is checked
    here are the values a type cannot express, each in this one place."""
    if not cfg.input:
        raise ConfigError("input is required: facekit input=<image, folder or video> output=<folder>")
    check_output_named(cfg)
    check_crop(cfg)
    if cfg.output.save_every <= 0:
        raise ConfigError(f"output.save_every must be a positive whole number, got {cfg.output.save_every!r}")
    if cfg.runner.queue_size <= 0:
        raise ConfigError(f"runner.queue_size must be a positive whole number, got {cfg.runner.queue_size!r}")
    if cfg.runner.queue_mb <= 0:
        raise ConfigError(f"runner.queue_mb must be a positive whole number of MB, got {cfg.runner.queue_mb!r}")
    workers = cfg.runner.workers
    if workers != "auto" and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 0):
        raise ConfigError(f"runner.workers={workers!r}; use auto, or a whole number of processes (0: threads)")
    if cfg.cache.enabled != "auto" and not isinstance(cfg.cache.enabled, bool):
        raise ConfigError(f"cache.enabled={cfg.cache.enabled!r}; choose one of: auto, true, false")
    check_mask_settings(cfg)
    if cfg.filter.threshold is not None:  # here too, so a sweep's every value is checked before its first job
        as_threshold(cfg.filter.threshold)
    kept: dict[Path, str] = {}
    for group in ("refs", "nrefs"):  # and each reference is there (its face: once models load)
        for name in cfg.filter[group]:
            try:
                path = reference_path(str(name)).resolve()
            except FacekitError as exc:
                raise ConfigError(str(exc)) from None
            if group == "refs":
                kept[path] = str(name)
            elif path in kept:
                raise ConfigError(f"reference photo {str(name)!r} is in filter.refs ({kept[path]!r}) and filter.nrefs "
                                  "both: its person would be kept and rejected at once; name it in one of them")
    QualityFilter.from_config(cfg.get("quality"))  # the run builds it again, once its stages are chosen
    sampling(cfg)
    chosen = selection(cfg)
    named = str(cfg.input)
    if is_list(named) and not named[len(LIST_PREFIX):].strip():
        raise ConfigError(f"input {named!r} names no list file: input={LIST_PREFIX}<list.txt>, one path a line")
    source = existing_input(named[len(LIST_PREFIX):] if is_list(named) else named)
    if is_list(named) and source.is_dir():
        raise ConfigError(f"input {named!r}: {source} is a folder; a list is a text file (one path a line), and a "
                          f"folder is given without '{LIST_PREFIX}': input={source}")
    if not is_list(named) and source.is_dir() and holds_output(source):  # as a folder below it would be passed over
        raise ConfigError(f"input {named} holds facekit's output ({' or '.join(OUTPUT_MARKERS)}), whose face files "
                          "are not sources: give the folder of the photos or videos themselves")
    if is_list(named) and names_nothing(source):
        raise ConfigError(f"input {named!r}: the list names no source; write one path a line (a video, or a "
                          "folder of images), relative to the list's folder")
    check_choice_finds_a_source(cfg, chosen, source)
    check_output_folder(job_output_dir(cfg), source)
    if is_list(named) and source.is_file():  # a pipe's lines are the run's to read, once
        check_list_output(job_output_dir(cfg), source, chosen)


def check_list_output(output: Path, list_file: Path, chosen: Selection) -> None:
    """A list's folders are checked as a tree's input folder is: the output may not be one of
    them, nor lie in one beside its photos, nor put a source's faces into its own photos' folder
    (the next run would read them as photos, and a tree run would pass the folder over)."""
    for listed in read_list(list_file, chosen):
        if listed.kind == "folder" and listed.failed is None:
            check_output_folder(output, listed.path, called=f"the listed folder {listed.rel!r}")
            if (output / listed.output).resolve() == listed.path.resolve():
                raise ConfigError(f"output {str(output)!r} would put source {listed.rel}'s faces into its own folder "
                                  "of photos; choose another output")


def check_choice_finds_a_source(cfg: DictConfig, chosen: Selection, source: Path) -> None:
    """``collection.include`` / ``exclude`` that leave no source of a tree (or of a list file)
    is one line before anything is written (``check_leaves_a_source``, the library's check too)."""
    if not (chosen.include or chosen.exclude) or not is_collection_input(cfg) or not (source.is_dir() or source.is_file()):
        return
    check_leaves_a_source(str(cfg.input), chosen, exclude=job_output_dir(cfg))


def check_output_named(cfg: DictConfig) -> None:
    """``output=`` left empty is a slip, not a wish to write faces, locks and Hydra's folder into
    the current folder: that takes ``output=.``, said so."""
    if not str(cfg.output.dir).strip():
        raise ConfigError("output is empty: give output=<folder> (output=. writes into the current folder)")


def check_crop(cfg: DictConfig) -> None:
    """The crop's size and padding (extraction and re-crop)."""
    check_crop_size(cfg.output.size, "output.size", ConfigError)
    if cfg.output.padding is not None and not 0 <= cfg.output.padding < 0.5:
        raise ConfigError(f"output.padding is a fraction of the crop per side, in [0, 0.5); got {cfg.output.padding!r}")


def sampling(cfg: DictConfig) -> Sampling:
    """The ``sample`` node, checked, one line for each mistake (``checked_sampling``)."""
    node = cfg.sample
    try:
        return checked_sampling(node.every_n, node.fps, node.start, node.end)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def selection(cfg: DictConfig) -> Selection:
    """The ``collection`` node: which sources of a tree or list are read."""
    node = cfg.collection
    return Selection(recursive=bool(node.recursive), include=tuple(str(g) for g in node.include),
                     exclude=tuple(str(g) for g in node.exclude))


def is_collection_input(cfg: DictConfig) -> bool:
    """A list file (``input=@list.txt``), or a folder holding videos or media in subfolders:
    a single file or a flat folder of images stays a single source, as before collections."""
    named = str(cfg.input)
    if is_list(named):
        return True
    return is_collection(Path(named).expanduser(), selection(cfg), exclude=job_output_dir(cfg))


def check_output_folder(output: Path, source: Path, called: str = "the input folder") -> None:
    """The output folder must be writable and must not be the input folder itself (its face
    files would be read back as input on the next run); a subfolder of the input is fine."""
    if source.is_dir() and output.resolve() == source.resolve():
        raise ConfigError(f"output {str(output)!r} is {called}; choose another (a subfolder is fine)")
    if (source.is_dir() and source.resolve() in output.resolve().parents and output.is_dir()
            and not holds_output(output) and (held := first_media_file(output)) is not None):
        raise ConfigError(f"output {str(output)!r} holds photos or videos of the input's ({held}), which a run into it "
                          "would leave unread; choose a new folder (a subfolder is fine)")
    if output.exists() and not output.is_dir():
        raise ConfigError(f"output {str(output)!r} is a file; give a folder for the faces")
    existing = next(folder for folder in [output, *output.absolute().parents] if folder.exists())
    try:  # the folder itself is made only once the run is accepted: a refused run leaves none
        if not existing.is_dir():
            raise NotADirectoryError(20, "a file stands in its path", str(existing))
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise FacekitError(f"output folder {str(output)!r} cannot be written: {exc.strerror or exc}") from None


def filter_is_set(cfg: DictConfig) -> bool:
    return bool(cfg.filter.refs) or bool(cfg.filter.nrefs)


def identity_is_needed(cfg: DictConfig) -> bool:
    """The identity plugin runs for the filter, which compares embeddings, and for
    ``output.embeddings``, which stores them (curation clusters by them) without a filter."""
    return filter_is_set(cfg) or bool(cfg.output.embeddings)


def job_output_dir(cfg: DictConfig) -> Path:
    """A single run writes to ``output.dir``; each job of a sweep to its own Hydra folder."""
    from hydra.core.hydra_config import HydraConfig

    if in_sweep():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.output.dir).expanduser()


def cache_is_on(cfg: DictConfig) -> bool:
    """``auto`` caches in sweeps only: a single run gains nothing from it but disk use."""
    if cfg.cache.enabled == "auto":  # check_settings has refused anything but auto, true, false
        return in_sweep()
    return bool(cfg.cache.enabled)


def in_sweep() -> bool:
    """Whether this is a job of a sweep (``-m``), which Hydra gives a folder of its own."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def face_and_frame_choices(cfg: DictConfig) -> list[str]:
    """The keys set that choose faces or frames (the filter's, quality's and sampling's): an
    extraction's, which the tasks that take its output (re-crop, curation) would not apply."""
    chosen = [f"filter.{key}" for key in ("refs", "nrefs") if list(cfg.filter[key])]
    chosen += [f"filter.{key}" for key in ("threshold",) if cfg.filter[key] is not None]
    chosen += [f"quality.{key}" for key, value in cfg.quality.items() if value is not None]
    sample = cfg.sample
    chosen += [f"sample.{key}" for key in ("fps", "start", "end") if sample[key] is not None]
    return chosen + (["sample.every_n"] if sample.every_n != 1 else [])
