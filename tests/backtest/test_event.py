"""The event-driven engine: order types, time in force, liquidity, latency, risk, context.

Every expected fill is derived by hand from the matching rules in
:mod:`tradepulse.execution.matching` (an order placed on bar t's close may fill
from bar t + 1 + latency; limits at the open or the limit, stops at the open or
the stop, ...), and every cash figure from ``cash -= quantity * price + fee``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from _strategies import CASH, NoParams, OrderPlan, PlannedOrder, Scripted, ohlcv

from tradepulse.backtest import BacktestResult
from tradepulse.backtest.event import ORDER_COLUMNS, EventContext, run_event
from tradepulse.backtest.runner import run_backtest
from tradepulse.costs import FixedCommission, NotionalCommission, SpreadSlippage
from tradepulse.domain.instrument import Instrument
from tradepulse.errors import ConfigError, DataError
from tradepulse.execution.liquidity import ConstantDepth
from tradepulse.execution.risk import RiskLimits
from tradepulse.strategy.api import StrategyError
from tradepulse.strategy.builtins import SmaCrossParams

FLAT = (100.0, 101.0, 99.0, 100.0)  # open, high, low, close of a quiet bar


def run(
    rows: Sequence[tuple[float, ...]],
    script: Mapping[int, Callable[[EventContext], object]],
    *,
    step: timedelta = timedelta(days=1),
    **options: Any,
) -> tuple[BacktestResult, Scripted]:
    """Run a :class:`Scripted` strategy over bars built from ``rows`` (volume 1,000)."""
    strategy = Scripted(script)
    bars = ohlcv(rows, step=step)
    return run_event(bars, strategy, NoParams(), **options), strategy


def fills_of(result: BacktestResult) -> list[tuple[int, str, float, float]]:
    """(bar, side, quantity, price) of every fill."""
    return [
        (row["bar"], str(row["side"]), row["quantity"], row["price"])
        for row in result.fills.iter_rows(named=True)
    ]


def order_row(result: BacktestResult, order_id: object) -> dict[str, Any]:
    """The order log's row of ``order_id``."""
    assert isinstance(order_id, str)
    assert result.orders is not None
    rows = result.orders.filter(pl.col("order_id") == order_id).to_dicts()
    assert len(rows) == 1, f"no single order {order_id!r} in {result.orders}"
    return rows[0]


# ------------------------------------------------------------------ order types


@pytest.mark.parametrize(
    ("later", "order", "expected"),
    [
        # Market: the next bar's open.
        ([(100.5, 101, 99, 100)], {"order_type": "market"}, (1, 100.5)),
        # Limit buy 99: bar 1 (low 99.5) misses, bar 2 (open 100, low 98.5) fills at the limit.
        (
            [(100, 100.5, 99.5, 100), (100, 100.5, 98.5, 99)],
            {"order_type": "limit", "limit_price": 99.0},
            (2, 99.0),
        ),
        # Limit buy 101 with bar 1 opening at 100 <= 101: the open (price improvement).
        ([(100, 100.5, 99.5, 100)], {"order_type": "limit", "limit_price": 101.0}, (1, 100.0)),
        # Stop buy 102: bar 1 (high 101.5) does not trigger; bar 2 triggers inside at 102.
        (
            [(100, 101.5, 99.5, 101), (101, 102.5, 100.5, 102)],
            {"order_type": "stop", "stop_price": 102.0},
            (2, 102.0),
        ),
        # Stop buy 102, bar 1 gaps up to 103: the open.
        ([(103, 104, 102.5, 103.5)], {"order_type": "stop", "stop_price": 102.0}, (1, 103.0)),
        # Stop-limit buy, stop 102 limit 102.5: triggered at 102 inside bar 1, within the limit.
        (
            [(101, 102.8, 100.5, 102)],
            {"order_type": "stop_limit", "stop_price": 102.0, "limit_price": 102.5},
            (1, 102.0),
        ),
        # Stop-limit buy, stop 102 limit 101.5: bar 1 triggers at 102 (above the limit) and
        # later dips to 100.5, but the dip is not known to follow the trigger: no fill. It
        # rests as a limit: bar 2 opens at 102 and touches 101: filled at 101.5.
        (
            [(101, 102.8, 100.5, 102), (102, 102.5, 101, 101.5)],
            {"order_type": "stop_limit", "stop_price": 102.0, "limit_price": 101.5},
            (2, 101.5),
        ),
        # Stop-limit buy, stop 102 limit 103, bar 1 gaps to 104 (triggered at the open,
        # above the limit) then trades down to 102.5: filled at the limit 103.
        (
            [(104, 105, 102.5, 104.5)],
            {"order_type": "stop_limit", "stop_price": 102.0, "limit_price": 103.0},
            (1, 103.0),
        ),
    ],
)
def test_buy_orders_fill_at_the_documented_prices(
    later: list[tuple[float, ...]], order: dict[str, object], expected: tuple[int, float]
) -> None:
    result, strategy = run([FLAT, *later], {0: lambda ctx: ctx.buy(quantity=10, **order)})
    assert fills_of(result) == [(expected[0], "buy", 10.0, expected[1])]
    row = order_row(result, strategy.returned[0])
    assert (row["status"], row["filled_quantity"], row["average_price"]) == (
        "filled",
        10.0,
        expected[1],
    )


@pytest.mark.parametrize(
    ("later", "order", "expected"),
    [
        # Limit sell 101: bar 1 (high 100.5) misses, bar 2 reaches 101.5: the limit.
        (
            [(100, 100.5, 99.5, 100), (100, 101.5, 99.5, 101)],
            {"order_type": "limit", "limit_price": 101.0},
            (2, 101.0),
        ),
        # Limit sell 99, bar 1 opens at 100 >= 99: the open.
        ([(100, 100.5, 99.5, 100)], {"order_type": "limit", "limit_price": 99.0}, (1, 100.0)),
        # Stop sell 98: bar 1 (low 98.5) does not trigger, bar 2 triggers inside at 98.
        (
            [(100, 100.5, 98.5, 99), (99, 99.5, 97.5, 98)],
            {"order_type": "stop", "stop_price": 98.0},
            (2, 98.0),
        ),
        # Stop sell 98, bar 1 gaps down to 97: the open.
        ([(97, 98.5, 96.5, 97)], {"order_type": "stop", "stop_price": 98.0}, (1, 97.0)),
        # Stop-limit sell, stop 98 limit 97.5: triggered at 98 inside bar 1, within the limit.
        (
            [(99, 99.5, 97.8, 98.2)],
            {"order_type": "stop_limit", "stop_price": 98.0, "limit_price": 97.5},
            (1, 98.0),
        ),
    ],
)
def test_sell_orders_fill_at_the_documented_prices(
    later: list[tuple[float, ...]], order: dict[str, object], expected: tuple[int, float]
) -> None:
    result, _ = run([FLAT, *later], {0: lambda ctx: ctx.sell(quantity=10, **order)})
    assert fills_of(result) == [(expected[0], "sell", 10.0, expected[1])]
    assert result.position[-1] == -10.0


def test_an_unreached_limit_keeps_working_until_the_end() -> None:
    result, strategy = run(
        [FLAT, (100, 100.5, 99.5, 100), (100, 100.5, 99.5, 100)],
        {0: lambda ctx: ctx.buy(quantity=10, order_type="limit", limit_price=95.0)},
    )
    assert result.fills.height == 0
    order_id = strategy.returned[0]
    assert order_row(result, order_id)["status"] == "accepted"
    assert [snapshot.open_orders for snapshot in strategy.seen] == [(), (order_id,), (order_id,)]


def test_a_triggered_stop_that_did_not_fill_continues_as_a_market_order() -> None:
    # Buy stop 102 for 150 units, 100 units per bar (10% of 1,000): bar 1 gaps to 103
    # (100 at the open 103); the rest is a market order at bar 2's open, 101.
    result, _ = run(
        [FLAT, (103, 104, 102.5, 103.5), (101, 101.5, 100.5, 101)],
        {0: lambda ctx: ctx.buy(quantity=150, order_type="stop", stop_price=102.0)},
        max_participation=0.1,
    )
    assert fills_of(result) == [(1, "buy", 100.0, 103.0), (2, "buy", 50.0, 101.0)]


# ------------------------------------------------------------------ time in force


def test_ioc_limit_not_reached_on_its_first_bar_is_cancelled() -> None:
    # Bar 1 does not reach 99; bar 2 would, but the IOC order is gone by then.
    result, strategy = run(
        [FLAT, (100, 100.5, 99.5, 100), (100, 100.5, 98, 99)],
        {
            0: lambda ctx: ctx.buy(
                quantity=10, order_type="limit", limit_price=99.0, time_in_force="ioc"
            )
        },
    )
    assert result.fills.height == 0
    row = order_row(result, strategy.returned[0])
    assert row["status"] == "cancelled"
    assert "IOC" in str(row["reason"])


def test_ioc_fills_what_the_bar_allows_and_cancels_the_rest() -> None:
    # 10% of 1,000 units = 100 units on bar 1; the other 50 are cancelled.
    result, strategy = run(
        [FLAT, FLAT, FLAT],
        {0: lambda ctx: ctx.buy(quantity=150, time_in_force="ioc")},
        max_participation=0.1,
    )
    assert fills_of(result) == [(1, "buy", 100.0, 100.0)]
    row = order_row(result, strategy.returned[0])
    assert (row["status"], row["filled_quantity"]) == ("cancelled", 100.0)
    assert "IOC" in str(row["reason"])


@pytest.mark.parametrize(("quantity", "filled"), [(150, 0.0), (80, 80.0)])
def test_fok_fills_completely_or_not_at_all(quantity: int, filled: float) -> None:
    result, strategy = run(
        [FLAT, FLAT, FLAT],
        {0: lambda ctx: ctx.buy(quantity=quantity, time_in_force="fok")},
        max_participation=0.1,
    )
    row = order_row(result, strategy.returned[0])
    assert row["filled_quantity"] == filled
    if filled:
        assert fills_of(result) == [(1, "buy", 80.0, 100.0)]
        assert row["status"] == "filled"
    else:
        assert result.fills.height == 0
        assert row["status"] == "cancelled"
        assert "FOK" in str(row["reason"])


def test_an_ioc_stop_waits_for_its_trigger_bar() -> None:
    result, _ = run(
        [FLAT, (100, 101.5, 99.5, 101), (101, 102.5, 100.5, 102)],
        {
            0: lambda ctx: ctx.buy(
                quantity=10, order_type="stop", stop_price=102.0, time_in_force="ioc"
            )
        },
    )
    assert fills_of(result) == [(2, "buy", 10.0, 102.0)]


def test_day_orders_expire_when_the_utc_date_changes() -> None:
    # Six-hour bars: bars 0-3 are day D, bars 4-7 day D+1. Every bar of D+1 reaches 95.
    quiet = (100, 100.5, 99.5, 100)
    dip = (100, 100.5, 94, 99)
    rows = [quiet, quiet, quiet, quiet, dip, dip, dip, dip]
    result, strategy = run(
        rows,
        {
            # Placed on bar 0 (D): may fill on bars 1-3 (D), which miss; expires on bar 4.
            0: lambda ctx: ctx.buy(
                quantity=1, order_type="limit", limit_price=95.0, time_in_force="day"
            ),
            # Placed on bar 3 (D, 18:00): first eligible bar is bar 4, so it belongs to D+1.
            3: lambda ctx: ctx.buy(
                quantity=2, order_type="limit", limit_price=95.0, time_in_force="day"
            ),
            # The same order as bar 0's, GTC: fills on bar 4.
            1: lambda ctx: ctx.buy(quantity=4, order_type="limit", limit_price=95.0),
        },
        step=timedelta(hours=6),
    )
    first = order_row(result, strategy.returned[0])
    assert first["status"] == "expired"
    assert first["filled_quantity"] == 0.0
    assert "DAY" in str(first["reason"])
    assert order_row(result, strategy.returned[3])["status"] == "filled"
    assert sorted(fills_of(result)) == [(4, "buy", 2.0, 95.0), (4, "buy", 4.0, 95.0)]


# ------------------------------------------------------------------ cancel and replace


def test_cancel_from_handle_tick_stops_a_working_order() -> None:
    ids: list[str] = []

    def place(ctx: EventContext) -> str:
        ids.append(ctx.buy(quantity=10, order_type="limit", limit_price=95.0))
        return ids[-1]

    result, strategy = run(
        [FLAT, FLAT, FLAT, (100, 100.5, 94, 96)],
        {0: place, 2: lambda ctx: ctx.cancel(ids[0])},
    )
    assert result.fills.height == 0  # bar 3 reaches 95, but the order is gone
    row = order_row(result, ids[0])
    assert row["status"] == "cancelled"
    assert [snapshot.open_orders for snapshot in strategy.seen] == [(), (ids[0],), (ids[0],), ()]


def test_cancel_of_a_filled_order_is_a_no_op_and_of_an_unknown_id_an_error() -> None:
    ids: list[str] = []
    result, _ = run(
        [FLAT, FLAT, FLAT],
        {0: lambda ctx: ids.append(ctx.buy(quantity=1)), 2: lambda ctx: ctx.cancel(ids[0])},
    )
    assert order_row(result, ids[0])["status"] == "filled"
    with pytest.raises(StrategyError, match="no order has id 'nope'"):
        run([FLAT, FLAT], {1: lambda ctx: ctx.cancel("nope")})


def test_replace_cancels_and_resubmits_with_the_new_price() -> None:
    ids: list[str] = []
    result, _ = run(
        # Bar 2 reaches 98.5: the replacement (99) fills there, the original (95) would not.
        [FLAT, FLAT, (100, 100.5, 98.5, 99)],
        {
            0: lambda ctx: ids.append(ctx.buy(quantity=10, order_type="limit", limit_price=95.0)),
            1: lambda ctx: ids.append(ctx.replace(ids[0], limit_price=99.0)),
        },
    )
    old, new = ids
    assert new != old
    assert order_row(result, old)["status"] == "cancelled"
    assert repr(new) in str(order_row(result, old)["reason"])
    replacement = order_row(result, new)
    assert (replacement["status"], replacement["limit_price"], replacement["bar"]) == (
        "filled",
        99.0,
        1,
    )
    assert fills_of(result) == [(2, "buy", 10.0, 99.0)]


def test_replace_of_a_partly_filled_order_carries_its_remainder() -> None:
    # 250 units, 100 per bar. Bar 1 opens at 100 <= 101: 100 units at the open. The
    # replacement (limit 99.5) holds the other 150: bars 2 and 3 open at 100 and touch
    # 99: 100, then 50, at 99.5.
    ids: list[str] = []
    touch = (100, 100.5, 99, 100)
    result, _ = run(
        [FLAT, FLAT, touch, touch, touch],
        {
            0: lambda ctx: ids.append(ctx.buy(quantity=250, order_type="limit", limit_price=101.0)),
            1: lambda ctx: ids.append(ctx.replace(ids[0], limit_price=99.5)),
        },
        max_participation=0.1,
    )
    assert fills_of(result) == [
        (1, "buy", 100.0, 100.0),
        (2, "buy", 100.0, 99.5),
        (3, "buy", 50.0, 99.5),
    ]
    assert order_row(result, ids[1])["quantity"] == 150.0
    assert order_row(result, ids[0])["filled_quantity"] == 100.0


def test_replace_needs_a_working_explicit_order() -> None:
    ids: list[Any] = []
    with pytest.raises(StrategyError, match="not a working order"):
        run(
            [FLAT, FLAT, FLAT],
            {
                0: lambda ctx: ids.append(ctx.buy(quantity=1)),
                2: lambda ctx: ctx.replace(ids[0], quantity=2),
            },
        )
    with pytest.raises(StrategyError, match="not a working order"):
        run(
            [FLAT, FLAT, FLAT],
            {
                0: lambda ctx: ids.append(ctx.order_target_percent(percent=1.0)),
                1: lambda ctx: ctx.replace(ids[-1], quantity=2),
            },
            latency_bars=2,
        )


# ------------------------------------------------------------------ liquidity


def test_partial_fills_never_exceed_the_participation_cap_and_the_rest_keeps_working() -> None:
    # 10% of 1,000 units per bar: 250 units fill as 100, 100, 50 at the opens.
    rows = [FLAT, (101, 102, 100, 101), (102, 103, 101, 102), (103, 104, 102, 103), FLAT]
    result, strategy = run(rows, {0: lambda ctx: ctx.buy(quantity=250)}, max_participation=0.1)
    assert fills_of(result) == [
        (1, "buy", 100.0, 101.0),
        (2, "buy", 100.0, 102.0),
        (3, "buy", 50.0, 103.0),
    ]
    order_id = strategy.returned[0]
    assert [snapshot.open_orders for snapshot in strategy.seen] == [
        (),
        (order_id,),
        (order_id,),
        (),
        (),
    ]
    assert [snapshot.position for snapshot in strategy.seen] == [0, 100, 200, 250, 250]
    trade = result.trades.row(0, named=True)
    assert trade["quantity"] == 250.0
    assert trade["entry_price"] == pytest.approx((100 * 101 + 100 * 102 + 50 * 103) / 250)


def test_the_participation_cap_is_shared_by_all_orders_in_arrival_order() -> None:
    # Cap 100 per bar: bar 1 gives the first order its 80 and the second 20; bar 2 the
    # second's last 40. A bar without volume fills nothing.
    rows = [FLAT, FLAT, (100, 101, 99, 100, 0.0), FLAT]
    result, _ = run(
        rows,
        {0: lambda ctx: (ctx.buy(quantity=80), ctx.buy(quantity=60))},
        max_participation=0.1,
    )
    assert fills_of(result) == [
        (1, "buy", 80.0, 100.0),
        (1, "buy", 20.0, 100.0),
        (3, "buy", 40.0, 100.0),
    ]


def test_a_depth_model_prices_and_limits_what_an_order_takes() -> None:
    # Three levels of 10 units, 100 bps apart: a buy at open 100 takes 100, 101, 102.
    depth = ConstantDepth(quantity_per_level=10.0, level_spacing_bps=100.0, levels=3)
    result, _ = run(
        [FLAT, FLAT, FLAT, FLAT],
        {
            0: lambda ctx: ctx.buy(quantity=25),  # 10 @ 100, 10 @ 101, 5 @ 102
            1: lambda ctx: ctx.buy(quantity=40),  # 30 on bar 2, the last 10 on bar 3
        },
        depth=depth,
    )
    rows = fills_of(result)
    assert [(bar, side, quantity) for bar, side, quantity, _ in rows] == [
        (1, "buy", 25.0),
        (2, "buy", 30.0),
        (3, "buy", 10.0),
    ]
    assert rows[0][3] == pytest.approx((10 * 100 + 10 * 101 + 5 * 102) / 25, rel=1e-12)
    assert rows[1][3] == pytest.approx((10 * 100 + 10 * 101 + 10 * 102) / 30, rel=1e-12)
    assert rows[2][3] == 100.0


def test_a_depth_model_never_fills_a_limit_beyond_its_price() -> None:
    # Limit 100.5: only level 0 (100) is within it; 10 units per bar at 100.
    depth = ConstantDepth(quantity_per_level=10.0, level_spacing_bps=100.0, levels=3)
    result, _ = run(
        [FLAT, FLAT, FLAT, FLAT],
        {0: lambda ctx: ctx.buy(quantity=25, order_type="limit", limit_price=100.5)},
        depth=depth,
    )
    assert fills_of(result) == [
        (1, "buy", 10.0, 100.0),
        (2, "buy", 10.0, 100.0),
        (3, "buy", 5.0, 100.0),
    ]


def test_costs_apply_to_explicit_orders_as_in_the_vectorised_engine() -> None:
    # Spread 20 bps (half: 0.1%) against every fill that takes liquidity, capped at a
    # limit; a resting limit fills at its price. Commission 0.1% of notional plus 1 per
    # fill. Bar 1 opens at 100 and stays above 99.5; bar 2 opens at 100 and dips to 98.5.
    result, _ = run(
        [FLAT, (100, 100.5, 99.5, 100), (100, 100.5, 98.5, 99)],
        {
            0: lambda ctx: (
                ctx.buy(quantity=10),  # 100 * 1.001 = 100.1
                ctx.buy(quantity=10, order_type="limit", limit_price=100.05),  # capped
                ctx.buy(quantity=10, order_type="limit", limit_price=99.0),  # rests: 99
            )
        },
        slippage=SpreadSlippage(spread_bps=20.0),
        commission=[NotionalCommission(rate=0.001), FixedCommission(per_fill=1.0)],
    )
    fills = result.fills
    assert fills.select("bar", "quantity").rows() == [(1, 10.0), (1, 10.0), (2, 10.0)]
    np.testing.assert_allclose(fills.get_column("price"), [100.1, 100.05, 99.0], rtol=1e-12)
    np.testing.assert_allclose(fills.get_column("commission"), [2.001, 2.0005, 1.99], rtol=1e-12)
    spent = 10 * (100.1 + 100.05 + 99.0) + 2.001 + 2.0005 + 1.99
    assert result.cash[-1] == pytest.approx(CASH - spent, rel=1e-12)


# ------------------------------------------------------------------ latency


@pytest.mark.parametrize("latency", [0, 1, 2])
def test_latency_delays_explicit_and_target_orders_equally(latency: int) -> None:
    # Every bar opens at a different price, so the fill bar shows in the price.
    rows = [(100.0 + i, 101.0 + i, 99.0 + i, 100.0 + i) for i in range(6)]
    explicit, _ = run(rows, {0: lambda ctx: ctx.buy(quantity=10)}, latency_bars=latency)
    target, _ = run(
        rows, {0: lambda ctx: ctx.order_target_percent(percent=0.5)}, latency_bars=latency
    )
    limit, _ = run(
        rows,
        # Every bar reaches 110: the limit buy fills at the first eligible open.
        {0: lambda ctx: ctx.buy(quantity=10, order_type="limit", limit_price=110.0)},
        latency_bars=latency,
    )
    bar = 1 + latency
    open_ = 100.0 + bar
    assert fills_of(explicit) == [(bar, "buy", 10.0, open_)]
    assert fills_of(limit) == [(bar, "buy", 10.0, open_)]
    # Half of the equity (10,000, no costs) at that open.
    assert fills_of(target) == [(bar, "buy", pytest.approx(5_000.0 / open_, rel=1e-12), open_)]


# ------------------------------------------------------------------ pre-trade risk


@pytest.mark.parametrize(
    ("limits", "too_big", "reason"),
    [
        (RiskLimits(max_position=Decimal(10), margin_rate=None), 15, "max_position"),
        (RiskLimits(max_order_notional=Decimal(500), margin_rate=None), 6, "max_order_notional"),
        (RiskLimits(max_order_quantity=Decimal(5), margin_rate=None), 6, "max_order_quantity"),
        # Fully funded: 150 units at the close 100 need 15,000 > 10,000 of equity.
        (RiskLimits(), 150, "insufficient cash/margin"),
    ],
)
def test_risk_rejects_with_a_reason_and_the_strategy_keeps_running(
    limits: RiskLimits, too_big: int, reason: str
) -> None:
    result, strategy = run(
        [FLAT, FLAT, FLAT, FLAT],
        {0: lambda ctx: ctx.buy(quantity=too_big), 1: lambda ctx: ctx.buy(quantity=4)},
        risk=limits,
    )
    rejected = order_row(result, strategy.returned[0])
    assert rejected["status"] == "rejected"
    assert str(rejected["reason"]).startswith(reason)
    assert rejected["filled_quantity"] == 0.0
    assert order_row(result, strategy.returned[1])["status"] == "filled"
    assert fills_of(result) == [(2, "buy", 4.0, 100.0)]
    assert len(strategy.seen) == 4
    assert strategy.finalized
    assert strategy.seen[1].open_orders == ()


def test_risk_counts_open_orders_toward_the_position_limit() -> None:
    # Two working limit buys of 6 each: the second projects 12 > 10 and is refused.
    result, strategy = run(
        [FLAT, FLAT],
        {
            0: lambda ctx: (
                ctx.buy(quantity=6, order_type="limit", limit_price=90.0),
                ctx.buy(quantity=6, order_type="limit", limit_price=90.0),
            )
        },
        risk=RiskLimits(max_position=Decimal(10), margin_rate=None),
    )
    first, second = strategy.returned[0]  # type: ignore[misc]
    assert order_row(result, first)["status"] == "accepted"
    assert order_row(result, second)["status"] == "rejected"


def test_risk_checks_a_target_leg_at_the_open_it_was_sized_at() -> None:
    # An all-in target is sized at bar 1's open (95): 10,000 / 95 units, fully funded.
    # Checked against the previous close (100) instead, it looks like 10,526 of
    # exposure and is refused. Sizing and checking must use the same price.
    result, _ = run(
        [FLAT, (95, 96, 94, 95), (95, 96, 94, 95)],
        {0: lambda ctx: ctx.order_target_percent(percent=1.0)},
        risk=RiskLimits(),
    )
    assert result.orders is not None
    assert result.orders.get_column("status").to_list() == ["filled"], result.orders.to_dicts()
    assert fills_of(result) == [(1, "buy", pytest.approx(10_000.0 / 95.0, rel=1e-12), 95.0)]


def test_an_order_placed_in_initialize_with_risk_limits_gives_a_clear_error() -> None:
    # Without risk limits an order placed in initialize fills at bar 0's open.
    strategy = Scripted(on_initialize=lambda ctx: ctx.buy(quantity=1))
    plain = run_event(ohlcv([FLAT, FLAT]), strategy, NoParams())
    assert fills_of(plain) == [(0, "buy", 1.0, 100.0)]
    # With them there is no reference price yet: the host must say so, not trip an assert.
    strategy = Scripted(on_initialize=lambda ctx: ctx.buy(quantity=1))
    with pytest.raises(StrategyError, match="initialize") as caught:
        run_event(ohlcv([FLAT, FLAT]), strategy, NoParams(), risk=RiskLimits())
    assert "AssertionError" not in str(caught.value)


# ------------------------------------------------------------------ the context


def test_indicator_reads_the_past_only_and_nan_before_the_first_bar() -> None:
    seen: list[tuple[float, float, float]] = []

    def read(ctx: EventContext) -> None:
        seen.append((ctx.indicator("x"), ctx.indicator("x", 1), ctx.indicator("x", 3)))

    strategy = Scripted(
        dict.fromkeys(range(4), read), lines={"x": np.array([10.0, 11.0, 12.0, 13.0])}
    )
    run_event(ohlcv([FLAT] * 4), strategy, NoParams())
    expected = [(10, math.nan, math.nan), (11, 10, math.nan), (12, 11, math.nan), (13, 12, 10)]
    assert len(seen) == 4
    for got, want in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_integer_indicators_are_read_as_floats() -> None:
    seen: list[float] = []
    strategy = Scripted(
        {1: lambda ctx: seen.append(ctx.indicator("n"))}, lines={"n": np.array([3, 4])}
    )
    run_event(ohlcv([FLAT, FLAT]), strategy, NoParams())
    assert seen == [4.0]
    assert isinstance(seen[0], float)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ctx: ctx.indicator("y"), "unknown indicator 'y'.*x"),
        (lambda ctx: ctx.indicator("x", -1), "ago must be >= 0"),
    ],
)
def test_indicator_misuse_raises_strategy_error(call: object, message: str) -> None:
    strategy = Scripted({1: call}, lines={"x": np.zeros(3)})  # type: ignore[dict-item]
    with pytest.raises(StrategyError, match=message):
        run_event(ohlcv([FLAT] * 3), strategy, NoParams())


def test_equity_cash_and_position_agree_with_the_fills() -> None:
    # Commission 0.1%. Bar 1: buy 10 @ 101 (fee 1.01); bar 3: sell 4 @ 103 (fee 0.412).
    rows = [(100.0 + i, 102.0 + i, 99.0 + i, 100.5 + i) for i in range(5)]
    result, strategy = run(
        rows,
        {0: lambda ctx: ctx.buy(quantity=10), 2: lambda ctx: ctx.sell(quantity=4)},
        commission=0.001,
    )
    cash_1 = CASH - 10 * 101 - 1.01
    cash_3 = cash_1 + 4 * 103 - 0.412
    expected = [(0.0, CASH), (10.0, cash_1), (10.0, cash_1), (6.0, cash_3), (6.0, cash_3)]
    closes = [row[3] for row in rows]
    for snapshot, (position, cash), close in zip(strategy.seen, expected, closes, strict=True):
        assert snapshot.position == position
        assert snapshot.cash == pytest.approx(cash, rel=1e-12)
        assert snapshot.equity == pytest.approx(cash + position * close, rel=1e-12)
    np.testing.assert_array_equal(result.position, [s.position for s in strategy.seen])
    np.testing.assert_array_equal(result.cash, [s.cash for s in strategy.seen])
    np.testing.assert_array_equal(result.equity, [s.equity for s in strategy.seen])


def test_the_last_target_of_a_bar_wins_and_an_unchanged_target_is_none() -> None:
    returned: dict[str, object] = {}

    def twice(ctx: EventContext) -> None:
        returned["first"] = ctx.order_target_percent(percent=1.0)
        returned["second"] = ctx.order_target_percent(percent=0.5)

    def again(ctx: EventContext) -> None:
        returned["again"] = ctx.order_target_percent(percent=0.5)

    def back(ctx: EventContext) -> None:
        returned["there"] = ctx.order_target_percent(percent=0.0)
        returned["back"] = ctx.order_target_percent(percent=0.5)  # the target already held

    result, _ = run([FLAT] * 5, {0: twice, 2: again, 3: back})
    # Only 0.5 is traded: 5,000 / 100 = 50 units at bar 1's open, nothing after.
    assert fills_of(result) == [(1, "buy", 50.0, 100.0)]
    assert isinstance(returned["first"], str)
    assert isinstance(returned["second"], str)
    assert returned["again"] is None
    assert returned["back"] is None


def test_a_target_call_back_to_the_previous_target_on_the_same_bar_trades_nothing() -> None:
    returned: list[object] = []
    result, _ = run(
        [FLAT] * 3,
        {
            0: lambda ctx: returned.extend(
                (ctx.order_target_percent(percent=1.0), ctx.order_target_percent(percent=0.0))
            )
        },
    )
    assert result.fills.height == 0
    assert returned[1] is None


def test_the_same_target_twice_on_a_bar_is_unchanged_the_second_time() -> None:
    # The docstring: None "when percent equals the target already requested". The first
    # request stays the live one (a strategy may still cancel it by its id).
    returned: list[object] = []
    result, _ = run(
        [FLAT] * 3,
        {
            0: lambda ctx: returned.extend(
                (ctx.order_target_percent(percent=1.0), ctx.order_target_percent(percent=1.0))
            )
        },
    )
    assert isinstance(returned[0], str)
    assert returned[1] is None, returned
    assert fills_of(result) == [(1, "buy", 100.0, 100.0)]


def test_cancelling_a_pending_target_restores_the_previous_one() -> None:
    # Latency 2: a target asked on bar 0 would fill at bar 3's open. Cancelled on bar 1,
    # nothing trades and the target in force is 0 again, so asking 1.0 on bar 2 is a new
    # request (filled at bar 5's open, 2 + 1 + 2).
    ids: dict[str, object] = {}

    def ask(key: str) -> object:
        return lambda ctx: ids.__setitem__(key, ctx.order_target_percent(percent=1.0))

    rows = [(100.0 + i, 101.0 + i, 99.0 + i, 100.0 + i) for i in range(7)]
    result, _ = run(
        rows,
        {0: ask("first"), 1: lambda ctx: ctx.cancel(ids["first"]), 2: ask("again")},
        latency_bars=2,
    )
    assert isinstance(ids["again"], str)
    assert ids["again"] != ids["first"]
    assert fills_of(result) == [(5, "buy", pytest.approx(10_000.0 / 105.0, rel=1e-12), 105.0)]


def test_a_new_target_cancels_what_is_left_of_the_previous_one() -> None:
    # 1,000 units wanted (100,000 at 100), 100 fill per bar. The target goes back to 0
    # on bar 1's close: the position must be flat from bar 2 on, not keep growing.
    _, strategy = run(
        [FLAT] * 6,
        {
            0: lambda ctx: ctx.order_target_percent(percent=1.0),
            1: lambda ctx: ctx.order_target_percent(percent=0.0),
        },
        cash=100_000.0,
        max_participation=0.1,
    )
    positions = [snapshot.position for snapshot in strategy.seen]
    assert positions[1] == 100.0
    assert positions[2:] == [0.0] * 4, positions


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ctx: ctx.buy(quantity=-1), "invalid buy order"),
        (lambda ctx: ctx.sell(quantity=0), "invalid sell order"),
        (lambda ctx: ctx.buy(quantity=math.nan), "quantity must be finite"),
        (lambda ctx: ctx.buy(quantity=1, order_type="iceberg"), "order_type must be one of"),
        (lambda ctx: ctx.buy(quantity=1, time_in_force="gtd"), "time_in_force must be one of"),
        (lambda ctx: ctx.buy(quantity=1, order_type="limit"), "invalid buy order"),
        (lambda ctx: ctx.order_target_percent(percent=1.5), r"in \[-1, 1\]"),
        (lambda ctx: ctx.order_target_percent(percent=math.nan), r"in \[-1, 1\]"),
        (lambda ctx: ctx.order_target_percent(percent=True), "must be a number"),
    ],
)
def test_invalid_orders_raise_strategy_error(call: object, message: str) -> None:
    with pytest.raises(StrategyError, match=message):
        run([FLAT, FLAT], {0: call})


# ------------------------------------------------------------------ errors


def test_an_exception_in_handle_tick_becomes_a_strategy_error_naming_the_bar() -> None:
    def boom(ctx: EventContext) -> None:
        raise ValueError("no luck")

    with pytest.raises(
        StrategyError,
        match=r"'scripted' raised ValueError at bar 2 \(ts 2024-01-03T00:00:00\+00:00\): no luck",
    ) as caught:
        run([FLAT] * 4, {2: boom})
    assert isinstance(caught.value.__cause__, ValueError)


def test_an_exception_in_initialize_names_initialize() -> None:
    def boom(ctx: EventContext) -> None:
        raise KeyError("setup")

    with pytest.raises(StrategyError, match="raised KeyError at initialize"):
        run_event(ohlcv([FLAT]), Scripted(on_initialize=boom), NoParams())


def test_an_exception_in_finalize_names_finalize() -> None:
    class Failing(Scripted):
        def finalize(self, ctx: object) -> None:  # type: ignore[override]
            raise RuntimeError("bye")

    # Not "at bar 2": the last bar is over when finalize runs.
    with pytest.raises(StrategyError, match="raised RuntimeError at finalize: bye"):
        run_event(ohlcv([FLAT] * 3), Failing(), NoParams())


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([1.0, 2.0], "must return a mapping"),
        ({"x": np.zeros(2)}, r"one value per bar \(shape \(3,\)\)"),
        ({"x": np.array(["a", "b", "c"])}, "numeric array"),
        ({"x": np.zeros((3, 1))}, "shape"),
        ({1: np.zeros(3)}, "indicator 1 must be"),
    ],
)
def test_malformed_indicators_are_named(lines: object, message: str) -> None:
    class Broken(Scripted):
        def indicators(self, bars: pl.DataFrame, params: NoParams) -> object:  # type: ignore[override]
            return lines

    with pytest.raises(StrategyError, match=message):
        run_event(ohlcv([FLAT] * 3), Broken(), NoParams())


def test_a_bar_breaking_the_contract_is_named() -> None:
    bars = ohlcv([FLAT, FLAT, (100, 99, 98, 98.5), FLAT])  # open above high
    with pytest.raises(DataError, match="bar 2 breaks the bar contract"):
        run_event(bars, Scripted(), NoParams())


def test_non_increasing_timestamps_are_named() -> None:
    bars = ohlcv([FLAT] * 4)
    stamps = bars.get_column("ts").to_list()
    stamps[3] = stamps[2]  # a repeated stamp
    bars = bars.with_columns(pl.Series("ts", stamps).cast(pl.Datetime("ns", "UTC")))
    with pytest.raises(DataError, match=r"bar 3: ts \d+ does not follow .*strictly increase"):
        run_event(bars, Scripted(), NoParams())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"latency_bars": -1}, "latency_bars must be >= 0"),
        ({"latency_bars": 1.5}, "latency_bars must be an integer"),
        ({"cash": 0.0}, "cash must be finite and > 0"),
        ({"max_participation": 1.5}, "max_participation"),
        ({"periods_per_year": 0.0}, "periods_per_year must be finite and > 0"),
        ({"instrument": "SPY"}, "instrument must be an Instrument"),
        ({"sizing": "all"}, "sizing"),
    ],
)
def test_bad_engine_arguments_are_named(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_event(ohlcv([FLAT, FLAT]), Scripted(), NoParams(), **options)


def test_bad_bars_strategy_or_params_are_named() -> None:
    bars = ohlcv([FLAT, FLAT])
    with pytest.raises(ConfigError, match="bars must be a polars DataFrame; got dict"):
        run_event({"open": [1.0]}, Scripted(), NoParams())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one bar"):
        run_event(bars.head(0), Scripted(), NoParams())
    with pytest.raises(ConfigError, match="strategy must be a Strategy instance"):
        run_event(bars, Scripted, NoParams())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="takes NoParams"):
        run_event(bars, Scripted(), SmaCrossParams())
    with pytest.raises(ConfigError, match="bars must have a 'volume' column"):
        run_event(bars.drop("volume"), Scripted(), NoParams())
    two = pl.concat([bars.with_columns(pl.lit(s).alias("symbol")) for s in ("A", "B")])
    with pytest.raises(ConfigError, match="one symbol"):
        run_event(two, Scripted(), NoParams())


def test_an_instrument_with_a_symbol_is_fine_for_bars_without_one() -> None:
    result, _ = run(
        [FLAT, FLAT], {0: lambda ctx: ctx.buy(quantity=1)}, instrument=Instrument(symbol="OTHER")
    )
    assert fills_of(result) == [(1, "buy", 1.0, 100.0)]


def test_equity_before_the_first_bar_is_the_cash() -> None:
    seen: list[tuple[int, float, float]] = []
    strategy = Scripted(
        on_initialize=lambda ctx: seen.append((ctx.bar_index, ctx.equity, ctx.position))
    )
    run_event(ohlcv([FLAT]), strategy, NoParams(), cash=5_000.0)
    assert seen == [(-1, 5_000.0, 0.0)]


def test_a_replacement_with_a_bad_field_is_refused_and_the_order_keeps_working() -> None:
    ids: list[Any] = []
    errors: list[str] = []

    def bad_replace(ctx: EventContext) -> None:
        try:
            ctx.replace(ids[0], quantity=0)
        except StrategyError as exc:
            errors.append(str(exc))

    result, strategy = run(
        [FLAT, FLAT, FLAT, (100, 100.5, 89, 95)],
        {
            0: lambda ctx: ids.append(ctx.buy(quantity=5, order_type="limit", limit_price=90.0)),
            1: bad_replace,
        },
    )
    assert len(errors) == 1
    assert errors[0].startswith("cannot replace 'o1'")
    assert strategy.seen[2].open_orders == (ids[0],)
    assert fills_of(result) == [(3, "buy", 5.0, 90.0)]
    with pytest.raises(StrategyError, match="quantity must be a number; got '5'"):
        run([FLAT, FLAT], {0: lambda ctx: ctx.buy(quantity="5")})  # type: ignore[arg-type]


def test_a_symbol_mismatch_with_the_instrument_is_refused() -> None:
    bars = ohlcv([FLAT, FLAT]).with_columns(pl.lit("SPY").alias("symbol"))
    with pytest.raises(ConfigError, match="instrument 'QQQ' does not match the bars' 'SPY'"):
        run_event(bars, Scripted(), NoParams(), instrument=Instrument(symbol="QQQ"))


# ------------------------------------------------------------------ booking


def test_crossing_zero_with_one_order_books_two_trades() -> None:
    # Commission 0.1%. Bar 1: buy 10 @ 100 (fee 1). Bar 3: sell 25 @ 110 (fee 2.75,
    # 10/25 of it on the closing part). The short of 15 is marked at the last close 105.
    rows = [FLAT, FLAT, (108, 109, 107, 108), (110, 111, 104, 105)]
    result, _ = run(
        rows,
        {0: lambda ctx: ctx.buy(quantity=10), 2: lambda ctx: ctx.sell(quantity=25)},
        commission=0.001,
    )
    fills = result.fills
    assert fills.select("bar", "side", "quantity", "position", "trade").rows() == [
        (1, "buy", 10.0, 10.0, 0),
        (3, "sell", 10.0, 0.0, 0),
        (3, "sell", 15.0, -15.0, 1),
    ]
    np.testing.assert_allclose(fills.get_column("commission"), [1.0, 1.1, 1.65], rtol=1e-12)
    trades = result.trades.to_dicts()
    assert [(t["entry_bar"], t["exit_bar"], t["side"], t["is_open"]) for t in trades] == [
        (1, 3, "long", False),
        (3, 3, "short", True),
    ]
    assert trades[0]["quantity"] == 10.0
    assert trades[1]["quantity"] == 15.0
    assert trades[0]["pnl"] == pytest.approx(10 * (110 - 100) - 1.0 - 1.1, rel=1e-12)
    assert trades[1]["pnl"] == pytest.approx(15 * (110 - 105) - 1.65, rel=1e-12)
    assert result.metrics.final_equity == pytest.approx(CASH + 97.9 + 73.35, rel=1e-12)
    assert result.metrics.trades == 2


def test_an_instrument_grid_rounds_prices_and_quantities() -> None:
    # Cent ticks and whole lots: 10.7 units is 10, a limit of 99.004 is 99.00.
    cents = Instrument(
        symbol="ASSET", price_increment=Decimal("0.01"), quantity_increment=Decimal(1)
    )
    result, _ = run(
        [FLAT, (100, 100.5, 98.5, 99)],
        {0: lambda ctx: ctx.buy(quantity=10.7, order_type="limit", limit_price=99.004)},
        instrument=cents,
    )
    assert fills_of(result) == [(1, "buy", 10.0, 99.0)]


def test_the_order_log_has_its_columns_and_links_target_legs_to_their_request() -> None:
    result, strategy = run(
        [FLAT, FLAT, FLAT, FLAT],
        {
            0: lambda ctx: ctx.order_target_percent(percent=1.0),
            1: lambda ctx: ctx.order_target_percent(percent=-1.0),
        },
    )
    orders = result.orders
    assert orders is not None
    assert tuple(orders.columns) == ORDER_COLUMNS
    request = strategy.returned[1]
    # A reversal: one request, two venue orders (close the long, open the short).
    legs = orders.filter(pl.col("request") == request)
    assert legs.select("side", "status").rows() == [("sell", "filled"), ("sell", "filled")]
    assert legs.get_column("bar").to_list() == [1, 1]
    assert result.metrics.trades == 2


def test_the_runner_runs_the_event_engine() -> None:
    bars = ohlcv([(100.0 + i % 7, 108.0, 99.0, 100.0 + (i * 3) % 7) for i in range(60)])
    result = run_backtest(bars, "sma_cross", {"fast": 2, "slow": 5}, engine="event")
    assert result.orders is not None
    assert result.metrics.trades > 0


def test_an_order_plan_runs_without_errors() -> None:
    # Smoke test of the property tests' strategy: every order type, cancel and replace.
    plan = [
        PlannedOrder(
            bar=0, buy=True, quantity=5, order_type="limit", limit_offset=-0.001, replace_after=1
        ),
        PlannedOrder(
            bar=1, buy=False, quantity=3, order_type="stop", stop_offset=-0.005, cancel_after=2
        ),
        PlannedOrder(
            bar=2,
            buy=True,
            quantity=2,
            order_type="stop_limit",
            stop_offset=0.001,
            limit_offset=0.002,
            time_in_force="day",
        ),
    ]
    rows = [(100.0, 101.0, 99.0, 100.0 + (i % 3) - 1) for i in range(8)]
    rows = [(o, max(h, c), min(low, c), c) for o, h, low, c in rows]
    strategy = OrderPlan(plan)
    result = run_event(ohlcv(rows), strategy, NoParams())
    assert result.orders is not None
    assert result.orders.height == 4  # three orders and one replacement
