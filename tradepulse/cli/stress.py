"""``tradepulse stress``: a strategy under every stress scenario and seed, gated.

Scenarios come from ``backtest/configs/stress/*.yaml`` (or the copies shipped
in the package, or any path); the runs fan out on a Ray cluster (``--address``,
else an embedded local one) or in this process (``--local``). The exit status
is the promotion gate's verdict (``docs/stress.md``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, cast

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from tradepulse.cli._common import (
    AddressOption,
    CashOption,
    CommissionOption,
    ConfigOption,
    LocalOption,
    PriceColumnOption,
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
from tradepulse.cli.backtest import friction_summary, select_symbol

if TYPE_CHECKING:
    from tradepulse.backtest.runner import Engine
    from tradepulse.stress import StressReport, StressRow

__all__ = ["GATE_FAILED_EXIT", "gate_message", "stress_command", "stress_table"]

#: Exit status when a scenario breaks its thresholds (bad input exits 1, a bad option 2).
GATE_FAILED_EXIT: Final = 3
# Must match tradepulse.backtest.runner.ENGINES (spelled out so --help needs no numba).
_ENGINES: Final = ("vector", "event")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _percent(value: float) -> str:
    from tradepulse.reports.backtest_report import format_metric

    return format_metric("total_return", value)


def _cells(row: StressRow) -> list[str]:
    from tradepulse.reports.backtest_report import format_metric

    if row.passed is None:
        verdict = "[dim]baseline[/]"
    elif row.passed:
        verdict = "[green]pass[/]"
    else:
        verdict = f"[bold red]FAIL[/] {row.reason}"
    return [
        row.scenario,
        "—" if row.seed is None else str(row.seed),
        "—"
        if row.start_ts is None
        else row.start_ts.strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00"),
        row.engine,
        format_metric("total_return", row.total_return),
        format_metric("max_drawdown", row.max_drawdown),
        format_metric("sharpe", row.sharpe),
        str(row.trades),
        verdict,
    ]


def stress_table(report: StressReport, *, title: str) -> Table:
    """Return a rich table: the baseline, then one row per scenario run with its verdict."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    for column in ("scenario", "seed", "at", "engine"):
        table.add_column(column, no_wrap=True)
    for column in ("return", "max dd", "sharpe", "trades"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("gate")
    table.add_row(*_cells(report.baseline), style="dim", end_section=True)
    for row in report.rows:
        table.add_row(*_cells(row))
    return table


def gate_message(report: StressReport) -> str:
    """Return the one-line verdict naming each failing scenario and one of its reasons."""
    if report.passed:
        return f"promotion gate passed: {_count(len(report.rows), 'run')} within their thresholds"
    parts = []
    for name in report.failing:
        runs = [row for row in report.rows if row.scenario == name]
        failed = [row for row in runs if not row.passed]
        first = failed[0]
        where = "" if first.seed is None else f"seed {first.seed}: "
        parts.append(f"{name} ({len(failed)} of {len(runs)} runs failed; {where}{first.reason})")
    return "promotion gate failed: " + ", ".join(parts)


def _thresholds(report: StressReport) -> str:
    lines = []
    for scenario in report.scenarios:
        limits = scenario.thresholds
        parts = []
        if limits.max_drawdown is not None:
            parts.append(f"max dd <= {_percent(limits.max_drawdown)}")
        if limits.loss_limit is not None:
            parts.append(f"return >= {_percent(limits.loss_limit)}")
        lines.append(f"  {scenario.name}: {', '.join(parts)}")
    return "\n".join(["thresholds:", *lines])


def stress_command(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet bar file (one instrument).")],
    strategy: Annotated[
        str, typer.Option("--strategy", help="Strategy name (see `tradepulse strategies`).")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Strategy parameter as name=value (repeatable)."),
    ] = None,
    scenarios: Annotated[
        list[str] | None,
        typer.Option(
            "--scenarios",
            help="Scenario name or glob (matched in backtest/configs/stress/), or a YAML "
            "path/glob or folder (repeatable; default: every shipped scenario).",
        ),
    ] = None,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds", min=1, help="Seeds 0..N-1 per scenario whose event position is random."
        ),
    ] = 1,
    config: ConfigOption = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="vector or event for scenarios that do not set one "
            "(default: vector when the strategy has signals()).",
        ),
    ] = None,
    cash: CashOption = 10_000.0,
    commission: CommissionOption = None,
    address: AddressOption = None,
    local: LocalOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
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
    """Backtest a strategy under stress scenarios x seeds; gate it on their thresholds.

    Each scenario transforms the bars (flash crash, gap open, trading halt,
    liquidity drought, volatility spike, regime flip) and sets the worst drawdown
    and total return a run may reach. Exit 0 when every run passes, 3 when the
    promotion gate fails (the failing scenarios are named), 1 on a bad input or
    data, 2 on a bad option value.
    """
    if engine is not None and engine not in _ENGINES:
        fail(f"--engine must be one of {', '.join(_ENGINES)}, got {engine!r}", code=2)
    if local and address is not None:
        fail("--local and --address exclude each other", code=2)
    # The engines (numba kernels), strategies and Ray load only when the command runs.
    from tradepulse.backtest.config import load_friction_config
    from tradepulse.data.loaders import load_bars
    from tradepulse.strategy.params import parse_assignments
    from tradepulse.stress import load_scenarios, run_stress

    notes = error_console if as_json else console
    with reported_errors():
        params = parse_assignments(param or [])
        chosen: Sequence[str] = scenarios or ["*"]
        loaded = load_scenarios(chosen)
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
        with progress_bar("stress", 0) as bar:
            task = bar.task_ids[0]

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = run_stress(
                bars,
                strategy,
                params,
                scenarios=loaded,
                seeds=seeds,
                executor=executor,
                engine=cast("Engine | None", engine),
                config=frictions,
                cash=cash,
                commission=commission,
                progress=advance,
            )
    if as_json:
        payload: dict[str, Any] = report.to_dict()
        payload["scenarios"] = [
            {
                "name": scenario.name,
                "kind": scenario.kind,
                "source": None if scenario.source is None else str(scenario.source),
                "max_drawdown": scenario.thresholds.max_drawdown,
                "loss_limit": scenario.thresholds.loss_limit,
            }
            for scenario in report.scenarios
        ]
        payload["frictions"] = friction_summary(frictions, cash=cash, commission=commission)
        typer.echo(json.dumps(payload, indent=2, allow_nan=False))
    else:
        table = stress_table(
            report,
            title=f"{report.strategy} stress on {data.name} "
            f"({_count(len(report.scenarios), 'scenario')}, {_count(len(report.seeds), 'seed')})",
        )
        # Never squeeze figures into ellipses: a narrow terminal wraps the lines instead.
        natural = console.measure(table, options=console.options.update_width(10_000)).maximum
        (console if natural <= console.width else Console(width=natural)).print(table)
        notes.print(_thresholds(report), highlight=False, soft_wrap=True)
        notes.print(
            f"{_count(len(report.rows) + 1, 'run')} in {report.elapsed_s:.2f} s "
            f"({report.cpu_s:.2f} CPU-s)",
            highlight=False,
        )
    if not report.passed:
        error_console.print(
            f"[bold red]error:[/] {gate_message(report)}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(GATE_FAILED_EXIT)
    notes.print(gate_message(report), highlight=False, soft_wrap=True)
