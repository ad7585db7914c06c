"""``tradepulse demo``: the main job on embedded defaults and the shipped real data."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from tradepulse.cli._common import console, progress_bar, reported_errors

__all__ = ["demo_command"]


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path("reports"),
) -> None:
    """Analyse the shipped S&P 500 and NASDAQ daily bars and write an indicator report."""
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
    elapsed = time.perf_counter() - started
    console.print(f"report: {report.html_path}", highlight=False)
    for path in report.png_paths:
        console.print(f"chart:  {path}", highlight=False)
    console.print(f"done in {elapsed:.1f} s", highlight=False)
