"""The ``tradepulse`` command line."""

from __future__ import annotations

import typer

from tradepulse.cli.data import data_app

app = typer.Typer(
    name="tradepulse",
    help="TradePulse: quantitative trading research and execution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")


def main() -> None:
    """Run the ``tradepulse`` console script."""
    app()


__all__ = ["app", "main"]
