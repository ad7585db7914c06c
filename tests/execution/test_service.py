"""The execution service: order life cycle, pre-trade refusals, idempotency, throttles,
kill switch, positions and PnL, and rebuilding from the journal (restart, kill -9, replay).

Expected numbers are derived by hand in the comments next to them.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_helpers import (
    SECOND,
    SYMBOL,
    FakeClock,
    bar,
    buy,
    config,
    reopen,
    sell,
    snapshot,
)

from tradepulse.domain import OrderError, OrderStatus, OrderType, Side, TimeInForce
from tradepulse.errors import ConfigError, DataError
from tradepulse.execution import (
    ExecutionService,
    InvalidBarError,
    Journal,
    JournalError,
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
    Reason,
    ServiceConfig,
)
from tradepulse.execution import _service_core as service_core

D = Decimal
LIMIT = OrderType.LIMIT


def make(tmp_path: Path | None = None, **overrides: Any) -> tuple[ExecutionService, FakeClock]:
    """Return a service on a fresh journal (a file under ``tmp_path``, else in memory)."""
    journal = Journal(":memory:" if tmp_path is None else tmp_path / "journal.db")
    clock = FakeClock()
    return ExecutionService(journal=journal, config=config(**overrides), clock=clock), clock


def kinds(service: ExecutionService) -> list[str]:
    return [entry.kind for entry in service.journal.entries()]


# ----------------------------------------------------------------------------- life cycle


def test_market_order_fills_in_parts_under_the_participation_cap() -> None:
    service, clock = make(max_participation=0.1)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99, volume=100))

    submitted = service.submit(buy(25), account="acct").order
    after = [
        service.on_bar(SYMBOL, bar(day, open_, open_ + 1, open_ - 1, volume=volume))
        for day, open_, volume in ((2, 101, 100), (3, 102, 100), (4, 103, 50))
    ]
    final = service.order(submitted.order_id, account="acct")

    assert submitted.status is OrderStatus.ACCEPTED
    assert submitted.order_id == "ord-000001"
    assert submitted.created_ns == submitted.updated_ns
    # The cap is 10% of the bar's volume: 10, 10, then 5 of the 50-unit bar.
    assert [[(fill.quantity, fill.price) for fill in fills] for fills in after] == [
        [(D(10), D(101))],
        [(D(10), D(102))],
        [(D(5), D(103))],
    ]
    assert final.status is OrderStatus.FILLED
    assert final.filled_quantity == 25
    assert final.remaining_quantity == 0
    # (10 * 101 + 10 * 102 + 5 * 103) / 25 = 2545 / 25
    assert final.average_fill_price == D("101.8")
    assert final.updated_ns > submitted.updated_ns
    assert service.account("acct").cash == D(100_000 - 2545)
    assert [fill.fill_id for fill in service.fills(account="acct")] == [
        "fill-000001",
        "fill-000002",
        "fill-000003",
    ]
    assert service.fills(account="acct", order_id=submitted.order_id) == service.fills(
        account="acct"
    )
    assert clock.now > 0


def test_partially_filled_status_is_visible_between_bars() -> None:
    service, _ = make(max_participation=0.1)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99, volume=100))
    order_id = service.submit(buy(15), account="acct").order.order_id

    service.on_bar(SYMBOL, bar(2, 100, 101, 99, volume=100))

    view = service.order(order_id, account="acct")
    assert view.status is OrderStatus.PARTIALLY_FILLED
    assert (view.filled_quantity, view.remaining_quantity) == (D(10), D(5))
    assert service.account("acct").open_orders == 1
    assert [order.order_id for order in service.orders(account="acct", open_only=True)] == [
        order_id
    ]


def test_cancel_stops_a_working_order_and_refuses_twice() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    order_id = service.submit(buy(5, order_type=LIMIT, limit="95"), account="acct").order.order_id

    cancelled = service.cancel(order_id, account="acct")
    fills = service.on_bar(SYMBOL, bar(2, 96, 97, 90))  # would have filled at 95

    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.reason == Reason.CANCEL_REQUESTED
    assert fills == []
    with pytest.raises(OrderConflictError, match="cancelled"):
        service.cancel(order_id, account="acct")
    with pytest.raises(OrderNotFoundError):
        service.cancel(order_id, account="someone-else")
    with pytest.raises(OrderNotFoundError):
        service.cancel("ord-999999", account="acct")
    with pytest.raises(OrderNotFoundError):
        service.order(order_id, account="someone-else")
    assert kinds(service).count("cancel") == 1


def test_replace_moves_a_limit_and_links_both_orders() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    old = service.submit(
        buy(10, order_type=LIMIT, limit="95", client_order_id="mine"), account="acct"
    ).order

    new = service.replace(old.order_id, account="acct", limit_price=D("97"))
    fills = service.on_bar(SYMBOL, bar(2, 99, 100, 96))
    old_after = service.order(old.order_id, account="acct")

    assert new.order_id == "ord-000002"
    assert (new.quantity, new.limit_price, new.replaces) == (D(10), D(97), old.order_id)
    assert new.client_order_id == "mine"
    assert old_after.status is OrderStatus.CANCELLED
    assert (old_after.reason, old_after.replaced_by) == (Reason.REPLACED, new.order_id)
    # The bar touches 97 (low 96) but not 95: the replacement fills at its limit.
    assert [(fill.order_id, fill.quantity, fill.price) for fill in fills] == [
        (new.order_id, D(10), D(97))
    ]
    with pytest.raises(OrderConflictError, match="filled"):
        service.replace(new.order_id, account="acct", limit_price=D("98"))


def test_replace_defaults_to_the_unfilled_remainder() -> None:
    service, _ = make(max_participation=0.1)
    service.on_bar(SYMBOL, bar(1, 101, 102, 100, volume=100))
    old = service.submit(buy(30, order_type=LIMIT, limit="100"), account="acct").order
    service.on_bar(SYMBOL, bar(2, 101, 102, 99, volume=100))  # 10 of 30 at 100

    new = service.replace(old.order_id, account="acct", limit_price=D("99"))

    assert service.order(old.order_id, account="acct").filled_quantity == 10
    assert new.quantity == 20
    assert new.status is OrderStatus.ACCEPTED


def test_replace_releases_the_old_reservation_and_is_atomic_when_refused() -> None:
    service, _ = make(risk={"max_position": "10", "max_order_quantity": "10"})
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    old = service.submit(buy(8, order_type=LIMIT, limit="95"), account="acct").order

    # 9 replaces 8: the projected position is 9, not 8 + 9.
    grown = service.replace(old.order_id, account="acct", quantity=D(9))
    refused = service.replace(grown.order_id, account="acct", quantity=D(11))

    assert grown.status is OrderStatus.ACCEPTED
    assert refused.status is OrderStatus.REJECTED
    assert refused.reason == Reason.MAX_ORDER_QUANTITY
    assert refused.replaces == grown.order_id
    still = service.order(grown.order_id, account="acct")
    assert (still.status, still.replaced_by) == (OrderStatus.ACCEPTED, None)


def test_replace_needs_a_change_that_fits_the_order_type() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    order_id = service.submit(buy(5), account="acct").order.order_id
    before = kinds(service)

    with pytest.raises(OrderError, match="needs a new"):
        service.replace(order_id, account="acct")
    with pytest.raises(OrderError, match="market order takes no limit_price"):
        service.replace(order_id, account="acct", limit_price=D("99"))
    with pytest.raises(OrderNotFoundError):
        service.replace(order_id, account="other", quantity=D(1))

    assert kinds(service) == before
    assert service.order(order_id, account="acct").status is OrderStatus.ACCEPTED


@pytest.mark.parametrize(
    ("tif", "kwargs", "volume", "reason", "filled"),
    [
        # IOC limit below the bar's low: nothing fills, the order is cancelled.
        (TimeInForce.IOC, {"order_type": LIMIT, "limit": "90"}, 100.0, Reason.IOC_UNFILLED, 0),
        # IOC market for 20 with a 10-unit cap: 10 fill, the rest is cancelled.
        (TimeInForce.IOC, {}, 100.0, Reason.IOC_UNFILLED, 10),
        # FOK market for 20 with a 10-unit cap: nothing fills.
        (TimeInForce.FOK, {}, 100.0, Reason.FOK_UNFILLED, 0),
    ],
)
def test_immediate_orders_end_on_their_first_bar(
    tif: TimeInForce, kwargs: dict[str, Any], volume: float, reason: Reason, filled: int
) -> None:
    service, _ = make(max_participation=0.1)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    order_id = service.submit(buy(20, tif=tif, **kwargs), account="acct").order.order_id

    service.on_bar(SYMBOL, bar(2, 100, 101, 95, volume=volume))

    view = service.order(order_id, account="acct")
    assert view.status is OrderStatus.CANCELLED
    assert view.reason == reason
    assert view.filled_quantity == filled
    assert kinds(service)[-1] == "order_update"


def test_day_order_expires_when_a_bar_of_the_next_utc_date_arrives() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    order_id = service.submit(
        buy(5, order_type=LIMIT, limit="90", tif=TimeInForce.DAY), account="acct"
    ).order.order_id

    service.on_bar(SYMBOL, bar(2, 100, 101, 95))  # its trading day: not reached
    during = service.order(order_id, account="acct").status
    service.on_bar(SYMBOL, bar(3, 100, 101, 80))  # next UTC date: expires, does not fill

    view = service.order(order_id, account="acct")
    assert during is OrderStatus.ACCEPTED
    assert view.status is OrderStatus.EXPIRED
    assert view.reason == Reason.DAY_EXPIRED
    assert view.filled_quantity == 0
    assert service.orders(account="acct", status=OrderStatus.EXPIRED) == [view]


# ----------------------------------------------------------------------------- refusals


def _reject_case(name: str, service: ExecutionService, clock: FakeClock) -> OrderRequest:
    """Prepare ``service`` so that the returned request is refused for ``name``."""
    if name in {"max_position", "max_position_notional"}:
        service.submit(buy(6), account="acct")  # open: counts toward the projection
        return buy(5)
    if name == "max_open_orders":
        for _ in range(2):
            service.submit(buy(1, order_type=LIMIT, limit="90"), account="acct")
        return buy(1)
    if name in {"rate_limit_account", "rate_limit_strategy"}:
        service.submit(buy(1), account="acct", strategy="s1")
        return buy(1)
    if name == "kill_switch":
        service.set_kill_switch(True, account="acct", reason="drill")
        return buy(1)
    if name == "unknown_symbol":
        return buy(1, symbol="NOPE")
    if name == "off_grid_quantity":
        return buy("1.5")
    if name == "off_grid_price":
        return buy(1, order_type=LIMIT, limit="100.005")
    return buy(11)


REJECTIONS: dict[str, tuple[dict[str, Any], Reason]] = {
    "max_order_quantity": ({"risk": {"max_order_quantity": "10"}}, Reason.MAX_ORDER_QUANTITY),
    # 11 units at the last close 100 = 1100 > 1000
    "max_order_notional": ({"risk": {"max_order_notional": "1000"}}, Reason.MAX_ORDER_NOTIONAL),
    # 6 open + 5 = 11 > 10 units
    "max_position": ({"risk": {"max_position": "10"}}, Reason.MAX_POSITION),
    # (6 + 5) * 100 = 1100 > 1000
    "max_position_notional": (
        {"risk": {"max_position_notional": "1000"}},
        Reason.MAX_POSITION_NOTIONAL,
    ),
    # 11 * 100 = 1100 of exposure against 1000 of equity at margin rate 1
    "insufficient_margin": ({"initial_cash": "1000"}, Reason.INSUFFICIENT_MARGIN),
    "max_open_orders": ({"max_open_orders": 2}, Reason.MAX_OPEN_ORDERS),
    "rate_limit_account": ({"orders_per_second_account": 1}, Reason.RATE_LIMIT_ACCOUNT),
    "rate_limit_strategy": ({"orders_per_second_strategy": 1}, Reason.RATE_LIMIT_STRATEGY),
    "kill_switch": ({}, Reason.KILL_SWITCH),
    "unknown_symbol": ({}, Reason.UNKNOWN_SYMBOL),
    "off_grid_quantity": ({}, Reason.OFF_GRID),
    "off_grid_price": ({}, Reason.OFF_GRID),
}


@pytest.mark.parametrize("name", sorted(REJECTIONS))
def test_refused_orders_are_recorded_with_their_reason(name: str) -> None:
    overrides, reason = REJECTIONS[name]
    service, clock = make(**overrides)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    refused_request = _reject_case(name, service, clock)
    strategy = "s1" if name == "rate_limit_strategy" else None

    outcome = service.submit(refused_request, account="acct", strategy=strategy)
    order = outcome.order

    assert outcome.created
    assert order.status is OrderStatus.REJECTED
    assert order.reason == reason
    prefix = "insufficient cash/margin" if reason is Reason.INSUFFICIENT_MARGIN else reason.value
    assert order.reason_detail is not None
    assert order.reason_detail.startswith(prefix + ":")
    last = list(service.journal.entries())[-1]
    assert (last.kind, last.payload["status"], last.payload["reason"]) == (
        "order",
        "rejected",
        reason.value,
    )
    assert service.fills(account="acct", order_id=order.order_id) == []


def test_market_order_before_any_bar_needs_a_price_only_for_price_limits() -> None:
    priced, _ = make()  # the default margin_rate 1 values every opening order
    free, _ = make(risk={"margin_rate": None})

    refused = priced.submit(buy(5), account="acct").order
    limit_order = priced.submit(buy(5, order_type=LIMIT, limit="100"), account="acct").order
    accepted = free.submit(buy(5), account="acct").order
    fills = free.on_bar(SYMBOL, bar(1, 100, 101, 99))

    assert refused.reason == Reason.NO_MARKET_PRICE
    assert limit_order.status is OrderStatus.ACCEPTED  # valued at its own limit
    assert accepted.status is OrderStatus.ACCEPTED
    assert [(fill.quantity, fill.price) for fill in fills] == [(D(5), D(100))]


def test_a_venue_refusal_is_recorded_as_venue(monkeypatch: pytest.MonkeyPatch) -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    monkeypatch.setattr(service_core, "off_grid", lambda order, instrument: None)

    order = service.submit(buy("1.5"), account="acct").order

    assert (order.status, order.reason) == (OrderStatus.REJECTED, Reason.VENUE)
    assert order.reason_detail is not None
    assert "lot size" in order.reason_detail
    monkeypatch.undo()
    rebuilt = reopen(service.journal, service.config, FakeClock())
    assert rebuilt.order(order.order_id, account="acct") == order


def test_malformed_requests_raise_and_record_nothing() -> None:
    service, _ = make()
    before = kinds(service)

    with pytest.raises(OrderError, match="limit order needs limit_price"):
        service.submit(buy(1, order_type=LIMIT), account="acct")
    with pytest.raises(OrderError, match="quantity"):
        service.submit(buy(0), account="acct")
    with pytest.raises(OrderError, match="account"):
        service.submit(buy(1), account="has space")
    with pytest.raises(OrderError, match="strategy"):
        service.submit(buy(1), account="acct", strategy="")
    with pytest.raises(OrderError, match="idempotency_key"):
        service.submit(buy(1), account="acct", idempotency_key="x" * 129)
    with pytest.raises(OrderError, match="client_order_id"):
        service.submit(buy(1, client_order_id="a\nb"), account="acct")
    with pytest.raises(OrderError, match="OrderRequest"):
        service.submit("buy 1", account="acct")  # type: ignore[arg-type]

    assert kinds(service) == before
    assert service.accounts() == []


# ----------------------------------------------------------------------------- idempotency


def test_a_repeated_key_returns_the_original_order() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    first = service.submit(buy(3), account="acct", idempotency_key="key-1")
    events = service.journal.last_sequence

    again = service.submit(buy(3), account="acct", idempotency_key="key-1")
    elsewhere = service.submit(buy(3), account="other", idempotency_key="key-1")

    assert first.created
    assert not again.created
    assert again.order == first.order
    assert elsewhere.created  # keys are scoped to the account
    assert service.journal.last_sequence == events + 1
    with pytest.raises(OrderConflictError, match="key-1"):
        service.submit(buy(4), account="acct", idempotency_key="key-1")
    with pytest.raises(OrderConflictError, match="key-1"):
        service.submit(buy(3), account="acct", strategy="s1", idempotency_key="key-1")


def test_a_client_order_id_works_as_the_key_and_rejections_are_replayed() -> None:
    service, _ = make(risk={"max_order_quantity": "5"})
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    refused = service.submit(buy(9, client_order_id="c-1"), account="acct")

    retried = service.submit(buy(9, client_order_id="c-1"), account="acct")
    retried_with_header = service.submit(
        buy(9, client_order_id="c-1"), account="acct", idempotency_key="fresh"
    )

    assert refused.order.status is OrderStatus.REJECTED
    assert (retried.created, retried.order) == (False, refused.order)
    assert (retried_with_header.created, retried_with_header.order) == (False, refused.order)
    with pytest.raises(OrderConflictError, match="c-1"):
        service.submit(buy(2, client_order_id="c-1"), account="acct")
    assert len(service.orders(account="acct")) == 1


def test_a_retried_replace_with_its_key_returns_the_same_replacement() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    old = service.submit(buy(4, order_type=LIMIT, limit="95"), account="acct").order

    new = service.replace(old.order_id, account="acct", limit_price=D(96), idempotency_key="r")
    again = service.replace(old.order_id, account="acct", limit_price=D(96), idempotency_key="r")

    assert again == new
    with pytest.raises(OrderConflictError):
        service.replace(old.order_id, account="acct", limit_price=D(97), idempotency_key="r")
    with pytest.raises(OrderConflictError, match="cancelled"):
        service.replace(old.order_id, account="acct", limit_price=D(96))


# ----------------------------------------------------------------------------- throttles


def test_account_throttle_admits_the_burst_then_refills_with_the_clock() -> None:
    service, clock = make(orders_per_second_account=2, account_burst=2)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))

    statuses = [service.submit(buy(1), account="acct").order for _ in range(3)]
    other = service.submit(buy(1), account="other").order
    clock.advance(0.5)  # one token back (2 per second)
    after = service.submit(buy(1), account="acct").order

    assert [order.status for order in statuses] == [
        OrderStatus.ACCEPTED,
        OrderStatus.ACCEPTED,
        OrderStatus.REJECTED,
    ]
    assert statuses[2].reason == Reason.RATE_LIMIT_ACCOUNT
    assert statuses[2].reason_detail is not None
    assert "retry in 0.500000 s" in statuses[2].reason_detail  # 0.5 s less a few ns
    assert other.status is OrderStatus.ACCEPTED
    assert after.status is OrderStatus.ACCEPTED


def test_strategy_throttle_is_per_strategy_and_spends_no_account_token_when_refusing() -> None:
    service, _ = make(
        orders_per_second_account=1,
        account_burst=2,
        orders_per_second_strategy=1,
        strategy_burst=1,
    )
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))

    results = [
        service.submit(buy(1), account="acct", strategy="s1").order,  # account 1 left
        service.submit(buy(1), account="acct", strategy="s1").order,  # strategy empty
        service.submit(buy(1), account="acct").order,  # the account's last token
        service.submit(buy(1), account="acct", strategy="s2").order,  # account empty
        service.submit(buy(1), account="b", strategy="s1").order,  # another account's s1
    ]

    assert [order.reason for order in results] == [
        None,
        Reason.RATE_LIMIT_STRATEGY,
        None,
        Reason.RATE_LIMIT_ACCOUNT,
        None,
    ]


def test_a_throttled_request_binds_no_key_so_its_retry_runs_again() -> None:
    service, clock = make(orders_per_second_account=1)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    service.submit(buy(1), account="acct")

    throttled = service.submit(buy(2, client_order_id="c"), account="acct", idempotency_key="k")
    clock.advance(1)
    retried = service.submit(buy(2, client_order_id="c"), account="acct", idempotency_key="k")
    again = service.submit(buy(2, client_order_id="c"), account="acct", idempotency_key="k")

    assert throttled.order.reason == Reason.RATE_LIMIT_ACCOUNT
    assert retried.created
    assert retried.order.status is OrderStatus.ACCEPTED
    assert (again.created, again.order.order_id) == (False, retried.order.order_id)
    rebuilt = reopen(service.journal, service.config, clock)
    assert rebuilt.submit(buy(2, client_order_id="c"), account="acct").order == again.order


# ----------------------------------------------------------------------------- kill switch


def test_kill_switch_blocks_and_cancels_per_account_and_globally() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    a_orders = [
        service.submit(buy(1, order_type=LIMIT, limit="90"), account="a").order.order_id
        for _ in range(2)
    ]
    b_order = service.submit(buy(1, order_type=LIMIT, limit="90"), account="b").order.order_id

    cancelled_a = service.set_kill_switch(True, account="a", reason="desk halt")
    blocked = service.submit(buy(1), account="a").order
    open_b = service.submit(buy(1, order_type=LIMIT, limit="91"), account="b").order.order_id
    cancelled_all = service.set_kill_switch(True)
    blocked_b = service.submit(buy(1), account="b").order
    released_global = service.set_kill_switch(False)
    after_global = (
        service.submit(buy(1), account="a").order,
        service.submit(buy(1), account="b").order,
    )
    service.set_kill_switch(False, account="a")
    after_all = service.submit(buy(1), account="a").order

    assert [order.order_id for order in cancelled_a] == a_orders
    assert all(order.reason == Reason.KILL_SWITCH for order in cancelled_a)
    assert all(order.status is OrderStatus.CANCELLED for order in cancelled_a)
    assert blocked.reason == Reason.KILL_SWITCH
    assert blocked.reason_detail is not None
    assert "desk halt" in blocked.reason_detail
    assert [order.order_id for order in cancelled_all] == [b_order, open_b]
    assert blocked_b.reason == Reason.KILL_SWITCH
    assert released_global == []
    assert [order.reason for order in after_global] == [Reason.KILL_SWITCH, None]
    assert after_all.status is OrderStatus.ACCEPTED
    assert not service.kill_switch_engaged()
    assert not service.kill_switch_engaged("a")
    assert not service.account("a").kill_switch


def test_kill_switch_state_is_reported() -> None:
    service, _ = make()
    service.set_kill_switch(True, account="a")

    assert service.kill_switch_engaged("a")
    assert not service.kill_switch_engaged("b")
    assert not service.kill_switch_engaged()
    assert service.account("a").kill_switch
    service.set_kill_switch(True)
    assert service.kill_switch_engaged("b")
    assert service.account("never-seen").kill_switch
    with pytest.raises(OrderError, match="engaged"):
        service.set_kill_switch(1)  # type: ignore[arg-type]
    with pytest.raises(OrderError, match="reason"):
        service.set_kill_switch(True, reason="x" * 300)


# ----------------------------------------------------------------------------- positions and PnL


def test_positions_and_account_match_hand_computed_values() -> None:
    service, _ = make(commission_rate="0.001")
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    service.on_bar("OTHER", bar(1, 50, 51, 49))
    service.submit(buy(10), account="acct")
    service.submit(sell(5, symbol="OTHER"), account="acct")  # opens a short
    service.on_bar(SYMBOL, bar(2, 100, 103, 99, close=102))  # buy 10 at 100, fee 1.00
    service.on_bar("OTHER", bar(2, 50, 51, 47, close=48))  # short 5 at 50, fee 0.25
    service.submit(sell(4), account="acct")
    service.on_bar(SYMBOL, bar(3, 103, 104, 100, close=101))  # sell 4 at 103, fee 0.412 -> 0.41

    acme, other = service.positions(account="acct")
    account = service.account("acct")

    assert (acme.symbol, acme.quantity, acme.average_price, acme.last_price) == (
        SYMBOL,
        D(6),
        D(100),
        D(101),
    )
    assert acme.market_value == D(606)  # 6 * 101
    assert acme.unrealized_pnl == D(6)  # 6 * (101 - 100)
    assert acme.realized_pnl == D(12)  # 4 * (103 - 100)
    assert acme.commission == D("1.41")
    assert (other.quantity, other.average_price, other.last_price) == (D(-5), D(50), D(48))
    assert other.market_value == D(-240)
    assert other.unrealized_pnl == D(10)  # -5 * (48 - 50)
    assert other.commission == D("0.25")
    # 100000 - 1000 - 1.00 + 250 - 0.25 + 412 - 0.41
    assert account.cash == D("99660.34")
    assert account.equity == D("100026.34")  # cash + 606 - 240
    assert account.equity == account.initial_cash + account.realized_pnl - account.commission + (
        account.unrealized_pnl
    )
    assert (account.realized_pnl, account.unrealized_pnl) == (D(12), D(16))
    assert account.commission == D("1.66")
    assert account.gross_exposure == D(846)  # 606 + 240
    assert account.open_orders == 0


def test_unknown_accounts_show_initial_cash_and_nothing_else() -> None:
    service, _ = make(initial_cash="2500")

    view = service.account("nobody")

    assert (view.cash, view.equity, view.open_orders, view.kill_switch) == (
        D(2500),
        D(2500),
        0,
        False,
    )
    assert service.orders(account="nobody") == []
    assert service.fills(account="nobody") == []
    assert service.positions(account="nobody") == []
    assert service.accounts() == []


def test_orders_filter_by_status_and_limit_to_the_most_recent() -> None:
    service, _ = make(risk={"max_order_quantity": "5"})
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    ids = [
        service.submit(buy(quantity), account="acct").order.order_id for quantity in (1, 9, 2, 3)
    ]

    rejected = service.orders(account="acct", status=OrderStatus.REJECTED)
    recent = service.orders(account="acct", limit=2)

    assert [order.order_id for order in rejected] == [ids[1]]
    assert [order.order_id for order in recent] == ids[2:]
    with pytest.raises(OrderError, match="limit"):
        service.orders(account="acct", limit=0)
    with pytest.raises(OrderError, match="status"):
        service.orders(account="acct", status="filled")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- market data


def test_stale_and_bad_bars() -> None:
    service, _ = make()
    service.on_bar(SYMBOL, bar(2, 100, 101, 99))
    events = service.journal.last_sequence

    assert service.on_bar(SYMBOL, bar(2, 100, 101, 99)) == []
    assert service.on_bar(SYMBOL, bar(1, 100, 101, 99)) == []
    assert service.journal.last_sequence == events
    with pytest.raises(DataError, match="bar contract"):
        service.on_bar(SYMBOL, bar(3, 100, 99, 101))
    with pytest.raises(DataError, match="bar contract"):
        service.on_bar(SYMBOL, bar(3, float("nan"), 101, 99))
    with pytest.raises(InvalidBarError, match="NOPE") as raised:
        service.on_bar("NOPE", bar(3, 100, 101, 99))
    assert isinstance(raised.value, DataError)
    assert isinstance(raised.value, ValueError)  # an HTTP layer answers 422
    with pytest.raises(DataError, match="symbol"):
        service.on_bar("", bar(3, 100, 101, 99))
    assert service.last_bar_ts(SYMBOL) == bar(2, 1, 1, 1).ts
    assert service.last_price(SYMBOL) == D(100)


# ----------------------------------------------------------------------------- configuration


def test_config_round_trips_and_names_unknown_keys() -> None:
    data = {
        "initial_cash": "5000",
        "instruments": {"X": {"price_increment": "0.05"}},
        "default_instrument": "reject",
        "commission_rate": 0.0005,
        "risk": {"max_position": 100, "margin_rate": None},
        "max_open_orders": 3,
        "orders_per_second_account": 5,
        "account_burst": 10,
        "max_participation": 0.25,
    }
    built = ServiceConfig.from_mapping(data)

    assert ServiceConfig.from_mapping(built.to_mapping()) == built
    assert built.commission_rate == D("0.0005")
    assert built.instrument("X") is not None
    assert built.instrument("Y") is None
    assert built.account_rate_limit is not None
    assert built.account_rate_limit.capacity == 10
    assert built.strategy_rate_limit is None
    for bad, match in (
        ({"initial_cahs": 1}, "initial_cahs"),
        ({"risk": {"max_postion": 1}}, "risk.max_postion"),
        ({"instruments": {"X": {"tick": "0.01"}}}, "instruments.X.tick"),
        ({"default_instrument": {"lot": 1}}, "default_instrument.lot"),
        ({"initial_cash": "lots"}, "initial_cash"),
        ({"initial_cash": -1}, "initial_cash"),
        ({"commission_rate": 1}, "commission_rate"),
        ({"max_open_orders": 0}, "max_open_orders"),
        ({"max_open_orders": 1.5}, "max_open_orders"),
        ({"account_burst": 2}, "account_burst needs orders_per_second_account"),
        ({"orders_per_second_strategy": 0}, "orders_per_second_strategy"),
        ({"max_participation": 1.5}, "max_participation"),
        ({"max_participation": "half"}, "max_participation"),
        ({"risk": {"max_position": -1}}, "max_position"),
    ):
        with pytest.raises(ConfigError, match=match):
            ServiceConfig.from_mapping(bad)


# ----------------------------------------------------------------------------- durability


def _busy_day(service: ExecutionService, clock: FakeClock) -> None:
    """Drive a service through fills, a cancel, a replace, refusals and a kill switch."""
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    service.submit(buy(10), account="a", strategy="s1", idempotency_key="k1")
    resting = service.submit(buy(5, order_type=LIMIT, limit="95"), account="a").order
    doomed = service.submit(sell(2, order_type=LIMIT, limit="120"), account="b").order
    service.submit(buy(1, symbol="NOPE"), account="b")
    service.on_bar(SYMBOL, bar(2, 101, 102, 100, close=101.5))
    service.replace(resting.order_id, account="a", limit_price=D("99"), idempotency_key="r1")
    service.cancel(doomed.order_id, account="b")
    clock.advance(1)
    service.submit(sell(4, tif=TimeInForce.DAY, order_type=LIMIT, limit="110"), account="a")
    service.on_bar(SYMBOL, bar(3, 100, 101, 98, close=99))
    service.set_kill_switch(True, account="b", reason="test")
    service.on_bar(SYMBOL, bar(4, 99, 100, 97, close=98))


def test_restart_rebuilds_identical_state(tmp_path: Path) -> None:
    service, clock = make(tmp_path, commission_rate="0.001")
    _busy_day(service, clock)
    before = snapshot(service)
    service.journal.close()

    journal = Journal.open(tmp_path / "journal.db")
    rebuilt = reopen(journal, config(commission_rate="0.001"), clock)

    assert snapshot(rebuilt) == before
    assert (
        rebuilt.submit(buy(10), account="a", strategy="s1", idempotency_key="k1").created is False
    )
    assert rebuilt.submit(buy(1), account="a").order.order_id == "ord-000007"
    assert rebuilt.kill_switch_engaged("b")
    assert kinds(rebuilt).count("session") == 2
    journal.close()


def test_the_service_holds_the_writer_lock(tmp_path: Path) -> None:
    service, _ = make(tmp_path)

    with pytest.raises(ConfigError, match=f"already open for writing by pid {os.getpid()}"):
        Journal.open(tmp_path / "journal.db")
    with pytest.raises(ConfigError, match="writing"):
        ExecutionService(
            journal=Journal.open(tmp_path / "journal.db", read_only=True), config=config()
        )
    service.journal.close()


def _tamper(path: Path, statement: str) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("DROP TRIGGER events_no_update")
        connection.execute("DROP TRIGGER events_no_delete")
        connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def _first(service: ExecutionService, kind: str) -> int:
    return next(entry.sequence for entry in service.journal.entries() if entry.kind == kind)


@pytest.mark.parametrize(
    ("statement", "match"),
    [
        (
            'UPDATE events SET payload = replace(payload, \'"price":"101\', '
            '\'"price":"111\') WHERE sequence = {fill}',
            "differs from what the replay derives",
        ),
        ("DELETE FROM events WHERE sequence = {fill}", "event {fill} is missing"),
        ("UPDATE events SET kind = 'fill' WHERE sequence = {cancel}", "no preceding event"),
        (
            "UPDATE events SET payload = replace(payload, 'ord-000002', 'ord-000009') "
            "WHERE sequence = {order2}",
            "out of sequence",
        ),
    ],
)
def test_a_corrupted_journal_names_the_bad_event(
    tmp_path: Path, statement: str, match: str
) -> None:
    service, clock = make(tmp_path)
    _busy_day(service, clock)
    positions = {
        "fill": _first(service, "fill"),
        "cancel": _first(service, "cancel"),
        "order2": [e.sequence for e in service.journal.entries() if e.kind == "order"][1],
    }
    service.journal.close()
    _tamper(tmp_path / "journal.db", statement.format(**positions))

    with (
        Journal.open(tmp_path / "journal.db") as journal,
        pytest.raises(JournalError, match=match.format(**positions)) as raised,
    ):
        reopen(journal, config(), clock)

    assert raised.value.sequence is not None
    assert f"event {raised.value.sequence}" in str(raised.value)


def test_a_journal_cut_after_a_bar_names_the_missing_fill(tmp_path: Path) -> None:
    service, clock = make(tmp_path)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    service.submit(buy(1), account="a")
    service.on_bar(SYMBOL, bar(2, 100, 101, 99))  # the fill is the journal's last event
    last = service.journal.last_sequence
    service.journal.close()
    _tamper(tmp_path / "journal.db", f"DELETE FROM events WHERE sequence = {last}")

    with (
        Journal.open(tmp_path / "journal.db") as journal,
        pytest.raises(JournalError, match=f"ends at event {last - 1}.*further fill") as raised,
    ):
        reopen(journal, config(), clock)
    assert raised.value.sequence == last


def test_constructor_and_clock_are_checked() -> None:
    journal = Journal()
    with pytest.raises(ConfigError, match="journal must be a Journal"):
        ExecutionService(journal=":memory:", config=config())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="config must be a ServiceConfig"):
        ExecutionService(journal=journal, config={})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="clock must be callable"):
        ExecutionService(journal=journal, config=config(), clock=5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="integer nanoseconds"):
        ExecutionService(journal=journal, config=config(), clock=lambda: 1.5)  # type: ignore[arg-type,return-value]
    journal.close()
    with pytest.raises(ConfigError, match="open for writing"):
        ExecutionService(journal=journal, config=config())


def test_bar_stamps_must_be_integers() -> None:
    service, _ = make()

    class Stamped:
        def __init__(self, ts: object) -> None:
            self.ts, self.open, self.high, self.low, self.close, self.volume = (
                ts,
                100.0,
                101.0,
                99.0,
                100.0,
                10.0,
            )

    for ts in (1.5, True, "1"):
        with pytest.raises(DataError, match="integer nanoseconds"):
            service.on_bar(SYMBOL, Stamped(ts))  # type: ignore[arg-type]
    with pytest.raises(DataError, match="must be a number"):
        service.on_bar(SYMBOL, bar(1, "x", 101, 99))  # type: ignore[arg-type]
    assert service.on_bar(SYMBOL, Stamped(5)) == []  # type: ignore[arg-type]
    assert service.last_bar_ts(SYMBOL) == 5


def test_other_ledger_settings_are_refused(tmp_path: Path) -> None:
    service, clock = make(tmp_path)
    _busy_day(service, clock)
    service.journal.close()

    with Journal.open(tmp_path / "journal.db") as journal:
        with pytest.raises(ConfigError, match="commission_rate=0"):
            reopen(journal, config(commission_rate="0.002"), clock)
        coarse = {"ACME": {"price_increment": "0.05", "quantity_increment": "1"}}
        with pytest.raises(ConfigError, match="'ACME'"):
            reopen(journal, config(instruments=coarse), clock)


def test_a_failed_write_stops_the_service_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    service, clock = make(tmp_path)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    kept = service.submit(buy(1), account="a").order
    service.journal.close()  # the disk "fails"

    with pytest.raises(JournalError, match="closed"):
        service.submit(buy(2), account="a")
    with pytest.raises(JournalError, match="stopped"):
        service.cancel(kept.order_id, account="a")

    with Journal.open(tmp_path / "journal.db") as journal:
        rebuilt = reopen(journal, config(), clock)
        assert rebuilt.orders(account="a") == [kept]


_CHILD = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from tradepulse.domain import Side
    from tradepulse.execution import ExecutionService, Journal, OrderRequest, ServiceConfig
    from tradepulse.strategy.api import Bar

    day = 86_400 * 10**9
    service = ExecutionService(
        journal=Journal.open(sys.argv[1]),
        config=ServiceConfig.from_mapping({"risk": {"margin_rate": None}}),
    )
    for number in range(1_000_000):
        if number % 5 == 0:
            service.on_bar("ACME", Bar((number // 5 + 1) * day, 100.0, 101.0, 99.0, 100.0, 1e6))
        side = Side.BUY if number % 2 == 0 else Side.SELL
        request = OrderRequest(symbol="ACME", side=side, quantity=Decimal(1 + number % 3))
        outcome = service.submit(request, account="acct", idempotency_key=f"k-{number}")
        print("ACK", number, outcome.order.order_id, flush=True)
    """
)


def test_every_acknowledged_order_survives_kill_9_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        assert child.stdout is not None
        while len(lines) < 40:  # mid-stream: the child keeps submitting
            line = child.stdout.readline()
            assert line, "the child exited early"
            lines.append(line)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            lines.extend(child.stdout.read().splitlines(keepends=True))  # printed before death
            child.stdout.close()
    # A line cut short by the kill is not an acknowledgement.
    acked = {
        int(number): order_id
        for _, number, order_id in (line.split() for line in lines if line.endswith("\n"))
    }
    assert len(acked) >= 40

    with Journal.open(path) as journal:
        service = ExecutionService(
            journal=journal, config=ServiceConfig.from_mapping({"risk": {"margin_rate": None}})
        )
        orders = service.orders(account="acct")
        ids = [order.order_id for order in orders]
        assert len(ids) == len(set(ids))
        assert set(acked.values()) <= set(ids)
        # Retrying every acknowledged request finds its order and creates nothing.
        for number, acked_id in sorted(acked.items()):
            side = Side.BUY if number % 2 == 0 else Side.SELL
            retry = service.submit(
                OrderRequest(symbol=SYMBOL, side=side, quantity=D(1 + number % 3)),
                account="acct",
                idempotency_key=f"k-{number}",
            )
            assert (retry.created, retry.order.order_id) == (False, acked_id)
        # At most one order beyond the acknowledged ones: the child may die between a
        # commit and its print.
        assert len(orders) - len(acked) in (0, 1)
        assert len(service.orders(account="acct")) == len(orders)


# ----------------------------------------------------------------------------- replay property

_SUBMIT = st.tuples(
    st.just("submit"),
    st.sampled_from(["a", "b"]),
    st.sampled_from([SYMBOL, "OTHER"]),
    st.sampled_from(list(Side)),
    st.integers(1, 12),
    st.sampled_from(list(OrderType)),
    st.integers(-3, 3),
    st.sampled_from(list(TimeInForce)),
    st.sampled_from([None, "s1", "s2"]),
    st.sampled_from([None, None, "k1", "k2", "k3"]),
)
_BAR = st.tuples(st.just("bar"), st.sampled_from([SYMBOL, "OTHER"]), st.integers(-3, 3))
_BRANCHES = {
    "submit": _SUBMIT,
    "bar": _BAR,
    "cancel": st.tuples(st.just("cancel"), st.integers(0, 30)),
    "replace": st.tuples(st.just("replace"), st.integers(0, 30), st.integers(-2, 2), st.booleans()),
    "kill": st.tuples(
        st.just("kill"), st.sampled_from([None, "a", "b"]), st.sampled_from([True, False, False])
    ),
    "wait": st.tuples(st.just("wait"), st.sampled_from([0.05, 0.3, 2.0])),
}
# Mostly orders and bars; now and then a cancel, replace, kill switch or pause.
_OPERATION = st.sampled_from(
    ["submit"] * 6 + ["bar"] * 5 + ["cancel", "replace", "replace", "kill", "wait"]
).flatmap(_BRANCHES.__getitem__)


def _run(service: ExecutionService, clock: FakeClock, operations: list[tuple[Any, ...]]) -> None:
    prices = {SYMBOL: 100, "OTHER": 50}
    days = {SYMBOL: 0, "OTHER": 0}
    for operation in [("bar", SYMBOL, 0), ("bar", "OTHER", 0), *operations]:
        kind = operation[0]
        try:
            if kind == "submit":
                _, account, symbol, side, quantity, order_type, offset, tif, strategy, key = (
                    operation
                )
                price = str(prices[symbol] + offset)
                limit = price if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
                stop = price if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
                request = OrderRequest(
                    symbol=symbol,
                    side=side,
                    quantity=D(quantity),
                    order_type=order_type,
                    limit_price=None if limit is None else D(limit),
                    stop_price=None if stop is None else D(stop),
                    time_in_force=tif,
                )
                service.submit(request, account=account, strategy=strategy, idempotency_key=key)
            elif kind in ("cancel", "replace"):
                everything = [
                    order for name in ("a", "b") for order in service.orders(account=name)
                ]
                if not everything:
                    continue
                target = everything[operation[1] % len(everything)]
                if kind == "cancel":
                    service.cancel(target.order_id, account=target.account)
                else:
                    new_price = (target.limit_price or D(prices[target.symbol])) + operation[2]
                    service.replace(
                        target.order_id,
                        account=target.account,
                        quantity=None if operation[3] else D(1 + operation[2] % 4),
                        limit_price=new_price if target.limit_price is not None else None,
                        stop_price=target.stop_price if operation[3] else None,
                    )
            elif kind == "bar":
                symbol, move = operation[1], operation[2]
                open_ = prices[symbol]
                prices[symbol] = max(5, open_ + move)
                days[symbol] += 1
                high = max(open_, prices[symbol]) + 1
                low = min(open_, prices[symbol]) - 1
                service.on_bar(
                    symbol, bar(days[symbol], open_, high, low, prices[symbol], volume=40.0)
                )
            elif kind == "kill":
                service.set_kill_switch(operation[2], account=operation[1], reason="p")
            else:
                clock.advance(operation[1])
        except (OrderConflictError, OrderError):
            pass  # reused keys with other requests, replaces of finished orders, bad changes


@settings(max_examples=80)
@given(operations=st.lists(_OPERATION, min_size=10, max_size=60))
def test_replaying_the_journal_rebuilds_the_same_state(operations: list[tuple[Any, ...]]) -> None:
    service_config = config(
        commission_rate="0.001",
        max_participation=0.5,
        max_open_orders=6,
        orders_per_second_account=4,
        account_burst=6,
        orders_per_second_strategy=2,
        risk={"max_position": "30", "margin_rate": "0.5"},
    )
    clock = FakeClock()
    journal = Journal()
    service = ExecutionService(journal=journal, config=service_config, clock=clock)

    _run(service, clock, operations)
    rebuilt = ExecutionService(journal=journal, config=service_config, clock=clock)

    assert snapshot(rebuilt) == snapshot(service)
    for name in service.accounts():
        for order in service.orders(account=name):
            fills = service.fills(account=name, order_id=order.order_id)
            assert order.filled_quantity == sum((fill.quantity for fill in fills), D(0))
            assert order.filled_quantity <= order.quantity
    journal.close()


def test_state_is_deterministic_across_runs() -> None:
    first, first_clock = make()
    second, second_clock = make()

    _busy_day(first, first_clock)
    _busy_day(second, second_clock)

    assert snapshot(first) == snapshot(second)
    assert [entry.payload for entry in first.journal.entries()] == [
        entry.payload for entry in second.journal.entries()
    ]
    assert SECOND == 10**9
