"""Helpers of the live-runner tests: paper venues, replays and run comparisons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray
from polars.testing import assert_frame_equal

from tradepulse.backtest import BacktestResult
from tradepulse.domain import Instrument
from tradepulse.execution import MatchingEngine
from tradepulse.live import ReplayFeed, StrategyRunner, paper_venue
from tradepulse.strategy import Bar, Params, Strategy, StrategyContext

#: run_event's default grid (every float exact), for a symbol-less frame.
EXACT = Instrument(
    symbol="ASSET",
    price_increment=Decimal("1e-30"),
    quantity_increment=Decimal("1e-30"),
    cash_increment=Decimal("1e-30"),
)

#: Frictions the venue needs too (the rest only concern the runner).
VENUE_KEYS = ("commission", "slippage", "latency_bars", "max_participation", "depth")


def venue_for(frictions: Mapping[str, Any], instrument: Instrument = EXACT) -> MatchingEngine:
    """Return a paper venue matching with the venue part of ``frictions``."""
    return paper_venue(
        instrument, **{key: frictions[key] for key in VENUE_KEYS if key in frictions}
    )


def replay(
    strategy: str | Strategy,
    params: Mapping[str, object] | Any,
    bars: pl.DataFrame,
    frictions: Mapping[str, Any],
    *,
    venue: MatchingEngine | None = None,
    runner_id: str = "r1",
    history: int | None = None,
) -> tuple[StrategyRunner, MatchingEngine]:
    """Feed ``bars`` to a new runner through a `ReplayFeed`; return the runner and its venue."""
    venue = venue_for(frictions) if venue is None else venue
    extra: dict[str, Any] = {} if history is None else {"history": history}
    runner = StrategyRunner(
        strategy, params, venue=venue, runner_id=runner_id, **frictions, **extra
    )
    for item in ReplayFeed(bars):
        runner.on_bar(item.bar)
    return runner, venue


def assert_same_run(result: BacktestResult, reference: BacktestResult) -> None:
    """Assert two runs placed the same orders and booked the same fills, trades and equity."""
    assert reference.orders is not None
    assert result.orders is not None
    assert_frame_equal(result.orders, reference.orders)
    np.testing.assert_array_equal(result.ts, reference.ts)
    np.testing.assert_array_equal(result.equity, reference.equity)
    assert_frame_equal(result.fills, reference.fills)
    assert_frame_equal(result.trades, reference.trades)
    assert repr(result.metrics) == repr(reference.metrics)  # NaN-safe, exact floats


@dataclass(frozen=True, slots=True)
class NoParameters(Params):
    """No parameters."""


class CloseReader(Strategy[NoParameters]):
    """Read ``close`` ``ago`` 0 to ``depth`` bars back on every bar; count ``indicators()`` calls.

    ``reads`` holds, per bar, the values read; with ``read=False`` it reads nothing.
    """

    name = "close_reader"
    api_version = "1.0"
    params_type = NoParameters

    def __init__(self, *, depth: int = 3, read: bool = True) -> None:
        self.depth = depth
        self.read = read
        self.calls = 0
        self.reads: list[list[float]] = []

    def indicators(
        self, bars: pl.DataFrame, params: NoParameters
    ) -> Mapping[str, NDArray[np.float64]]:
        """Return ``close`` (causal) and count the call."""
        self.calls += 1
        return {"close": bars.get_column("close").to_numpy().astype(np.float64)}

    def handle_tick(self, ctx: StrategyContext[NoParameters], bar: Bar) -> None:
        """Read the closes (twice, to show the second read is free)."""
        if self.read:
            self.reads.append([ctx.indicator("close", ago) for ago in range(self.depth + 1)])
            ctx.indicator("close")


class KilledError(Exception):
    """The simulated death of a runner's process."""


class KillingVenue:
    """A venue that dies (raises `KilledError`) at the ``call``-th call of ``method``.

    ``after`` says whether the call takes effect at ``engine`` before the death.
    Everything else goes straight to ``engine``.
    """

    def __init__(self, engine: MatchingEngine, *, method: str, call: int, after: bool) -> None:
        self.engine = engine
        self.method = method
        self.call = call
        self.after = after
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.engine, name)
        if name != self.method:
            return attribute

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.call:
                if self.after:
                    attribute(*args, **kwargs)
                raise KilledError(f"killed at {name} call {self.calls}")
            return attribute(*args, **kwargs)

        return wrapped
