"""Invariants of the matching engine on random bars and orders (hypothesis).

- fills never exceed their order's quantity, nor (all orders together) the
  bar's participation cap; an order's record agrees with its fills;
- without a depth model every fill price lies within its bar's range, and a
  limit is never exceeded;
- an order submitted after bar t never fills before bar t + 1 + latency bars,
  nor on a bar stamped before its acknowledgement plus match latency;
- two runs on the same input are identical.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from execution_helpers import DAY, INSTRUMENT, SYMBOL, bar, drive, make_order
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.domain import Fill, Order, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce
from tradepulse.execution import (
    ConstantDepth,
    DepthModel,
    FixedLatency,
    MatchingEngine,
    SquareRootImpactDepth,
    VolumeProportionalDepth,
)
from tradepulse.strategy.api import Bar

MINUTE = 60 * 10**9


@st.composite
def bar_paths(draw: st.DrawFn, *, min_size: int = 2, max_size: int = 12) -> list[Bar]:
    """Random bars on a cent grid, stamped every 6 hours (so DAY orders do expire)."""
    count = draw(st.integers(min_size, max_size))
    bars = []
    for index in range(count):
        open_, close = draw(st.integers(9_000, 11_000)), draw(st.integers(9_000, 11_000))
        high = max(open_, close) + draw(st.integers(0, 300))
        low = min(open_, close) - draw(st.integers(0, 300))
        volume = float(draw(st.integers(0, 500)))
        bars.append(bar(index * DAY // 4, open_ / 100, high / 100, low / 100, close / 100, volume))
    return bars


@dataclass(frozen=True)
class Request:
    order: Order
    after_bar: int  # submitted after this bar (-1: before the first)


@st.composite
def requests(draw: st.DrawFn, *, bars: int) -> list[Request]:
    """Random orders of every type, side and time in force, submitted at random bars."""
    result = []
    for number in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(list(OrderType)))
        side = draw(st.sampled_from(list(Side)))
        limit = stop = None
        if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            limit = str(Decimal(draw(st.integers(9_000, 11_000))) / 100)
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT):
            stop = str(Decimal(draw(st.integers(9_000, 11_000))) / 100)
        order = make_order(
            f"o{number}",
            side,
            draw(st.integers(1, 60)),
            order_type=kind,
            limit=limit,
            stop=stop,
            tif=draw(st.sampled_from(list(TimeInForce))),
        )
        result.append(Request(order, draw(st.integers(-1, bars - 2))))
    return result


def depth_models() -> st.SearchStrategy[DepthModel | None]:
    return st.one_of(
        st.none(),
        st.builds(
            ConstantDepth,
            quantity_per_level=st.floats(0.5, 20.0),
            level_spacing_bps=st.floats(0.0, 50.0),
            levels=st.integers(1, 5),
        ),
        st.builds(
            VolumeProportionalDepth,
            fraction_per_level=st.floats(0.01, 0.5),
            level_spacing_bps=st.floats(0.0, 50.0),
            levels=st.integers(1, 5),
        ),
        st.builds(SquareRootImpactDepth, coefficient=st.floats(0.0, 0.2)),
    )


def run(
    bars: list[Bar],
    plan: list[Request],
    *,
    cap: float | None,
    depth: DepthModel | None,
    latency: FixedLatency | None = None,
) -> tuple[MatchingEngine, list[Fill], list[OrderUpdate]]:
    engine = MatchingEngine(INSTRUMENT, max_participation=cap, depth=depth, latency=latency)
    fills: list[Fill] = []
    updates: list[OrderUpdate] = []
    for index in range(-1, len(bars)):
        if index >= 0:
            more_fills, more_updates = drive(engine, [bars[index]])
            fills += more_fills
            updates += more_updates
        ts = bars[index].ts if index >= 0 else 0
        for request in plan:
            if request.after_bar == index:
                updates.append(engine.submit(request.order, ts_ns=ts))
    return engine, fills, updates


@settings(deadline=None, max_examples=150)
@given(
    data=st.data(),
    cap=st.one_of(st.none(), st.floats(0.01, 1.0)),
    depth=depth_models(),
)
def test_fills_respect_order_quantity_and_liquidity(
    data: st.DataObject, cap: float | None, depth: DepthModel | None
) -> None:
    # Arrange
    bars = data.draw(bar_paths())
    plan = data.draw(requests(bars=len(bars)))

    # Act
    engine, fills, _ = run(bars, plan, cap=cap, depth=depth)

    # Assert: per order.
    by_order: dict[str, list[Fill]] = defaultdict(list)
    for fill in fills:
        by_order[fill.client_order_id].append(fill)
        assert fill.quantity > 0
        assert fill.symbol == SYMBOL
    for request in plan:
        order = request.order
        record = engine.order(order.client_order_id)
        own = by_order[order.client_order_id]
        total = sum((fill.quantity for fill in own), Decimal(0))
        assert total <= order.quantity
        assert record.filled_quantity == total
        assert (record.status is OrderStatus.FILLED) == (total == order.quantity)
        if order.limit_price is not None:
            for fill in own:
                assert order.side.sign * (fill.price - order.limit_price) <= 0
        if order.time_in_force is TimeInForce.FOK:
            assert total in (Decimal(0), order.quantity)
        if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            assert len({fill.ts_ns for fill in own}) <= 1
    # Assert: per bar.
    bar_of = {item.ts: item for item in bars}
    per_bar: dict[int, Decimal] = defaultdict(Decimal)
    for fill in fills:
        per_bar[fill.ts_ns] += fill.quantity
        item = bar_of[fill.ts_ns]
        if depth is None:
            assert Decimal(repr(item.low)) <= fill.price <= Decimal(repr(item.high))
    if cap is not None:
        for ts, total in per_bar.items():
            assert float(total) <= cap * bar_of[ts].volume


@settings(deadline=None, max_examples=60)
@given(data=st.data(), depth=depth_models())
def test_two_runs_are_identical(data: st.DataObject, depth: DepthModel | None) -> None:
    bars = data.draw(bar_paths())
    plan = data.draw(requests(bars=len(bars)))
    cap = data.draw(st.one_of(st.none(), st.floats(0.01, 1.0)))

    _, first_fills, first_updates = run(bars, plan, cap=cap, depth=depth)
    _, second_fills, second_updates = run(bars, plan, cap=cap, depth=depth)

    assert first_fills == second_fills
    assert first_updates == second_updates


@settings(deadline=None, max_examples=150)
@given(
    latency_bars=st.integers(0, 3),
    acknowledge_minutes=st.integers(0, 6),
    match_minutes=st.integers(0, 6),
    after_bar=st.integers(-1, 5),
    offset_seconds=st.integers(0, 59),
)
def test_no_fill_before_the_latency_allows(
    latency_bars: int,
    acknowledge_minutes: int,
    match_minutes: int,
    after_bar: int,
    offset_seconds: int,
) -> None:
    # Arrange: one-minute bars; a market order submitted some seconds after bar t.
    latency = FixedLatency(
        bars=latency_bars,
        acknowledge_ns=acknowledge_minutes * MINUTE,
        match_ns=match_minutes * MINUTE,
    )
    bars = [bar(index * MINUTE, 100.0, 101.0, 99.0) for index in range(16)]
    submit_ts = max(after_bar, 0) * MINUTE + offset_seconds * 10**9
    engine = MatchingEngine(INSTRUMENT, latency=latency)
    drive(engine, bars[: after_bar + 1])

    # Act
    first = engine.submit(make_order("o", Side.BUY, 1), ts_ns=submit_ts)
    fills, updates = drive(engine, bars[after_bar + 1 :])

    # Assert: the first bar allowed by both clocks, found by scanning.
    earliest = submit_ts + (acknowledge_minutes + match_minutes) * MINUTE
    allowed = [
        index
        for index in range(after_bar + 1 + latency_bars, len(bars))
        if bars[index].ts >= earliest
    ]
    assert [fill.ts_ns for fill in fills] == ([bars[allowed[0]].ts] if allowed else [])
    acknowledged = submit_ts + acknowledge_minutes * MINUTE
    if acknowledge_minutes == 0:
        assert first.status is OrderStatus.ACCEPTED
    else:
        assert first.status is OrderStatus.NEW
        accepted = [update for update in updates if update.status is OrderStatus.ACCEPTED]
        if any(item.ts >= acknowledged for item in bars[after_bar + 1 :]):
            assert [update.ts_ns for update in accepted] == [acknowledged]
