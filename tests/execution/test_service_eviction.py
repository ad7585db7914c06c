"""Ended orders beyond ``retain_ended_orders`` leave memory; every read still answers the same.

A service that evicts (keeps 0 to 3 ended orders) and one that keeps every
order run the same random operations, restarts included: their answers, and
every read afterwards (orders by status and limit, one order, its fills and
bar stamp, keyed orders by prefix, idempotent retries), must be equal. The
journal is the only copy of an evicted order, so this also checks that it is
read back exactly, and that journals written before its indexes existed open.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from service_helpers import SYMBOL, FakeClock, bar, buy, config, sell, snapshot
from service_operations import (
    ACCOUNTS,
    MILLI_GRID,
    OTHER,
    apply_operation,
    new_market,
    operation_mix,
)

from tradepulse.domain import OrderError, OrderStatus, OrderType
from tradepulse.errors import ConfigError
from tradepulse.execution import (
    ExecutionService,
    Journal,
    JournalError,
    JournalEvent,
    OrderConflictError,
    OrderNotFoundError,
    ServiceConfig,
)
from tradepulse.execution._service_archive import rebuild_orders

D = Decimal
PREFIXES = ("", "s1:", "k", "c1", "s1:r", "zz")


def service_config(retain: int | None) -> ServiceConfig:
    return config(
        initial_cash="1000",
        instruments={
            SYMBOL: {"price_increment": "0.01", "quantity_increment": "1"},
            OTHER: MILLI_GRID,
        },
        commission_rate="0.001",
        max_participation=0.2,  # at most 6 units a bar: partial fills
        max_open_orders=8,
        orders_per_second_account=4,
        account_burst=6,
        orders_per_second_strategy=2,
        risk={"max_position": "25", "margin_rate": "0.5"},
        retain_ended_orders=retain,
    )


def reads(service: ExecutionService) -> dict[str, Any]:
    """Return everything the service's read API shows, evicted orders included."""
    shown: dict[str, Any] = {"snapshot": snapshot(service)}
    for account in (*ACCOUNTS, "nobody"):
        orders = service.orders(account=account)
        shown[account] = {
            "by_status": {
                (status, limit): service.orders(account=account, status=status, limit=limit)
                for status in (None, *OrderStatus)
                for limit in (None, 1, 3)
            },
            "open": service.orders(account=account, open_only=True, limit=2),
            "each": [
                (
                    service.order(order.order_id, account=account),
                    service.fills(account=account, order_id=order.order_id),
                    service.order_bar_ts(order.order_id, account=account),
                )
                for order in orders
            ],
            "keyed": {
                prefix: service.keyed_orders(account=account, prefix=prefix) for prefix in PREFIXES
            },
        }
        # keyed_orders keeps binding order: compare the key order too.
        shown[account]["key_order"] = list(service.keyed_orders(account=account))
    return shown


def retained_ended(service: ExecutionService) -> int:
    return sum(1 for state in service._orders.values() if not state.record.is_open)


# As many bars as orders, so that orders end in every way (fills, expiries, IOC ends).
_OPERATIONS = operation_mix(submit=5, bar=5, cancel=2, replace=2, kill=1, wait=2, restart=1)


@settings(max_examples=60, deadline=None)
@given(operations=st.lists(_OPERATIONS, min_size=10, max_size=50), retain=st.integers(0, 3))
def test_an_evicting_service_answers_like_one_that_keeps_everything(
    operations: list[tuple[Any, ...]], retain: int
) -> None:
    kinds = {"kept": None, "evicting": retain}
    journals = {name: Journal() for name in kinds}
    clocks = {name: FakeClock() for name in kinds}

    def start(name: str) -> ExecutionService:
        return ExecutionService(
            journal=journals[name], config=service_config(kinds[name]), clock=clocks[name]
        )

    services = {name: start(name) for name in kinds}
    markets = {name: new_market() for name in kinds}
    for name in kinds:
        for symbol in (SYMBOL, OTHER):
            apply_operation(services[name], ("bar", symbol, 0), markets[name], clocks[name])

    for operation in operations:
        if operation[0] == "restart":
            services = {name: start(name) for name in kinds}
        else:
            answers = [
                apply_operation(services[name], operation, markets[name], clocks[name])
                for name in kinds
            ]
            assert answers[0] == answers[1]
        assert retained_ended(services["evicting"]) <= retain

    assert reads(services["evicting"]) == reads(services["kept"])
    entries = {
        name: [(e.kind, e.ts_ns, e.payload) for e in journal.entries() if e.kind != "session"]
        for name, journal in journals.items()
    }
    assert entries["evicting"] == entries["kept"]  # "session" events record the configs
    for journal in journals.values():
        journal.close()


def _fill_some(service: ExecutionService) -> dict[str, str]:
    """Place, fill, cancel and reject a few orders with keys; return key -> order id."""
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    ids = {
        "buy-1": service.submit(buy(2), account="a", idempotency_key="buy-1").order.order_id,
        "buy-2": service.submit(
            buy(3, client_order_id="tag-2"), account="a", strategy="s1"
        ).order.order_id,
        "rest": service.submit(
            buy(1, order_type=OrderType.LIMIT, limit="90.00"), account="a", idempotency_key="rest"
        ).order.order_id,
        "huge": service.submit(buy(10_000), account="a", idempotency_key="huge").order.order_id,
    }
    service.on_bar(SYMBOL, bar(2, 100, 101, 99))  # buy-1 and buy-2 fill at 100
    service.cancel(ids["rest"], account="a")
    ids["sell"] = service.submit(sell(5), account="a", idempotency_key="sell").order.order_id
    service.on_bar(SYMBOL, bar(3, 102, 103, 101))  # the sell fills at 102
    return ids


def test_evicted_orders_are_read_back_and_their_keys_still_return_them(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    clock = FakeClock()
    kept = ExecutionService(
        journal=Journal(), config=config(retain_ended_orders=None), clock=FakeClock()
    )
    service = ExecutionService(
        journal=Journal(path), config=config(retain_ended_orders=1), clock=clock
    )
    ids = _fill_some(service)
    _fill_some(kept)
    expected = reads(kept)

    # Five orders ended; one stays in memory, in the service and in the engines
    # (one for the untagged orders, one for strategy s1's).
    assert len(service._orders) == 1
    engines = service._engines[SYMBOL]["a"]
    assert sorted(engines, key=str) == [None, "s1"]
    assert [len(engines[tag].orders) for tag in (None, "s1")] == [1, 0]
    assert service._accounts["a"].evicted == 4
    assert reads(service) == expected
    filled = service.order(ids["buy-1"], account="a")
    assert (filled.status, filled.average_fill_price) == (OrderStatus.FILLED, D(100))
    assert service.order(ids["huge"], account="a").reason == "insufficient_margin"
    with pytest.raises(OrderNotFoundError):
        service.order(ids["buy-1"], account="b")
    for junk in ("ord-999999", "ord-1", "nope", "ord-00000x"):
        with pytest.raises(OrderNotFoundError):
            service.order(junk, account="a")

    service.journal.close()
    restarted = ExecutionService(
        journal=Journal(path), config=config(retain_ended_orders=1), clock=clock
    )

    assert len(restarted._orders) == 1  # the replay evicts as it goes
    assert reads(restarted) == expected
    # A retry with an evicted order's key returns that order and records nothing...
    last = restarted.journal.last_sequence
    retry = restarted.submit(buy(2), account="a", idempotency_key="buy-1")
    assert (retry.created, retry.order) == (False, expected["a"]["each"][0][0])
    tagged = restarted.submit(buy(3, client_order_id="tag-2"), account="a", strategy="s1")
    assert (tagged.created, tagged.order.order_id) == (False, ids["buy-2"])
    refused = restarted.submit(buy(10_000), account="a", idempotency_key="huge")
    assert (refused.created, refused.order.status) == (False, OrderStatus.REJECTED)
    assert restarted.journal.last_sequence == last
    # ...and a different request with it is a conflict, as before the eviction.
    with pytest.raises(OrderConflictError, match="buy-1"):
        restarted.submit(buy(3), account="a", idempotency_key="buy-1")
    with pytest.raises(OrderConflictError, match="is filled"):
        restarted.cancel(ids["buy-1"], account="a")
    with pytest.raises(OrderConflictError, match="is cancelled"):
        restarted.replace(ids["rest"], account="a", quantity=D(2))
    # A new key still creates an order.
    assert restarted.submit(buy(1), account="a", idempotency_key="fresh").created
    restarted.journal.close()


def test_memory_stays_bounded_over_many_orders() -> None:
    service = ExecutionService(
        journal=Journal(), config=config(retain_ended_orders=5), clock=FakeClock()
    )
    for day in range(1, 41):
        service.on_bar(SYMBOL, bar(day, 100, 101, 99))
        for number in range(5):
            request = buy(1) if day % 2 else sell(1)
            service.submit(request, account="a", idempotency_key=f"d{day}-{number}")

    account = service._accounts["a"]
    assert len(service._orders) <= 5 + len(account.open_ids)
    assert len(account.order_ids) == len(service._orders)
    assert len(account.keys) <= len(service._orders)
    assert len(account.fills) <= len(service._orders)
    assert len(service._engines[SYMBOL]["a"][None].orders) <= len(service._orders)
    assert len(service._ended) <= 5
    assert account.evicted + len(service._orders) == 200
    assert len(service.orders(account="a")) == 200
    assert len(service.fills(account="a")) == 195  # the last 5 wait for the next bar
    assert [view.order_id for view in service.orders(account="a", limit=2)] == [
        "ord-000199",
        "ord-000200",
    ]


def _drop_indexes(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'events_%'"
            )
        ]
        for name in names:
            connection.execute(f"DROP INDEX {name}")
        connection.commit()
    finally:
        connection.close()
    return names


def test_a_journal_written_before_the_indexes_opens_and_gets_them(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    clock = FakeClock()
    service = ExecutionService(
        journal=Journal(path), config=config(retain_ended_orders=None), clock=clock
    )
    _fill_some(service)
    before = reads(service)
    service.journal.close()
    dropped = _drop_indexes(path)  # the file as the previous version wrote it
    assert len(dropped) == 7

    restarted = ExecutionService(
        journal=Journal(path), config=config(retain_ended_orders=0), clock=clock
    )

    assert reads(restarted) == before
    restarted.journal.close()
    assert sorted(_drop_indexes(path)) == sorted(dropped)  # built again at the open


def test_indexes_keep_corrupt_payloads_out_and_appends_from_plain_sqlite_work(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    service = ExecutionService(journal=Journal(path), config=config(), clock=FakeClock())
    _fill_some(service)
    service.journal.close()
    connection = sqlite3.connect(path)
    try:
        # What code that knows nothing of the indexes does: append a row, here a broken one.
        connection.execute(
            "INSERT INTO events (sequence, kind, ts_ns, payload) "
            "SELECT MAX(sequence) + 1, 'order', 0, '{not json' FROM events"
        )
        connection.commit()
        last = connection.execute("SELECT MAX(sequence) FROM events").fetchone()[0]
    finally:
        connection.close()

    with Journal(path) as journal, pytest.raises(JournalError, match=f"event {last}") as raised:
        ExecutionService(journal=journal, config=config(), clock=FakeClock())
    assert raised.value.sequence == last


def test_journal_lookups_page_and_bound_prefixes() -> None:
    journal = Journal()
    top = chr(0x10FFFF)  # the last code point: a prefix ending in it has no upper bound
    keys = ("a", "a" + top, "a" + top + "x", "b", "ab")
    journal.append(
        [
            JournalEvent(
                "order",
                number,
                {
                    "order_id": f"ord-{number:06d}",
                    "account": "acct",
                    "idempotency_key": key,
                    "request": {"client_order_id": None},
                    "status": "accepted",
                    "strategy": None,
                },
            )
            for number, key in enumerate(keys, start=1)
        ]
    )

    found = [e.payload["idempotency_key"] for e in journal.keyed_entries("acct", prefix="a" + top)]
    assert found == ["a" + top, "a" + top + "x"]
    assert [e.payload["idempotency_key"] for e in journal.keyed_entries("acct", prefix="a")] == [
        "a",
        "a" + top,
        "a" + top + "x",
        "ab",
    ]
    assert journal.keyed_entries("other") == []
    newest = journal.account_orders("acct", limit=2)
    assert [row[1] for row in newest] == ["ord-000005", "ord-000004"]
    older = journal.account_orders("acct", before=newest[-1][0])
    assert [row[1] for row in older] == ["ord-000003", "ord-000002", "ord-000001"]
    assert journal.last_bar_ts(SYMBOL, before=journal.last_sequence + 1) is None
    journal.close()


def test_retention_is_configured_and_checked() -> None:
    assert ServiceConfig().retain_ended_orders == 100_000
    assert ServiceConfig.from_mapping({"retain_ended_orders": 7}).retain_ended_orders == 7
    assert (
        ServiceConfig.from_mapping({"retain_ended_orders": None}).to_mapping()[
            "retain_ended_orders"
        ]
        is None
    )
    for bad in (-1, True, 1.5, "10"):
        with pytest.raises(ConfigError, match="retain_ended_orders"):
            ServiceConfig.from_mapping({"retain_ended_orders": bad})


def test_the_engine_forgets_only_ended_orders() -> None:
    service = ExecutionService(journal=Journal(), config=config(), clock=FakeClock())
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    working = service.submit(buy(1, order_type=OrderType.LIMIT, limit="90.00"), account="a").order
    engine = service._engines[SYMBOL]["a"][None]

    with pytest.raises(OrderError, match="still working"):
        engine.forget(working.order_id)
    service.cancel(working.order_id, account="a")
    engine.forget(working.order_id)
    with pytest.raises(OrderError, match="unknown client_order_id"):
        engine.forget(working.order_id)


def test_a_throttled_order_binds_no_key_after_eviction_either() -> None:
    clock = FakeClock()
    service = ExecutionService(
        journal=Journal(),
        config=config(orders_per_second_account=1, retain_ended_orders=0),
        clock=clock,
    )
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    service.submit(buy(1), account="a")  # spends the one token
    throttled = service.submit(buy(1), account="a", idempotency_key="t").order
    clock.advance(2)
    placed = service.submit(buy(1), account="a", idempotency_key="t").order
    service.on_bar(SYMBOL, bar(2, 100, 101, 99))  # fills: every order has ended

    assert throttled.reason == "rate_limit_account"
    assert placed.created_ns > throttled.created_ns
    assert service._orders == {}
    assert {key: view.order_id for key, view in service.keyed_orders(account="a").items()} == {
        "t": placed.order_id
    }
    retry = service.submit(buy(1), account="a", idempotency_key="t")
    assert (retry.created, retry.order.order_id) == (False, placed.order_id)


def test_an_unreadable_archived_event_is_named() -> None:
    service = ExecutionService(journal=Journal(), config=config(), clock=FakeClock())
    service.on_bar(SYMBOL, bar(1, 100, 101, 99))
    order_id = service.submit(buy(1), account="a").order.order_id
    fill_id = "fill-000001"
    service.journal.append(  # a fill event whose quantity is not a number
        [
            JournalEvent(
                "fill",
                0,
                {"order_id": order_id, "fill_id": fill_id, "quantity": "lots", "price": "1"},
            )
        ]
    )

    with pytest.raises(JournalError, match=f"event {service.journal.last_sequence} \\(fill\\)"):
        rebuild_orders(service.journal, [order_id])
