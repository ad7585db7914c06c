"""Every example in the README and docs/ runs as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradepulse.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```(bash|python)\n(.*?)```", re.DOTALL)


def _blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for index, match in enumerate(FENCE.finditer(document.read_text(encoding="utf-8"))):
            if match.group(1) == language:
                found.append((f"{document.name}#{index}", match.group(2)))
    return found


def _commands() -> list[tuple[str, str]]:
    commands = []
    for name, block in _blocks("bash"):
        commands.extend(
            (name, line) for line in block.splitlines() if line.startswith("tradepulse ")
        )
    return commands


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "golden").symlink_to(REPO_ROOT / "golden")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_documents_have_examples() -> None:
    assert len(_commands()) >= 5
    assert _blocks("python")


def test_bash_examples_run_in_order(workdir: Path) -> None:
    # Commands in one document may depend on earlier ones (synth, then resample).
    runner = CliRunner()
    for name, command in _commands():
        result = runner.invoke(app, shlex.split(command)[1:])

        assert result.exit_code == 0, f"{name}: `{command}` failed:\n{result.output}"


@pytest.mark.parametrize(("name", "code"), _blocks("python"), ids=lambda v: str(v)[:40])
def test_python_examples_run(name: str, code: str, workdir: Path) -> None:
    exec(compile(code, name, "exec"), {"__name__": "__docs__"})
