"""One backtest as charts and a self-contained HTML page.

``write_backtest_report(result, bars, "reports/sma_cross.html", ...)`` writes three
PNGs next to the page, named after its stem (``sma_cross_equity.png``,
``sma_cross_drawdown.png``, ``sma_cross_trades.png``), and the page itself with
those charts embedded (base64), the metrics, the strategy's parameters, the
frictions used and the first trades. The page needs no other file.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import matplotlib
import numpy as np
import polars as pl
from numpy.typing import NDArray

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from tradepulse.backtest.vector import BacktestResult
from tradepulse.errors import ConfigError
from tradepulse.metrics import Metrics

__all__ = [
    "DEFAULT_TRADE_ROWS",
    "BacktestReport",
    "compute_drawdown",
    "format_metric",
    "metric_rows",
    "write_backtest_report",
]

#: Trades listed in the report's trade table (the first ones; the PNG shows all).
DEFAULT_TRADE_ROWS: Final = 20

# Metrics shown as percentages; the rest are ratios, counts or money.
_PERCENT_METRICS: Final = frozenset(
    {"total_return", "cagr", "max_drawdown", "win_rate", "exposure"}
)
_RATIO_METRICS: Final = frozenset({"sharpe", "sortino", "calmar", "turnover"})
_TRADE_TABLE_COLUMNS: Final = (
    "entry_ts",
    "exit_ts",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "pnl",
    "return",
    "commission",
    "is_open",
)
_DPI: Final = 90


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """Where a backtest report was written: the HTML page and its PNG charts."""

    html_path: Path
    png_paths: tuple[Path, ...]


def format_metric(name: str, value: float | int) -> str:
    """Return ``value`` of metric ``name`` as display text (NaN and infinities as ``—``).

    Fractions (``total_return``, ``cagr``, ``max_drawdown``, ``win_rate``,
    ``exposure``) are shown as percentages, ``final_equity`` as money, counts as
    integers, ratios with three decimals.
    """
    if isinstance(value, int):  # bool is an int too
        return str(value)
    if not math.isfinite(value):
        return "—"
    if name in _PERCENT_METRICS:
        return f"{value * 100.0:.2f}%"
    if name in _RATIO_METRICS:
        return f"{value:.3f}"
    if name == "final_equity":
        return f"{value:,.2f}"
    return f"{value:g}"


def metric_rows(metrics: Metrics) -> list[tuple[str, str]]:
    """Return ``(name, text)`` for every metric, in `Metrics` field order."""
    return [(name, format_metric(name, value)) for name, value in metrics.to_dict().items()]


def compute_drawdown(equity: NDArray[np.float64], initial_cash: float) -> NDArray[np.float64]:
    """Return ``1 - equity / running peak`` per bar, the peak starting at ``initial_cash``.

    The largest value is `Metrics.max_drawdown` (same convention, a positive
    fraction).
    """
    peak = np.maximum.accumulate(np.concatenate(([initial_cash], equity)))[1:]
    drawdown: NDArray[np.float64] = 1.0 - equity / peak
    return drawdown


# ------------------------------------------------------------------------------ charts


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    # No "Software" entry: the bytes depend only on the chart.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _plot_equity(
    ts: NDArray[Any],
    equity: NDArray[np.float64],
    close: NDArray[np.float64],
    cash: float,
    title: str,
) -> bytes:
    figure, axis = plt.subplots(figsize=(12, 4))
    axis.plot(ts, equity, color="#1f4e79", linewidth=1.0, label="strategy equity")
    axis.plot(
        ts,
        cash * close / close[0],
        color="#999999",
        linewidth=0.8,
        label="buy and hold (close to close, no costs)",
    )
    axis.axhline(cash, color="black", linewidth=0.5, linestyle=":")
    axis.set_title(title)
    axis.set_ylabel("equity (quote currency)")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize=8)
    return _png(figure)


def _plot_drawdown(ts: NDArray[Any], drawdown: NDArray[np.float64], title: str) -> bytes:
    figure, axis = plt.subplots(figsize=(12, 3))
    percent = -100.0 * drawdown
    axis.fill_between(ts, percent, 0.0, color="#c0392b", alpha=0.4, linewidth=0)
    axis.plot(ts, percent, color="#c0392b", linewidth=0.7)
    axis.set_title(title)
    axis.set_ylabel("drawdown (%)")
    axis.grid(alpha=0.3)
    return _png(figure)


def _plot_trades(
    ts: NDArray[Any], close: NDArray[np.float64], trades: pl.DataFrame, title: str
) -> bytes:
    figure, axis = plt.subplots(figsize=(12, 5))
    axis.plot(ts, close, color="black", linewidth=0.7, label="close")
    if trades.height == 0:
        axis.text(
            0.5,
            0.5,
            "no trades",
            transform=axis.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color="#888888",
        )
    else:
        entry_bar = trades.get_column("entry_bar").to_numpy()
        exit_bar = trades.get_column("exit_bar").to_numpy()
        entry_price = trades.get_column("entry_price").to_numpy()
        exit_price = trades.get_column("exit_price").to_numpy()
        long = (trades.get_column("side") == "long").to_numpy()
        still_open = trades.get_column("is_open").to_numpy()
        closed = ~still_open
        markers = [
            (long, entry_bar, entry_price, "^", "#1e8449", "long entry"),
            (~long, entry_bar, entry_price, "v", "#c0392b", "short entry"),
            (closed, exit_bar, exit_price, "x", "#1f4e79", "exit"),
            (still_open, exit_bar, exit_price, "o", "#f39c12", "open at end (last close)"),
        ]
        for mask, bar, price, marker, colour, label in markers:
            if mask.any():
                axis.scatter(
                    ts[bar[mask]],
                    price[mask],
                    marker=marker,
                    color=colour,
                    s=28,
                    zorder=3,
                    label=label,
                )
    axis.set_title(title)
    axis.set_ylabel("price")
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", fontsize=8)
    return _png(figure)


# ------------------------------------------------------------------------------ page


def _cell(value: object) -> str:
    if isinstance(value, float):
        text = "—" if not math.isfinite(value) else f"{value:.6g}"
    elif value is None:
        text = "—"
    else:
        text = str(value)
    return f"<td>{html.escape(text)}</td>"


def _key_value_table(rows: Sequence[tuple[str, object]], *, empty: str) -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    body = "".join(f"<tr><th>{html.escape(name)}</th>{_cell(value)}</tr>" for name, value in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _trade_table(trades: pl.DataFrame, rows: int) -> str:
    if trades.height == 0:
        return "<p>no trades</p>"
    shown = trades.head(rows).with_columns(
        pl.col("entry_ts", "exit_ts").dt.to_string("%Y-%m-%d %H:%M:%S"),
        pl.col("side").cast(pl.String),
    )
    head = "".join(f"<th>{html.escape(name)}</th>" for name in _TRADE_TABLE_COLUMNS)
    body = "".join(
        "<tr>" + "".join(_cell(row[name]) for name in _TRADE_TABLE_COLUMNS) + "</tr>"
        for row in shown.select(_TRADE_TABLE_COLUMNS).iter_rows(named=True)
    )
    caption = (
        f"all {trades.height} trades"
        if trades.height <= rows
        else f"first {rows} of {trades.height} trades"
    )
    return (
        f"<p>{html.escape(caption)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _check_inputs(result: BacktestResult, bars: pl.DataFrame, target: Path) -> None:
    if target.suffix.lower() != ".html":
        raise ConfigError(f"report path must end in .html; got {str(target)!r}")
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if "symbol" in bars.columns and bars.get_column("symbol").n_unique() > 1:
        symbols = ", ".join(map(str, bars.get_column("symbol").unique(maintain_order=True)))
        raise ConfigError(
            f"a backtest report covers one symbol; bars hold several ({symbols}): "
            "backtest and report each symbol separately"
        )
    for column in ("ts", "close"):
        if column not in bars.columns:
            raise ConfigError(f"bars must have a {column!r} column; got columns {bars.columns}")
    if bars.height != result.ts.shape[0]:
        raise ConfigError(
            f"bars do not match the backtest: {bars.height} bars, "
            f"the result has {result.ts.shape[0]}"
        )
    stamps = bars.get_column("ts").cast(pl.Datetime("ns", "UTC")).to_numpy().view(np.int64)
    if not np.array_equal(stamps, result.ts):
        raise ConfigError("bars do not match the backtest: their timestamps differ")


def write_backtest_report(
    result: BacktestResult,
    bars: pl.DataFrame,
    path: str | Path,
    *,
    strategy: str,
    params: Mapping[str, object],
    engine: str,
    frictions: Mapping[str, object] | None = None,
    trade_rows: int = DEFAULT_TRADE_ROWS,
) -> BacktestReport:
    """Write the HTML report of ``result`` to ``path`` and its PNG charts beside it.

    ``bars`` are the bars the backtest ran on (one symbol). The charts are the
    equity curve (with buy and hold for reference), the drawdown, and the close
    with every trade's entries and exits at their fill prices; they are written
    as ``<stem>_equity.png``, ``<stem>_drawdown.png`` and ``<stem>_trades.png``
    in ``path``'s folder (created if needed) and embedded in the page. The page
    also lists the metrics, ``strategy`` and ``engine``, ``params`` and
    ``frictions`` (name -> value, shown as given) and the first ``trade_rows``
    trades. A run without trades gets a report that says so.

    Raises:
        ConfigError: ``path`` does not end in ``.html``, ``bars`` hold several
            symbols, lack ``ts`` or ``close``, or are not the bars of ``result``,
            or ``trade_rows`` is negative.
        OSError: a file cannot be written.
    """
    target = Path(path)
    _check_inputs(result, bars, target)
    if isinstance(trade_rows, bool) or not isinstance(trade_rows, int) or trade_rows < 0:
        raise ConfigError(f"trade_rows must be an integer >= 0; got {trade_rows!r}")
    ts = bars.get_column("ts").to_numpy()
    close = bars.get_column("close").to_numpy().astype(np.float64)
    equity = np.asarray(result.equity, dtype=np.float64)
    trades = result.trades
    symbol = (
        f" on {bars.get_column('symbol')[0]}" if "symbol" in bars.columns and bars.height else ""
    )
    label = f"{strategy}{symbol} ({engine} engine)"
    charts = [
        ("equity", "equity curve", _plot_equity(ts, equity, close, result.initial_cash, label)),
        (
            "drawdown",
            "drawdown",
            _plot_drawdown(ts, compute_drawdown(equity, result.initial_cash), label),
        ),
        ("trades", "trades on price", _plot_trades(ts, close, trades, label)),
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    png_paths: list[Path] = []
    images: list[str] = []
    for suffix, caption, png in charts:
        png_path = target.with_name(f"{target.stem}_{suffix}.png")
        png_path.write_bytes(png)
        png_paths.append(png_path)
        encoded = base64.b64encode(png).decode("ascii")
        images.append(
            f"<h2>{html.escape(caption.capitalize())}</h2>"
            f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
        )
    span = ""
    if bars.height:
        first, last = bars.select(
            pl.col("ts").first().dt.to_string("%Y-%m-%d %H:%M"),
            pl.col("ts").last().dt.to_string("%Y-%m-%d %H:%M").alias("last"),
        ).row(0)
        span = f"{first} → {last} UTC, "
    summary = f"{span}{bars.height} bars, starting cash {result.initial_cash:,.2f}"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>TradePulse backtest: {html.escape(label)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin-bottom:1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "tbody th{text-align:left}img{max-width:100%}</style></head><body>"
        f"<h1>Backtest: {html.escape(label)}</h1><p>{html.escape(summary)}</p>"
        "<h2>Metrics</h2>"
        f"{_key_value_table(metric_rows(result.metrics), empty='no metrics')}"
        "<h2>Parameters</h2>"
        f"{_key_value_table(list(params.items()), empty='no parameters')}"
        "<h2>Frictions</h2>"
        f"{_key_value_table(list((frictions or {}).items()), empty='none given')}"
        f"{''.join(images)}"
        f"<h2>Trades</h2>{_trade_table(trades, trade_rows)}"
        "</body></html>"
    )
    target.write_text(page, encoding="utf-8")
    return BacktestReport(html_path=target, png_paths=tuple(png_paths))
