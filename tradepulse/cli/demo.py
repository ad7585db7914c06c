"""``tradepulse demo``: the main job on embedded defaults and the shipped real data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import polars as pl
import typer

from tradepulse.cli._common import console, progress_bar, reported_errors

if TYPE_CHECKING:
    from tradepulse.backtest.config import FrictionConfig
    from tradepulse.reports.backtest_report import BacktestReport

__all__ = ["DEMO_STRATEGY", "demo_backtest", "demo_command", "demo_frictions"]

#: The built-in strategy the demo backtests (default parameters).
DEMO_STRATEGY: Final = "sma_cross"


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


def demo_backtest(bars: pl.DataFrame, *, out_dir: Path) -> BacktestReport:
    """Backtest `DEMO_STRATEGY` with default parameters on ``bars`` and write its report.

    Prints the metrics table; the report is ``out_dir/backtest_sma_cross.html``.

    Raises:
        ConfigError: the bars cannot be backtested (e.g. several symbols).
    """
    from tradepulse.backtest.runner import resolve_params, resolve_strategy, run_backtest
    from tradepulse.cli.backtest import friction_summary, metrics_table
    from tradepulse.reports import write_backtest_report

    strategy = resolve_strategy(DEMO_STRATEGY)
    params = resolve_params(strategy, None)
    frictions = demo_frictions()
    result = run_backtest(bars, strategy, params, engine="vector", config=frictions)
    symbol = str(bars.get_column("symbol")[0]) if "symbol" in bars.columns else "series"
    console.print(
        metrics_table(
            result,
            title=f"TradePulse: {DEMO_STRATEGY} on {symbol} ({frictions.name} frictions)",
            params=params.to_dict(),
        )
    )
    return write_backtest_report(
        result,
        bars,
        out_dir / f"backtest_{DEMO_STRATEGY}.html",
        strategy=DEMO_STRATEGY,
        params=params.to_dict(),
        engine="vector",
        frictions=friction_summary(frictions, cash=result.initial_cash),
    )


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path("reports"),
) -> None:
    """Analyse the shipped S&P 500 and NASDAQ daily bars; write indicator and backtest reports.

    The backtest runs sma_cross (default parameters, equities frictions) on the
    S&P 500 bars.
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
        backtest = demo_backtest(frames[0], out_dir=out)
    elapsed = time.perf_counter() - started
    console.print(f"report: {report.html_path}", highlight=False)
    for path in report.png_paths:
        console.print(f"chart:  {path}", highlight=False)
    console.print(f"backtest report: {backtest.html_path}", highlight=False)
    for path in backtest.png_paths:
        console.print(f"chart:  {path}", highlight=False)
    console.print(f"done in {elapsed:.1f} s", highlight=False)
