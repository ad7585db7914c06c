"""``tradepulse demo``: the main job on embedded defaults and the shipped real data."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import polars as pl
import typer

from tradepulse.cli._common import console, progress_bar, reported_errors, research_executor

if TYPE_CHECKING:
    from tradepulse.backtest.config import FrictionConfig
    from tradepulse.executor import Executor
    from tradepulse.reports.backtest_report import BacktestReport

__all__ = [
    "DEMO_GRID",
    "DEMO_STRATEGY",
    "demo_backtest",
    "demo_command",
    "demo_frictions",
    "demo_research",
]

#: The built-in strategy the demo sweeps, backtests and stress-tests.
DEMO_STRATEGY: Final = "sma_cross"
#: The demo's sweep grid (fast < slow is the strategy's constraint; others are skipped).
DEMO_GRID: Final[dict[str, list[Any]]] = {
    "fast": list(range(5, 55, 5)),
    "slow": list(range(20, 210, 10)),
    "direction": ["long", "long_short"],
}


def demo_frictions() -> FrictionConfig:
    """Return the demo's frictions: those of ``backtest/configs/equities.yaml``.

    Built in code so the demo runs from any directory (a test checks that they
    equal the file's).
    """
    from tradepulse.backtest.config import FrictionConfig
    from tradepulse.costs import CommissionTerms

    return FrictionConfig(
        name="equities",
        description="US large caps / index ETFs (as backtest/configs/equities.yaml)",
        commission=CommissionTerms(rate=0.0005),
        spread_bps=1.0,
        slippage_bps=0.5,
        impact_bps=0.0,
        latency_bars=0,
        sizing="whole",
        periods_per_year=None,
    )


def demo_backtest(
    bars: pl.DataFrame, *, out_dir: Path, params: Mapping[str, object] | None = None
) -> BacktestReport:
    """Backtest `DEMO_STRATEGY` with ``params`` (default: its defaults) and write its report.

    Prints the metrics table; the report is ``out_dir/backtest_sma_cross.html``.

    Raises:
        ConfigError: the bars cannot be backtested (e.g. several symbols).
    """
    from tradepulse.backtest.runner import resolve_params, resolve_strategy, run_backtest
    from tradepulse.cli.backtest import friction_summary, metrics_table
    from tradepulse.reports import write_backtest_report

    strategy = resolve_strategy(DEMO_STRATEGY)
    typed = resolve_params(strategy, params)
    frictions = demo_frictions()
    result = run_backtest(bars, strategy, typed, engine="vector", config=frictions)
    symbol = str(bars.get_column("symbol")[0]) if "symbol" in bars.columns else "series"
    console.print(
        metrics_table(
            result,
            title=f"TradePulse: {DEMO_STRATEGY} on {symbol} ({frictions.name} frictions)",
            params=typed.to_dict(),
        )
    )
    return write_backtest_report(
        result,
        bars,
        out_dir / f"backtest_{DEMO_STRATEGY}.html",
        strategy=DEMO_STRATEGY,
        params=typed.to_dict(),
        engine="vector",
        frictions=friction_summary(frictions, cash=result.initial_cash),
    )


def demo_research(bars: pl.DataFrame, *, out_dir: Path, executor: Executor) -> dict[str, Any]:
    """Sweep `DEMO_GRID` on ``bars``, print the top 10, stress-test the best; return its params.

    The sweep's rows go to ``out_dir/sweep_sma_cross`` (replaced on every run);
    the stress gate runs every shipped scenario with two seeds on the best
    parameters (by Sharpe) and prints its table and verdict (the demo reports a
    failed gate but does not fail).

    Raises:
        ConfigError: the bars cannot be swept or stressed.
    """
    import shutil

    from tradepulse.cli.stress import stress_table
    from tradepulse.cli.sweep import top_table
    from tradepulse.stress import load_scenarios, run_stress
    from tradepulse.sweep.run import run_sweep

    frictions = demo_frictions()
    folder = out_dir / f"sweep_{DEMO_STRATEGY}"
    if folder.exists():
        shutil.rmtree(folder)
    with progress_bar("sweep", 0) as progress:
        task = progress.task_ids[0]

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = run_sweep(
            bars,
            DEMO_STRATEGY,
            DEMO_GRID,
            config=frictions,
            executor=executor,
            out=folder,
            team="demo",
            progress=advance,
        )
    top = result.top(10, by="sharpe")
    console.print(
        top_table(
            result,
            top,
            title=f"TradePulse: top 10 of {result.combos} {DEMO_STRATEGY} combinations "
            f"({result.combos_per_s:,.0f} combinations/s, {result.skipped} skipped)",
            by="sharpe",
        )
    )
    best = {name: top.get_column(name)[0] for name in DEMO_GRID}
    scenarios = load_scenarios(["*"])
    report = run_stress(
        bars, DEMO_STRATEGY, best, scenarios=scenarios, seeds=2, executor=executor, config=frictions
    )
    console.print(
        stress_table(report, title=f"Stress gate: {DEMO_STRATEGY} {best}"), highlight=False
    )
    verdict = (
        "passed"
        if report.passed
        else f"FAILED: {', '.join(report.failing)} (the demo goes on; `tradepulse stress` exits 3)"
    )
    console.print(f"stress gate: {verdict}", highlight=False)
    console.print(f"sweep rows: {folder}", highlight=False)
    return best


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path("reports"),
    address: Annotated[
        str | None,
        typer.Option(
            "--address", help="Ray cluster to join (default: RAY_ADDRESS, else start one here)."
        ),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run the sweep and stress tasks in this process.")
    ] = False,
) -> None:
    """The main job on the shipped S&P 500 and NASDAQ daily bars.

    Writes the indicator report; starts a local Ray cluster (or joins --address;
    --local: no Ray), sweeps sma_cross over a grid with equities frictions on the
    S&P 500 bars, prints the top 10, runs the stress gate on the best
    parameters, and writes the best parameters' backtest report.
    """
    # Heavy imports (numba kernels, POT, matplotlib) wait until the command runs, so
    # `tradepulse --help` and the data commands start quickly.
    from tradepulse.cli.indicators import summary_table
    from tradepulse.data.loaders import load_bars
    from tradepulse.data.samples import SAMPLE_FILES, sample_data_dir
    from tradepulse.indicators.frame import IndicatorConfig, compute_indicators, latest_values
    from tradepulse.reports import write_indicator_report

    started = time.perf_counter()
    with reported_errors():
        directory = sample_data_dir()
        frames = [
            load_bars(directory / name, symbol=symbol) for symbol, name in SAMPLE_FILES.items()
        ]
        bars = pl.concat(frames, how="vertical")
        config = IndicatorConfig()
        with progress_bar("indicators", 6 * len(frames)) as progress:
            task = progress.task_ids[0]
            indicators = compute_indicators(
                bars, config, progress=lambda label: progress.update(task, advance=1)
            )
        rows = latest_values(indicators)
        console.print(summary_table(rows, title="TradePulse: latest indicator values and phase"))
        report = write_indicator_report(
            bars, indicators, out_dir=out, window=config.window, summary=rows
        )
        executor = research_executor(address, local=local)
        best = demo_research(frames[0], out_dir=out, executor=executor)
        backtest = demo_backtest(frames[0], out_dir=out, params=best)
    elapsed = time.perf_counter() - started
    console.print(f"report: {report.html_path}", highlight=False)
    for path in report.png_paths:
        console.print(f"chart:  {path}", highlight=False)
    console.print(f"backtest report: {backtest.html_path}", highlight=False)
    for path in backtest.png_paths:
        console.print(f"chart:  {path}", highlight=False)
    console.print(f"done in {elapsed:.1f} s", highlight=False)
