"""Paths as people name them (issue 17, point 9): ``input=fötos``, ``input=Vidéos/été 2024``,
``output=出力``, ``'filter.refs=[Jürgen.jpg]'`` work as typed, though Hydra's override grammar reads
such values only in quotes; a value that still cannot be read is one line that says how to quote it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli_helpers import load_json, run_facekit
from conftest import SCENES, require_data
from facekit.app.overrides import hydra_quoted, quote_override, quote_overrides
from facekit.errors import ConfigError

SPACED = "Vidéos/été 2024"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fötos/ (obama, two_people), Vidéos/été 2024/ (obama2 as "famille été.jpg") and Jürgen.jpg (obama3)."""
    require_data()
    root = tmp_path_factory.mktemp("home")
    (root / "fötos").mkdir()
    (root / SPACED).mkdir(parents=True)
    shutil.copy(SCENES / "obama.jpg", root / "fötos" / "obama.jpg")
    shutil.copy(SCENES / "two_people.jpg", root / "fötos" / "two_people.jpg")
    shutil.copy(SCENES / "obama2.jpg", root / SPACED / "famille été.jpg")
    shutil.copy(SCENES / "obama3.jpg", root / "Jürgen.jpg")
    return root


def _run(home: Path, *args: str):
    result = run_facekit(*args, "runner.progress=false", cwd=home)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.slow  # over 6 s: the README's fast tier keeps within its 8 minutes
def test_accented_folder_into_a_japanese_output_with_an_accented_reference(home: Path) -> None:
    _run(home, "input=fötos", "output=出力", f"filter.refs=[{home / 'Jürgen.jpg'}]")
    out = home / "出力"
    alignments = load_json(out / "alignments.json")
    assert alignments["meta"]["input"] == "fötos"  # as typed: no quotes, no escapes
    assert alignments["meta"]["filter"]["refs"] == [str(home / "Jürgen.jpg")]
    assert set(alignments["frames"]) == {"obama", "two_people"}
    obama = alignments["frames"]["obama"]["faces"]
    assert len(obama) == 1 and obama[0]["keep"] is True  # Jürgen.jpg is obama too
    assert (out / obama[0]["crop"]).is_file()


def test_a_folder_and_a_file_with_spaces_and_accents(home: Path) -> None:
    out = home / "faces spaced"
    _run(home, f"input={SPACED}", f"output={out}", "output.size=128")  # output.size still a number
    assert load_json(out / "alignments.json")["meta"]["input"] == SPACED
    _run(home, f"input={SPACED}/famille été.jpg", "output=出力 été")
    alignments = load_json(home / "出力 été" / "alignments.json")
    assert alignments["meta"]["input"] == f"{SPACED}/famille été.jpg"
    faces = alignments["frames"]["famille été"]["faces"]
    assert len(faces) == 1 and (home / "出力 été" / faces[0]["crop"]).is_file()


def test_a_sweep_over_two_accented_folders(home: Path) -> None:
    _run(home, "-m", f"input=fötos,{SPACED}", "output=スイープ")
    jobs = sorted((home / "スイープ").glob("sweep_*/*/alignments.json"))
    assert [load_json(path)["meta"]["input"] for path in jobs] == ["fötos", SPACED]


@pytest.mark.parametrize("multirun", [[], ["-m"]])
def test_a_value_that_cannot_be_read_is_one_line_that_says_how_to_quote_it(home: Path, multirun: list[str]) -> None:
    result = run_facekit(*multirun, "input=[fötos", "output=nowhere", cwd=home)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == ("facekit: error: cannot read the override 'input=[fötos': "
                                     "quote the value, e.g. \"input='[fötos'\"")
    assert not (home / "nowhere").exists()


@pytest.mark.parametrize("key", ["filter.refs", "output.masks", "collection.exclude"])
def test_a_list_left_open_is_named_for_its_missing_bracket_not_quoted_into_a_string(home: Path, key: str) -> None:
    """Quoted as the path case says, '[a' is a string, which a list key then refuses."""
    result = run_facekit("input=fötos", "output=nowhere", f"{key}=[a", cwd=home)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"facekit: error: cannot read the override '{key}=[a': its list has no closing ']': " \
                                    f"\"{key}=[a]\""
    assert not (home / "nowhere").exists()


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("input=fötos", "input='fötos'"),
        ("input=Vidéos/été 2024", "input='Vidéos/été 2024'"),
        ("output=出力", "output='出力'"),
        ("filter.refs=[a.jpg, Jürgen.jpg]", "filter.refs=[a.jpg,'Jürgen.jpg']"),
        ("+filter.nrefs=[Zoë.jpg]", "+filter.nrefs=['Zoë.jpg']"),
        ("++input=fötos", "++input='fötos'"),
        ("input=fötos,bilder", "input='fötos',bilder"),  # a sweep stays a sweep
        ("input=choice(fötos,bilder)", "input=choice('fötos',bilder)"),
        ("input=Jürgen's fötos", "input=\"Jürgen's fötos\""),
        ("input=Photos (2024)", "input='Photos (2024)'"),  # not a call of a function named Photos
        ("input=Tom & Jerry", "input='Tom & Jerry'"),
        ("input=a\\,ö", "input='a,ö'"),  # Hydra's escaped comma is a comma
        ("input=${oc.env:HOME}/fötos", "input='${oc.env:HOME}/fötos'"),
    ],
)
def test_values_hydra_refuses_are_quoted(arg: str, expected: str) -> None:
    assert quote_override(arg) == expected


@pytest.mark.parametrize("arg", ["input=photos", "input=a,b,c", "input=${oc.env:HOME}/x", "output.padding=null",
                                 "output.size=128", "output.debug=true", "filter.refs=[a.jpg,b.jpg]",
                                 "input='fötos'", "~filter", "input=Videos/summer 2024", "filter.threshold=range(0.3,0.6,0.1)"])
def test_values_hydra_reads_are_left_alone(arg: str) -> None:
    assert quote_override(arg) == arg


def test_the_values_of_hydras_flags_are_left_alone() -> None:
    argv = ["-cd", "fötos=conf", "--config-name=x", "-m", "input=fötos"]
    assert quote_overrides(argv) == ["-cd", "fötos=conf", "--config-name=x", "-m", "input='fötos'"]


@pytest.mark.parametrize("text", ["fötos", "a'b", 'a"b', "a'b\"c", "a\\", "a\\'b", "\\", "", "x\\'", "\\\\'\\"])
def test_a_quoted_value_reads_back_as_exactly_the_text(text: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    assert OverridesParser.create().parse_override("k=" + hydra_quoted(text)).value() == text


def test_a_key_that_is_not_a_key_says_so() -> None:
    with pytest.raises(ConfigError, match="^cannot read the override 'fötos=1': 'fötos' is not a config key"):
        quote_override("fötos=1")


@pytest.mark.parametrize("multirun", [[], ["-m"]], ids=["run", "sweep"])
def test_a_photo_whose_name_holds_a_comma_is_one_input_not_a_sweep(home: Path, multirun: list[str]) -> None:
    """Hydra reads ``input=Tom,Jerry.jpg`` as two sweep values (or refuses it as ambiguous
    without ``-m``); the file exists and its pieces do not, so it is one path."""
    shutil.copy(SCENES / "obama.jpg", home / "Tom,Jerry.jpg")
    out = home / f"comma{len(multirun)}"
    _run(home, *multirun, "input=Tom,Jerry.jpg", f"output={out}")
    found = sorted(out.rglob("alignments.json"))
    assert len(found) == 1 and load_json(found[0])["meta"]["input"] == "Tom,Jerry.jpg"


def test_pieces_that_exist_on_their_own_stay_a_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b", "a,b"):
        (tmp_path / name).mkdir()
    assert quote_override("input=a,b") == "input=a,b"
    assert quote_override("input=[a,b]") == "input=[a,b]"
    (tmp_path / "b").rmdir()
    assert quote_override("input=a,b") == "input='a,b'"


def test_a_photo_whose_name_holds_a_dollar_brace_is_read_as_named_and_a_missing_one_is_one_line(home: Path) -> None:
    """``${`` starts Hydra's interpolation: a file that exists under that name is one input
    (its ``${`` escaped); a name that exists nowhere is one line saying how to escape it."""
    shutil.copy(SCENES / "obama.jpg", home / "photo${1}.jpg")
    _run(home, "input=photo${1}.jpg", "output=dollar")
    assert load_json(home / "dollar" / "alignments.json")["meta"]["input"] == "photo${1}.jpg"
    _run(home, "input=photo${1}.jpg", "output=judged", "filter.refs=[photo${1}.jpg]")  # a list's item too
    assert load_json(home / "judged" / "alignments.json")["meta"]["filter"]["refs"] == ["photo${1}.jpg"]
    result = run_facekit("input=missing${x}.jpg", "output=nowhere", cwd=home)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == ("facekit: error: input: Interpolation key 'x' not found; '${...}' in a value is "
                                     "Hydra's interpolation, so a path that holds '${' is written with '\\${' "
                                     "(input='photo\\${1}.jpg')")
    assert not (home / "nowhere").exists()


def test_paths_named_with_brackets_are_read_as_named_and_a_list_of_them_is_quoted_item_by_item(home: Path) -> None:
    """input=[x] (a folder that exists), output=[out] (one to be made) and filter.refs=[[1].jpg]
    were Hydra's "Cannot convert 'list' to string" or a quote-the-value line; the advice for a
    list quoted the whole list, which a list key then refused as a string."""
    (home / "[x]").mkdir()
    shutil.copy(SCENES / "obama.jpg", home / "[x]" / "obama.jpg")
    shutil.copy(SCENES / "obama.jpg", home / "[1].jpg")
    _run(home, "input=[x]", "output=[out]", "filter.refs=[[1].jpg]")
    document = load_json(home / "[out]" / "alignments.json")
    assert document["meta"]["input"] == "[x]" and document["meta"]["filter"]["refs"] == ["[1].jpg"]
    result = run_facekit("input=[x]", "output=nowhere", "filter.refs=[[2].jpg]", cwd=home)
    assert result.returncode == 2 and result.stderr.strip() == (
        "facekit: error: cannot read the override 'filter.refs=[[2].jpg]': quote the value, e.g. "
        "\"filter.refs=['[2].jpg']\""), result.stderr
    assert not (home / "nowhere").exists()


def test_outside_a_sweep_a_new_output_folder_with_a_comma_is_one_path(home: Path) -> None:
    _run(home, "input=fötos", "output=out c,1")
    assert (home / "out c,1" / "alignments.json").is_file()
    assert quote_override("output=a,b", sweeping=True) == "output=a,b"  # a sweep's values stay a sweep
    assert quote_override("output.size=1,2", sweeping=False) == "output.size=1,2"  # not a path: Hydra's to read
