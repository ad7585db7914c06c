"""Bar builders and a test-only strategy for the stress tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from tradepulse.strategy.api import Bar, Strategy, StrategyContext
from tradepulse.strategy.params import Params

__all__ = ["HoldParams", "HoldStrategy", "assert_contract", "bars_from", "flat_bars"]

_START = datetime(2024, 1, 1, tzinfo=UTC)


def bars_from(
    rows: Sequence[tuple[float, float, float, float, float]], *, symbol: str | None = None
) -> pl.DataFrame:
    """Daily bars from ``(open, high, low, close, volume)`` rows, from 2024-01-01."""
    frame = pl.DataFrame(
        {
            "ts": pl.Series([_START + timedelta(days=i) for i in range(len(rows))]).cast(
                pl.Datetime("ns", "UTC")
            ),
            "open": [float(row[0]) for row in rows],
            "high": [float(row[1]) for row in rows],
            "low": [float(row[2]) for row in rows],
            "close": [float(row[3]) for row in rows],
            "volume": [float(row[4]) for row in rows],
        }
    )
    if symbol is not None:
        frame = frame.with_columns(pl.lit(symbol).alias("symbol"))
    return frame


def flat_bars(count: int) -> pl.DataFrame:
    """``count`` bars opening and closing at 100, high 101, low 99, volume 10."""
    return bars_from([(100.0, 101.0, 99.0, 100.0, 10.0)] * count)


def assert_contract(frame: pl.DataFrame) -> None:
    """Assert the bar contract with plain numpy (independent of the pandera schema)."""
    open_, high, low, close, volume = (
        frame.get_column(name).to_numpy() for name in ("open", "high", "low", "close", "volume")
    )
    for values in (open_, high, low, close):
        assert np.all(np.isfinite(values))
        assert np.all(values > 0.0)
    assert np.all(low <= open_)
    assert np.all(low <= close)
    assert np.all(open_ <= high)
    assert np.all(close <= high)
    assert np.all(volume >= 0.0)
    assert np.all(np.isfinite(volume))
    ts = frame.get_column("ts").cast(pl.Int64).to_numpy()
    assert np.all(np.diff(ts) > 0)
    assert frame.schema["ts"] == pl.Datetime("ns", "UTC")


@dataclass(frozen=True, slots=True)
class HoldParams(Params):
    """No parameters."""


class HoldStrategy(Strategy[HoldParams]):
    """Event form only: go all in on the first bar's close and hold."""

    name = "hold_event_only"
    api_version = "1.0"
    params_type = HoldParams

    def __init__(self) -> None:
        self._ordered = False

    def initialize(self, ctx: StrategyContext[HoldParams]) -> None:
        """Start without an order."""
        self._ordered = False

    def handle_tick(self, ctx: StrategyContext[HoldParams], bar: Bar) -> None:
        """Order the all-in target once."""
        if not self._ordered:
            ctx.order_target_percent(percent=1.0)
            self._ordered = True
