"""``tradepulse indicators`` and ``tradepulse analyze``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich.table import Table

from tradepulse.cli._common import (
    PriceColumnOption,
    TimestampColumnOption,
    TimestampUnitOption,
    TimezoneOption,
    console,
    existing_paths,
    fail,
    progress_bar,
    reported_errors,
)
from tradepulse.data.loaders import load_bars

if TYPE_CHECKING:
    from tradepulse.indicators.frame import IndicatorConfig

__all__ = ["analyze_command", "indicators_command", "summary_table"]

WindowOption = Annotated[
    int, typer.Option("--window", min=4, help="Window (bars) of the geometry indicators.")
]
StrideOption = Annotated[
    int,
    typer.Option(
        "--ricci-stride",
        min=1,
        help="Compute Ricci curvature every N bars and carry it forward (causal).",
    ),
]
DeltaOption = Annotated[
    float, typer.Option("--ricci-delta", help="Relative price quantisation of Ricci levels.")
]


def _load(
    paths: list[Path],
    *,
    ts_col: str | None,
    price_col: str | None,
    ts_unit: str,
    timezone: str | None,
) -> pl.DataFrame:
    existing_paths(paths)
    return load_bars(
        paths if len(paths) > 1 else paths[0],
        ts_col=ts_col,
        price_col=price_col,
        ts_unit=ts_unit,
        timezone=timezone,
    )


def _config(*, window: int, ricci_stride: int, ricci_delta: float) -> IndicatorConfig:
    # The indicator kernels (numba, POT) load only when a command needs them.
    from tradepulse.indicators.frame import IndicatorConfig

    return IndicatorConfig(window=window, ricci_stride=ricci_stride, ricci_delta=ricci_delta)


def _latest(indicators: pl.DataFrame) -> list[dict[str, Any]]:
    from tradepulse.indicators.frame import latest_values

    return latest_values(indicators)


def _compute(bars: pl.DataFrame, config: IndicatorConfig) -> pl.DataFrame:
    from tradepulse.indicators.frame import compute_indicators

    symbols = bars.get_column("symbol").n_unique() if "symbol" in bars.columns else 1
    stages = 6 * symbols
    with progress_bar("indicators", stages) as progress:
        task = progress.task_ids[0]

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=f"indicators: {label}")

        return compute_indicators(bars, config, progress=advance)


def indicators_command(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet bar file(s).")],
    out: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")],
    window: WindowOption = 200,
    ricci_stride: StrideOption = 1,
    ricci_delta: DeltaOption = 0.005,
    ts_col: TimestampColumnOption = None,
    price_col: PriceColumnOption = None,
    ts_unit: TimestampUnitOption = "auto",
    timezone: TimezoneOption = None,
) -> None:
    """Compute every indicator and write ts plus one column per indicator."""
    suffix = out.suffix.lower()
    if suffix not in {".parquet", ".csv"}:
        fail(f"--out must end in .parquet or .csv, got {out.name!r}", code=2)
    with reported_errors():
        bars = _load(paths, ts_col=ts_col, price_col=price_col, ts_unit=ts_unit, timezone=timezone)
        config = _config(window=window, ricci_stride=ricci_stride, ricci_delta=ricci_delta)
        result = _compute(bars, config)
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".parquet":
            result.write_parquet(out)
        else:
            result.write_csv(out)
    console.print(f"wrote {out} ({result.height} rows, {result.width} columns)", highlight=False)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_table(rows: list[dict[str, Any]], *, title: str) -> Table:
    """Return a rich table of the latest indicator values, one column per symbol."""
    table = Table(title=title, show_lines=False)
    table.add_column("indicator")
    labels = [str(row.get("symbol", "series")) for row in rows]
    for label in labels:
        table.add_column(label, justify="right")
    keys = [key for key in rows[0] if key != "symbol"] if rows else []
    for key in keys:
        cells = []
        for row in rows:
            value = row.get(key)
            if isinstance(value, float):
                cells.append("—" if not math.isfinite(value) else f"{value:.6g}")
            else:
                cells.append("—" if value is None else str(value))
        table.add_row(key, *cells)
    return table


def analyze_command(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet bar file(s).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    window: WindowOption = 200,
    ricci_stride: StrideOption = 1,
    ricci_delta: DeltaOption = 0.005,
    ts_col: TimestampColumnOption = None,
    price_col: PriceColumnOption = None,
    ts_unit: TimestampUnitOption = "auto",
    timezone: TimezoneOption = None,
) -> None:
    """Print the latest value of every indicator and the current phase."""
    with reported_errors():
        bars = _load(paths, ts_col=ts_col, price_col=price_col, ts_unit=ts_unit, timezone=timezone)
        config = _config(window=window, ricci_stride=ricci_stride, ricci_delta=ricci_delta)
        rows = _latest(_compute(bars, config))
    rows = [{key: _clean(value) for key, value in row.items()} for row in rows]
    if as_json:
        payload: dict[str, Any] = {"window": window, "latest": rows}
        typer.echo(json.dumps(payload, indent=2))
        return
    console.print(summary_table(rows, title="Latest indicator values"))
