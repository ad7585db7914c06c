"""``tradepulse walkforward``: re-optimise a strategy on rolling or anchored windows.

Each fold's train window picks the best parameters of a grid by an objective;
the next window trades them out of sample; the out-of-sample windows run as one
stitched backtest (``docs/walkforward.md``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich import box
from rich.console import Console
from rich.table import Table

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
    progress_bar,
    reported_errors,
    research_executor,
)
from tradepulse.cli.backtest import (
    TABLE_SUFFIXES,
    friction_summary,
    metrics_table,
    select_symbol,
    write_table,
)
from tradepulse.errors import ConfigError

if TYPE_CHECKING:
    from tradepulse.backtest.walkforward import WalkForwardResult
    from tradepulse.costs.sizing import Sizing

__all__ = [
    "folds_table",
    "parse_grid_range",
    "parse_value_list",
    "walkforward_command",
    "walkforward_payload",
]

# Must match tradepulse.costs.SIZINGS; spelled out so option checks need no numba import.
_SIZINGS = ("fractional", "whole")
# Float grid points within this many steps of ``stop`` still count (rounding).
_STEP_TOLERANCE = 1e-9


def _key_and_text(option: str, item: str, shape: str) -> tuple[str, str]:
    key, equals, text = item.partition("=")
    key = key.strip()
    if not equals or not key or not text.strip():
        raise ConfigError(f"{option} must look like {shape}; got {item!r}")
    return key, text.strip()


def _number(text: str) -> int | float:
    try:
        return int(text, 10)
    except ValueError:
        return float(text)


def parse_grid_range(item: str) -> tuple[str, list[int | float]]:
    """Return the name and values of a ``--grid name=start:stop:step`` option.

    ``stop`` is included when the steps reach it. Three integers give integers
    (``fast=5:20:5`` is 5, 10, 15, 20); otherwise the values are floats
    ``start + i * step`` (rounded to 12 decimals).

    Raises:
        ConfigError: the text is malformed, a bound is not a finite number,
            ``step <= 0`` or ``start > stop``.
    """
    shape = "name=start:stop:step (stop inclusive)"
    key, text = _key_and_text("--grid", item, shape)
    parts = [part.strip() for part in text.split(":")]
    if len(parts) != 3:
        raise ConfigError(f"--grid must look like {shape}; got {item!r}")
    try:
        start, stop, step = (_number(part) for part in parts)
    except ValueError:
        raise ConfigError(f"--grid {item!r}: start, stop and step must be numbers") from None
    if not all(math.isfinite(value) for value in (start, stop, step)):
        raise ConfigError(f"--grid {item!r}: start, stop and step must be finite")
    if step <= 0:
        raise ConfigError(f"--grid {item!r}: step must be > 0; got {step!r}")
    if start > stop:
        raise ConfigError(f"--grid {item!r}: start must be <= stop")
    if all(isinstance(value, int) for value in (start, stop, step)):
        return key, list(range(int(start), int(stop) + 1, int(step)))
    count = math.floor((stop - start) / step + _STEP_TOLERANCE) + 1
    return key, [round(start + index * step, 12) for index in range(count)]


def parse_value_list(item: str) -> tuple[str, list[str]]:
    """Return the name and values (as text) of a ``--values name=a,b,c`` option.

    Raises:
        ConfigError: the text is malformed or a value is empty.
    """
    key, text = _key_and_text("--values", item, "name=a,b,c")
    values = [value.strip() for value in text.split(",")]
    if any(not value for value in values):
        raise ConfigError(f"--values {item!r}: empty value in the list")
    return key, values


def _grid(ranges: Sequence[str], lists: Sequence[str]) -> dict[str, list[Any]] | None:
    """Return the grid of ``--grid`` and ``--values`` (``None``: neither was given)."""
    if not ranges and not lists:
        return None
    grid: dict[str, list[Any]] = {}
    parsed: list[tuple[str, list[Any]]] = [parse_grid_range(item) for item in ranges]
    parsed += [parse_value_list(item) for item in lists]
    for key, values in parsed:
        if key in grid:
            raise ConfigError(f"parameter {key!r} is given twice in --grid/--values")
        grid[key] = values
    return grid


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def walkforward_payload(result: WalkForwardResult, *, elapsed_s: float) -> dict[str, Any]:
    """Return the ``--json`` object of a walk-forward (NaN and infinities as ``None``).

    Keys: ``strategy``, ``objective``, ``anchored``, ``grid`` (values per swept
    parameter), ``combinations``, ``skipped``, ``evaluations``, ``folds`` (one
    object per fold: ``fold``, the window timestamps in ISO 8601, ``params``
    (``None`` for a flat fold), ``train_objective``, ``oos_return``,
    ``oos_sharpe``, ``oos_max_drawdown``, ``oos_trades``), ``oos`` (the
    stitched run's metrics) and ``elapsed_s``.
    """
    folds = []
    for row, params in zip(result.folds.iter_rows(named=True), result.params, strict=True):
        folds.append(
            {
                "fold": row["fold"],
                "train_start": _clean(row["train_start"]),
                "train_end": _clean(row["train_end"]),
                "test_start": _clean(row["test_start"]),
                "test_end": _clean(row["test_end"]),
                "params": None
                if params is None
                else {key: _clean(value) for key, value in params.to_dict().items()},
                "train_objective": _clean(row["train_objective"]),
                "oos_return": _clean(row["oos_return"]),
                "oos_sharpe": _clean(row["oos_sharpe"]),
                "oos_max_drawdown": _clean(row["oos_max_drawdown"]),
                "oos_trades": row["oos_trades"],
            }
        )
    return {
        "strategy": result.strategy,
        "objective": result.objective,
        "anchored": result.anchored,
        "grid": {key: [_clean(value) for value in values] for key, values in result.grid.items()},
        "combinations": result.combinations,
        "skipped": result.skipped,
        "evaluations": result.evaluations,
        "folds": folds,
        "oos": {key: _clean(value) for key, value in result.oos.metrics.to_dict().items()},
        "elapsed_s": round(elapsed_s, 6),
    }


def _day_or_time(value: datetime) -> str:
    if value.hour == value.minute == value.second == value.microsecond == 0:
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M:%S")


def folds_table(result: WalkForwardResult, *, title: str) -> Table:
    """Return a rich table with one row per fold: test window, swept parameters, scores.

    The train windows are in ``--folds`` and ``--json``; here each row shows the
    parameters chosen in sample, their in-sample objective and the test
    window's out-of-sample return, Sharpe ratio, drawdown and trades opened.
    """
    from tradepulse.backtest.walkforward import FOLD_COLUMNS
    from tradepulse.reports.backtest_report import format_metric

    swept = [name for name, values in result.grid.items() if len(values) > 1]
    labels = {name: f"param_{name}" if name in FOLD_COLUMNS else name for name in swept}
    table = Table(
        title=title,
        caption=f"IS: in-sample {result.objective} of the chosen parameters (train window); "
        "return, sharpe, max dd, trades: out of sample (test window)",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("fold", justify="right", no_wrap=True)
    table.add_column("test window", no_wrap=True)
    for name in swept:
        table.add_column(name, justify="right", no_wrap=True)
    for column in ("IS", "return", "sharpe", "max dd", "trades"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in result.folds.iter_rows(named=True):
        table.add_row(
            str(row["fold"]),
            f"{_day_or_time(row['test_start'])} → {_day_or_time(row['test_end'])}",
            *("—" if row[labels[name]] is None else str(row[labels[name]]) for name in swept),
            format_metric(result.objective, row["train_objective"]),
            format_metric("total_return", row["oos_return"]),
            format_metric("sharpe", row["oos_sharpe"]),
            format_metric("max_drawdown", row["oos_max_drawdown"]),
            str(row["oos_trades"]),
        )
    return table


def walkforward_command(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet bar file (one instrument).")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="Strategy name (see `tradepulse strategies`).")
    ],
    train: Annotated[int, typer.Option("--train", help="Bars per train window.")],
    test: Annotated[int, typer.Option("--test", help="Bars per test (out-of-sample) window.")],
    anchored: Annotated[
        bool, typer.Option("--anchored", help="Start every train window at the first bar.")
    ] = False,
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
    objective: Annotated[
        str,
        typer.Option(
            "--objective", help="Metric to maximise on each train window (max_drawdown: minimise)."
        ),
    ] = "sharpe",
    config: ConfigOption = None,
    cash: CashOption = 10_000.0,
    commission: CommissionOption = None,
    sizing: SizingOption = None,
    latency_bars: LatencyBarsOption = None,
    periods_per_year: PeriodsPerYearOption = None,
    address: AddressOption = None,
    local: LocalOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    equity: Annotated[
        Path | None,
        typer.Option(
            "--equity", help="Write the out-of-sample ts, equity, position, cash (.csv/.parquet)."
        ),
    ] = None,
    folds: Annotated[
        Path | None,
        typer.Option("--folds", help="Write one row per fold (.csv/.parquet)."),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol to use from a file holding several."),
    ] = None,
    symbol_col: Annotated[
        str | None, typer.Option("--symbol-col", help="Symbol column (default: symbol/ticker).")
    ] = None,
    ts_col: TimestampColumnOption = None,
    price_col: PriceColumnOption = None,
    ts_unit: TimestampUnitOption = "auto",
    timezone: TimezoneOption = None,
) -> None:
    """Walk a strategy forward: optimise on each train window, trade the next one blind.

    Without --grid/--values every parameter not fixed by --param is swept over
    its declared range (if that is at most 5,000 combinations). Exit 0 on
    success, 1 on a bad input or data, 2 on a bad option value.
    """
    for option, path in (("--equity", equity), ("--folds", folds)):
        if path is not None and path.suffix.lower() not in TABLE_SUFFIXES:
            fail(f"{option} must end in .csv or .parquet, got {path.name!r}", code=2)
    if sizing is not None and sizing not in _SIZINGS:
        fail(f"--sizing must be one of {', '.join(_SIZINGS)}, got {sizing!r}", code=2)
    # The engines (numba kernels) and strategies load only when the command runs.
    from tradepulse.backtest.config import load_friction_config
    from tradepulse.backtest.walkforward import walk_forward
    from tradepulse.data.loaders import load_bars
    from tradepulse.executor import as_map_function
    from tradepulse.strategy.params import parse_assignments

    notes = error_console if as_json else console
    with reported_errors():
        fixed = parse_assignments(param or [])
        swept = _grid(grid or [], values or [])
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
        executor = research_executor(address, local=local)
        started = time.perf_counter()
        with progress_bar("walk-forward", 0) as bar:
            task = bar.task_ids[0]

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = walk_forward(
                bars,
                strategy,
                train_bars=train,
                test_bars=test,
                anchored=anchored,
                grid=swept,
                objective=objective,
                params=fixed,
                config=frictions,
                cash=cash,
                commission=commission,
                sizing=cast("Sizing | None", sizing),
                latency_bars=latency_bars,
                periods_per_year=periods_per_year,
                progress=advance,
                map_fn=as_map_function(executor),
            )
        elapsed = time.perf_counter() - started
        if equity is not None:
            write_table(result.oos.equity_frame(), equity)
            notes.print(
                f"equity: {equity} ({result.oos.ts.shape[0]} bars)", highlight=False, soft_wrap=True
            )
        if folds is not None:
            write_table(result.folds, folds)
            notes.print(
                f"folds: {folds} ({result.folds.height} folds)", highlight=False, soft_wrap=True
            )
    if as_json:
        payload = walkforward_payload(result, elapsed_s=elapsed)
        payload["frictions"] = friction_summary(
            frictions,
            cash=cash,
            commission=commission,
            sizing=sizing,
            latency_bars=latency_bars,
            periods_per_year=periods_per_year,
        )
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    kind = "anchored" if anchored else "rolling"
    table = folds_table(
        result,
        title=f"{result.strategy} walk-forward on {data.name} "
        f"({kind}: train {train}, test {test} bars; objective {objective})",
    )
    # Never squeeze figures into ellipses: a narrow terminal wraps the lines instead.
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    (console if natural <= console.width else Console(width=natural)).print(table)
    console.print(
        metrics_table(result.oos, title="out-of-sample (stitched test windows)", params={})
    )
    console.print(
        f"{len(result.windows)} folds x {result.combinations} combinations "
        f"({result.skipped} skipped by constraints) in {elapsed:.2f} s",
        highlight=False,
    )
