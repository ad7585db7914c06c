"""Time the matching engine: bars/s and orders/s on 1,000,000 synthetic 1-minute bars.

Run: ``.venv/bin/python benchmarks/bench_matching.py``. Scenarios (best of
``REPEATS`` runs each; bars are built as ``tradepulse.strategy.api.Bar`` tuples
and orders as ``Order`` objects before the clock starts, so the figures are the
engine's own cost):

- ``idle``: no working orders (the engine only checks and counts the bar);
- ``resting``: 10 working orders that never meet a bar (5 buy limits far
  below, 5 buy stops far above), scanned on every bar;
- ``market``: a market order every 10th bar, alternating sides, each filled
  at the next open (submit + acknowledge + fill);
- ``limit+depth``: a limit order every 10th bar 0.05% through the last close,
  GTC, under a 1% participation cap and a constant-depth book, so fills are
  partial and spread over bars; anything still open 5 bars later is cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import numpy as np

from tradepulse.domain import Instrument, Order, OrderType, Side
from tradepulse.execution import ConstantDepth, MatchingEngine
from tradepulse.strategy.api import Bar

BARS = 1_000_000
REPEATS = 3
SEED = 20240601
VOLATILITY_PER_BAR = 0.001  # ~0.1% per 1-minute bar
MINUTE_NS = 60 * 10**9
START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
ORDER_EVERY = 10  # bars between orders in the order scenarios
INSTRUMENT = Instrument(
    symbol="SYN", price_increment=Decimal("0.0001"), quantity_increment=Decimal("0.001")
)


def synthetic_bars(n: int = BARS) -> list[Bar]:
    """Return ``n`` one-minute bars of a geometric random walk (fixed seed)."""
    rng = np.random.default_rng(SEED)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, VOLATILITY_PER_BAR, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0.0, VOLATILITY_PER_BAR / 2, (2, n)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = rng.uniform(1_000.0, 5_000.0, n)
    ts = START_NS + MINUTE_NS * np.arange(n, dtype=np.int64)
    return [
        Bar(*row)
        for row in zip(
            ts.tolist(),
            open_.tolist(),
            high.tolist(),
            low.tolist(),
            close.tolist(),
            volume.tolist(),
            strict=True,
        )
    ]


def best_seconds(function: Callable[[], object]) -> float:
    """Return the best wall time of ``REPEATS`` calls, in seconds."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def run_idle(bars: list[Bar]) -> None:
    engine = MatchingEngine(INSTRUMENT)
    process = engine.process_bar
    for item in bars:
        process(item)


def run_resting(bars: list[Bar]) -> None:
    engine = MatchingEngine(INSTRUMENT)
    for number in range(5):
        engine.submit(
            Order(
                client_order_id=f"limit{number}",
                symbol="SYN",
                side=Side.BUY,
                quantity=Decimal(1),
                order_type=OrderType.LIMIT,
                limit_price=Decimal("0.01"),
            ),
            ts_ns=0,
        )
        engine.submit(
            Order(
                client_order_id=f"stop{number}",
                symbol="SYN",
                side=Side.BUY,
                quantity=Decimal(1),
                order_type=OrderType.STOP,
                stop_price=Decimal(1_000_000),
            ),
            ts_ns=0,
        )
    process = engine.process_bar
    for item in bars:
        process(item)


def market_orders(bars: list[Bar]) -> list[Order]:
    return [
        Order(
            client_order_id=f"m{index}",
            symbol="SYN",
            side=Side.BUY if index % 2 else Side.SELL,
            quantity=Decimal(10),
        )
        for index in range(0, len(bars), ORDER_EVERY)
    ]


def limit_orders(bars: list[Bar]) -> list[Order]:
    orders = []
    for number, index in enumerate(range(0, len(bars), ORDER_EVERY)):
        side = Side.BUY if number % 2 else Side.SELL
        through = 1.0 + side.sign * 0.0005
        orders.append(
            Order(
                client_order_id=f"l{index}",
                symbol="SYN",
                side=side,
                quantity=Decimal(100),
                order_type=OrderType.LIMIT,
                limit_price=INSTRUMENT.price_from_float(bars[index].close * through),
            )
        )
    return orders


def run_orders(
    bars: list[Bar], orders: list[Order], engine: MatchingEngine, *, cancel_after: int | None
) -> tuple[int, int]:
    """Drive ``bars``, submitting ``orders[k]`` after bar ``k * ORDER_EVERY``; count fills."""
    fills = 0
    process, submit, cancel = engine.process_bar, engine.submit, engine.cancel
    records = engine.orders
    for index, item in enumerate(bars):
        fills += len(process(item).fills)
        if index % ORDER_EVERY == 0:
            order = orders[index // ORDER_EVERY]
            submit(order, ts_ns=item.ts)
            if cancel_after is not None and index >= cancel_after * ORDER_EVERY:
                old = orders[index // ORDER_EVERY - cancel_after].client_order_id
                if records[old].is_open:
                    cancel(old, ts_ns=item.ts)
    return len(orders), fills


def main() -> None:
    started = time.perf_counter()
    bars = synthetic_bars()
    build = time.perf_counter() - started
    print(f"{BARS:,} synthetic 1-minute bars built as Bar tuples in {build:.2f} s")
    print(f"best of {REPEATS} runs per scenario\n")
    header = f"{'scenario':<14}{'seconds':>9}{'bars/s':>14}{'orders/s':>12}{'fills':>10}"
    print(header)
    print("-" * len(header))

    seconds = best_seconds(lambda: run_idle(bars))
    print(f"{'idle':<14}{seconds:>9.3f}{BARS / seconds:>14,.0f}{'-':>12}{0:>10,}")

    seconds = best_seconds(lambda: run_resting(bars))
    print(f"{'resting x10':<14}{seconds:>9.3f}{BARS / seconds:>14,.0f}{'-':>12}{0:>10,}")

    market = market_orders(bars)
    counts: list[tuple[int, int]] = []
    seconds = best_seconds(
        lambda: counts.append(
            run_orders(bars, market, MatchingEngine(INSTRUMENT), cancel_after=None)
        )
    )
    orders, fills = counts[-1]
    print(
        f"{'market':<14}{seconds:>9.3f}{BARS / seconds:>14,.0f}{orders / seconds:>12,.0f}", end=""
    )
    print(f"{fills:>10,}")

    limits = limit_orders(bars)
    depth = ConstantDepth(quantity_per_level=10.0, level_spacing_bps=1.0, levels=5)
    counts.clear()
    seconds = best_seconds(
        lambda: counts.append(
            run_orders(
                bars,
                limits,
                MatchingEngine(INSTRUMENT, max_participation=0.01, depth=depth),
                cancel_after=5,
            )
        )
    )
    orders, fills = counts[-1]
    print(
        f"{'limit+depth':<14}{seconds:>9.3f}{BARS / seconds:>14,.0f}{orders / seconds:>12,.0f}",
        end="",
    )
    print(f"{fills:>10,}")


if __name__ == "__main__":
    main()
