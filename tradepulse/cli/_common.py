"""Shared pieces of the CLI: error reporting, data options, progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tradepulse.errors import DataValidationError, TradePulseError

if TYPE_CHECKING:
    from tradepulse.executor import Executor

__all__ = [
    "MAX_PROBLEM_LINES",
    "AddressOption",
    "CashOption",
    "CommissionOption",
    "ConfigOption",
    "LatencyBarsOption",
    "LocalOption",
    "PeriodsPerYearOption",
    "PriceColumnOption",
    "SizingOption",
    "TimestampColumnOption",
    "TimestampUnitOption",
    "TimezoneOption",
    "console",
    "error_console",
    "fail",
    "progress_bar",
    "reported_errors",
    "research_executor",
]

#: ``--config``: a market-friction YAML file.
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Market-friction YAML (e.g. backtest/configs/equities.yaml)."),
]
#: ``--cash``: starting cash.
CashOption = Annotated[float, typer.Option("--cash", help="Starting cash, quote currency.")]
#: ``--commission``: a notional rate replacing the config's commission.
CommissionOption = Annotated[
    float | None,
    typer.Option(
        "--commission",
        help="Commission as a fraction of traded notional (0.001 = 10 bps); "
        "replaces the config's commission.",
    ),
]
#: ``--sizing``: fractional or whole units.
SizingOption = Annotated[
    str | None, typer.Option("--sizing", help="fractional (default) or whole units.")
]
#: ``--latency-bars``: extra bars between a decision and its fill.
LatencyBarsOption = Annotated[
    int | None,
    typer.Option("--latency-bars", help="Extra bars between a decision and its fill."),
]
#: ``--periods-per-year``: the annualisation override.
PeriodsPerYearOption = Annotated[
    float | None,
    typer.Option(
        "--periods-per-year",
        help="Annualisation (default: from the bar spacing; crypto 1-min: 525600).",
    ),
]
#: ``--address``: the Ray cluster to join.
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address", help="Ray cluster to join (default: RAY_ADDRESS, else start one here)."
    ),
]
#: ``--local``: run the tasks in this process, without Ray.
LocalOption = Annotated[bool, typer.Option("--local", help="Run in this process, without Ray.")]

console = Console()
error_console = Console(stderr=True)

#: At most this many problems are printed, so the report fits on a screen.
MAX_PROBLEM_LINES = 20

TimestampColumnOption = Annotated[
    str | None, typer.Option("--ts-col", help="Name of the timestamp column.")
]
PriceColumnOption = Annotated[
    str | None,
    typer.Option("--price-col", help="Column to use as close (e.g. 'Adj Close')."),
]
TimestampUnitOption = Annotated[
    str,
    typer.Option("--ts-unit", help="Unit of numeric timestamps: auto, s, ms, us or ns."),
]
TimezoneOption = Annotated[
    str | None,
    typer.Option("--timezone", help="Time zone of naive timestamps (default UTC)."),
]


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    error_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn TradePulse errors into one-line messages and a non-zero exit, never a traceback."""
    try:
        yield
    except DataValidationError as error:
        error_console.print(
            f"[bold red]invalid data:[/] {error.source}: {len(error.problems)} problem(s)",
            highlight=False,
        )
        for problem in error.problems[:MAX_PROBLEM_LINES]:
            error_console.print(f"  {problem}", highlight=False, soft_wrap=True)
        hidden = len(error.problems) - MAX_PROBLEM_LINES
        if hidden > 0:
            error_console.print(f"  ... and {hidden} more", highlight=False)
        raise typer.Exit(1) from None
    except TradePulseError as error:
        fail(str(error))
    except (OSError, MemoryError) as error:
        fail(f"{type(error).__name__}: {error}")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Progress]:
    """Yield a rich progress bar (hidden when stderr is not a terminal)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
    )
    with progress:
        progress.add_task(description, total=total)
        yield progress


def existing_paths(paths: list[Path]) -> list[Path]:
    """Return ``paths`` or fail naming the first one that does not exist."""
    for path in paths:
        if not path.exists():
            fail(f"{path}: no such file")
    return paths


def research_executor(address: str | None, *, local: bool) -> Executor:
    """Return where a research command runs its tasks: this process or a Ray cluster.

    ``local`` runs them in this process (no Ray); otherwise the command joins
    the cluster at ``address`` (or ``RAY_ADDRESS``), else starts one in-process.
    Exits with status 2 when both ``local`` and ``address`` are given.
    """
    if local:
        if address is not None:
            fail("--local and --address exclude each other", code=2)
        from tradepulse.executor import LocalExecutor

        return LocalExecutor()
    from tradepulse.cluster import executor_for

    return executor_for(address)
