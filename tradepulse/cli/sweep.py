"""``tradepulse sweep``: backtest every combination of a parameter grid, batched and resumable.

The combinations run as batched tasks on a Ray cluster (``--address``, or a
local one started in-process) or in this process (``--local``); the rows stream
into Parquet parts under ``--out`` as tasks finish, and ``--resume`` continues
an interrupted sweep there (``docs/sweeps.md``).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tradepulse.cli._common import (
    AddressOption,
    CashOption,
    CommissionOption,
    ConfigOption,
    LatencyBarsOption,
    LocalOption,
    PeriodsPerYearOption,
    PriceColumnOption,
    SizingOption,
    TimestampColumnOption,
    TimestampUnitOption,
    TimezoneOption,
    console,
    error_console,
    existing_paths,
    fail,
    reported_errors,
)
from tradepulse.cli.backtest import friction_summary, select_symbol
from tradepulse.errors import ConfigError

if TYPE_CHECKING:
    import polars as pl

    from tradepulse.costs.sizing import Sizing
    from tradepulse.executor import Executor
    from tradepulse.sweep.run import SweepResult

__all__ = [
    "ALLOCATOR_ENV",
    "RANK_METRICS",
    "sweep_command",
    "sweep_payload",
    "top_table",
    "tune_worker_allocator",
]

#: Metrics ``--by`` accepts (tradepulse.sweep.task.METRIC_COLUMNS; spelled out
#: so option checks need no engine import, and checked equal by the tests).
RANK_METRICS: Final = (
    "final_equity",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "turnover",
    "exposure",
)
# Must match tradepulse.costs.SIZINGS; spelled out so option checks need no numba import.
_SIZINGS: Final = ("fractional", "whole")
# Exit status after Ctrl-C (128 + SIGINT), as shells report it.
_INTERRUPTED: Final = 130
#: glibc allocator settings for the processes the command starts (a local Ray
#: cluster's workers inherit them): arrays of up to 64 MiB stay on the heap and
#: up to 512 MiB of freed heap is kept, so the per-bar arrays of one backtest
#: reuse the memory of the previous one instead of being unmapped and faulted in
#: again (about a fifth of a worker's time on 1M bars). A value already in the
#: environment wins.
ALLOCATOR_ENV: Final = {
    "MALLOC_MMAP_THRESHOLD_": str(64 * 1024 * 1024),
    "MALLOC_TRIM_THRESHOLD_": str(512 * 1024 * 1024),
}


class _RateColumn(ProgressColumn):
    """Combinations per second over the last seconds of progress."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- combos/s" if speed is None else f"{speed:,.0f} combos/s")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
    )


def _grid(ranges: list[str], lists: list[str]) -> dict[str, list[Any]] | None:
    """Return the grid of ``--grid`` and ``--values`` (``None``: neither was given)."""
    from tradepulse.sweep.grid import parse_grid_range, parse_value_list

    if not ranges and not lists:
        return None
    grid: dict[str, list[Any]] = {}
    parsed: list[tuple[str, list[Any]]] = [parse_grid_range(item) for item in ranges]
    parsed += [parse_value_list(item) for item in lists]
    for name, values in parsed:
        if name in grid:
            raise ConfigError(f"parameter {name!r} is given twice in --grid/--values")
        grid[name] = values
    return grid


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def sweep_payload(
    result: SweepResult, top: pl.DataFrame, *, frictions: dict[str, Any], startup_s: float
) -> dict[str, Any]:
    """Return the ``--json`` object: the sweep's figures plus its ``top`` rows.

    Keys: those of `SweepResult.summary` (``combos``, ``skipped``,
    ``elapsed_s``, ``combos_per_s``, ``peak_rss_mb``, ``cost`` ...), with
    ``startup_s`` (cluster start and worker warm-up, not in ``elapsed_s``),
    ``frictions``, and ``top`` (one object per row: ``combo_id``, parameters,
    metrics; NaN and infinities as ``None``).
    """
    payload = result.summary()
    payload["startup_s"] = round(startup_s, 6)
    payload["frictions"] = {key: _clean(value) for key, value in frictions.items()}
    payload["top"] = [
        {key: _clean(value) for key, value in row.items()} for row in top.iter_rows(named=True)
    ]
    return payload


def top_table(result: SweepResult, top: pl.DataFrame, *, title: str, by: str) -> Table:
    """Return a rich table of the ``top`` rows: rank, swept parameters, key metrics."""
    # The reports module loads matplotlib: only when a table is printed.
    from tradepulse.reports.backtest_report import format_metric

    swept = [name for name, values in result.grid.items() if len(values) > 1]
    columns = {name: name if name in top.columns else f"param_{name}" for name in swept}
    table = Table(title=title, caption=f"ranked by {by}", min_width=60)
    table.add_column("#", justify="right")
    for name in swept:
        table.add_column(name, justify="right")
    metrics = ("total_return", "sharpe", "sortino", "max_drawdown", "trades", "final_equity")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for rank, row in enumerate(top.iter_rows(named=True), start=1):
        table.add_row(
            str(rank),
            *(str(row[columns[name]]) for name in swept),
            *(format_metric(metric, row[metric]) for metric in metrics),
        )
    return table


def tune_worker_allocator() -> None:
    """Put `ALLOCATOR_ENV` into this process's environment (for the processes it starts)."""
    for key, value in ALLOCATOR_ENV.items():
        os.environ.setdefault(key, value)


def _executor(address: str | None, *, local: bool, dashboard: bool) -> Executor:
    if local:
        from tradepulse.executor import LocalExecutor

        return LocalExecutor()
    tune_worker_allocator()
    # Only without --local does the command load Ray.
    from tradepulse.cluster import executor_for

    return executor_for(address, dashboard=dashboard)


def sweep_command(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet bar file (one instrument).")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="Strategy name (see `tradepulse strategies`).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the result parts and manifest.")],
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid", help="Swept parameter as name=start:stop:step, stop inclusive (repeatable)."
        ),
    ] = None,
    values: Annotated[
        list[str] | None,
        typer.Option("--values", help="Swept parameter as name=a,b,c (repeatable)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Fixed parameter as name=value (repeatable)."),
    ] = None,
    random: Annotated[
        int | None,
        typer.Option("--random", help="Backtest N distinct grid points drawn at random."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the --random draw.")] = 0,
    config: ConfigOption = None,
    cash: CashOption = 10_000.0,
    commission: CommissionOption = None,
    sizing: SizingOption = None,
    latency_bars: LatencyBarsOption = None,
    periods_per_year: PeriodsPerYearOption = None,
    address: AddressOption = None,
    local: LocalOption = False,
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="Start the Ray dashboard (local cluster).")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the sweep in --out, skipping its parts.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    top: Annotated[int, typer.Option("--top", help="Print the N best combinations.")] = 10,
    by: Annotated[
        str, typer.Option("--by", help="Metric to rank by (max_drawdown: smallest first).")
    ] = "sharpe",
    team: Annotated[str | None, typer.Option("--team", help="Tag for the cost accounting.")] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Combinations per task (default: from the grid)."),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol to sweep from a file holding several."),
    ] = None,
    symbol_col: Annotated[
        str | None, typer.Option("--symbol-col", help="Symbol column (default: symbol/ticker).")
    ] = None,
    ts_col: TimestampColumnOption = None,
    price_col: PriceColumnOption = None,
    ts_unit: TimestampUnitOption = "auto",
    timezone: TimezoneOption = None,
) -> None:
    """Sweep a strategy's parameter grid: one backtest per valid combination, to Parquet.

    Without --grid/--values every parameter not fixed by --param is swept over
    its declared range. Combinations breaking the strategy's constraints are
    skipped and counted. Exit 0 on success, 1 on a bad input or data, 2 on a
    bad option value, 130 when interrupted (resume with --resume).
    """
    if sizing is not None and sizing not in _SIZINGS:
        fail(f"--sizing must be one of {', '.join(_SIZINGS)}, got {sizing!r}", code=2)
    if top < 1:
        fail(f"--top must be >= 1, got {top}", code=2)
    if by not in RANK_METRICS:
        fail(f"--by must be one of {', '.join(RANK_METRICS)}, got {by!r}", code=2)
    if random is not None and random < 1:
        fail(f"--random must be >= 1, got {random}", code=2)
    if seed < 0:
        fail(f"--seed must be >= 0, got {seed}", code=2)
    if batch_size is not None and batch_size < 1:
        fail(f"--batch-size must be >= 1, got {batch_size}", code=2)
    if local and (address is not None or dashboard):
        fail("--local runs without Ray: drop --address/--dashboard", code=2)
    if team is not None and not team.strip():
        fail("--team must not be empty", code=2)
    # The engines (numba kernels), strategies and Ray load only when the command runs.
    from tradepulse.backtest.config import load_friction_config
    from tradepulse.backtest.runner import resolve_strategy
    from tradepulse.data.loaders import load_bars
    from tradepulse.strategy.params import parse_assignments
    from tradepulse.sweep.grid import resolve_grid
    from tradepulse.sweep.memory import ProcessTreeMemory
    from tradepulse.sweep.run import run_sweep

    with ProcessTreeMemory() as memory, reported_errors():
        try:
            swept = _grid(grid or [], values or [])
        except ConfigError as error:
            fail(str(error), code=2)
        fixed = parse_assignments(param or [])
        frictions = load_friction_config(config) if config is not None else None
        existing_paths([data])
        bars = select_symbol(
            load_bars(
                data,
                ts_col=ts_col,
                price_col=price_col,
                symbol_col=symbol_col,
                ts_unit=ts_unit,
                timezone=timezone,
            ),
            symbol,
            source=str(data),
        )
        # Checked before any cluster starts: an unknown strategy or parameter fails fast.
        instance = resolve_strategy(strategy)
        resolve_grid(instance, swept, fixed)
        connecting = time.perf_counter()
        executor = _executor(address, local=local, dashboard=dashboard)
        connect_s = time.perf_counter() - connecting
        try:
            with _progress() as bar:
                task = bar.add_task("sweep", total=None)

                def advance(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = run_sweep(
                    bars,
                    instance,
                    swept,
                    params=fixed,
                    random=random,
                    seed=seed,
                    config=frictions,
                    cash=cash,
                    commission=commission,
                    sizing=cast("Sizing | None", sizing),
                    latency_bars=latency_bars,
                    periods_per_year=periods_per_year,
                    executor=executor,
                    out=out,
                    resume=resume,
                    team=team,
                    batch_size=batch_size,
                    progress=advance,
                )
        except KeyboardInterrupt:
            error_console.print(
                f"[bold red]interrupted:[/] the finished batches are in {out}; "
                "run the same command with --resume to complete the sweep",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(_INTERRUPTED) from None
        best = result.top(top, by=by)
    summary = friction_summary(
        frictions,
        cash=cash,
        commission=commission,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    )
    payload = sweep_payload(result, best, frictions=summary, startup_s=connect_s + result.startup_s)
    # The whole command's tree (cluster start included), never less than the sweep's own figure.
    payload["peak_rss_mb"] = round(max(memory.peak_rss_mb, result.peak_rss_mb), 1)
    peaks = [value for value in (memory.peak_pss_mb, result.peak_pss_mb) if value is not None]
    payload["peak_pss_mb"] = round(max(peaks), 1) if peaks else None
    if as_json:
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    table = top_table(
        result, best, title=f"{result.strategy} sweep on {data.name}: top {best.height}", by=by
    )
    # Never squeeze figures into ellipses: a narrow terminal wraps the lines instead.
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    (console if natural <= console.width else Console(width=natural)).print(table)
    pss = payload["peak_pss_mb"]
    console.print(
        f"{result.combos} combinations ({result.skipped} skipped by constraints, "
        f"{result.resumed} already on disk) in {result.elapsed_s:.2f} s: "
        f"{payload['combos_per_s'] or 0:,.0f} combos/s; peak memory "
        f"{payload['peak_rss_mb']:,.0f} MiB RSS{'' if pss is None else f' / {pss:,.0f} MiB PSS'} "
        "(process tree); "
        f"results in {result.out}",
        highlight=False,
        soft_wrap=True,
    )
