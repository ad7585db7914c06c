"""``tradepulse data ...``: validate, synthesise and resample market data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.text import Text

from tradepulse.data.loaders import TS_UNITS, load_bars, write_bars
from tradepulse.data.resample import resample_bars
from tradepulse.data.schema import SYMBOL_COLUMN, TS_COLUMN
from tradepulse.data.synth import synthesize_bars
from tradepulse.errors import BarContractError, DataValidationError, TradePulseError

__all__ = ["data_app"]

data_app = typer.Typer(help="Validate, synthesise and resample market data.", no_args_is_help=True)

_stdout = Console(highlight=False, soft_wrap=True)
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

TsColOption = Annotated[
    str | None,
    typer.Option("--ts-col", help="Timestamp column (default: ts/timestamp/date/datetime/time)."),
]
PriceColOption = Annotated[
    str | None,
    typer.Option("--price-col", help="Column to read as close, e.g. 'Adj Close'."),
]
TsUnitOption = Annotated[
    str,
    typer.Option(
        "--ts-unit",
        help=f"Unit of numeric epoch timestamps: {', '.join(TS_UNITS)} (auto: from magnitude).",
    ),
]
TimezoneOption = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA zone of naive timestamps (default UTC)."),
]


def _say(text: Text | str) -> None:
    _stdout.print(text, markup=False)


def _complain(text: Text | str) -> None:
    _stderr.print(text, markup=False)


def _report_problems(error: DataValidationError, indent: str = "  ") -> None:
    for problem in error.problems:
        _complain(f"{indent}{problem}")
    omitted = error.omitted if isinstance(error, BarContractError) else 0
    if omitted:
        _complain(f"{indent}... and {omitted} more")


def _report_error(error: BaseException, *, context: str) -> None:
    if isinstance(error, DataValidationError):
        total = error.total if isinstance(error, BarContractError) else len(error.problems)
        noun = "problem" if total == 1 else "problems"
        _complain(Text.assemble(("FAIL", "bold red"), f": {error.source}: {total} {noun}"))
        _report_problems(error)
    elif isinstance(error, TradePulseError):
        _complain(Text.assemble(("ERROR", "bold red"), f": {error}"))
    else:
        # Anything unforeseen still gets one clear line, never a traceback.
        detail = str(error).strip().splitlines()
        reason = detail[0] if detail else "no details"
        _complain(
            Text.assemble(
                ("ERROR", "bold red"), f": {context}: unexpected {type(error).__name__}: {reason}"
            )
        )


@contextmanager
def _errors_exit(context: str) -> Iterator[None]:
    try:
        yield
    except typer.Exit:
        raise
    except Exception as error:
        _report_error(error, context=context)
        raise typer.Exit(code=1) from None


def _span(frame: pl.DataFrame) -> str:
    ts = frame.get_column(TS_COLUMN)
    if ts.len() == 0:
        return "no rows"
    daily = bool((ts.dt.truncate("1d") == ts).all())
    pattern = "%Y-%m-%d" if daily else "%Y-%m-%dT%H:%M:%SZ"
    first, last = frame.select(
        pl.col(TS_COLUMN).min().dt.to_string(pattern),
        pl.col(TS_COLUMN).max().dt.to_string(pattern).alias("last"),
    ).row(0)
    return f"{first} → {last}"


def _summary(path: Path, frame: pl.DataFrame) -> str:
    symbols = frame.get_column(SYMBOL_COLUMN).n_unique() if SYMBOL_COLUMN in frame.columns else 1
    noun = "symbol" if symbols == 1 else "symbols"
    return f"{path} — {frame.height} rows, {symbols} {noun}, {_span(frame)}"


@data_app.command("validate")
def validate(
    paths: Annotated[list[Path], typer.Argument(help="CSV or Parquet bar files.")],
    ts_col: TsColOption = None,
    price_col: PriceColOption = None,
    ts_unit: TsUnitOption = "auto",
    timezone: TimezoneOption = None,
    symbol_col: Annotated[
        str | None, typer.Option("--symbol-col", help="Symbol column (default: symbol/ticker).")
    ] = None,
    max_problems: Annotated[
        int, typer.Option("--max-problems", min=1, help="Problems listed per file.")
    ] = 20,
) -> None:
    """Check bar files against the bar contract; list each problem's row, column and value.

    Exit 0 when every file is valid, 1 otherwise.
    """
    failed = 0
    for path in paths:
        try:
            frame = load_bars(
                path,
                ts_col=ts_col,
                price_col=price_col,
                ts_unit=ts_unit,
                timezone=timezone,
                symbol_col=symbol_col,
                max_problems=max_problems,
            )
        except Exception as error:
            failed += 1
            _report_error(error, context=str(path))
            continue
        _say(Text.assemble(("OK", "bold green"), f": {_summary(path, frame)}"))
    if failed:
        raise typer.Exit(code=1)


@data_app.command("synth")
def synth(
    bars: Annotated[int, typer.Option("--bars", min=1, help="Number of bars.")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same file).")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet.")],
    freq: Annotated[
        str, typer.Option("--freq", help="Bar length, e.g. 1s, 1min, 1h, 1d.")
    ] = "1min",
    symbol: Annotated[str | None, typer.Option("--symbol", help="Add a symbol column.")] = None,
    start: Annotated[
        str, typer.Option("--start", help="First bar's timestamp (ISO 8601, UTC if naive).")
    ] = "2024-01-02T00:00:00Z",
    start_price: Annotated[float, typer.Option("--start-price", help="First open.")] = 100.0,
    with_regime: Annotated[
        bool, typer.Option("--with-regime", help="Add the regime label column.")
    ] = False,
) -> None:
    """Generate synthetic regime-switching OHLCV bars and write them to a file."""
    began = time.perf_counter()
    with _errors_exit(str(out)):
        with _stderr.status(f"Generating {bars:,} bars ({freq}, seed {seed})..."):
            frame = synthesize_bars(
                bars=bars,
                seed=seed,
                freq=freq,
                start=start,
                start_price=start_price,
                symbol=symbol,
                with_regime=with_regime,
            )
        with _stderr.status(f"Writing {out}..."):
            write_bars(frame, out)
    elapsed = time.perf_counter() - began
    _say(
        Text.assemble(
            ("Wrote", "bold green"),
            f" {frame.height:,} bars to {out} ({freq}, seed {seed}, {_span(frame)}, "
            f"{elapsed:.2f} s)",
        )
    )


@data_app.command("resample")
def resample(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet bar file.")],
    every: Annotated[str, typer.Option("--every", help="Bucket length, e.g. 5m, 1h, 1d, 1w.")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet.")],
    ts_col: TsColOption = None,
    price_col: PriceColOption = None,
    ts_unit: TsUnitOption = "auto",
    timezone: TimezoneOption = None,
) -> None:
    """Aggregate bars into coarser buckets and write them to a file.

    Per bucket and symbol: open = first, high = max, low = min, close = last,
    volume = sum; each bar is labelled with its bucket's start.
    """
    with _errors_exit(str(path)):
        frame = load_bars(
            path, ts_col=ts_col, price_col=price_col, ts_unit=ts_unit, timezone=timezone
        )
        resampled = resample_bars(frame, every=every)
        write_bars(resampled, out)
    _say(
        Text.assemble(
            ("Wrote", "bold green"),
            f" {resampled.height:,} bars ({every}) from {frame.height:,} to {out}",
        )
    )
