"""The README is a user guide that works as written: its set-up, its Examples block and its
Python examples run (from the repository root, like its set-up), it stays short, and every page
of docs/ is linked from it, with no relative link in either pointing at nothing."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_data

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_LINES = 350  # issue 28: a user guide, the internals in docs/


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def _section(text: str, heading: str) -> str:
    """The text under a level-2 heading, up to the next one."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"README has no section {heading!r}"
    return match.group(1)


def _plugin_examples() -> list[str]:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    return [block for page in pages for block in _blocks(page.read_text(), "python")
            if "from facekit.plugin import" in block]


def test_readme_is_at_most_350_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, f"README.md has {lines} lines"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ holds no page"
    linked = {(README.parent / target).resolve() for target in _relative_links(README.read_text())}
    assert [page.name for page in pages if page.resolve() not in linked] == []


def test_every_relative_link_in_the_readme_and_docs_names_an_existing_file() -> None:
    missing = [f"{page.relative_to(ROOT)}: {target}" for page in [README, *sorted(DOCS.glob("*.md"))]
               for target in _relative_links(page.read_text()) if not (page.parent / target).exists()]
    assert missing == []


def _relative_links(text: str) -> list[str]:
    """Markdown link targets that are paths (no scheme, no bare #anchor), anchors cut off."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [target.split("#")[0] for target in targets if not re.match(r"[a-z]+:|#", target)]


def test_what_a_rerun_refuses_is_said_once_in_its_own_section() -> None:
    text = README.read_text()
    section = re.search(r"^### Stopping, resuming and what a rerun refuses\n(.*?)(?=^#)", text, flags=re.S | re.M)
    assert section, "README has no section on resuming"
    outside = text.replace(section.group(0), "")
    assert re.findall(r".*\brefus.*", outside) == []


def test_setup_commands_never_leave_the_directory_they_start_in() -> None:
    """Pasted in order into one shell, in either order, each set-up command must start where the
    README says (the repository root), so none may change directory except in a subshell."""
    blocks = _blocks(_section(README.read_text(), "Set up"), "bash")
    assert len(blocks) == 2, blocks
    for block in blocks:
        outside_subshells = re.sub(r"\([^()]*\)", "", block)
        assert not re.search(r"(^|&&|;|\|\|)\s*cd\b", outside_subshells), block
    assert 'pip install \'.[test]\' && pytest -n 2 -m "not slow"' in blocks[1]


def test_readme_says_ci_runs_every_tier() -> None:
    assert "CI (`.ci/run`) runs every tier" in _section(README.read_text(), "Set up")


def test_python_examples_run_in_order_as_one_session() -> None:
    """Every ```python block but the plugin examples runs, in order, in one interpreter (each
    block goes on from the one before, as a reader runs them), and prints what its comments say."""
    require_data()
    blocks = [block for block in _blocks(README.read_text(), "python") if "from facekit.plugin import" not in block]
    script = "\n".join(blocks)
    for call in ('facekit.Extractor(identity="sface")', 'facekit.compare(', 'facekit.distance(',
                 'facekit.IdentityFilter(', 'facekit.collection('):
        assert call in script, f"README has no example of {call}"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.splitlines()
    assert len([line for line in printed if "(68, 2)" in line]) == 2, printed  # two_people.jpg: two faces
    assert "(128,)" in printed, printed          # an SFace embedding
    assert "True False" in printed, printed      # obama ~ obama2, obama !~ biden
    assert "2 1" in printed, printed             # the filter keeps one of two_people.jpg's faces


def test_plugin_examples_are_valid_python_and_import_only_from_facekit_plugin() -> None:
    blocks = _plugin_examples()
    assert len(blocks) >= 2, "docs/ has lost a plugin example"  # docs/plugins.md and docs/dlib.md
    for block in blocks:
        compile(block, "plugin example", "exec")
        imports = re.findall(r"^(?:from|import) (facekit(?:\.[\w.]+)?)\s", block, flags=re.MULTILINE)
        assert set(imports) == {"facekit.plugin"}, imports


def _example_commands() -> list[str]:
    block, = _blocks(_section(README.read_text(), "Examples"), "bash")
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("facekit")]


def test_examples_name_only_shared_data_as_input() -> None:
    """What makes the Examples test below honest: each input is in the shared data, or an
    output an earlier example wrote."""
    written: set[str] = set()
    for command in _example_commands():
        words = dict(word.split("=", 1) for word in shlex.split(command) if "=" in word)
        if "input" in words:
            assert words["input"].startswith("../shared/data/") or words["input"] in written, command
        if "output" in words:
            written.add(words["output"])


@pytest.mark.slow
def test_every_command_of_the_examples_block_runs_on_the_shared_data(tmp_path: Path) -> None:
    """Each command runs as written, in order, from a folder with the shared data beside it as
    from the repository root, offline; each must exit 0."""
    data = require_data()
    (tmp_path / "shared").symlink_to(data.parent, target_is_directory=True)
    (here := tmp_path / "repo").mkdir()
    commands = _example_commands()
    assert len(commands) >= 8, commands
    # the facekit command of the Python running the tests, whether or not its venv is activated
    env = {**os.environ, "FACEKIT_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        result = subprocess.run(["bash", "-c", command], cwd=here, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    assert (here / "faces" / "alignments.json").is_file()
    assert (here / "people" / "collection.json").is_file()
    assert (here / "curated" / "curation.json").is_file()
    assert list((here / "sweep").glob("sweep_*/sweep_report.csv"))
