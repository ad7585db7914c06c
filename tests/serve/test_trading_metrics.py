"""TradingMetrics, MeteredBackend, RequestClockMiddleware and the /metrics route.

The backend under test is the real execution service in process (in-memory
journal); expected values are derived by hand from the orders and bars each
test sends.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import TypeVar

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.types import ASGIApp, Receive, Scope, Send

from tradepulse.domain.orders import OrderStatus, OrderType, Side
from tradepulse.errors import ConfigError
from tradepulse.execution.journal import Journal
from tradepulse.execution.risk import RiskLimits
from tradepulse.execution.service import ExecutionService
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import AccountView, OrderRequest
from tradepulse.serve import ApiKeyStore, InProcessBackend, SubmitItem, create_app
from tradepulse.serve.metrics import (
    ACK_BUCKETS_SECONDS,
    GLOBAL_ACCOUNT,
    OTHER_LABEL,
    MeteredBackend,
    RequestClockMiddleware,
    TradingMetrics,
    metrics_router,
)
from tradepulse.strategy.api import Bar

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork; httpx (a dev dependency) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

_T = TypeVar("_T")
DAY_NS = 86_400 * 10**9
ACCOUNT = "acct"
READER_SECRET = "reader-secret-0001"
TRADER_SECRET = "trader-secret-0002"
FEED_SECRET = "feed-admin-secret-03"


def run(coroutine: Awaitable[_T]) -> _T:
    """Run one coroutine to completion."""

    async def main() -> _T:
        return await coroutine

    return asyncio.run(main())


class FakeClock:
    """A settable monotonic clock, seconds."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_service(**config: object) -> ExecutionService:
    """Return a service on an in-memory journal; orders above 100 units are rejected."""
    config.setdefault("risk", RiskLimits(max_order_quantity=Decimal(100)))
    return ExecutionService(journal=Journal(":memory:"), config=ServiceConfig(**config))  # type: ignore[arg-type]


def make_backend(
    service: ExecutionService | None = None, **options: object
) -> tuple[MeteredBackend, TradingMetrics, FakeClock]:
    """Return a metered in-process backend over ``service``, its metrics and their clock."""
    clock = FakeClock()
    metrics = TradingMetrics(clock=clock, wall_clock=lambda: 1.7e9, **options)  # type: ignore[arg-type]
    backend = MeteredBackend(InProcessBackend(service or make_service()), metrics)
    return backend, metrics, clock


def bar(day: int, price: float, *, volume: float = 1e6) -> Bar:
    """Return a daily bar opening and closing at ``price`` with a 1-unit range either side."""
    return Bar(day * DAY_NS, price, price + 1, price - 1, price, volume)


def market(quantity: int, side: Side = Side.BUY, **fields: object) -> OrderRequest:
    """Return a market order for ``quantity`` AAPL."""
    return OrderRequest(symbol="AAPL", side=side, quantity=Decimal(quantity), **fields)  # type: ignore[arg-type]


def value(metrics: TradingMetrics, name: str, **labels: str) -> float:
    """Return one sample's value, 0 when the series does not exist."""
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def total(metrics: TradingMetrics, name: str) -> float:
    """Return the sum of every series of the sample ``name``."""
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


# ---------------------------------------------------------------------- TradingMetrics


def test_every_metric_of_the_issue_is_defined() -> None:
    names = TradingMetrics().metric_names()

    for expected in (
        "tradepulse_orders_submitted_total",
        "tradepulse_orders_filled_total",
        "tradepulse_fills_total",
        "tradepulse_orders_rejected_total",
        "tradepulse_request_ack_seconds_bucket",
        "tradepulse_signal_fill_seconds_bucket",
        "tradepulse_position_units",
        "tradepulse_exposure_quote",
        "tradepulse_pnl_quote",
        "tradepulse_equity_quote",
        "tradepulse_kill_switch",
        "tradepulse_strategy_heartbeat_timestamp_seconds",
        "tradepulse_strategy_last_bar_timestamp_seconds",
    ):
        assert expected in names


def test_each_instance_has_its_own_registry() -> None:
    first, second = TradingMetrics(), TradingMetrics()  # would clash in one registry

    first.heartbeat("sma", timestamp=5.0)

    assert value(first, "tradepulse_strategy_heartbeat_timestamp_seconds", strategy="sma") == 5.0
    assert (
        second.registry.get_sample_value(
            "tradepulse_strategy_heartbeat_timestamp_seconds", {"strategy": "sma"}
        )
        is None
    )


def test_heartbeat_defaults_to_the_wall_clock_and_render_is_prometheus_text() -> None:
    metrics = TradingMetrics(wall_clock=lambda: 1234.5)

    metrics.heartbeat("sma")
    body, content_type = metrics.render()

    assert content_type.startswith("text/plain; version=0.0.4")
    assert 'tradepulse_strategy_heartbeat_timestamp_seconds{strategy="sma"} 1234.5' in (
        body.decode()
    )


def test_a_stopped_strategy_has_no_heartbeat_series() -> None:
    metrics = TradingMetrics()
    metrics.heartbeat("sma", timestamp=5.0)
    metrics.heartbeat("rsi", timestamp=6.0)

    metrics.strategy_stopped("sma")
    metrics.strategy_stopped("never-started")

    body = metrics.render()[0].decode()
    assert 'strategy="sma"' not in body
    assert 'tradepulse_strategy_heartbeat_timestamp_seconds{strategy="rsi"} 6.0' in body


def test_liveness_and_market_data_are_two_gauges() -> None:
    now = [100.0]
    metrics = TradingMetrics(wall_clock=lambda: now[0])
    heartbeat = "tradepulse_strategy_heartbeat_timestamp_seconds"
    last_bar = "tradepulse_strategy_last_bar_timestamp_seconds"

    metrics.heartbeat("sma")
    metrics.strategy_bar("sma")  # a completed bar at t = 100
    now[0] = 160.0
    metrics.heartbeat("sma")  # a ping at t = 160, no bar since
    metrics.strategy_bar("rsi", timestamp=42.0)

    assert value(metrics, heartbeat, strategy="sma") == 160.0
    assert value(metrics, last_bar, strategy="sma") == 100.0
    assert value(metrics, last_bar, strategy="rsi") == 42.0
    metrics.strategy_stopped("sma")
    body = metrics.render()[0].decode()
    assert 'strategy="sma"' not in body  # both series of a deleted strategy go
    assert f'{last_bar}{{strategy="rsi"}} 42.0' in body


def test_strategy_timestamps_past_the_label_limit_are_not_exported() -> None:
    metrics = TradingMetrics(max_strategies=1)

    metrics.heartbeat("a", timestamp=1.0)
    metrics.heartbeat("b", timestamp=2.0)  # a second strategy: no series of its own
    metrics.strategy_bar("b", timestamp=2.0)
    metrics.strategy_stopped("b")

    body = metrics.render()[0].decode()
    assert 'strategy="a"' in body
    assert 'strategy="b"' not in body
    assert 'strategy="other"' not in body  # timestamps of many strategies cannot be one series


@pytest.mark.parametrize(
    "options",
    [{"max_accounts": 0}, {"max_strategies": -1}, {"max_symbols": 1.5}, {"max_accounts": True}],
)
def test_bad_limits_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="must be an integer >= 1"):
        TradingMetrics(**options)  # type: ignore[arg-type]


def test_bad_options_elsewhere_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="callable"):
        TradingMetrics(clock=5.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_tracked_orders"):
        MeteredBackend(InProcessBackend(make_service()), TradingMetrics(), max_tracked_orders=0)
    with pytest.raises(ConfigError, match="refresh_timeout_seconds"):
        metrics_router(TradingMetrics(), refresh_timeout_seconds=0)


def test_ack_buckets_span_half_a_millisecond_to_a_second() -> None:
    assert ACK_BUCKETS_SECONDS[0] == 0.0005
    assert ACK_BUCKETS_SECONDS[-1] == 1.0
    assert 0.025 in ACK_BUCKETS_SECONDS  # the p99 target is a bucket edge
    assert list(ACK_BUCKETS_SECONDS) == sorted(ACK_BUCKETS_SECONDS)


# ---------------------------------------------------------------------- orders


def test_submissions_and_rejections_are_counted_by_type_and_reason() -> None:
    backend, metrics, _ = make_backend()

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        await backend.submit(market(10), account=ACCOUNT, strategy="s1")  # accepted
        await backend.submit(market(1000), account=ACCOUNT, strategy="s1")  # > 100 units
        limit = OrderRequest(
            symbol="AAPL",
            side=Side.BUY,
            quantity=Decimal(2000),
            order_type=OrderType.LIMIT,
            limit_price=Decimal(99),
        )
        await backend.submit(limit, account=ACCOUNT, strategy="s1")  # > 100 units
        await backend.set_kill_switch(True, account=ACCOUNT, reason="test")
        await backend.submit(market(5), account=ACCOUNT, strategy="s1")  # kill switch

    run(scenario())

    submitted = "tradepulse_orders_submitted_total"
    rejected = "tradepulse_orders_rejected_total"
    assert value(metrics, submitted, account=ACCOUNT, strategy="s1", order_type="market") == 3
    assert value(metrics, submitted, account=ACCOUNT, strategy="s1", order_type="limit") == 1
    assert (
        value(metrics, rejected, account=ACCOUNT, strategy="s1", reason="max_order_quantity") == 2
    )
    assert value(metrics, rejected, account=ACCOUNT, strategy="s1", reason="kill_switch") == 1
    assert total(metrics, rejected) == 3
    assert value(metrics, "tradepulse_kill_switch", account=ACCOUNT) == 1
    # The accepted order was cancelled by the kill switch: nothing is left to track.
    assert backend.tracked_orders == 0


def test_an_idempotent_replay_is_not_counted_twice() -> None:
    backend, metrics, _ = make_backend()

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        for _ in range(3):
            await backend.submit(market(10), account=ACCOUNT, idempotency_key="k-1")
        tagged = market(20, client_order_id="client-7")
        await backend.submit(tagged, account=ACCOUNT)
        await backend.submit(tagged, account=ACCOUNT)
        items = [SubmitItem(market(30), idempotency_key="b-1")] * 2
        await backend.submit_batch(items, account=ACCOUNT)
        # The replayed original is a rejection: still counted once.
        for _ in range(2):
            await backend.submit(market(500), account=ACCOUNT, idempotency_key="k-big")

    run(scenario())

    assert total(metrics, "tradepulse_orders_submitted_total") == 4  # k-1, client-7, b-1, k-big
    assert total(metrics, "tradepulse_orders_rejected_total") == 1
    assert value(metrics, "tradepulse_orders_replayed_total", account=ACCOUNT) == 2 + 1 + 1 + 1
    assert backend.tracked_orders == 3


def test_batch_failures_are_counted_as_errors_and_successes_as_orders() -> None:
    backend, metrics, _ = make_backend()
    no_price = OrderRequest(
        symbol="AAPL", side=Side.BUY, quantity=Decimal(1), order_type=OrderType.LIMIT
    )

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        await backend.submit_batch(
            [SubmitItem(market(1)), SubmitItem(no_price), SubmitItem(market(2))], account=ACCOUNT
        )

    run(scenario())

    assert total(metrics, "tradepulse_orders_submitted_total") == 2
    assert (
        value(
            metrics,
            "tradepulse_request_errors_total",
            operation="submit_batch",
            code="invalid_request",
        )
        == 1
    )
    assert value(metrics, "tradepulse_request_ack_seconds_count", operation="submit_batch") == 1


def test_refused_calls_are_counted_by_code_and_still_raise() -> None:
    backend, metrics, _ = make_backend()
    no_price = OrderRequest(
        symbol="AAPL", side=Side.BUY, quantity=Decimal(1), order_type=OrderType.LIMIT
    )

    async def scenario() -> None:
        with pytest.raises(ValueError, match="limit_price"):
            await backend.submit(no_price, account=ACCOUNT)
        with pytest.raises(LookupError):
            await backend.cancel("ord-999999", account=ACCOUNT)
        with pytest.raises(LookupError):
            await backend.replace("ord-999999", account=ACCOUNT, quantity=Decimal(1))

    run(scenario())

    errors = "tradepulse_request_errors_total"
    assert value(metrics, errors, operation="submit", code="invalid_request") == 1
    assert value(metrics, errors, operation="cancel", code="not_found") == 1
    assert value(metrics, errors, operation="replace", code="not_found") == 1
    assert total(metrics, "tradepulse_orders_submitted_total") == 0
    assert total(metrics, "tradepulse_request_ack_seconds_count") == 0


def test_strategy_labels_are_bounded() -> None:
    backend, metrics, _ = make_backend(max_strategies=2)

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        for strategy in ("s1", "s2", "s3", "s4", "s1"):
            await backend.submit(market(1), account=ACCOUNT, strategy=strategy)
        await backend.submit(market(1), account=ACCOUNT)

    run(scenario())

    submitted = "tradepulse_orders_submitted_total"
    labels = {"account": ACCOUNT, "order_type": "market"}
    assert value(metrics, submitted, strategy="s1", **labels) == 2
    assert value(metrics, submitted, strategy="s2", **labels) == 1
    assert value(metrics, submitted, strategy=OTHER_LABEL, **labels) == 2
    assert value(metrics, submitted, strategy="", **labels) == 1  # no strategy
    assert b'strategy="s3"' not in metrics.render()[0]


def test_account_labels_past_the_limit_get_no_gauges() -> None:
    backend, metrics, _ = make_backend(max_accounts=1)

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        await backend.submit(market(1), account="first")
        await backend.submit(market(1), account="second")

    run(scenario())

    assert value(metrics, "tradepulse_equity_quote", account="first") == 100_000
    assert b'account="second"' not in metrics.render()[0]
    assert b'tradepulse_equity_quote{account="other"}' not in metrics.render()[0]
    submitted = "tradepulse_orders_submitted_total"
    assert value(metrics, submitted, account=OTHER_LABEL, strategy="", order_type="market") == 1


# ---------------------------------------------------------------------- fills and latency


def test_fills_filled_orders_and_signal_to_fill_latency() -> None:
    # A 50% participation cap on 10-unit bars fills a 10-unit order 5 + 5.
    backend, metrics, clock = make_backend(make_service(max_participation=0.5))
    latency = "tradepulse_signal_fill_seconds"

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100, volume=10))
        clock.now = 10.0
        await backend.submit(market(10), account=ACCOUNT, strategy="sma")
        clock.now = 12.5
        await backend.on_bars([("AAPL", bar(2, 102, volume=10))])
        assert value(metrics, "tradepulse_fills_total", account=ACCOUNT, strategy="sma") == 1
        assert (
            value(metrics, "tradepulse_orders_filled_total", account=ACCOUNT, strategy="sma") == 0
        )
        clock.now = 14.0
        await backend.on_bar("AAPL", bar(3, 104, volume=10))

    run(scenario())

    assert value(metrics, "tradepulse_fills_total", account=ACCOUNT, strategy="sma") == 2
    assert value(metrics, "tradepulse_orders_filled_total", account=ACCOUNT, strategy="sma") == 1
    assert value(metrics, f"{latency}_count", order_type="market") == 2
    assert value(metrics, f"{latency}_sum", order_type="market") == pytest.approx(2.5 + 4.0)
    assert value(metrics, f"{latency}_bucket", order_type="market", le="1.0") == 0
    assert value(metrics, f"{latency}_bucket", order_type="market", le="5.0") == 2
    assert backend.tracked_orders == 0


def test_ack_latency_is_measured_around_the_call() -> None:
    clock = FakeClock(100.0)

    class SlowBackend(InProcessBackend):
        async def submit(self, request, **options):  # type: ignore[no-untyped-def]
            clock.now += 0.003  # the service takes 3 ms
            return await super().submit(request, **options)

    metrics = TradingMetrics(clock=clock)
    backend = MeteredBackend(SlowBackend(make_service()), metrics)

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        await backend.submit(market(1), account=ACCOUNT)

    run(scenario())

    ack = "tradepulse_request_ack_seconds"
    assert value(metrics, f"{ack}_sum", operation="submit") == pytest.approx(0.003)
    assert value(metrics, f"{ack}_bucket", operation="submit", le="0.002") == 0
    assert value(metrics, f"{ack}_bucket", operation="submit", le="0.005") == 1


def test_fills_of_orders_placed_elsewhere_are_counted_through_a_lookup() -> None:
    service = make_service()
    plain = InProcessBackend(service)
    metrics = TradingMetrics()
    backend = MeteredBackend(plain, metrics)

    async def scenario() -> None:
        await plain.on_bar("AAPL", bar(1, 100))
        await plain.submit(market(10), account=ACCOUNT, strategy="old")  # before metering
        await backend.on_bar("AAPL", bar(2, 101))

    run(scenario())

    assert value(metrics, "tradepulse_fills_total", account=ACCOUNT, strategy="old") == 1
    assert value(metrics, "tradepulse_orders_filled_total", account=ACCOUNT, strategy="old") == 1
    assert total(metrics, "tradepulse_signal_fill_seconds_count") == 0  # submit time unknown
    assert value(metrics, "tradepulse_position_units", account=ACCOUNT, symbol="AAPL") == 10


def test_replace_counts_the_new_order_once_and_moves_the_tracking() -> None:
    backend, metrics, clock = make_backend()
    limit = OrderRequest(
        symbol="AAPL",
        side=Side.BUY,
        quantity=Decimal(10),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(90),
    )
    latency = "tradepulse_signal_fill_seconds"

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        clock.now = 1.0
        old = (await backend.submit(limit, account=ACCOUNT, strategy="s")).order
        clock.now = 2.0
        new = await backend.replace(
            old.order_id, account=ACCOUNT, limit_price=Decimal(101), idempotency_key="r-1"
        )
        again = await backend.replace(
            old.order_id, account=ACCOUNT, limit_price=Decimal(101), idempotency_key="r-1"
        )
        assert again.order_id == new.order_id
        assert backend.tracked_orders == 1
        rejected = await backend.replace(new.order_id, account=ACCOUNT, quantity=Decimal(500))
        assert rejected.status is OrderStatus.REJECTED
        assert backend.tracked_orders == 1  # the rejected replace leaves the order working
        clock.now = 7.0
        await backend.on_bar("AAPL", bar(2, 100))  # its low (99) touches the 101 limit

    run(scenario())

    submitted = "tradepulse_orders_submitted_total"
    assert value(metrics, submitted, account=ACCOUNT, strategy="s", order_type="limit") == 3
    assert value(metrics, "tradepulse_orders_replayed_total", account=ACCOUNT) == 1
    assert (
        value(
            metrics,
            "tradepulse_orders_rejected_total",
            account=ACCOUNT,
            strategy="s",
            reason="max_order_quantity",
        )
        == 1
    )
    assert value(metrics, f"{latency}_sum", order_type="limit") == pytest.approx(7.0 - 2.0)
    assert value(metrics, "tradepulse_orders_filled_total", account=ACCOUNT, strategy="s") == 1
    assert value(metrics, "tradepulse_request_ack_seconds_count", operation="replace") == 3


def test_cancel_forgets_the_order_and_tracking_is_bounded() -> None:
    backend, _, _ = make_backend()
    backend = MeteredBackend(backend.inner, backend.metrics, max_tracked_orders=2)

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        ids = [(await backend.submit(market(1), account=ACCOUNT)).order.order_id for _ in range(3)]
        assert backend.tracked_orders == 2  # the oldest was forgotten
        await backend.cancel(ids[2], account=ACCOUNT)
        assert backend.tracked_orders == 1

    run(scenario())


def test_refresh_forgets_orders_that_ended_elsewhere() -> None:
    backend, _, _ = make_backend()

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        first = (await backend.submit(market(1), account=ACCOUNT)).order
        await backend.submit(market(2), account=ACCOUNT)
        await backend.inner.cancel(first.order_id, account=ACCOUNT)  # around the wrapper
        assert backend.tracked_orders == 2
        await backend.refresh()
        assert backend.tracked_orders == 1

    run(scenario())


# ---------------------------------------------------------------------- gauges


def test_gauges_follow_fills_and_marks() -> None:
    # Buy 10 at 102 (day 2 open), mark at 104: unrealized 10 * (104 - 102) = 20.
    # Sell 4 at 106 (day 4 open): realized 4 * (106 - 102) = 16; the other 6
    # marked at 105: unrealized 6 * (105 - 102) = 18, exposure 6 * 105 = 630.
    backend, metrics, _ = make_backend()

    def gauge(name: str, **labels: str) -> float:
        return value(metrics, name, account=ACCOUNT, **labels)

    async def scenario() -> None:
        await backend.on_bar("AAPL", Bar(DAY_NS, 100, 101, 99, 100, 1e6))
        await backend.submit(market(10), account=ACCOUNT)
        await backend.on_bar("AAPL", Bar(2 * DAY_NS, 102, 105, 101, 104, 1e6))
        assert gauge("tradepulse_position_units", symbol="AAPL") == 10
        assert gauge("tradepulse_pnl_quote", kind="unrealized") == 20
        assert gauge("tradepulse_equity_quote") == 100_020
        await backend.on_bar("AAPL", Bar(3 * DAY_NS, 104, 107, 103, 106, 1e6))  # a mark only
        assert gauge("tradepulse_pnl_quote", kind="unrealized") == 40
        await backend.submit(market(4, Side.SELL), account=ACCOUNT)
        await backend.on_bar("AAPL", Bar(4 * DAY_NS, 106, 107, 104, 105, 1e6))

    run(scenario())

    assert gauge("tradepulse_position_units", symbol="AAPL") == 6
    assert gauge("tradepulse_pnl_quote", kind="realized") == 16
    assert gauge("tradepulse_pnl_quote", kind="unrealized") == 18
    assert gauge("tradepulse_exposure_quote") == 630
    assert gauge("tradepulse_equity_quote") == 100_000 + 16 + 18
    assert gauge("tradepulse_kill_switch") == 0
    view: AccountView = run(backend.account(ACCOUNT))
    assert gauge("tradepulse_equity_quote") == float(view.equity)
    assert gauge("tradepulse_exposure_quote") == float(view.gross_exposure)


def test_a_closed_position_reads_zero_and_commission_reduces_realized_pnl() -> None:
    # Commission 1% of notional: buy 10 at 100 (10.00), sell 10 at 110 (11.00);
    # realized 10 * (110 - 100) - 21 = 79.
    backend, metrics, _ = make_backend(make_service(commission_rate=Decimal("0.01")))

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 90))
        await backend.submit(market(10), account=ACCOUNT)
        await backend.on_bar("AAPL", bar(2, 100))
        await backend.submit(market(10, Side.SELL), account=ACCOUNT)
        await backend.on_bar("AAPL", bar(3, 110))

    run(scenario())

    assert value(metrics, "tradepulse_position_units", account=ACCOUNT, symbol="AAPL") == 0
    assert value(metrics, "tradepulse_pnl_quote", account=ACCOUNT, kind="realized") == 79
    assert value(metrics, "tradepulse_pnl_quote", account=ACCOUNT, kind="unrealized") == 0
    assert value(metrics, "tradepulse_equity_quote", account=ACCOUNT) == 100_079


def test_the_global_kill_switch_sets_its_own_gauge_and_every_account() -> None:
    backend, metrics, _ = make_backend()

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        await backend.submit(market(1), account="a")
        await backend.submit(market(1), account="b")
        cancelled = await backend.set_kill_switch(True, reason="test")
        assert len(cancelled) == 2
        assert value(metrics, "tradepulse_kill_switch", account=GLOBAL_ACCOUNT) == 1
        assert value(metrics, "tradepulse_kill_switch", account="a") == 1
        assert value(metrics, "tradepulse_kill_switch", account="b") == 1
        await backend.set_kill_switch(False)

    run(scenario())

    assert backend.tracked_orders == 0
    assert value(metrics, "tradepulse_kill_switch", account=GLOBAL_ACCOUNT) == 0
    assert value(metrics, "tradepulse_kill_switch", account="a") == 0


def test_a_failing_refresh_is_logged_and_never_fails_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(InProcessBackend):
        async def account(self, account: str) -> AccountView:
            raise RuntimeError("account view unavailable")

    metrics = TradingMetrics()
    backend = MeteredBackend(Broken(make_service()), metrics)

    async def scenario() -> None:
        await backend.on_bar("AAPL", bar(1, 100))
        await backend.submit(market(1), account=ACCOUNT)
        await backend.on_bar("AAPL", bar(2, 100))

    with caplog.at_level(logging.WARNING, logger="tradepulse.serve.metrics"):
        run(scenario())

    assert "account view unavailable" in caplog.text
    assert value(metrics, "tradepulse_fills_total", account=ACCOUNT, strategy="") == 1


def test_read_only_calls_pass_through() -> None:
    backend, _, _ = make_backend()

    async def scenario() -> None:
        await backend.ping()
        await backend.on_bar("AAPL", bar(1, 100))
        order = (await backend.submit(market(1), account=ACCOUNT)).order
        await backend.on_bar("AAPL", bar(2, 100))
        assert (await backend.order(order.order_id, account=ACCOUNT)).status is OrderStatus.FILLED
        assert [view.order_id for view in await backend.orders(account=ACCOUNT)] == [order.order_id]
        assert len(await backend.fills(account=ACCOUNT)) == 1
        assert len(await backend.positions(account=ACCOUNT)) == 1
        assert not await backend.kill_switch_engaged(ACCOUNT)

    run(scenario())
    assert "MeteredBackend(InProcessBackend(" in repr(backend)


# ---------------------------------------------------------------------- HTTP


def keys() -> ApiKeyStore:
    """Return a read key, a trade key and an admin key for the bars (account = key id)."""
    return ApiKeyStore.from_env_value(
        f"reader:read:{READER_SECRET},trader:trade:{TRADER_SECRET},feed:admin:{FEED_SECRET}"
    )


def auth(secret: str) -> dict[str, str]:
    """Return the bearer header of ``secret``."""
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def client_and_metrics() -> Iterator[tuple[TestClient, TradingMetrics, MeteredBackend]]:
    """Return a test client of the app with the metrics route, and its metrics."""
    metrics = TradingMetrics()
    backend = MeteredBackend(InProcessBackend(make_service()), metrics)
    app = create_app(
        backend, keys=keys(), routers=[metrics_router(metrics, refresh=backend.refresh)]
    )
    app.add_middleware(RequestClockMiddleware, clock=metrics.clock)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, metrics, backend


def test_the_metrics_route_needs_a_read_key(
    client_and_metrics: tuple[TestClient, TradingMetrics, MeteredBackend],
) -> None:
    client, _, _ = client_and_metrics

    assert client.get("/api/v1/metrics").status_code == 401
    assert client.get("/api/v1/metrics", headers=auth("not-a-key-at-all")).status_code == 401
    assert client.get("/api/v1/metrics", headers=auth(READER_SECRET)).status_code == 200
    assert client.get("/api/v1/metrics", headers=auth(TRADER_SECRET)).status_code == 200
    operation = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/metrics"]["get"]
    assert operation["x-required-scope"] == "read"


def test_orders_through_http_show_up_in_the_scrape(
    client_and_metrics: tuple[TestClient, TradingMetrics, MeteredBackend],
) -> None:
    client, _, _ = client_and_metrics
    trade = auth(TRADER_SECRET)
    bar_body = {"symbol": "AAPL", "ts": DAY_NS, "open": 100, "high": 101, "low": 99, "close": 100}
    order = {"symbol": "AAPL", "side": "buy", "quantity": "10", "strategy": "sma"}

    assert client.post(
        "/api/v1/market/bars", json=bar_body | {"volume": 1e6}, headers=auth(FEED_SECRET)
    ).is_success
    for _ in range(2):
        response = client.post(
            "/api/v1/orders", json=order, headers=trade | {"Idempotency-Key": "k"}
        )
        assert response.is_success
    assert client.post("/api/v1/orders", json=order | {"quantity": "500"}, headers=trade).is_success
    scrape = client.get("/api/v1/metrics", headers=auth(READER_SECRET))

    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = scrape.text.splitlines()
    prefix = (
        'tradepulse_orders_submitted_total{account="trader",order_type="market",strategy="sma"}'
    )
    assert f"{prefix} 2.0" in lines
    assert (
        'tradepulse_orders_rejected_total{account="trader",reason="max_order_quantity",'
        'strategy="sma"} 1.0'
    ) in lines
    assert 'tradepulse_orders_replayed_total{account="trader"} 1.0' in lines
    assert 'tradepulse_equity_quote{account="trader"} 100000.0' in lines
    assert 'tradepulse_request_ack_seconds_count{operation="submit"} 3.0' in lines


class _SlowParsing:
    """An ASGI middleware that advances a fake clock, as slow parsing would."""

    def __init__(self, app: ASGIApp, *, clock: FakeClock, seconds: float) -> None:
        self.app = app
        self.clock = clock
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.clock.now += self.seconds
        await self.app(scope, receive, send)


@pytest.mark.parametrize(("stamped", "expected"), [(True, 0.010), (False, 0.0)])
def test_the_request_clock_counts_time_before_the_backend_call(
    stamped: bool, expected: float
) -> None:
    clock = FakeClock(50.0)
    metrics = TradingMetrics(clock=clock)
    backend = MeteredBackend(InProcessBackend(make_service()), metrics)
    app = create_app(backend, keys=keys())
    app.add_middleware(_SlowParsing, clock=clock, seconds=0.010)
    if stamped:
        app.add_middleware(RequestClockMiddleware, clock=clock)  # outermost
    run(backend.on_bar("AAPL", bar(1, 100)))

    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.post(
            "/api/v1/orders",
            json={"symbol": "AAPL", "side": "buy", "quantity": "1"},
            headers=auth(TRADER_SECRET),
        )

    assert response.status_code == 201
    ack_sum = value(metrics, "tradepulse_request_ack_seconds_sum", operation="submit")
    assert ack_sum == pytest.approx(expected)


def test_a_failing_refresh_still_serves_the_last_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = TradingMetrics()
    metrics.heartbeat("sma", timestamp=7.0)

    async def broken() -> None:
        raise RuntimeError("backend down")

    refresh: Callable[[], Awaitable[object]] = broken
    app = create_app(
        MeteredBackend(InProcessBackend(make_service()), metrics),
        keys=keys(),
        routers=[metrics_router(metrics, refresh=refresh)],
    )
    with (
        caplog.at_level(logging.WARNING, logger="tradepulse.serve.metrics"),
        TestClient(app, base_url="http://127.0.0.1") as client,
    ):
        response = client.get("/api/v1/metrics", headers=auth(READER_SECRET))

    assert response.status_code == 200
    assert 'tradepulse_strategy_heartbeat_timestamp_seconds{strategy="sma"} 7.0' in response.text
    assert "backend down" in caplog.text
