"""``tradepulse backtest``: run one strategy on one instrument's bars and report it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import polars as pl
import typer
from rich.table import Table

from tradepulse.cli._common import (
    CashOption,
    CommissionOption,
    ConfigOption,
    LatencyBarsOption,
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
from tradepulse.errors import ConfigError

if TYPE_CHECKING:
    from tradepulse.backtest.config import FrictionConfig
    from tradepulse.backtest.runner import Engine
    from tradepulse.backtest.vector import BacktestResult
    from tradepulse.costs.sizing import Sizing

__all__ = [
    "TABLE_SUFFIXES",
    "backtest_command",
    "friction_summary",
    "json_payload",
    "metrics_table",
    "select_symbol",
    "write_table",
]

#: Accepted extensions of ``--equity`` and ``--trades`` files, and their formats.
TABLE_SUFFIXES: Final[Mapping[str, str]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Timestamps in CSV output: ISO 8601 UTC with a Z, as `tradepulse data` writes bars.
_CSV_TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.fZ"
# Must match tradepulse.backtest.runner.ENGINES and tradepulse.costs.SIZINGS (checked
# by the tests); spelled out so `--help` and option checks need no numba import.
_ENGINES: Final = ("vector", "event")
_SIZINGS: Final = ("fractional", "whole")


def _check_table_path(option: str, path: Path | None) -> None:
    if path is not None and path.suffix.lower() not in TABLE_SUFFIXES:
        fail(
            f"{option} must end in .csv or .parquet, got {path.name!r}",
            code=2,
        )


def write_table(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` as CSV or Parquet, chosen by the extension.

    CSV timestamps are ISO 8601 UTC with a ``Z``. Parent folders are created.

    Raises:
        ConfigError: the extension is not one of `TABLE_SUFFIXES`.
        OSError: the file cannot be written.
    """
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"{path}: output must end in .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        frame.write_csv(path, datetime_format=_CSV_TS_FORMAT)
    else:
        frame.write_parquet(path)


def select_symbol(bars: pl.DataFrame, symbol: str | None, *, source: str) -> pl.DataFrame:
    """Return the bars of one symbol: ``symbol``'s rows, or ``bars`` when they hold one.

    Raises:
        ConfigError: ``bars`` hold several symbols and ``symbol`` is ``None`` (the
            message lists them), or ``symbol`` is not in ``bars`` (or ``bars``
            have no symbol column).
    """
    has_column = "symbol" in bars.columns
    found = bars.get_column("symbol").unique(maintain_order=True).to_list() if has_column else []
    if symbol is None:
        if len(found) > 1:
            listed = ", ".join(map(str, found))
            raise ConfigError(
                f"{source} holds {len(found)} symbols ({listed}); the engines backtest one "
                "instrument: pick one with --symbol"
            )
        return bars
    if not has_column:
        raise ConfigError(f"--symbol {symbol!r}: {source} has no symbol column")
    if symbol not in found:
        listed = ", ".join(map(str, found))
        raise ConfigError(f"--symbol {symbol!r} is not in {source} (symbols: {listed})")
    return bars.filter(pl.col("symbol") == symbol)


def friction_summary(
    config: FrictionConfig | None,
    *,
    cash: float,
    commission: float | None = None,
    sizing: str | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """Return the frictions a run uses, by name (JSON-ready), as ``run_backtest`` picks them.

    A keyword that is not ``None`` overrides ``config``; ``commission`` (a rate
    of notional) replaces all of the config's commission terms. The keys are
    ``config`` (its name or ``None``), ``cash``, ``commission_rate``,
    ``commission_per_unit``, ``commission_per_fill``, ``spread_bps``,
    ``slippage_bps``, ``impact_bps``, ``sizing``, ``latency_bars`` and
    ``periods_per_year`` (``None``: derived from the timestamps).
    """
    summary: dict[str, Any] = {
        "config": None if config is None else config.name,
        "cash": float(cash),
        "commission_rate": 0.0,
        "commission_per_unit": 0.0,
        "commission_per_fill": 0.0,
        "spread_bps": 0.0,
        "slippage_bps": 0.0,
        "impact_bps": 0.0,
        "sizing": "fractional",
        "latency_bars": 0,
        "periods_per_year": None,
    }
    if config is not None:
        summary.update(
            commission_rate=config.commission.rate,
            commission_per_unit=config.commission.per_unit,
            commission_per_fill=config.commission.per_fill,
            spread_bps=config.spread_bps,
            slippage_bps=config.slippage_bps,
            impact_bps=config.impact_bps,
            sizing=config.sizing,
            latency_bars=config.latency_bars,
            periods_per_year=config.periods_per_year,
        )
    if commission is not None:
        summary.update(commission_rate=commission, commission_per_unit=0.0, commission_per_fill=0.0)
    if sizing is not None:
        summary["sizing"] = sizing
    if latency_bars is not None:
        summary["latency_bars"] = latency_bars
    if periods_per_year is not None:
        summary["periods_per_year"] = periods_per_year
    return summary


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_payload(
    result: BacktestResult,
    *,
    strategy: str,
    engine: str,
    params: Mapping[str, Any],
    frictions: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the ``--json`` object: run description plus every metric (NaN/inf as ``None``).

    Keys: ``strategy``, ``engine``, ``params``, ``frictions``, then the fields of
    `~tradepulse.metrics.Metrics` (``final_equity`` ... ``bars``).
    """
    payload: dict[str, Any] = {
        "strategy": strategy,
        "engine": engine,
        "params": {key: _finite_or_none(value) for key, value in params.items()},
        "frictions": {key: _finite_or_none(value) for key, value in frictions.items()},
    }
    payload.update({key: _finite_or_none(value) for key, value in result.metrics.to_dict().items()})
    return payload


def backtest_command(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet bar file (one instrument).")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="Strategy name (see `tradepulse strategies`).")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Strategy parameter as name=value (repeatable)."),
    ] = None,
    config: ConfigOption = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="vector or event (default: vector when the strategy has signals()).",
        ),
    ] = None,
    cash: CashOption = 10_000.0,
    commission: CommissionOption = None,
    sizing: SizingOption = None,
    latency_bars: LatencyBarsOption = None,
    periods_per_year: PeriodsPerYearOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    equity: Annotated[
        Path | None,
        typer.Option("--equity", help="Write ts, equity, position, cash per bar (.csv/.parquet)."),
    ] = None,
    trades: Annotated[
        Path | None, typer.Option("--trades", help="Write the trade list (.csv/.parquet).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write an HTML report (+ PNG charts beside it)."),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol to backtest from a file holding several."),
    ] = None,
    symbol_col: Annotated[
        str | None, typer.Option("--symbol-col", help="Symbol column (default: symbol/ticker).")
    ] = None,
    ts_col: TimestampColumnOption = None,
    price_col: PriceColumnOption = None,
    ts_unit: TimestampUnitOption = "auto",
    timezone: TimezoneOption = None,
) -> None:
    """Backtest a strategy on one instrument's bars and print its metrics.

    A decision on bar t's close fills at bar t+1's open (plus --latency-bars).
    Values given on the command line override those of --config. Exit 0 on
    success, 1 on a bad input or data, 2 on a bad option value.
    """
    _check_table_path("--equity", equity)
    _check_table_path("--trades", trades)
    if report is not None and report.suffix.lower() != ".html":
        fail(f"--report must end in .html, got {report.name!r}", code=2)
    if engine is not None and engine not in _ENGINES:
        fail(f"--engine must be one of {', '.join(_ENGINES)}, got {engine!r}", code=2)
    if sizing is not None and sizing not in _SIZINGS:
        fail(f"--sizing must be one of {', '.join(_SIZINGS)}, got {sizing!r}", code=2)
    # The engines (numba kernels) and strategies load only when the command runs.
    from tradepulse.backtest.config import load_friction_config
    from tradepulse.backtest.runner import resolve_params, resolve_strategy, run_backtest
    from tradepulse.data.loaders import load_bars
    from tradepulse.strategy.params import parse_assignments

    notes = error_console if as_json else console
    with reported_errors():
        assignments = parse_assignments(param or [])
        frictions = load_friction_config(config) if config is not None else None
        instance = resolve_strategy(strategy)
        params = resolve_params(instance, assignments)
        chosen_engine = engine or ("vector" if instance.has_signals else "event")
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
        result = run_backtest(
            bars,
            instance,
            params,
            engine=cast("Engine", chosen_engine),
            config=frictions,
            cash=cash,
            commission=commission,
            sizing=cast("Sizing | None", sizing),
            latency_bars=latency_bars,
            periods_per_year=periods_per_year,
        )
        summary = friction_summary(
            frictions,
            cash=cash,
            commission=commission,
            sizing=sizing,
            latency_bars=latency_bars,
            periods_per_year=periods_per_year,
        )
        if equity is not None:
            write_table(result.equity_frame(), equity)
            notes.print(f"equity: {equity} ({bars.height} bars)", highlight=False, soft_wrap=True)
        if trades is not None:
            write_table(result.trades, trades)
            notes.print(
                f"trades: {trades} ({result.trades.height} trades)", highlight=False, soft_wrap=True
            )
        if report is not None:
            from tradepulse.reports.backtest_report import write_backtest_report

            written = write_backtest_report(
                result,
                bars,
                report,
                strategy=instance.name,
                params=params.to_dict(),
                engine=chosen_engine,
                frictions=summary,
            )
            notes.print(f"report: {written.html_path}", highlight=False, soft_wrap=True)
    if as_json:
        payload = json_payload(
            result,
            strategy=instance.name,
            engine=chosen_engine,
            params=params.to_dict(),
            frictions=summary,
        )
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
        return
    console.print(
        metrics_table(
            result,
            title=f"{instance.name} on {data.name} ({chosen_engine} engine)",
            params=params.to_dict(),
        )
    )


def metrics_table(result: BacktestResult, *, title: str, params: Mapping[str, Any]) -> Table:
    """Return a rich table of ``result``'s metrics, captioned with ``params``."""
    # The reports module loads matplotlib: only when a table is printed.
    from tradepulse.reports.backtest_report import metric_rows

    caption = ", ".join(f"{key}={value}" for key, value in params.items())
    table = Table(title=title, caption=caption or None, min_width=60)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, text in metric_rows(result.metrics):
        table.add_row(name, text)
    return table
