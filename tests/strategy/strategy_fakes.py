"""Hand-written fakes for strategy tests: a recording context and bar helpers.

(Named ``strategy_fakes`` rather than ``fakes``: test folders are not packages,
so helper module names must be unique across ``tests/``.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.strategy import Bar, Strategy, StrategyError

DAY_NS = 86_400 * 1_000_000_000
START_NS = 1_577_836_800 * 1_000_000_000  # 2020-01-01T00:00:00Z


class FakeContext:
    """A :class:`StrategyContext` that records orders and shows indicators up to ``bar_index``.

    Portfolio figures are fixed (the fake never fills); ``target_orders`` lists
    ``(bar_index, percent)`` of every ``order_target_percent`` call.
    """

    def __init__(self, params: Any, indicators: Mapping[str, NDArray[np.float64]]) -> None:
        self.params = params
        self.bar_index = -1
        self.position = 0.0
        self.cash = 10_000.0
        self.equity = 10_000.0
        self.target_orders: list[tuple[int, float]] = []
        self.other_calls: list[tuple[str, dict[str, Any]]] = []
        self._indicators = {name: np.asarray(values) for name, values in indicators.items()}

    def set_indicators(self, indicators: Mapping[str, NDArray[np.float64]]) -> None:
        """Replace the indicator arrays (a live host recomputes them as bars arrive)."""
        self._indicators = {name: np.asarray(values) for name, values in indicators.items()}

    def indicator(self, name: str, ago: int = 0) -> float:
        if ago < 0:
            raise StrategyError(f"ago must be >= 0, got {ago}")
        try:
            values = self._indicators[name]
        except KeyError:
            raise StrategyError(f"unknown indicator {name!r}") from None
        visible = values[: self.bar_index + 1]  # nothing after the current bar is reachable
        index = visible.shape[0] - 1 - ago
        return float(visible[index]) if index >= 0 else math.nan

    def order_target_percent(self, *, percent: float) -> str:
        self.target_orders.append((self.bar_index, percent))
        return f"order-{len(self.target_orders)}"

    def buy(self, **kwargs: Any) -> str:
        self.other_calls.append(("buy", kwargs))
        return f"buy-{len(self.other_calls)}"

    def sell(self, **kwargs: Any) -> str:
        self.other_calls.append(("sell", kwargs))
        return f"sell-{len(self.other_calls)}"

    def cancel(self, order_id: str) -> None:
        self.other_calls.append(("cancel", {"order_id": order_id}))


@dataclass
class EventRun:
    """What driving the event form produced."""

    targets: NDArray[np.float64]
    orders: list[tuple[int, float]] = field(default_factory=list)


def make_bars(close: NDArray[np.float64]) -> pl.DataFrame:
    """Return contract-shaped daily bars whose open/high/low hug ``close``."""
    close = np.asarray(close, dtype=np.float64)
    previous = np.concatenate([close[:1], close[:-1]])
    ts = START_NS + DAY_NS * np.arange(close.shape[0], dtype=np.int64)
    return pl.DataFrame(
        {
            "ts": pl.Series(ts).cast(pl.Datetime("ns", "UTC")),
            "open": previous,
            "high": np.maximum(previous, close),
            "low": np.minimum(previous, close),
            "close": close,
            "volume": np.full(close.shape[0], 1_000.0),
        }
    )


def random_closes(seed: int, n: int, *, decimals: int | None = None) -> NDArray[np.float64]:
    """Return a geometric random walk (1% per bar) from 100; rounding creates ties."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return np.round(close, decimals) if decimals is not None else close


def iter_bars(bars: pl.DataFrame) -> list[Bar]:
    """Return the rows of ``bars`` as :class:`Bar` values (ts in ns since the epoch)."""
    frame = bars.select(pl.col("ts").dt.epoch("ns"), "open", "high", "low", "close", "volume")
    return [Bar(*row) for row in frame.iter_rows()]


def targets_from_orders(orders: list[tuple[int, float]], n: int) -> NDArray[np.float64]:
    """Return the per-bar target implied by ``order_target_percent`` calls (0 before any)."""
    targets = np.zeros(n)
    for index, percent in orders:
        targets[index:] = percent
    return targets


def drive_event_form(strategy: Strategy, bars: pl.DataFrame, params: Any) -> EventRun:
    """Run ``initialize``, ``handle_tick`` per bar and ``finalize`` against a FakeContext."""
    ctx = FakeContext(params, strategy.indicators(bars, params))
    strategy.initialize(ctx)
    for index, bar in enumerate(iter_bars(bars)):
        ctx.bar_index = index
        strategy.handle_tick(ctx, bar)
    strategy.finalize(ctx)
    return EventRun(targets_from_orders(ctx.target_orders, bars.height), ctx.target_orders)


def drive_live(strategy: Strategy, bars: pl.DataFrame, params: Any) -> EventRun:
    """Like :func:`drive_event_form`, but recompute indicators from the bars so far at every bar.

    This is how a live host sees the market: bar t's decision can only use bars <= t.
    """
    ctx = FakeContext(params, {})
    strategy.initialize(ctx)
    for index, bar in enumerate(iter_bars(bars)):
        ctx.set_indicators(strategy.indicators(bars.head(index + 1), params))
        ctx.bar_index = index
        strategy.handle_tick(ctx, bar)
    strategy.finalize(ctx)
    return EventRun(targets_from_orders(ctx.target_orders, bars.height), ctx.target_orders)
