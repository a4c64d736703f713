"""``task=curate``: an extraction output folder in, a curated result folder out (see
``facekit.curate``); the extraction output is only read."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig

from facekit.app.tasks.planning import build_stages
from facekit.app.tasks.settings import face_and_frame_choices, in_sweep, job_output_dir
from facekit.curate import CurateSettings, check_target, decide, read_output, write_result
from facekit.curate.ordering import SORTS
from facekit.errors import ConfigError
from facekit.media.collection import LIST_PREFIX, is_list
from facekit.plugin.registry import PluginRegistry
from facekit.sweep.curation_job import CURATED_FOLDER, CURATION_FILE

log = logging.getLogger("facekit")


def run_curate(cfg: DictConfig, registry: PluginRegistry) -> None:
    settings = curate_settings(cfg)
    unused = face_and_frame_choices(cfg)
    if unused:
        raise ConfigError(f"task=curate picks among the faces an extraction kept (curate.cluster, dedupe, best, sort): "
                          f"{', '.join(unused)} would not apply; leave them out (extract again to filter or sample anew)")
    if not cfg.input:
        raise ConfigError("input is required: facekit task=curate input=<extraction output folder> output=<result folder>")
    source = Path(str(cfg.input)).expanduser()
    # a sweep's job: its result in a folder of its own, inside the job's (which holds Hydra's files)
    result = job_output_dir(cfg) / CURATED_FOLDER if in_sweep() else Path(str(cfg.output.dir)).expanduser()
    check_target(result, source)
    faces = read_output(source)
    log.info("%s: %d face(s)", source, len(faces))
    curation = decide(faces, settings, stages=lambda: build_stages(cfg, registry, with_identity=True))
    document = write_result(curation, source, result, command_input=_extraction_input(source))
    counts = document["counts"]
    log.info("curated: %d of %d face(s) kept%s; %s in %s", counts["kept"], counts["faces"],
             f", {counts['clusters']} cluster(s)" if curation.labels is not None else "",
             ", ".join(f"{kind} {n}" for kind, n in counts["dropped"].items()) or "none dropped",
             result / CURATION_FILE)
    for cluster in document.get("clusters", []) if settings.cluster else []:  # dedupe's groups are no one's
        if "refs_command" in cluster:
            print(f"cluster {cluster['cluster']:3d} ({cluster['faces']} faces): {cluster['refs_command']}")


def curate_settings(cfg: DictConfig) -> CurateSettings:
    """The ``curate`` node with the checks a type cannot make, one line each."""
    node = cfg.curate
    if node.dedupe is not None and not 0 < node.dedupe < 2:
        raise ConfigError(f"curate.dedupe is a cosine distance above 0 and below 2 (e.g. 0.1), got {node.dedupe!r}")
    if not node.dedupe_pose >= 0:  # nan too: it turned the pose limit off
        raise ConfigError(f"curate.dedupe_pose is a number of degrees, 0 or more, got {node.dedupe_pose!r}")
    if node.best is not None and node.best < 1:
        raise ConfigError(f"curate.best is a number of faces per identity, 1 or more, got {node.best!r}")
    if node.min_cluster_size is not None and node.min_cluster_size < 2:
        raise ConfigError(f"curate.min_cluster_size must be 2 or more, got {node.min_cluster_size!r}")
    if node.join is not None and not 0 <= node.join < 2:
        raise ConfigError(f"curate.join is a cosine distance from 0 (never join) to 2, got {node.join!r}")
    sort = None if node.sort is None else str(node.sort)
    if sort is not None and sort not in SORTS:
        raise ConfigError(f"curate.sort={sort!r}; choose one of: {', '.join(SORTS)}")
    return CurateSettings(cluster=bool(node.cluster), dedupe=None if node.dedupe is None else float(node.dedupe),
                          dedupe_pose=float(node.dedupe_pose), best=None if node.best is None else int(node.best),
                          sort=sort, copy=bool(node["copy"]),  # node.copy is DictConfig.copy
                          min_cluster_size=None if node.min_cluster_size is None else int(node.min_cluster_size),
                          join=None if node.join is None else float(node.join))


def _extraction_input(source: Path) -> str | None:
    """What the extraction read (its collection's input, else its one alignments file's), for
    the ready ``filter.refs`` command lines: as resolved, so that the line runs from any folder
    (the input as typed, ``input=c2``, worked only from where the extraction ran)."""
    for document in (source / "collection.json", source / "alignments.json"):
        try:
            data = json.loads(document.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        typed = str(data.get("input") or (data.get("meta") or {}).get("input") or "")
        resolved = data.get("root") or ((data.get("meta") or {}).get("fingerprint") or {}).get("input")
        if resolved:
            return (LIST_PREFIX if is_list(typed) else "") + str(resolved)
        if typed:
            return typed
    return None
