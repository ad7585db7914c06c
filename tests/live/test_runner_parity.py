"""Parity (issue 5, section 2): a file replayed through a live runner places the backtest's orders.

Every built-in strategy replays the shipped S&P 500 bars bar by bar through a
:class:`~tradepulse.live.StrategyRunner` on a paper venue, and the runner's
order log (ids, sides, types, quantities, prices, statuses, fills), fills,
trades, equity and metrics must equal those of
``run_event(bars, ..., fast_fills=False)`` exactly: same host code, same
matching engine, indicators recomputed on the bars seen so far. The runner's
history (10,000 bars by default) holds the whole file, so every indicator value
equals the backtest's bit for bit (``tradepulse.live.history``). Explicit
orders (limit, stop, stop-limit; IOC, FOK, DAY; cancel and replace), partial
fills under a participation cap, risk rejections and an order placed in
``initialize`` are covered too, on real and random bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from _strategies import CASH, NoParams, OrderPlan, PlannedOrder, Scripted, TargetFollower
from hypothesis import given, settings
from hypothesis import strategies as st
from live_helpers import assert_same_run, replay

from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.costs import (
    FixedCommission,
    NotionalCommission,
    SpreadSlippage,
    SquareRootImpact,
)
from tradepulse.execution import RiskLimits

BUILT_INS = ("sma_cross", "rsi_reversion", "bollinger_breakout")
FRICTIONS: Mapping[str, Mapping[str, Any]] = {
    "none": {},
    "commission_latency1": {"commission": 0.001, "latency_bars": 1},
}
#: Cost models, whole units and two bars of latency (sma_cross long/short only: it trades most).
MODELS: Mapping[str, Any] = {
    "commission": [NotionalCommission(rate=0.0005), FixedCommission(per_fill=1.0)],
    "slippage": [SpreadSlippage(spread_bps=2.0), SquareRootImpact(impact_bps=20.0)],
    "sizing": "whole",
    "latency_bars": 2,
}


def _reference(
    bars: pl.DataFrame, name: str, params: Mapping[str, object], frictions: Mapping[str, Any]
) -> Any:
    strategy = resolve_strategy(name)
    return run_event(
        bars, strategy, resolve_params(strategy, params), fast_fills=False, **frictions
    )


@pytest.mark.parametrize("friction", list(FRICTIONS))
@pytest.mark.parametrize("name", BUILT_INS)
def test_a_replayed_file_places_the_event_backtests_orders(
    sp500: pl.DataFrame, name: str, friction: str
) -> None:
    frictions = FRICTIONS[friction]
    reference = _reference(sp500, name, {}, frictions)

    runner, venue = replay(name, None, sp500, frictions)

    assert reference.orders is not None
    assert reference.orders.height > 10  # the comparison has orders to compare
    assert_same_run(runner.result(), reference)
    # The venue holds exactly those orders, under the runner's prefix.
    assert sorted(venue.orders) == sorted("r1:" + order for order in reference.orders["order_id"])


def test_long_short_with_cost_models_whole_units_and_latency(sp500: pl.DataFrame) -> None:
    params = {"fast": 5, "slow": 20, "direction": "long_short"}
    reference = _reference(sp500, "sma_cross", params, MODELS)

    runner, _ = replay("sma_cross", params, sp500, MODELS)

    assert_same_run(runner.result(), reference)


def test_geometry_phase_on_a_slice(sp500: pl.DataFrame) -> None:
    # The runner recomputes the indicators on every bar over all bars seen, and the
    # Ricci curvature solves a transport problem per window: 250 bars (a 20-bar
    # window) keep that near a second and still trade.
    bars = sp500.head(250)
    params = {"window": 20}
    reference = _reference(bars, "geometry_phase", params, FRICTIONS["commission_latency1"])

    runner, _ = replay("geometry_phase", params, bars, FRICTIONS["commission_latency1"])

    assert reference.orders is not None
    assert reference.orders.height > 5
    assert_same_run(runner.result(), reference)


#: Explicit orders of every type and time in force, with cancels and replaces.
PLAN = (
    PlannedOrder(bar=3, buy=True, quantity=5.0, order_type="limit", limit_offset=-0.005),
    PlannedOrder(bar=5, buy=True, quantity=3.0, order_type="stop", stop_offset=0.005),
    PlannedOrder(
        bar=8,
        buy=False,
        quantity=4.0,
        order_type="stop_limit",
        stop_offset=-0.005,
        limit_offset=-0.02,
    ),
    PlannedOrder(bar=10, buy=True, quantity=2.0, order_type="limit", time_in_force="ioc"),
    PlannedOrder(bar=12, buy=False, quantity=6.0, time_in_force="fok"),
    PlannedOrder(
        bar=15, buy=True, quantity=4.0, order_type="limit", limit_offset=-0.02, cancel_after=3
    ),
    PlannedOrder(
        bar=20, buy=True, quantity=4.0, order_type="limit", limit_offset=-0.02, replace_after=2
    ),
    PlannedOrder(
        bar=25, buy=False, quantity=3.0, order_type="limit", limit_offset=0.01, time_in_force="day"
    ),
    *(
        PlannedOrder(bar=bar, buy=bar % 20 < 10, quantity=7.0, order_type="limit")
        for bar in range(30, 390, 9)
    ),
)


@pytest.mark.parametrize(
    "frictions",
    [
        {"commission": 0.001, "latency_bars": 1},
        # About one unit per bar may fill: orders fill partly over several bars.
        {"max_participation": 1e-9, "commission": NotionalCommission(rate=0.0002)},
    ],
    ids=["latency1", "participation"],
)
def test_explicit_orders_cancels_and_replaces_match(
    sp500: pl.DataFrame, frictions: Mapping[str, Any]
) -> None:
    bars = sp500.head(400)
    reference = run_event(bars, OrderPlan(PLAN), NoParams(), cash=CASH, **frictions)

    runner, _ = replay(OrderPlan(PLAN), NoParams(), bars, {"cash": CASH, **frictions})

    assert reference.orders is not None
    statuses = set(reference.orders["status"])
    assert {"filled", "cancelled"} <= statuses  # the plan exercises the order life cycle
    assert (reference.orders["order_type"] == "stop_limit").any()
    assert_same_run(runner.result(), reference)


def test_risk_rejections_match(sp500: pl.DataFrame) -> None:
    bars = sp500.head(300)
    targets = np.where(np.arange(bars.height) % 40 < 20, 1.0, -0.5)
    risk = RiskLimits(max_position=Decimal(12), margin_rate=Decimal("0.5"))
    frictions = {"cash": 20_000.0, "commission": 0.001, "risk": risk, "sizing": "whole"}
    reference = run_event(bars, TargetFollower(targets), NoParams(), **frictions)

    runner, _ = replay(TargetFollower(targets), NoParams(), bars, frictions)

    assert reference.orders is not None
    assert (reference.orders["status"] == "rejected").any()
    assert_same_run(runner.result(), reference)


def test_an_order_placed_in_initialize_matches(sp500: pl.DataFrame) -> None:
    bars = sp500.head(50)

    def build() -> Scripted:
        return Scripted(
            {10: lambda ctx: ctx.sell(quantity=1.0)},
            on_initialize=lambda ctx: ctx.buy(quantity=2.0),
        )

    reference = run_event(bars, build(), NoParams(), cash=CASH)

    runner, _ = replay(build(), NoParams(), bars, {"cash": CASH})

    assert reference.orders is not None
    assert reference.orders["order_id"].to_list() == ["o1", "o2"]
    assert_same_run(runner.result(), reference)


@st.composite
def _plans(draw: st.DrawFn, *, bars: int) -> list[PlannedOrder]:
    return [
        PlannedOrder(
            bar=draw(st.integers(0, bars - 1)),
            buy=draw(st.booleans()),
            quantity=float(draw(st.integers(1, 40))),
            order_type=draw(st.sampled_from(["market", "limit", "stop", "stop_limit"])),
            time_in_force=draw(st.sampled_from(["gtc", "gtc", "ioc", "fok", "day"])),
            limit_offset=draw(st.sampled_from([-0.02, -0.005, 0.0, 0.005, 0.02])),
            stop_offset=draw(st.sampled_from([-0.02, -0.005, 0.005, 0.02])),
            cancel_after=draw(st.none() | st.integers(1, 4)),
            replace_after=draw(st.none() | st.integers(1, 3)),
        )
        for _ in range(draw(st.integers(1, 8)))
    ]


@settings(max_examples=30)
@given(
    data=st.data(),
    latency=st.integers(0, 2),
    participation=st.sampled_from([None, 0.05, 0.5]),
)
def test_random_order_flow_on_random_bars_matches(
    data: st.DataObject, latency: int, participation: float | None
) -> None:
    count = data.draw(st.integers(2, 40))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for index in range(count):
        open_, close = data.draw(st.integers(9_000, 11_000)), data.draw(st.integers(9_000, 11_000))
        high = max(open_, close) + data.draw(st.integers(0, 200))
        low = min(open_, close) - data.draw(st.integers(0, 200))
        volume = float(data.draw(st.sampled_from([0, 50, 400, 3_000])))
        stamp = start + timedelta(hours=6 * index)
        rows.append((stamp, open_ / 100, high / 100, low / 100, close / 100, volume))
    bars = pl.DataFrame(
        rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row"
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    plan = data.draw(_plans(bars=count))
    frictions = {"cash": CASH, "latency_bars": latency, "max_participation": participation}
    reference = run_event(bars, OrderPlan(plan), NoParams(), **frictions)

    runner, _ = replay(OrderPlan(plan), NoParams(), bars, frictions)

    assert_same_run(runner.result(), reference)
