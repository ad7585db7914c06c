"""Shared builders for the execution tests: bars, orders and a driver loop."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from tradepulse.domain import Fill, Instrument, Order, OrderType, OrderUpdate, Side, TimeInForce
from tradepulse.execution import NS_PER_DAY, MatchingEngine
from tradepulse.strategy.api import Bar

SYMBOL = "TEST"
#: Cent ticks, whole-unit lots: hand-made expectations stay readable.
INSTRUMENT = Instrument(
    symbol=SYMBOL, price_increment=Decimal("0.01"), quantity_increment=Decimal(1)
)
#: A day in nanoseconds; hand-made bars are stamped at whole days (one bar per UTC day).
DAY = NS_PER_DAY


def bar(
    ts: int,
    open_: float,
    high: float,
    low: float,
    close: float | None = None,
    volume: float = 1_000_000.0,
) -> Bar:
    """Return a bar; ``close`` defaults to ``open_``."""
    return Bar(ts, open_, high, low, open_ if close is None else close, volume)


def make_order(
    client_order_id: str,
    side: Side,
    quantity: int | str,
    *,
    order_type: OrderType = OrderType.MARKET,
    limit: str | None = None,
    stop: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    symbol: str = SYMBOL,
) -> Order:
    """Return an order with decimal fields built from exact literals."""
    return Order(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        order_type=order_type,
        limit_price=None if limit is None else Decimal(limit),
        stop_price=None if stop is None else Decimal(stop),
        time_in_force=tif,
    )


def drive(engine: MatchingEngine, bars: Iterable[Bar]) -> tuple[list[Fill], list[OrderUpdate]]:
    """Process ``bars`` in order; return every fill and update."""
    fills: list[Fill] = []
    updates: list[OrderUpdate] = []
    for item in bars:
        result = engine.process_bar(item)
        fills.extend(result.fills)
        updates.extend(result.updates)
    return fills, updates
