"""Each strategy's orders, and an account's untagged ones, have their own participation budget.

The service matches an account's orders of a symbol in one engine per
strategy tag (None: orders without one), so a capped bar gives every tag the
cap's share of the bar's volume, exactly as a strategy runner's shadow engine
(holding only that strategy's orders) does. Everything else stays account-wide:
positions, cash, pre-trade risk, max_open_orders, the kill switch. Fills of a
bar are listed in the orders' arrival order across the engines.

Expected quantities are derived by hand: a cap of 0.25 on a 100-unit bar is
25 units, on a 40-unit bar 10 units.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from service_helpers import SYMBOL, FakeClock, bar, buy, config, reopen, snapshot

from tradepulse.domain import Instrument, OrderStatus
from tradepulse.execution import ExecutionService, Journal, JournalError, Reason, ServiceConfig
from tradepulse.execution._service_core import ServiceCore
from tradepulse.execution.matching import MatchingEngine

D = Decimal
OTHER = "OTHER"
ACCOUNT = "a"


def make(path: Path, **overrides: Any) -> tuple[ExecutionService, ServiceConfig, FakeClock]:
    service_config = config(max_participation=0.25, **overrides)
    clock = FakeClock()
    journal = Journal(path)
    return (
        ExecutionService(journal=journal, config=service_config, clock=clock),
        service_config,
        clock,
    )


def quantities(fills: list[Any]) -> list[tuple[str | None, Decimal, Decimal]]:
    return [(fill.strategy, fill.quantity, fill.price) for fill in fills]


def test_each_strategy_and_the_manual_orders_get_their_own_share_of_a_bar(
    tmp_path: Path,
) -> None:
    service, service_config, clock = make(tmp_path / "journal.db")
    service.on_bar(SYMBOL, bar(1, 100, 101, 99, volume=100))
    # Arrival order s2, manual, s1: not the engines' order (untagged, s1, s2).
    for strategy in ("s2", None, "s1"):
        service.submit(buy(40), account=ACCOUNT, strategy=strategy)
    service.submit(buy(40), account="b")  # another account: its own budget as before

    second = service.on_bar(SYMBOL, bar(2, 101, 102, 100, volume=100))
    # 25 % of 100 units: 25 for each tag, listed in arrival order.
    assert quantities(second) == [
        ("s2", D(25), D(101)),
        (None, D(25), D(101)),
        ("s1", D(25), D(101)),
        (None, D(25), D(101)),
    ]
    assert [fill.account for fill in second] == [ACCOUNT, ACCOUNT, ACCOUNT, "b"]
    # Account-wide: 75 units long; 3 orders still working with 15 units each.
    assert [(p.symbol, p.quantity) for p in service.positions(account=ACCOUNT)] == [(SYMBOL, 75)]
    assert service.account(ACCOUNT).open_orders == 3
    assert service.account(ACCOUNT).cash == D(100_000 - 75 * 101)

    # A restart rebuilds the same engines from the journal.
    service.journal.close()
    service = reopen(Journal(tmp_path / "journal.db"), service_config, clock)
    third = service.on_bar(SYMBOL, bar(3, 102, 103, 101, volume=40))
    # 25 % of 40 units: 10 each (5 of "b"'s 15 stay for later).
    assert quantities(third) == [
        ("s2", D(10), D(102)),
        (None, D(10), D(102)),
        ("s1", D(10), D(102)),
        (None, D(10), D(102)),
    ]
    fourth = service.on_bar(SYMBOL, bar(4, 103, 104, 102, volume=100))
    assert quantities(fourth) == [
        ("s2", D(5), D(103)),
        (None, D(5), D(103)),
        ("s1", D(5), D(103)),
        (None, D(5), D(103)),
    ]
    orders = service.orders(account=ACCOUNT)
    assert [order.status for order in orders] == [OrderStatus.FILLED] * 3
    # Each strategy's fills sum to its order; the account's position is their sum.
    for order in orders:
        own = service.fills(account=ACCOUNT, order_id=order.order_id)
        assert {fill.strategy for fill in own} == {order.strategy}
        assert sum((fill.quantity for fill in own), D(0)) == 40
    assert [(p.symbol, p.quantity) for p in service.positions(account=ACCOUNT)] == [(SYMBOL, 120)]
    # 3 * (25 * 101 + 10 * 102 + 5 * 103) = 3 * 4060 = 12180
    assert service.account(ACCOUNT).cash == D(100_000 - 12_180)

    again = reopen(service.journal, service_config, clock)
    assert snapshot(again) == snapshot(service)
    service.journal.close()


def test_risk_and_open_order_limits_stay_account_wide(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path / "journal.db", max_open_orders=3, risk={"max_position": "100"})
    for symbol in (SYMBOL, OTHER):
        service.on_bar(symbol, bar(1, 100, 101, 99, volume=100))
    assert service.submit(buy(40), account=ACCOUNT, strategy="s1").order.reason is None
    assert service.submit(buy(40), account=ACCOUNT, strategy="s2").order.reason is None
    # 40 + 40 working + 30 = 110 > 100, although s3 alone would hold 30.
    refused = service.submit(buy(30), account=ACCOUNT, strategy="s3").order
    assert refused.reason == Reason.MAX_POSITION.value
    assert service.submit(buy(20), account=ACCOUNT).order.reason is None  # 100: at the limit

    service.on_bar(SYMBOL, bar(2, 100, 101, 99, volume=100))
    # Filled 25 + 25 + 20 = 70, working 15 + 15: still 100 in all.
    assert [(p.symbol, p.quantity) for p in service.positions(account=ACCOUNT)] == [(SYMBOL, 70)]
    assert service.submit(buy(1), account=ACCOUNT, strategy="s3").order.reason == (
        Reason.MAX_POSITION.value
    )
    # Two working orders; two more in other engines reach the account's limit of 3.
    assert service.submit(buy(1, symbol=OTHER), account=ACCOUNT, strategy="s3").order.reason is None
    over = service.submit(buy(1, symbol=OTHER), account=ACCOUNT, strategy="s4").order
    assert over.reason == Reason.MAX_OPEN_ORDERS.value
    service.journal.close()


def test_the_kill_switch_cancels_in_every_engine_of_the_account(tmp_path: Path) -> None:
    service, service_config, clock = make(tmp_path / "journal.db")
    for symbol in (SYMBOL, OTHER):
        service.on_bar(symbol, bar(1, 100, 101, 99, volume=100))
    for symbol in (SYMBOL, OTHER):
        for strategy in (None, "s1", "s2"):
            service.submit(buy(40, symbol=symbol), account=ACCOUNT, strategy=strategy)
    kept = service.submit(buy(40), account="b", strategy="s1").order

    service.set_kill_switch(True, account=ACCOUNT, reason="drill")

    orders = service.orders(account=ACCOUNT)
    assert len(orders) == 6
    assert {(order.status, order.reason) for order in orders} == {
        (OrderStatus.CANCELLED, Reason.KILL_SWITCH.value)
    }
    # The cancels took effect after bar 1: the orders worked through no bar.
    assert {service.order_bar_ts(order.order_id, account=ACCOUNT) for order in orders} == {
        bar(1, 100, 101, 99).ts
    }
    assert service.account(ACCOUNT).open_orders == 0
    fills = service.on_bar(SYMBOL, bar(2, 100, 101, 99, volume=100))
    assert [(fill.order_id, fill.quantity) for fill in fills] == [(kept.order_id, D(25))]
    rebuilt = reopen(service.journal, service_config, clock)
    assert snapshot(rebuilt) == snapshot(service)
    service.journal.close()


def test_a_replace_stays_in_its_strategy_engine(tmp_path: Path) -> None:
    service, _, _ = make(tmp_path / "journal.db", retain_ended_orders=0)
    service.on_bar(SYMBOL, bar(1, 100, 101, 99, volume=100))
    old = service.submit(buy(40), account=ACCOUNT, strategy="s1").order
    service.submit(buy(40), account=ACCOUNT, strategy="s2")
    new = service.replace(old.order_id, account=ACCOUNT, quantity=D(30))

    assert new.strategy == "s1"
    engines = service._engines[SYMBOL][ACCOUNT]
    assert new.order_id in engines["s1"].orders
    assert old.order_id not in engines["s1"].orders  # ended and evicted (retention 0)
    fills = service.on_bar(SYMBOL, bar(2, 100, 101, 99, volume=100))
    assert quantities(fills) == [("s2", D(25), D(100)), ("s1", D(25), D(100))]
    service.on_bar(SYMBOL, bar(3, 100, 101, 99, volume=100))
    # s1's replacement (30) is filled and evicted from its engine; s2's order too.
    assert service.account(ACCOUNT).open_orders == 0
    assert not any(engine.orders for engine in engines.values())
    service.journal.close()


class SharedEngineService(ExecutionService):
    """The service as it was: one engine per account and symbol, whatever the tag."""

    def _engine(
        self, account: str, strategy: str | None, symbol: str, instrument: Instrument
    ) -> MatchingEngine:
        return ServiceCore._engine(self, account, None, symbol, instrument)

    def _engine_of(self, state: Any) -> MatchingEngine:
        return self._engines[state.record.order.symbol][state.account][None]


def _old_journal(path: Path, **overrides: Any) -> ServiceConfig:
    service_config = config(**overrides)
    service = SharedEngineService(journal=Journal(path), config=service_config, clock=FakeClock())
    service.on_bar(SYMBOL, bar(1, 100, 101, 99, volume=100))  # event 2
    service.submit(buy(40), account=ACCOUNT, strategy="s1")  # event 3
    service.submit(buy(40), account=ACCOUNT, strategy="s2")  # event 4
    service.submit(buy(10), account=ACCOUNT)  # event 5
    service.on_bar(SYMBOL, bar(2, 100, 101, 99, volume=100))  # event 6, then its fills
    service.on_bar(SYMBOL, bar(3, 100, 101, 99, volume=100))
    service.journal.close()
    return service_config


def test_journals_of_one_shared_engine_replay_alike_while_no_cap_binds(tmp_path: Path) -> None:
    # No cap: every order fills whole on bar 2, in arrival order, as before.
    service_config = _old_journal(tmp_path / "old.db")
    old = SharedEngineService(
        journal=Journal(tmp_path / "old.db"), config=service_config, clock=FakeClock()
    )
    expected = snapshot(old)
    old.journal.close()
    rebuilt = ExecutionService(
        journal=Journal(tmp_path / "old.db"), config=service_config, clock=FakeClock()
    )
    assert snapshot(rebuilt) == expected
    assert [fill.quantity for fill in rebuilt.fills(account=ACCOUNT)] == [40, 40, 10]


def test_a_shared_capped_bar_in_an_old_journal_is_refused(tmp_path: Path) -> None:
    # Shared cap, bar 2: 25 units for s1's order (event 7), none for the others.
    # Split engines derive 25 for each tag and 10 for the untagged order, so
    # the replay's second derived fill meets the journal's bar 3 (event 8).
    service_config = _old_journal(tmp_path / "old.db", max_participation=0.25)
    with pytest.raises(JournalError, match=r"event 8 \(bar\) differs .*\(fill at") as caught:
        ExecutionService(
            journal=Journal(tmp_path / "old.db"), config=service_config, clock=FakeClock()
        )
    assert caught.value.sequence == 8
