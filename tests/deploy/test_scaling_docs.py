"""docs/scaling.md: every command exists as written, and every sweep is the same sweep.

The page's commands need a cluster, Docker or kubectl, so they sit in
``console`` blocks that tests/test_docs_examples.py does not run. Here each
``ray`` and ``tradepulse`` command in them (including the ones inside
``ray exec "..."`` and after ``ray job submit --``) is parsed against the real
CLIs, and every path into the repository must exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from deploy_support import (
    REPO_ROOT,
    CommandCheck,
    check_command,
    check_sweep,
    load_yaml_documents,
    ray_cli,
    shell_commands,
    sweep_signature,
    tradepulse_cli,
)

DOC = REPO_ROOT / "docs" / "scaling.md"
CONSOLE = re.compile(r"```console\n(.*?)```", re.DOTALL)
REPO_PATH = re.compile(r"^(deploy|cluster|golden|docs)/")


def _console_commands() -> list[str]:
    commands = []
    for block in CONSOLE.findall(DOC.read_text(encoding="utf-8")):
        text = block.replace("\\\n", " ")
        commands.extend(line[2:] for line in text.splitlines() if line.startswith("$ "))
    return commands


def _check(argv: list[str], sweeps: list[CommandCheck], problems: list[str]) -> None:
    """Check one simple command, recursing into what it runs."""
    problems.extend(
        f"{token}: no such file in the repository"
        for token in argv
        if REPO_PATH.match(token) and not (REPO_ROOT / token.rstrip("/")).exists()
    )
    if argv[0] == "tradepulse":
        check = (
            check_sweep(argv)
            if argv[1:2] == ["sweep"]
            else check_command(tradepulse_cli(), argv[1:])
        )
        if argv[1:2] == ["sweep"]:
            sweeps.append(check)
        problems.extend(check.problems)
    elif argv[0] == "ray":
        check = check_command(ray_cli(), argv[1:])
        problems.extend(check.problems)
        if check.path[1:] == ["exec"] and len(check.arguments) == 2:
            for inner in shell_commands(check.arguments[1]):
                _check(inner, sweeps, problems)
        elif check.path[1:] == ["job", "submit"] and check.arguments:
            _check(check.arguments, sweeps, problems)


def _checked() -> tuple[list[CommandCheck], list[str], list[list[str]]]:
    sweeps: list[CommandCheck] = []
    problems: list[str] = []
    commands = [argv for text in _console_commands() for argv in shell_commands(text)]
    for argv in commands:
        _check(argv, sweeps, problems)
    return sweeps, problems, commands


def _asset_sweeps() -> list[CommandCheck]:
    local = load_yaml_documents(REPO_ROOT / "cluster" / "local.yaml")[0]
    job = load_yaml_documents(REPO_ROOT / "deploy" / "kuberay" / "rayjob-sweep.yaml")[0]
    texts = [layout["sweep"] for layout in local["layouts"].values()]
    texts.append(job["spec"]["entrypoint"])
    return [check_sweep(shlex.split(text)) for text in texts]


def test_readme_links_the_page() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

    assert "(docs/scaling.md)" in readme


def test_every_command_on_the_page_exists_as_written() -> None:
    sweeps, problems, commands = _checked()
    programs = {argv[0] for argv in commands}

    assert problems == []
    assert {"tradepulse", "ray", "kubectl", "docker"} <= programs
    # laptop, local layout, ray exec, ray job submit (VM and KubeRay)
    assert len(sweeps) >= 5


def test_every_sweep_is_the_same_sweep() -> None:
    sweeps, _, _ = _checked()
    everywhere = [*sweeps, *_asset_sweeps()]
    signatures = {repr(sweep_signature(check)) for check in everywhere}

    assert len(signatures) == 1, signatures
    for check in everywhere:
        out = Path(check.options["out"][0])
        assert out.parts[-2:] == ("sweeps", "sma_cross-nasdaq")
        if out.is_absolute():  # on a cluster: persistent storage, resumable
            assert "resume" in check.flags, check


def test_page_shows_the_local_layout_as_configured() -> None:
    layout: dict[str, Any] = load_yaml_documents(REPO_ROOT / "cluster" / "local.yaml")[0]
    one_machine = layout["layouts"]["one-machine"]
    shown = set(_console_commands())

    for command in [
        one_machine["head"]["start"],
        *(worker["start"] for worker in one_machine["workers"]),
        one_machine["sweep"],
    ]:
        assert command in shown, command
