"""Curation of the people set (27 portraits of 7 people, extracted as a collection): clusters
are the people, the result folder holds what it promises, the input is never touched, a rerun
gives the same result, and renamed or moved face files are still found."""
from __future__ import annotations

import csv
import os
import random
import shlex
import shutil
from pathlib import Path

import pytest
from sklearn.metrics import adjusted_rand_score

from cli_helpers import load_json, run_facekit
from curate_helpers import PEOPLE, clusters_csv, curate, curate_run, shared_extraction, tree_digest

pytestmark = pytest.mark.slow  # the people set extracted, embedded and curated, twice over


@pytest.fixture
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_extraction("people", tmp_path_factory)


def _identities() -> dict[str, str]:
    """Face name as extraction wrote it (``p01/img1_0.png``: the photo's largest face) -> person."""
    with (PEOPLE / "identities.csv").open(encoding="utf-8", newline="") as handle:
        return {f"{Path(row['file']).with_suffix('').as_posix()}_0.png": row["identity"]
                for row in csv.DictReader(handle)}


@pytest.mark.parametrize("identity", ["sface", "dlib-resnet"])
def test_clusters_of_the_people_set_are_its_people(people: Path, tmp_path: Path, identity: str) -> None:
    """With a cosine plugin, and with a euclidean one whose vectors are not unit length (dlib's,
    about 1.4 long: its 0.6 read as unit vectors' put the 7 people in 2 clusters)."""
    if identity == "dlib-resnet":
        pytest.importorskip("facekit_dlib", reason="facekit-dlib is not installed (pip install ./plugins/dlib)")
    result = curate(tmp_path, people, "curate.cluster=true", f"+identity={identity}")
    clusters, truth = clusters_csv(result), _identities()
    labelled = [face for face in truth if face in clusters]
    assert len(labelled) == len(truth) == 27
    found = {clusters[face] for face in labelled} - {-1}
    assert abs(len(found) - 7) <= 1
    members: dict[int, list[str]] = {}
    for face in labelled:
        if clusters[face] != -1:
            members.setdefault(clusters[face], []).append(truth[face])
    purity = sum(max(people.count(p) for p in set(people)) for people in members.values()) / sum(map(len, members.values()))
    assert purity >= 0.95
    assert adjusted_rand_score([truth[f] for f in labelled], [clusters[f] for f in labelled]) > 0.8


def test_the_result_folder_has_a_folder_sheet_and_command_per_cluster(people: Path, tmp_path: Path) -> None:
    result = curate(tmp_path, people, "curate.cluster=true")
    document = load_json(result / "curation.json")
    clusters = [entry for entry in document["clusters"] if entry["cluster"] >= 0]
    assert clusters
    for entry in clusters:
        folder = result / entry["folder"]
        assert entry["folder"] == f"cluster_{entry['cluster']:03d}"
        assert len(list(folder.iterdir())) == entry["faces"] == entry["kept"]
        assert (result / entry["sheet"]).stat().st_size > 1000
        assert entry["refs_command"].startswith("facekit input=") and "filter.refs=[" in entry["refs_command"]
    faces = document["faces"]
    assert len(faces) == len(clusters_csv(result)) and all(face["kept"] and face["reason"] is None for face in faces)
    for face in faces:
        link = result / face["result"]
        assert link.is_symlink() and link.resolve() == (people / face["file"]).resolve()
        assert face["result"].split("/")[0] == ("unclustered" if face["cluster"] == -1 else f"cluster_{face['cluster']:03d}")


def test_curation_never_changes_the_extraction_output(people: Path, tmp_path: Path) -> None:
    before = tree_digest(people)
    curate(tmp_path, people, "curate.cluster=true", "curate.dedupe=0.3", "curate.best=2", "curate.sort=sharpness")
    curate(tmp_path, people, "curate.cluster=true", "curate.copy=true", out="copied")
    assert tree_digest(people) == before


def test_curating_twice_gives_the_same_result_and_replaces_the_first(people: Path, tmp_path: Path) -> None:
    settings = ("curate.cluster=true", "curate.best=2", "curate.sort=yaw")
    first = tree_digest(curate(tmp_path, people, *settings))
    (tmp_path / "curated" / "stale.txt").write_text("from before")
    second = tree_digest(curate(tmp_path, people, *settings))
    assert second == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".curated")]  # no staging folder left


def test_what_a_killed_curation_left_beside_its_result_is_cleared_or_put_back(people: Path, tmp_path: Path) -> None:
    """SIGKILL leaves no cleanup: a half-built staging folder and an earlier result moved aside
    stayed for good. Killed between moving the earlier result aside and putting the new one in its
    place, the earlier result is put back first (then replaced as usual)."""
    first = tree_digest(curate(tmp_path, people, "curate.cluster=true"))
    (tmp_path / ".curated.curating-0badf00d").mkdir()
    (tmp_path / ".curated.curating-0badf00d" / "half.png").write_bytes(b"x")
    shutil.copytree(tmp_path / "curated", tmp_path / ".curated.replaced-0badf00d")
    assert tree_digest(curate(tmp_path, people, "curate.cluster=true")) == first
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".curated")]
    (tmp_path / "curated").rename(tmp_path / ".curated.replaced-12345678")  # killed before the new one stood
    from facekit.curate.result import _clear_leftovers

    _clear_leftovers(tmp_path / "curated")
    assert tree_digest(tmp_path / "curated") == first


def test_copies_are_plain_files_equal_to_the_face_files(people: Path, tmp_path: Path) -> None:
    result = curate(tmp_path, people, "curate.copy=true")
    for face in load_json(result / "curation.json")["faces"]:
        copied = result / face["result"]
        assert face["result"].startswith("faces/") and not copied.is_symlink()
        assert copied.read_bytes() == (people / face["file"]).read_bytes()


def test_renamed_and_moved_face_files_are_found_by_their_png_text(people: Path, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled"
    shutil.copytree(people, shuffled)
    pngs = sorted(shuffled.rglob("*.png"))
    (shuffled / "elsewhere").mkdir()
    names = [f"face_{n:03d}.png" for n in range(len(pngs))]
    random.Random(7).shuffle(names)
    for n, (path, name) in enumerate(zip(pngs, names)):  # every file renamed, every other one moved
        os.rename(path, (shuffled / "elsewhere" / name) if n % 2 else path.with_name(name))
    original = clusters_csv(curate(tmp_path, people, "curate.cluster=true", out="original"))
    moved = curate(tmp_path, shuffled, "curate.cluster=true", out="moved")
    assert clusters_csv(moved) == original
    document = load_json(moved / "curation.json")
    assert all(face["kept"] and face["file"] != face["face"] for face in document["faces"])


def test_a_result_folder_inside_the_input_is_refused_in_one_line(people: Path, tmp_path: Path) -> None:
    before = tree_digest(people)
    result = curate_run(tmp_path, people, out=str(people / "curated"))
    assert result.returncode == 2 and "inside the input" in result.stderr and result.stderr.count("\n") == 1
    assert tree_digest(people) == before


def test_a_folder_that_is_not_a_curation_result_is_not_replaced(people: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = curate_run(tmp_path, people, out="mine")
    assert result.returncode == 2 and "not an earlier curation result" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_folder_without_alignments_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = curate_run(tmp_path, tmp_path / "empty")
    assert result.returncode == 2 and "no alignments.json under" in result.stderr
    assert not (tmp_path / "curated").exists()


def test_the_same_faces_in_two_sources_are_deduplicated_across_them(people: Path, tmp_path: Path) -> None:
    twice = tmp_path / "twice"
    shutil.copytree(people, twice / "first")
    shutil.copytree(people, twice / "second")
    document = load_json(curate(tmp_path, twice, "curate.dedupe=0.05") / "curation.json")
    faces = document["faces"]
    assert len(faces) % 2 == 0
    for face in faces:
        where, name = face["face"].split("/", 1)
        if where == "first":
            assert face["kept"] and face["result"] == f"faces/{face['face'].replace('/', '__')}"
        else:
            assert not face["kept"] and face["reason"] == f"duplicate of first/{name} (distance 0.000)"


def test_a_dedupe_without_clustering_prints_no_filter_refs_command(people: Path, tmp_path: Path) -> None:
    """Dedupe groups faces by likeness too, but a group is no person: only clusters get a command."""
    result = curate_run(tmp_path, people, "curate.dedupe=0.05")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "filter.refs" not in result.stdout + result.stderr
    clustered = curate_run(tmp_path, people, "curate.cluster=true", out="clustered")
    assert clustered.returncode == 0 and "filter.refs" in clustered.stdout


def test_a_clusters_ready_command_keeps_that_person_only(people: Path, tmp_path: Path) -> None:
    document = load_json(curate(tmp_path, people, "curate.cluster=true") / "curation.json")
    smallest = min((c for c in document["clusters"] if c["cluster"] >= 0), key=lambda c: (c["faces"], c["cluster"]))
    members = {f["face"] for f in document["faces"] if f["cluster"] == smallest["cluster"]}
    command = shlex.split(smallest["refs_command"])
    assert command[0] == "facekit" and f"+identity={document['identity']}" in command  # the plugin clusters used
    result = run_facekit(*command[1:], "runner.progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    kept = {p.relative_to(tmp_path / f"cluster_{smallest['cluster']:03d}_faces").as_posix()
            for p in (tmp_path / f"cluster_{smallest['cluster']:03d}_faces").rglob("*.png")}
    assert kept == members


def test_a_ready_commands_refs_with_a_comma_or_a_space_in_their_paths_read_back_as_those_paths() -> None:
    """"Smith, John/img20_0.png" was read as two references, "Smith" and "John/img20_0.png"."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from facekit.curate.result import _item

    paths = ["/x/Smith, John/img20_0.png", "/x/plain/img_0.png", "/x/it's [1]/a b.png"]
    parsed = OverridesParser.create().parse_override("filter.refs=[" + ",".join(_item(p) for p in paths) + "]")
    assert parsed.value() == paths
    assert _item(paths[1]) == paths[1]  # a plain path stays as it is, as it did


def test_a_result_in_the_folder_the_command_runs_in_is_refused_before_any_work(people: Path, tmp_path: Path) -> None:
    """output=. embedded and clustered every face, then "[Errno 16] Device or resource busy"."""
    (tmp_path / "here").mkdir()
    result = run_facekit("task=curate", f"input={people}", "output=.", cwd=tmp_path / "here")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "facekit: error: output '.' holds the folder this command runs in, and a curation result replaces its "
        "folder whole; give a new folder's name (output=curated)"], result.stderr
    assert "embedding" not in result.stderr


def test_a_sweep_of_curation_gives_each_job_its_own_result(people: Path, tmp_path: Path) -> None:
    """``-m ... curate.dedupe=0.05,0.1``: every job wrote to output= itself, so the first refused
    it (Hydra's sweep folder was in it) with a message about a folder the user never made."""
    result = run_facekit("-m", "task=curate", f"input={people}", f"output={tmp_path / 'swept'}", "curate.cluster=true",
                         "curate.dedupe=0.05,0.1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results = sorted((tmp_path / "swept").glob("sweep_*/*/curated/curation.json"))
    assert [path.parent.parent.name for path in results] == ["0", "1"]
    assert [load_json(path)["settings"]["dedupe"] for path in results] == [0.05, 0.1]


def test_an_input_that_does_not_exist_is_named_so(tmp_path: Path) -> None:
    result = curate_run(tmp_path, tmp_path / "nowhere")
    assert result.returncode == 2 and f"input {str(tmp_path / 'nowhere')!r} does not exist" in result.stderr, result.stderr
