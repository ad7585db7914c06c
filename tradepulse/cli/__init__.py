"""The ``tradepulse`` command line."""

from __future__ import annotations

import typer

from tradepulse import __version__
from tradepulse.cli.api import api_app
from tradepulse.cli.backtest import backtest_command
from tradepulse.cli.data import data_app
from tradepulse.cli.demo import demo_command
from tradepulse.cli.feed import feed_app
from tradepulse.cli.golden import golden_app
from tradepulse.cli.indicators import analyze_command, indicators_command
from tradepulse.cli.keys import keys_app
from tradepulse.cli.serve import serve_command
from tradepulse.cli.strategies import strategies_command
from tradepulse.cli.stress import stress_command
from tradepulse.cli.sweep import sweep_command
from tradepulse.cli.tune import tune_command
from tradepulse.cli.walkforward import walkforward_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="tradepulse",
    help="TradePulse: quantitative trading research and execution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tradepulse {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """TradePulse: quantitative trading research and execution."""


app.add_typer(api_app, name="api")
app.add_typer(data_app, name="data")
app.add_typer(feed_app, name="feed")
app.add_typer(golden_app, name="golden")
app.add_typer(keys_app, name="keys")
app.command("indicators")(indicators_command)
app.command("analyze")(analyze_command)
app.command("demo")(demo_command)
app.command("strategies")(strategies_command)
app.command("backtest")(backtest_command)
app.command("walkforward")(walkforward_command)
app.command("stress")(stress_command)
app.command("sweep")(sweep_command)
app.command("tune")(tune_command)
app.command("serve")(serve_command)


def main() -> None:
    """Run the ``tradepulse`` console script."""
    app()
