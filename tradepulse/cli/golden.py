"""``tradepulse golden update|check``: golden regression files."""

from __future__ import annotations

import typer

from tradepulse.cli._common import console, error_console, reported_errors

__all__ = ["golden_app"]

golden_app = typer.Typer(help="Golden regression files (golden/).", no_args_is_help=True)


@golden_app.command("update")
def update_command() -> None:
    """Regenerate golden/indicators from the shipped data (review the diff in git)."""
    from tradepulse.golden import update_indicator_goldens

    with reported_errors():
        for path in update_indicator_goldens():
            console.print(f"wrote {path}", highlight=False)


@golden_app.command("check")
def check_command() -> None:
    """Recompute every golden file and exit non-zero on drift."""
    from tradepulse.golden import check_indicator_goldens

    with reported_errors():
        drifts = check_indicator_goldens()
    if drifts:
        for drift in drifts:
            error_console.print(f"drift: {drift}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print("golden indicators: all match", highlight=False)
