"""Properties of both backtest engines on random bars, targets and order flow (hypothesis).

- no look-ahead: a run on the first K bars gives, bar for bar, the equity (and
  fills) of the full run's first K bars, for random targets, the built-ins and
  explicit order flow;
- fills never exceed their order's quantity nor, all orders together, the
  participation cap times the bar's volume, and never pass a limit;
- zero-cost fills conserve cash plus the marked position: replaying the fills
  from the starting cash gives the equity of every bar, and the final equity
  is the starting cash plus the trades' P&L;
- two runs of the same inputs are identical, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from _strategies import CASH, NoParams, OrderPlan, PlannedOrder, TargetFollower
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tradepulse.backtest import BacktestResult, run_vectorised
from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import run_backtest
from tradepulse.costs import NotionalCommission, SpreadSlippage, SquareRootImpact
from tradepulse.data import synthesize_bars
from tradepulse.execution.liquidity import (
    ConstantDepth,
    DepthModel,
    SquareRootImpactDepth,
    VolumeProportionalDepth,
)
from tradepulse.strategy import discover_strategies

#: Frictions the properties run under (``none`` first: the conservation tests use it).
FRICTIONS: Mapping[str, Mapping[str, object]] = {
    "none": {},
    "commission_whole": {"commission": 0.001, "sizing": "whole"},
    "costly_latency2": {
        "commission": NotionalCommission(rate=0.0005),
        "slippage": [SpreadSlippage(spread_bps=2.0), SquareRootImpact(impact_bps=30.0)],
        "latency_bars": 2,
    },
}
#: Parameters that make the built-ins trade on a few dozen bars.
QUICK_PARAMS: Mapping[str, Mapping[str, object]] = {
    "sma_cross": {"fast": 2, "slow": 5, "direction": "long_short"},
    "rsi_reversion": {"period": 3, "lower": 40, "upper": 60},
    "bollinger_breakout": {"period": 4, "num_std": 0.5, "direction": "long_short"},
    "geometry_phase": {"window": 20, "entry": 0.0, "exit": -0.01},
}
TARGET_LEVELS = [-1.0, -0.5, 0.0, 0.4, 1.0]
ENGINES = ("vector", "event")


# ------------------------------------------------------------------ generators


@st.composite
def ohlcv_bars(draw: st.DrawFn, *, min_size: int = 2, max_size: int = 40) -> pl.DataFrame:
    """Valid OHLCV bars on a cent grid, irregularly spaced (several per UTC day at times)."""
    count = draw(st.integers(min_size, max_size))
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for _ in range(count):
        open_, close = draw(st.integers(9_000, 11_000)), draw(st.integers(9_000, 11_000))
        high = max(open_, close) + draw(st.integers(0, 200))
        low = min(open_, close) - draw(st.integers(0, 200))
        volume = float(draw(st.sampled_from([0, 50, 400, 1_000, 3_000])))
        rows.append((stamp, open_ / 100, high / 100, low / 100, close / 100, volume))
        stamp += timedelta(hours=draw(st.sampled_from([1, 6, 24])))
    frame = pl.DataFrame(
        rows, schema=["ts", "open", "high", "low", "close", "volume"], orient="row"
    )
    return frame.with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))


@st.composite
def random_bars(draw: st.DrawFn, *, min_size: int = 2, max_size: int = 60) -> pl.DataFrame:
    """Either hypothesis-made bars or synthetic market bars with a random seed."""
    if draw(st.booleans()):
        return draw(ohlcv_bars(min_size=min_size, max_size=max_size))
    count = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    return synthesize_bars(bars=count, seed=seed, freq=draw(st.sampled_from(["1h", "1d"])))


@st.composite
def order_plans(draw: st.DrawFn, *, bars: int) -> list[PlannedOrder]:
    """Explicit orders of every type and time in force, some later cancelled or replaced."""
    plan = []
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["market", "limit", "stop", "stop_limit"]))
        plan.append(
            PlannedOrder(
                # Mostly in the first half, so prefix runs see fills too.
                bar=draw(st.integers(0, max(bars - 1, 0)).map(lambda b: b // 2)),
                buy=draw(st.booleans()),
                quantity=float(draw(st.integers(1, 60))),
                order_type=kind,
                time_in_force=draw(st.sampled_from(["gtc", "gtc", "ioc", "fok", "day"])),
                limit_offset=draw(st.sampled_from([-0.02, -0.005, 0.0, 0.005, 0.02])),
                stop_offset=draw(st.sampled_from([-0.02, -0.005, 0.005, 0.02])),
                cancel_after=draw(st.none() | st.integers(1, 4)),
                replace_after=draw(st.none() | st.integers(1, 3)),
            )
        )
    return plan


def depth_models() -> st.SearchStrategy[DepthModel | None]:
    return st.sampled_from(
        [
            None,
            ConstantDepth(quantity_per_level=15.0, level_spacing_bps=5.0, levels=3),
            VolumeProportionalDepth(fraction_per_level=0.02, level_spacing_bps=2.0),
            SquareRootImpactDepth(coefficient=0.05),
        ]
    )


# ------------------------------------------------------------------ helpers


def run_targets(
    engine: str, bars: pl.DataFrame, targets: np.ndarray, options: Mapping[str, object]
) -> BacktestResult:
    if engine == "vector":
        return run_vectorised(bars, targets, cash=CASH, **options)  # type: ignore[arg-type]
    return run_event(bars, TargetFollower(targets), NoParams(), cash=CASH, **options)  # type: ignore[arg-type]


def run_plan(
    bars: pl.DataFrame, plan: list[PlannedOrder], options: Mapping[str, object]
) -> BacktestResult:
    return run_event(bars, OrderPlan(plan), NoParams(), cash=CASH, **options)  # type: ignore[arg-type]


def assert_prefix(prefix: BacktestResult, full: BacktestResult, count: int) -> None:
    """The prefix run's equity and fills are the full run's first ``count`` bars', exactly."""
    np.testing.assert_array_equal(prefix.equity, full.equity[:count])
    early = full.fills.filter(pl.col("bar") < count)
    assert prefix.fills.equals(early), (prefix.fills, early)


def assert_identical(first: BacktestResult, second: BacktestResult) -> None:
    np.testing.assert_array_equal(first.equity, second.equity)
    assert first.fills.equals(second.fills)
    assert first.trades.equals(second.trades)
    if first.orders is None:
        assert second.orders is None
    else:
        assert second.orders is not None
        assert first.orders.equals(second.orders)
    assert repr(first.metrics) == repr(second.metrics)  # NaN-safe, exact floats


def assert_zero_cost_conservation(result: BacktestResult, bars: pl.DataFrame) -> None:
    """Replay the fills from the starting cash; check every fill and every bar."""
    fills = result.fills
    sides = np.where(fills.get_column("side").cast(pl.String).to_numpy() == "buy", 1.0, -1.0)
    quantity = fills.get_column("quantity").to_numpy()
    price = fills.get_column("price").to_numpy()
    bar = fills.get_column("bar").to_numpy()
    assert (fills.get_column("commission").to_numpy() == 0.0).all()
    # Each fill swaps cash for units at its price: cash + position * price is unchanged.
    cash = np.concatenate(([CASH], CASH - np.cumsum(sides * quantity * price)))
    position = np.concatenate(([0.0], np.cumsum(sides * quantity)))
    scale = np.abs(cash[1:]) + np.abs(position[1:] * price) + CASH
    before = cash[:-1] + position[:-1] * price
    after = cash[1:] + position[1:] * price
    assert (np.abs(after - before) <= 1e-12 * scale).all()
    # At every close: equity is the replayed cash plus the replayed position marked.
    close = bars.get_column("close").to_numpy()
    latest = np.searchsorted(bar, np.arange(bars.height), side="right")
    expected = cash[latest] + position[latest] * close
    magnitude = np.abs(cash[latest]) + np.abs(position[latest] * close) + CASH
    assert (np.abs(result.equity - expected) <= 1e-9 * magnitude).all()
    # The trades' P&L (an open one marked at the last close) adds up to the final equity.
    total = CASH + result.trades.get_column("pnl").sum()
    assert math.isclose(result.metrics.final_equity, total, rel_tol=1e-9, abs_tol=1e-9 * CASH)


# ------------------------------------------------------------------ (a) no look-ahead


@settings(max_examples=30, deadline=None)
@given(data=st.data(), engine=st.sampled_from(ENGINES), friction=st.sampled_from(list(FRICTIONS)))
def test_no_look_ahead_random_targets(data: st.DataObject, engine: str, friction: str) -> None:
    bars = data.draw(random_bars())
    targets = np.array(
        data.draw(
            st.lists(st.sampled_from(TARGET_LEVELS), min_size=bars.height, max_size=bars.height)
        )
    )
    count = data.draw(st.integers(1, bars.height))
    options = FRICTIONS[friction]
    full = run_targets(engine, bars, targets, options)
    prefix = run_targets(engine, bars.head(count), targets[:count], options)
    assert_prefix(prefix, full, count)


@settings(max_examples=24, deadline=None)
@given(
    data=st.data(),
    name=st.sampled_from(sorted(discover_strategies())),
    engine=st.sampled_from(ENGINES),
    friction=st.sampled_from(list(FRICTIONS)),
)
def test_no_look_ahead_any_built_in(
    data: st.DataObject, name: str, engine: str, friction: str
) -> None:
    if engine == "vector" and not discover_strategies()[name]().has_signals:
        engine = "event"
    seed = data.draw(st.integers(0, 2**32 - 1))
    bars = synthesize_bars(bars=120, seed=seed, freq="1h")
    count = data.draw(st.integers(1, bars.height))
    params = QUICK_PARAMS.get(name, {})
    options = FRICTIONS[friction]
    full = run_backtest(bars, name, params, engine=engine, **options)  # type: ignore[arg-type]
    prefix = run_backtest(bars.head(count), name, params, engine=engine, **options)  # type: ignore[arg-type]
    assert_prefix(prefix, full, count)
    event(f"trades in the prefix: {prefix.metrics.trades > 0}")


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    latency=st.integers(0, 2),
    participation=st.none() | st.sampled_from([0.05, 0.3, 1.0]),
    depth=depth_models(),
    friction=st.sampled_from(list(FRICTIONS)),
)
def test_no_look_ahead_explicit_orders(
    data: st.DataObject,
    latency: int,
    participation: float | None,
    depth: DepthModel | None,
    friction: str,
) -> None:
    bars = data.draw(random_bars(max_size=30))
    plan = data.draw(order_plans(bars=bars.height))
    count = data.draw(st.integers(1, bars.height))
    options = {
        **FRICTIONS[friction],
        "latency_bars": latency,
        "max_participation": participation,
        "depth": depth,
    }
    full = run_plan(bars, plan, options)
    prefix = run_plan(bars.head(count), plan, options)
    assert_prefix(prefix, full, count)
    event(f"fills in the prefix: {prefix.fills.height > 0}")


# ------------------------------------------------------------------ (b) fills and liquidity


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    latency=st.integers(0, 2),
    participation=st.sampled_from([0.01, 0.05, 0.2, 1.0]),
    depth=depth_models(),
    friction=st.sampled_from(list(FRICTIONS)),
)
def test_fills_never_exceed_the_order_nor_the_participation_cap(
    data: st.DataObject,
    latency: int,
    participation: float,
    depth: DepthModel | None,
    friction: str,
) -> None:
    bars = data.draw(random_bars(max_size=30))
    plan = data.draw(order_plans(bars=bars.height))
    options = {
        **FRICTIONS[friction],
        "latency_bars": latency,
        "max_participation": participation,
        "depth": depth,
    }
    result = run_plan(bars, plan, options)
    orders = result.orders
    assert orders is not None
    filled = orders.get_column("filled_quantity").to_numpy()
    assert (filled <= orders.get_column("quantity").to_numpy()).all()
    fills = result.fills
    assert math.isclose(
        float(filled.sum()), float(fills.get_column("quantity").sum()), rel_tol=1e-12, abs_tol=1e-9
    )
    # All orders together take at most the cap of each bar's volume.
    per_bar = fills.group_by("bar").agg(pl.col("quantity").sum()).sort("bar")
    volume = bars.get_column("volume").to_numpy()[per_bar.get_column("bar").to_numpy()]
    cap = participation * volume
    taken = per_bar.get_column("quantity").to_numpy()
    assert (taken <= cap * (1 + 1e-12) + 1e-9).all()
    event(f"fills: {'some' if fills.height else 'none'}")
    event(f"a bar filled to its cap: {bool((taken >= cap - 1.0).any())}")
    partly = (filled > 0) & (filled < orders.get_column("quantity").to_numpy())
    event(f"an order partly filled: {bool(partly.any())}")
    # No order is filled beyond its limit, on average.
    limited = orders.filter(pl.col("limit_price").is_not_null() & (pl.col("filled_quantity") > 0))
    for row in limited.iter_rows(named=True):
        sign = 1.0 if row["side"] == "buy" else -1.0
        assert sign * (row["average_price"] - row["limit_price"]) <= 1e-9 * row["limit_price"]


# ------------------------------------------------------------------ (c) conservation


@settings(max_examples=30, deadline=None)
@given(data=st.data(), engine=st.sampled_from(ENGINES), latency=st.integers(0, 3))
def test_zero_cost_fills_conserve_cash_plus_marked_position_for_targets(
    data: st.DataObject, engine: str, latency: int
) -> None:
    bars = data.draw(random_bars())
    targets = np.array(
        data.draw(
            st.lists(st.sampled_from(TARGET_LEVELS), min_size=bars.height, max_size=bars.height)
        )
    )
    result = run_targets(engine, bars, targets, {"latency_bars": latency})
    assert_zero_cost_conservation(result, bars)


@settings(max_examples=30, deadline=None)
@given(
    data=st.data(),
    participation=st.none() | st.sampled_from([0.05, 0.5]),
    depth=depth_models(),
)
def test_zero_cost_fills_conserve_cash_plus_marked_position_for_explicit_orders(
    data: st.DataObject, participation: float | None, depth: DepthModel | None
) -> None:
    # A depth model moves prices but charges nothing: the conservation still holds.
    bars = data.draw(random_bars(max_size=30))
    plan = data.draw(order_plans(bars=bars.height))
    result = run_plan(bars, plan, {"max_participation": participation, "depth": depth})
    assert_zero_cost_conservation(result, bars)


# ------------------------------------------------------------------ (d) determinism


@settings(max_examples=20, deadline=None)
@given(
    data=st.data(),
    engine=st.sampled_from(ENGINES),
    friction=st.sampled_from(list(FRICTIONS)),
    depth=depth_models(),
)
def test_two_runs_are_identical(
    data: st.DataObject, engine: str, friction: str, depth: DepthModel | None
) -> None:
    bars = data.draw(random_bars())
    targets = np.array(
        data.draw(
            st.lists(st.sampled_from(TARGET_LEVELS), min_size=bars.height, max_size=bars.height)
        )
    )
    options = FRICTIONS[friction]
    assert_identical(
        run_targets(engine, bars, targets, options), run_targets(engine, bars, targets, options)
    )
    plan = data.draw(order_plans(bars=bars.height))
    explicit = {**options, "max_participation": 0.2, "depth": depth}
    assert_identical(run_plan(bars, plan, explicit), run_plan(bars, plan, explicit))
    name = data.draw(st.sampled_from(sorted(QUICK_PARAMS)))
    assert_identical(
        run_backtest(bars, name, QUICK_PARAMS[name], engine=engine, **options),  # type: ignore[arg-type]
        run_backtest(bars, name, QUICK_PARAMS[name], engine=engine, **options),  # type: ignore[arg-type]
    )
