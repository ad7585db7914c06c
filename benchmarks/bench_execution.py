"""Time the execution service's order path against its book size, and weigh its memory.

Run: ``.venv/bin/python benchmarks/bench_execution.py [--quick]``. The service
runs on an in-memory journal (SQLite ``:memory:``), so the figures are the
service's own CPU cost, not the disk's. Scenarios (best of ``REPEATS`` runs):

- ``submit``: µs per accepted limit order when the account already has 0,
  1,000 and 6,000 working orders of the same symbol (resting buy limits far
  below the market, so every pre-trade check runs: max position, position
  notional and cash / margin);
- ``cancel``: µs per cancel at the same book sizes;
- ``replace``: µs per replace (new limit price) at the same book sizes;
- ``bar fills N``: one bar that fills N market buys of one account (one
  position gaining N lots): ms for the bar, N = 1,000 and 5,000;
- ``position``: µs per ``Position.apply_fill`` while one position opens
  1,000 / 10,000 lots (a buy each at a new price), then closes them all;
- ``memory``: bytes of Python heap (tracemalloc) per ended order after
  100,000 market orders were submitted and filled (1,000 per bar, buys and
  sells in turn so the position stays small), with the service's default
  order retention (100,000: nothing is evicted) and with
  ``retain_ended_orders=1000`` (when the service has that setting; the
  figure is then the retained thousand spread over all orders).

``--quick`` shrinks every scenario (a smoke run for tests and CI);
``--no-memory`` skips the memory scenarios (the slow part).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tradepulse.domain import Fill, OrderType, Position, Side
from tradepulse.execution import (
    NS_PER_DAY,
    ExecutionService,
    Journal,
    OrderRequest,
    ServiceConfig,
)
from tradepulse.strategy.api import Bar

REPEATS = 3
SYMBOL = "SYN"
BOOK_SIZES = (0, 1_000, 6_000)
TIMED_ORDERS = 300  # submissions / cancels / replaces timed per book size
FILLS_PER_BAR = (1_000, 5_000)
POSITION_LOTS = (1_000, 10_000)
MEMORY_ORDERS = 100_000
MEMORY_BATCH = 1_000  # orders filled per bar in the memory scenario
RISK: dict[str, Any] = {
    "max_position": "1000000000",
    "max_position_notional": "100000000000",
    "margin_rate": "1",
}


def _config(**overrides: Any) -> ServiceConfig:
    data: dict[str, Any] = {
        "initial_cash": "1000000000000",
        "instruments": {
            SYMBOL: {"price_increment": "0.01", "quantity_increment": "1", "cash_increment": "0.01"}
        },
        "risk": RISK,
    }
    data.update(overrides)
    return ServiceConfig.from_mapping(data)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * 10**9

    def __call__(self) -> int:
        self.now += 1_000
        return self.now


def _service(**overrides: Any) -> ExecutionService:
    service = ExecutionService(journal=Journal(), config=_config(**overrides), clock=_Clock())
    service.on_bar(SYMBOL, Bar(NS_PER_DAY, 100.0, 101.0, 99.0, 100.0, 1e12))
    return service


def _resting(price: str = "50.00") -> OrderRequest:
    return OrderRequest(
        symbol=SYMBOL,
        side=Side.BUY,
        quantity=Decimal(1),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(price),
    )


def _market(side: Side = Side.BUY) -> OrderRequest:
    return OrderRequest(symbol=SYMBOL, side=side, quantity=Decimal(1))


def _best(function: Callable[[], float]) -> float:
    return min(function() for _ in range(REPEATS))


def _book(size: int) -> tuple[ExecutionService, list[str]]:
    service = _service()
    ids = [service.submit(_resting(), account="a").order.order_id for _ in range(size)]
    return service, ids


def time_submit(size: int, count: int) -> float:
    """Return µs per submit of a resting limit into a book of ``size`` working orders."""

    def run() -> float:
        service, _ = _book(size)
        request = _resting()
        start = time.perf_counter()
        for _ in range(count):
            outcome = service.submit(request, account="a")
            assert outcome.order.reason is None, outcome.order.reason_detail
        return (time.perf_counter() - start) / count * 1e6

    return _best(run)


def time_cancel(size: int, count: int) -> float:
    """Return µs per cancel in a book of ``size`` (plus ``count``) working orders."""

    def run() -> float:
        service, _ = _book(size)
        ids = [service.submit(_resting(), account="a").order.order_id for _ in range(count)]
        start = time.perf_counter()
        for order_id in ids:
            service.cancel(order_id, account="a")
        return (time.perf_counter() - start) / count * 1e6

    return _best(run)


def time_replace(size: int, count: int) -> float:
    """Return µs per replace (new limit price) in a book of ``size`` (plus ``count``) orders."""

    def run() -> float:
        service, _ = _book(size)
        ids = [service.submit(_resting(), account="a").order.order_id for _ in range(count)]
        start = time.perf_counter()
        for order_id in ids:
            view = service.replace(order_id, account="a", limit_price=Decimal("49.00"))
            assert view.reason is None, view.reason_detail
        return (time.perf_counter() - start) / count * 1e6

    return _best(run)


def time_bar_fills(count: int) -> float:
    """Return ms for one bar that fills ``count`` market buys of one account."""

    def run() -> float:
        service = _service()
        for _ in range(count):
            service.submit(_market(), account="a")
        start = time.perf_counter()
        fills = service.on_bar(SYMBOL, Bar(2 * NS_PER_DAY, 100.0, 101.0, 99.0, 100.0, 1e12))
        elapsed = time.perf_counter() - start
        assert len(fills) == count
        return elapsed * 1e3

    return _best(run)


def time_position(lots: int) -> tuple[float, float]:
    """Return µs per fill (opening, closing) for a position that opens then closes ``lots`` lots."""
    fills = [
        Fill(
            fill_id=number,
            client_order_id=f"o{number}",
            symbol=SYMBOL,
            side=Side.BUY if number < lots else Side.SELL,
            quantity=Decimal(1),
            price=Decimal(100 + number % 50),
            commission=Decimal(0),
            ts_ns=number,
        )
        for number in range(2 * lots)
    ]

    def run(part: list[Fill], start: Position) -> tuple[float, Position]:
        position = start
        began = time.perf_counter()
        for fill in part:
            position = position.apply_fill(fill)
        return (time.perf_counter() - began) / len(part) * 1e6, position

    opening = closing = float("inf")
    for _ in range(REPEATS):
        opened, position = run(fills[:lots], Position(symbol=SYMBOL))
        closed, position = run(fills[lots:], position)
        assert position.quantity == 0
        opening, closing = min(opening, opened), min(closing, closed)
    return opening, closing


def memory_per_order(count: int, **overrides: Any) -> tuple[float, float]:
    """Return (bytes of traced heap per ended order, seconds) for ``count`` filled orders."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    service = _service(**overrides)
    base, _ = tracemalloc.get_traced_memory()
    day = 2
    for first in range(0, count, MEMORY_BATCH):
        # Buy a batch, sell it on the next bar: the position (and its lots) stays small.
        request = _market(Side.BUY if day % 2 == 0 else Side.SELL)
        for _ in range(min(MEMORY_BATCH, count - first)):
            service.submit(request, account="a")
        service.on_bar(SYMBOL, Bar(day * NS_PER_DAY, 100.0, 101.0, 99.0, 100.0, 1e12))
        day += 1
    gc.collect()
    used, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert service.account("a").open_orders == 0
    return (used - base) / count, elapsed


def main(argv: list[str] | None = None) -> None:
    """Run every scenario and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shrink every scenario")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory scenarios")
    args = parser.parse_args(argv)
    sizes = (0, 100) if args.quick else BOOK_SIZES
    timed = 20 if args.quick else TIMED_ORDERS
    fills = (100,) if args.quick else FILLS_PER_BAR
    orders = 2_000 if args.quick else MEMORY_ORDERS
    print(f"execution service, in-memory journal, best of {REPEATS}")
    time_submit(0, timed)  # warm up: the first figure would carry the process's cold start
    for size in sizes:
        print(
            f"  book {size:>6,} working orders: submit {time_submit(size, timed):8.1f} µs/order"
            f"  cancel {time_cancel(size, timed):8.1f} µs/order"
            f"  replace {time_replace(size, timed):8.1f} µs/order"
        )
    for count in fills:
        print(
            f"  one bar filling {count:>6,} orders of one position: {time_bar_fills(count):8.1f} ms"
        )
    for lots in (100,) if args.quick else POSITION_LOTS:
        opening, closing = time_position(lots)
        print(
            f"  Position.apply_fill, {lots:>6,} lots: open {opening:6.1f} µs/fill"
            f"  close {closing:6.1f} µs/fill"
        )
    if args.no_memory:
        return
    retained, seconds = memory_per_order(orders)
    print(
        f"  memory, {orders:,} filled orders, default retention: "
        f"{retained:8.0f} B/order ({seconds:.1f} s)"
    )
    evicting = _evicting_overrides()
    if evicting is not None:
        kept, seconds = memory_per_order(orders, **evicting)
        print(
            f"  memory, {orders:,} filled orders, {evicting}: {kept:8.0f} B/order ({seconds:.1f} s)"
        )


def _evicting_overrides() -> dict[str, Any] | None:
    """Return the config override that bounds the ended orders kept in memory (if supported)."""
    names = {name for name in ServiceConfig.__dataclass_fields__}
    return {"retain_ended_orders": 1_000} if "retain_ended_orders" in names else None


if __name__ == "__main__":
    main()
