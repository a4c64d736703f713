"""The report of a curation sweep (``facekit -m task=curate ...``): each job's counts from its
``curation.json``, in columns that say what curation did with the faces."""
from __future__ import annotations

import csv
from pathlib import Path

from cli_helpers import load_json, run_facekit
from conftest import DATA, require_data
from facekit.sweep.report import REPORT_CSV

ONE_PERSON = DATA / "images" / "people" / "p01"  # 8 portraits of one person: dedupe at 0.3 drops some


def test_a_curation_sweeps_report_gives_each_jobs_kept_and_dropped_faces_from_its_curation_json(tmp_path: Path) -> None:
    require_data()
    extraction = tmp_path / "extracted"
    result = run_facekit(f"input={ONE_PERSON}", f"output={extraction}", "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_facekit("-m", "task=curate", f"input={extraction}", f"output={tmp_path / 'swept'}",
                         "curate.cluster=true", "curate.dedupe=0.05,0.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "swept").glob("sweep_*")
    documents = [load_json(sweep / str(job) / "curated" / "curation.json")["counts"] for job in (0, 1)]
    assert documents[1]["dropped"].get("duplicate"), documents  # the wider dedupe dropped some

    with (sweep / REPORT_CSV).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["job", "curate.dedupe", "kept", "dropped", "faces", "dropped_duplicate", "clusters"]
    assert rows == [{"job": str(job), "curate.dedupe": dedupe, "kept": str(counts["kept"]),
                     "dropped": str(counts["faces"] - counts["kept"]), "faces": str(counts["faces"]),
                     "dropped_duplicate": str(counts["dropped"].get("duplicate", 0)), "clusters": str(counts["clusters"])}
                    for job, dedupe, counts in zip((0, 1), ("0.05", "0.3"), documents)]
    printed = [line for line in result.stdout.splitlines() if "0.3" in line and line.lstrip("│ ").startswith("1")]
    assert printed and [cell.strip() for cell in printed[0].strip("│ ").split("│")] == list(rows[1].values())
