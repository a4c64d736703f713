"""After a sweep, a report in the sweep folder to choose ``filter.threshold`` or a ``quality.*``
limit by: kept and rejected faces per job as a table (printed and ``sweep_report.csv``; with the
rejects by reason once a quality limit is set, so a sweep over two filters shows which one
rejected), those counts against the swept setting (``sweep_report.png``, one pair of lines per
value of whatever else varies) and the faces nearest each job's limit, by the value that limit
bounds (``sweep_contact_sheet.png``). ``facekit.sweep.swept`` says which setting that is. A
curation sweep's table gives each job's counts from its ``curation.json`` instead: the faces it
considered, those it kept, and those it dropped, in all and by reason.

Hydra calls ``on_multirun_end`` in the launching process once every job has finished, whichever
launcher ran them, so the report reads what the jobs left in their folders (``alignments.json``
and ``.hydra/``) rather than anything held in memory.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from facekit.console import unquoted
from facekit.faces.quality import MEASURES
from facekit.sweep import contact_sheet
from facekit.media.collection import listed_sources
from facekit.output.alignments import ALIGNMENTS_FILE, load_alignments
from facekit.sweep.contact_sheet import SheetFace, SheetRow
from facekit.sweep.curation_job import CurationCounts, curation_counts
from facekit.sweep.swept import SETTINGS, THRESHOLD_KEY, SweptSetting, x_axis
from facekit.fileio import atomic_write_bytes
from facekit.ledger.rejects import RejectCounts
from facekit.ledger.states import SourceState

log = logging.getLogger(__name__)

REPORT_CSV = "sweep_report.csv"
REPORT_PLOT = "sweep_report.png"
CONTACT_SHEET = "sweep_contact_sheet.png"
REASON_KINDS = ("identity", *MEASURES)  # the order of the rejects-by-reason columns


class SweepReport(Callback):
    """Registered in conf/config.yaml under ``hydra.callbacks``."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            write_report(Path(config.hydra.sweep.dir), Path(config.hydra.runtime.cwd))
        except Exception as exc:  # the report must never fail the sweep it describes
            log.warning("sweep report not written: %s: %s", type(exc).__name__, exc)


@dataclass
class JobResult:
    """What the report needs from one job folder; counts are None when it has no alignments."""

    num: int
    overrides: dict[str, str]
    threshold: float | None = None  # the identity filter's: its own column, read from the alignments meta
    kept: int | None = None
    rejected: int | None = None
    reasons: Counter[str] = field(default_factory=Counter)  # rejects by ``reason_kind``
    quality: bool = False  # a quality limit was set: the table gives the rejects by reason
    limited: set[str] = field(default_factory=set)  # the ``reason_kind`` of each quality limit set
    limit: float | None = None  # the value of the swept setting (the x axis) the job applied
    sheet_key: str = ""  # jobs with equal keys would show equal contact-sheet rows
    nearest: list[SheetFace] = field(default_factory=list)
    curation: CurationCounts | None = None  # a curation job's counts (it has no alignments)


def write_report(sweep_dir: Path, cwd: Path) -> None:
    """Every part of the report for the jobs found under ``sweep_dir``."""
    # job folders sit right under the sweep folder (hydra.sweep.subdir); "**" would walk every face file
    folders = [path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")]
    if not folders:
        log.warning("sweep report: no job folders under %s", sweep_dir)
        return
    axis = x_axis([_overrides(folder) for folder in folders])
    jobs = sorted((read_job(folder, axis) for folder in folders), key=lambda job: job.num)
    varying = varying_overrides(jobs)
    if axis.key != THRESHOLD_KEY and axis.key not in varying and any(axis.key in job.overrides for job in jobs):
        varying.insert(0, axis.key)  # a sweep of one value: the report still says which value it tried
    header, rows = table(jobs, varying)
    atomic_write_bytes(sweep_dir / REPORT_CSV, _csv(header, rows))
    _print_table(header, rows, sweep_dir)
    placed = [job for job in jobs if job.limit is not None]
    if placed:
        atomic_write_bytes(sweep_dir / REPORT_PLOT, plot(placed, [key for key in varying if key != axis.key], axis))
        others = [key for key in varying if key in SETTINGS and key != axis.key]
        atomic_write_bytes(sweep_dir / CONTACT_SHEET, _png(contact_sheet.render(sheet_rows(placed, axis, others), cwd)))
    log.info("sweep report in %s", sweep_dir)


def _overrides(folder: Path) -> dict[str, str]:
    return dict(_split_override(o) for o in OmegaConf.load(folder / ".hydra" / "overrides.yaml"))


def read_job(folder: Path, axis: SweptSetting = SETTINGS[THRESHOLD_KEY]) -> JobResult:
    """A job's counts, and its faces nearest its limit of the ``axis`` setting."""
    job = JobResult(num=int(OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra.job.num),
                    overrides=_overrides(folder))
    documents = [load_alignments(path) for path in _alignments_files(folder)]
    if not documents:
        job.curation = curation_counts(folder)
        return job
    # a collection's sources each have their frames; frame names repeat across sources, so keyed apart
    frames = {f"{i}/{name}": frame for i, document in enumerate(documents) for name, frame in document["frames"].items()}
    faces = [face for frame in frames.values() for face in frame["faces"]]
    job.kept = sum(bool(face.get("keep", True)) for face in faces)
    job.rejected = len(faces) - job.kept
    job.reasons = RejectCounts()  # counted as the run's own summary counts them
    for frame in frames.values():
        job.reasons.count_entry(frame)
    meta = documents[0].get("meta", {})
    job.quality = bool(meta.get("quality"))
    job.limited = {key if key == "max_faces" else key.partition("_")[2] for key in meta.get("quality") or {}}
    job.threshold = SETTINGS[THRESHOLD_KEY].limit(meta)
    job.limit = axis.limit(meta)
    if job.limit is not None:
        job.sheet_key = json.dumps([[d.get("meta", {}).get("input") for d in documents], meta.get("plugins"),
                                    meta.get("filter"), meta.get("quality")], sort_keys=True)
        job.nearest = contact_sheet.nearest_faces(frames, job.limit, values=axis.values)
    return job


def _alignments_files(folder: Path) -> list[Path]:
    """A job's alignments file, or for a collection (``collection.json``) each done source's."""
    if (folder / ALIGNMENTS_FILE).is_file():
        return [folder / ALIGNMENTS_FILE]
    try:
        sources = listed_sources(folder)
    except (OSError, ValueError):
        return []
    return [folder / entry["alignments"] for entry in sources
            if entry.get("state") == SourceState.DONE and (folder / entry.get("alignments", "")).is_file()]


def _split_override(text: str) -> tuple[str, str]:
    """``key=value`` as typed (``input=fötos``, not Hydra's ``input='fötos'``); a key never
    holds "=", so the first one splits it."""
    key, _, value = str(text).partition("=")
    return key, unquoted(value)


def varying_overrides(jobs: Sequence[JobResult]) -> list[str]:
    """Override keys whose value differs between jobs (the threshold has its own column)."""
    keys = dict.fromkeys(key for job in jobs for key in job.overrides)
    return [key for key in keys if key != THRESHOLD_KEY
            and len({job.overrides.get(key) for job in jobs}) > 1]


def table(jobs: Sequence[JobResult], varying: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """One row per job: the threshold it used (no column when no job filtered by identity),
    each varying override as typed, the counts, and once any job set a quality limit, its
    rejects by reason (``rejected_yaw``: those only that reason). A curation sweep's rows
    hold curation's counts instead (``curation_table``)."""
    if any(job.curation is not None for job in jobs):
        return curation_table(jobs, varying)
    kinds = [kind for kind in REASON_KINDS if any(job.reasons[kind] or kind in job.limited for job in jobs)] \
        if any(job.quality for job in jobs) else []  # a limit's column whether or not it dropped a face
    thresholds = any(job.threshold is not None for job in jobs)
    header = ["job", *(["threshold"] if thresholds else []), *varying, "kept", "rejected", "faces",
              *(f"rejected_{kind}" for kind in kinds)]
    rows = [[str(job.num), *([_blank(job.threshold)] if thresholds else []), *(job.overrides.get(key, "") for key in varying),
             _blank(job.kept), _blank(job.rejected), _blank(None if job.kept is None else job.kept + job.rejected),
             *(_blank(None if job.kept is None else job.reasons[kind]) for kind in kinds)] for job in jobs]
    return header, rows


def curation_table(jobs: Sequence[JobResult], varying: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """One row per curation job: each varying override as typed, the faces it kept, dropped and
    considered, the drops by reason (``dropped_duplicate``: for that reason only; a column for
    each reason any job dropped a face for) and, once any job clustered, its clusters. A job
    without a result (it failed) has blank counts."""
    counted = [job.curation for job in jobs if job.curation is not None]
    reasons = sorted({reason for counts in counted for reason in counts.dropped})
    clusters = any(counts.clusters is not None for counts in counted)
    header = ["job", *varying, "kept", "dropped", "faces", *(f"dropped_{reason}" for reason in reasons),
              *(["clusters"] if clusters else [])]
    rows = []
    for job in jobs:
        counts = job.curation
        numbers: list[Any] = [None] * (3 + len(reasons) + clusters) if counts is None else [
            counts.kept, counts.faces - counts.kept, counts.faces, *(counts.dropped.get(reason, 0) for reason in reasons),
            *([counts.clusters] if clusters else [])]
        rows.append([str(job.num), *(job.overrides.get(key, "") for key in varying), *map(_blank, numbers)])
    return header, rows


def _blank(value: Any) -> str:
    return "" if value is None else str(value)


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], sweep_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # as Text, never markup: a swept list ('[a.jpg],[b.jpg]') or a path in brackets is no style tag
    shown = Table(title=Text(f"sweep report: {sweep_dir}"))
    for name in header:
        shown.add_column(Text(name))
    for row in rows:
        shown.add_row(*map(Text, row))
    console = Console()
    if not console.is_terminal:  # a pipe or a log: no screen to fit, so no header cut to "quality.min_s…"
        console.width = max(console.width, sum(max(map(len, column)) + 3 for column in zip(header, *rows)) + 1)
    console.print(shown)


def plot(jobs: Sequence[JobResult], varying: Sequence[str], axis: SweptSetting = SETTINGS[THRESHOLD_KEY]) -> bytes:
    """``plot_figure`` as PNG bytes. Agg draws without a display."""
    out = io.BytesIO()
    plot_figure(jobs, varying, axis).savefig(out, format="png", dpi=100)
    return out.getvalue()


def plot_figure(jobs: Sequence[JobResult], varying: Sequence[str], axis: SweptSetting = SETTINGS[THRESHOLD_KEY]):
    """Kept and rejected faces against the swept setting (each job's ``limit``): one colour for
    each combination of the other overrides that vary, kept solid and rejected dashed, each line
    named in the legend by its values (``kept, quality.max_yaw=30``) under a title that names
    the x axis's setting, so two swept settings read apart."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups: dict[str, list[JobResult]] = {}
    for job in jobs:
        name = ", ".join(f"{key}={job.overrides.get(key, '')}" for key in varying)
        groups.setdefault(name, []).append(job)
    figure = Figure(figsize=(7, 4.5), layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    colours = ["tab:green", "tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for number, (name, group) in enumerate(groups.items()):
        group.sort(key=lambda job: job.limit)
        thresholds = [job.limit for job in group]
        colour = colours[number % len(colours)] if len(groups) > 1 else None
        suffix = f", {name}" if name else ""
        axes.plot(thresholds, [job.kept for job in group], "o-", color=colour or "tab:green", label=f"kept{suffix}")
        axes.plot(thresholds, [job.rejected for job in group], "s--", color=colour or "tab:red",
                  label=f"rejected{suffix}")
    axes.set(xlabel=axis.key, ylabel="faces", title=f"Faces kept and rejected per {axis.key}")
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", title=f"x axis: {axis.key}", title_fontsize="small")
    return figure


def sheet_rows(jobs: Sequence[JobResult], axis: SweptSetting = SETTINGS[THRESHOLD_KEY],
               others: Sequence[str] = ()) -> list[SheetRow]:
    """One row per limit (per distinct analysis and filters, when other overrides vary), its
    label naming the values of the ``others`` swept settings too (a two-filter sweep's rows)."""
    rows: dict[str, SheetRow] = {}
    for job in sorted(jobs, key=lambda job: (job.limit, job.num)):
        also = ", ".join(f"{SETTINGS[key].name}={job.overrides.get(key, '')}" for key in others)
        rows.setdefault(job.sheet_key, SheetRow(axis.row_label(job.limit, job.num, also), job.nearest,
                                                axis.value_format))
    return list(rows.values())


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("the contact sheet could not be encoded as PNG")
    return data.tobytes()
