"""Reads the strategy pipeline needs from the execution service: its bars and its keyed orders."""

from __future__ import annotations

from pathlib import Path

from service_helpers import SYMBOL, FakeClock, bar, config, request

from tradepulse.domain import OrderStatus, Side
from tradepulse.execution import ExecutionService, Journal


def test_bars_are_read_back_from_the_journal_exactly_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    sent = [
        bar(1, 10.1, 10.5, 9.9, 10.2),
        bar(2, 10.3, 10.7, 10.0, 10 + 1 / 3),
        bar(3, 11.0, 11.5, 10.5),
    ]
    service = ExecutionService(journal=Journal(path), config=config(), clock=FakeClock())
    for item in sent:
        service.on_bar(SYMBOL, item)
    service.on_bar("OTHER", bar(2, 5.0, 5.0, 5.0))
    service.on_bar(SYMBOL, sent[1])  # not newer: ignored, not journaled again
    service.journal.close()

    restarted = ExecutionService(journal=Journal(path), config=config(), clock=FakeClock())

    assert [tuple(b) for b in restarted.bars(SYMBOL)] == [tuple(b) for b in sent]
    assert [tuple(b) for b in restarted.bars(SYMBOL, since_ts=sent[1].ts)] == [
        tuple(b) for b in sent[1:]
    ]
    assert [b.ts for b in restarted.bars("OTHER")] == [sent[1].ts]
    assert restarted.bars("NONE") == []


def test_keyed_orders_finds_orders_by_client_order_id_and_idempotency_key() -> None:
    service = ExecutionService(journal=Journal(), config=config(), clock=FakeClock())
    service.on_bar(SYMBOL, bar(1, 10.0, 10.0, 10.0))
    placed = service.submit(
        request(Side.BUY, 2, client_order_id="s1:t1.1"),
        account="alpha",
        strategy="s1",
        idempotency_key="s1:t1.1",
    ).order
    refused = service.submit(
        request(Side.BUY, 2, symbol="NOPE", client_order_id="s1:o2"), account="alpha"
    ).order
    other = service.submit(request(Side.SELL, 1, client_order_id="s10:o1"), account="alpha").order
    replaced = service.replace(
        placed.order_id,
        account="alpha",
        quantity=service.order(placed.order_id, account="alpha").quantity + 1,
        idempotency_key="s1:o3",
    )

    found = service.keyed_orders(account="alpha", prefix="s1:")

    assert set(found) == {"s1:t1.1", "s1:o2", "s1:o3"}
    assert found["s1:t1.1"].order_id == placed.order_id
    assert found["s1:t1.1"].status is OrderStatus.CANCELLED  # replaced since
    assert found["s1:o2"].order_id == refused.order_id
    assert found["s1:o2"].status is OrderStatus.REJECTED
    assert found["s1:o3"].order_id == replaced.order_id
    assert set(service.keyed_orders(account="alpha")) == {*found, "s10:o1"}
    assert service.keyed_orders(account="alpha", prefix="s10:")["s10:o1"] == service.order(
        other.order_id, account="alpha"
    )
    assert service.keyed_orders(account="nobody") == {}
