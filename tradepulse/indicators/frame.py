"""Every indicator of a bar frame at once, with stable column names.

:func:`compute_indicators` is what ``tradepulse indicators``, ``analyze``,
the demo and the golden files use. Column names carry the parameters
(``sma_20``, ``bb_upper_20_2``, ``kuramoto_r_200``), so a file says how it was
made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators.classic import atr, bollinger_bands, ema, macd, rsi, sma
from tradepulse.indicators.entropy import entropy_change, shannon_entropy
from tradepulse.indicators.hurst import hurst_exponent
from tradepulse.indicators.kuramoto import kuramoto_cross, kuramoto_order
from tradepulse.indicators.phase import (
    PhaseThresholds,
    composite_score,
    detect_phase,
    phase_names,
)
from tradepulse.indicators.ricci import ricci_curvature

__all__ = [
    "IndicatorConfig",
    "compute_indicators",
    "indicator_columns",
    "latest_values",
]

ProgressCallback = Callable[[str], None]


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class IndicatorConfig:
    """Parameters of every indicator; the defaults are TradePulse's documented defaults.

    ``ricci_stride`` > 1 computes the Ricci curvature every ``ricci_stride`` bars
    and carries it forward in between (still causal); see
    :func:`tradepulse.indicators.ricci.ricci_curvature`.
    """

    sma_period: int = 20
    ema_period: int = 20
    rsi_period: int = 14
    atr_period: int = 14
    bb_period: int = 20
    bb_num_std: float = 2.0
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    window: int = 200
    entropy_bins: int | None = None
    hurst_max_lag: int | None = None
    ricci_delta: float = 0.005
    ricci_alpha: float = 0.5
    ricci_stride: int = 1
    thresholds: PhaseThresholds = field(default_factory=PhaseThresholds)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            counted = item.name == "window" or item.name.endswith(
                ("_period", "_fast", "_slow", "_signal", "_stride")
            )
            if counted and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise IndicatorError(f"{item.name} must be a positive integer, got {value!r}")
        if self.window < 4:
            raise IndicatorError(f"window must be >= 4, got {self.window!r}")


def indicator_columns(config: IndicatorConfig | None = None) -> list[str]:
    """Return the indicator column names :func:`compute_indicators` writes, in order."""
    c = config or IndicatorConfig()
    bb = f"{c.bb_period}_{_number(c.bb_num_std)}"
    mac = f"{c.macd_fast}_{c.macd_slow}_{c.macd_signal}"
    w = str(c.window)
    return [
        f"sma_{c.sma_period}",
        f"ema_{c.ema_period}",
        f"rsi_{c.rsi_period}",
        f"atr_{c.atr_period}",
        f"bb_upper_{bb}",
        f"bb_middle_{bb}",
        f"bb_lower_{bb}",
        f"macd_{mac}",
        f"macd_signal_{mac}",
        f"macd_hist_{mac}",
        f"kuramoto_r_{w}",
        f"entropy_{w}",
        f"delta_entropy_{w}",
        f"hurst_{w}",
        f"ricci_{w}",
        f"composite_{w}",
        "phase",
    ]


def _column(frame: pl.DataFrame, name: str) -> NDArray[np.float64]:
    return frame.get_column(name).to_numpy().astype(np.float64, copy=False)


def _compute_one(
    frame: pl.DataFrame, config: IndicatorConfig, progress: ProgressCallback | None
) -> pl.DataFrame:
    c = config
    names = indicator_columns(c)
    close = _column(frame, "close")
    high = _column(frame, "high")
    low = _column(frame, "low")

    def step(label: str) -> None:
        if progress is not None:
            progress(label)

    values: dict[str, Any] = {}
    values[names[0]] = sma(close, c.sma_period)
    values[names[1]] = ema(close, c.ema_period)
    values[names[2]] = rsi(close, c.rsi_period)
    values[names[3]] = atr(high, low, close, period=c.atr_period)
    bands = bollinger_bands(close, period=c.bb_period, num_std=c.bb_num_std)
    values[names[4]], values[names[5]], values[names[6]] = bands.upper, bands.middle, bands.lower
    lines = macd(close, fast=c.macd_fast, slow=c.macd_slow, signal=c.macd_signal)
    values[names[7]], values[names[8]], values[names[9]] = lines.line, lines.signal, lines.histogram
    step("classic")
    order = kuramoto_order(close, c.window)
    values[names[10]] = order
    step("kuramoto")
    values[names[11]] = shannon_entropy(close, c.window, bins=c.entropy_bins)
    change = entropy_change(close, c.window, bins=c.entropy_bins)
    values[names[12]] = change
    step("entropy")
    values[names[13]] = hurst_exponent(close, c.window, max_lag=c.hurst_max_lag)
    step("hurst")
    curvature = ricci_curvature(
        close, c.window, delta=c.ricci_delta, alpha=c.ricci_alpha, stride=c.ricci_stride
    )
    values[names[14]] = curvature
    step("ricci")
    values[names[15]] = composite_score(order, change, curvature)
    values[names[16]] = phase_names(detect_phase(order, change, curvature, thresholds=c.thresholds))
    step("phase")
    columns: list[pl.Series] = [
        pl.Series(name, value, dtype=pl.Float64).fill_nan(None)
        for name, value in values.items()
        if name != "phase"
    ]
    columns.append(pl.Series("phase", values["phase"], dtype=pl.Utf8))
    keys = ["ts", "symbol"] if "symbol" in frame.columns else ["ts"]
    return frame.select(keys).with_columns(columns)


def compute_indicators(
    bars: pl.DataFrame,
    config: IndicatorConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> pl.DataFrame:
    """Compute every classic and geometry indicator of validated ``bars``.

    Returns ``ts`` (and ``symbol`` when present) plus the columns of
    :func:`indicator_columns`; warm-up values are null. With several symbols
    each is computed on its own series, and ``kuramoto_cross_<window>`` adds
    the cross-asset synchrony at the timestamps every symbol has (null
    elsewhere). ``progress`` is called with a label after each stage.

    Raises :class:`IndicatorError` for invalid parameters.
    """
    config = config or IndicatorConfig()
    if "symbol" not in bars.columns:
        return _compute_one(bars, config, progress)
    parts = [
        _compute_one(part, config, progress)
        for part in bars.partition_by("symbol", maintain_order=True)
    ]
    result = pl.concat(parts, how="vertical")
    symbols = bars.get_column("symbol").unique(maintain_order=True).to_list()
    if len(symbols) < 2:
        return result
    wide = (
        bars.select("ts", "symbol", "close")
        .pivot(on="symbol", index="ts", values="close")
        .drop_nulls()
        .sort("ts")
    )
    matrix = wide.select([str(s) for s in symbols]).to_numpy().astype(np.float64)
    cross = kuramoto_cross(matrix, config.window)
    name = f"kuramoto_cross_{config.window}"
    cross_frame = wide.select("ts").with_columns(
        pl.Series(name, cross, dtype=pl.Float64).fill_nan(None)
    )
    return result.join(cross_frame, on="ts", how="left", maintain_order="left")


def latest_values(indicators: pl.DataFrame) -> list[dict[str, Any]]:
    """Return the last row of each symbol (or the last row) as plain dictionaries."""
    if "symbol" in indicators.columns:
        last = indicators.group_by("symbol", maintain_order=True).tail(1)
    else:
        last = indicators.tail(1)
    rows = last.to_dicts()
    for row in rows:
        ts = row.get("ts")
        if ts is not None:
            row["ts"] = ts.isoformat()
    return rows
