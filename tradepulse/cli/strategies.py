"""``tradepulse strategies``: every installed strategy (built-in or plugin) and its parameters."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tradepulse.cli._common import console, error_console

__all__ = ["strategies_command"]


def _range(parameter: dict[str, Any]) -> str:
    if parameter["choices"] is not None:
        return " | ".join(str(choice) for choice in parameter["choices"])
    low, high = parameter["low"], parameter["high"]
    if low is None and high is None:
        return ""
    return f"{'-inf' if low is None else low} .. {'inf' if high is None else high}"


def strategies_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List every installed strategy with its parameters (defaults, ranges, choices).

    Strategies come from the ``tradepulse.plugins`` entry points. A plugin that
    cannot be used is reported on stderr and the exit code is 1.
    """
    # Importing the strategies loads numba kernels; wait until the command runs.
    from rich.table import Table

    from tradepulse.strategy.api import STRATEGY_API_VERSION
    from tradepulse.strategy.plugins import describe_strategy, scan_plugins

    scan = scan_plugins()
    described = []
    for item in scan.found:
        entry = describe_strategy(item.strategy)
        entry["entry_point"] = item.entry_point
        entry["distribution"] = item.distribution
        described.append(entry)
    if as_json:
        payload = {
            "api_version": STRATEGY_API_VERSION,
            "strategies": described,
            "errors": [{"plugin": error.plugin, "message": str(error)} for error in scan.errors],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        console.print(f"strategy API {STRATEGY_API_VERSION}", highlight=False)
        for entry in described:
            forms = " + ".join(entry["forms"])
            table = Table(
                title=f"[bold]{entry['name']}[/] ({forms}, API {entry['api_version']})",
                caption=entry["description"],
                title_justify="left",
                caption_justify="left",
            )
            for column in ("parameter", "type", "default", "range", "step"):
                table.add_column(column, no_wrap=True)
            table.add_column("description")
            for parameter in entry["parameters"]:
                step = parameter["step"]
                table.add_row(
                    parameter["name"],
                    parameter["type"],
                    str(parameter["default"]),
                    _range(parameter),
                    "" if step is None else str(step),
                    parameter["description"],
                )
            console.print(table)
    for error in scan.errors:
        error_console.print(
            f"[bold red]plugin refused:[/] {error}", highlight=False, soft_wrap=True
        )
    if scan.errors:
        raise typer.Exit(1)
