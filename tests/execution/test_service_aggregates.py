"""The pre-trade check's running aggregates decide exactly like a scan of the open orders.

The service keeps, per account, symbol and side, the unfilled units and the
number of its working orders, updated at every order state change, so a
pre-trade check costs the same at 6,000 working orders as at none. A second
service whose check recomputes the sum by brute force from the matching
engines' open orders (as the service did before) must take the same decisions
with the same reasons on random sequences of submits, cancels, replaces, bars,
kill switches and restarts; the aggregates must equal the recomputation after
every step.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from service_helpers import CENT_GRID, SYMBOL, FakeClock, bar, config
from service_operations import MILLI_GRID, OPERATION, OTHER, apply_operation, new_market

from tradepulse.domain import Order, OrderType, Side, TimeInForce
from tradepulse.domain.arithmetic import LEDGER_CONTEXT
from tradepulse.execution import ExecutionService, Journal, OrderRequest, ServiceConfig
from tradepulse.execution._service_state import AccountState, OrderState

D = Decimal


def brute_open_quantity(
    service: ExecutionService,
    account: str,
    symbol: str,
    side: Side,
    *,
    excluding: OrderState | None = None,
) -> tuple[Decimal, int]:
    """Return the unfilled units and number of working orders, summed over the engine's book.

    This is what the service computed at every check before it kept aggregates:
    the records of the account's engine for the symbol, in arrival order, the
    replaced order left out. The account's orders of a symbol are now split
    over one engine per strategy tag; merged in arrival order (server order
    number) they are the records the single engine held.
    """
    engines = service._engines.get(symbol, {}).get(account, {}).values()
    records = sorted(
        (record for engine in engines for record in engine.open_orders),
        key=lambda record: int(record.client_order_id.removeprefix("ord-")),
    )
    pending, count = D(0), 0
    for record in records:
        if excluding is not None and record is excluding.record:
            continue
        if record.order.symbol == symbol and record.order.side is side:
            pending = LEDGER_CONTEXT.add(pending, record.remaining_quantity)
            count += 1
    return pending, count


class BruteForceService(ExecutionService):
    """The service with its pre-trade open quantity recomputed from the open orders."""

    def _open_quantity(
        self, account: AccountState, order: Order, replacing: OrderState | None
    ) -> Decimal:
        return brute_open_quantity(
            self, account.name, order.symbol, order.side, excluding=replacing
        )[0]


def check_aggregates(service: ExecutionService) -> None:
    """Assert that the service's aggregates equal the brute-force recomputation."""
    for name in service.accounts():
        account = service._accounts[name]
        for symbol in (SYMBOL, OTHER):
            for side in Side:
                pending, count = brute_open_quantity(service, name, symbol, side)
                key = (symbol, side)
                assert account.open_counts.get(key, 0) == count
                assert account.open_quantity.get(key, D(0)) == pending
        states = [service._orders[order_id] for order_id in account.order_ids]
        assert list(account.open_ids) == [s.order_id for s in states if s.record.is_open]
        assert all((s.counted is not None) == s.record.is_open for s in states)


def service_config() -> ServiceConfig:
    return config(
        initial_cash="1000",
        instruments={SYMBOL: CENT_GRID, OTHER: MILLI_GRID},
        commission_rate="0.001",
        max_participation=0.5,
        max_open_orders=8,
        risk={"max_position": "25", "max_position_notional": "2400", "margin_rate": "0.5"},
    )


@settings(max_examples=120, deadline=None)
@given(operations=st.lists(OPERATION, min_size=20, max_size=80))
def test_aggregates_decide_like_a_scan_of_the_open_orders(
    operations: list[tuple[Any, ...]],
) -> None:
    cfg = service_config()
    journals = {"fast": Journal(), "brute": Journal()}
    clocks = {"fast": FakeClock(), "brute": FakeClock()}
    kinds = {"fast": ExecutionService, "brute": BruteForceService}
    services = {
        name: kinds[name](journal=journals[name], config=cfg, clock=clocks[name]) for name in kinds
    }
    markets = {name: new_market() for name in kinds}
    for name in kinds:
        for symbol in (SYMBOL, OTHER):
            apply_operation(services[name], ("bar", symbol, 0), markets[name], clocks[name])

    for operation in operations:
        if operation[0] == "restart":
            for name in kinds:
                services[name] = kinds[name](journal=journals[name], config=cfg, clock=clocks[name])
            check_aggregates(services["fast"])
            continue
        answers = [
            apply_operation(services[name], operation, markets[name], clocks[name])
            for name in kinds
        ]

        assert answers[0] == answers[1]
        check_aggregates(services["fast"])

    entries = {
        name: [(e.kind, e.ts_ns, e.payload) for e in journal.entries()]
        for name, journal in journals.items()
    }
    assert entries["fast"] == entries["brute"]
    for journal in journals.values():
        journal.close()


def test_the_aggregates_follow_partial_fills_replaces_and_expiries() -> None:
    # Cent grid, whole units; participation cap 50% of a 10-unit bar: 5 units per bar.
    service = ExecutionService(
        journal=Journal(),
        config=config(max_participation=0.5, risk={"max_position": "20", "margin_rate": None}),
        clock=FakeClock(),
    )
    service.on_bar(SYMBOL, bar(1, 100, 101, 99, volume=10))
    first = service.submit(
        OrderRequest(symbol=SYMBOL, side=Side.BUY, quantity=D(12)), account="a"
    ).order
    resting = service.submit(
        OrderRequest(
            symbol=SYMBOL,
            side=Side.BUY,
            quantity=D(6),
            order_type=OrderType.LIMIT,
            limit_price=D(90),
            time_in_force=TimeInForce.DAY,
        ),
        account="a",
    ).order
    account = service._accounts["a"]
    assert account.open_quantity[(SYMBOL, Side.BUY)] == 18  # 12 + 6
    assert account.open_counts[(SYMBOL, Side.BUY)] == 2

    service.on_bar(SYMBOL, bar(2, 100, 101, 99, volume=10))  # 5 of the market order fill

    assert account.open_quantity[(SYMBOL, Side.BUY)] == 13  # 7 + 6
    # Held 5, working 13: 2 more units reach the limit of 20; 3 would exceed it.
    refused = service.submit(
        OrderRequest(symbol=SYMBOL, side=Side.BUY, quantity=D(3)), account="a"
    ).order
    assert refused.reason_detail == (
        "max_position: projected position 21 units exceeds the limit 20 units "
        "(current 5, open orders 13, this order 3)"
    )
    replaced = service.replace(first.order_id, account="a", quantity=D(2))
    assert replaced.reason is None
    assert account.open_quantity[(SYMBOL, Side.BUY)] == 8  # 2 + 6

    service.on_bar(SYMBOL, bar(3, 100, 101, 99, volume=10))  # the DAY limit expires

    assert service.order(resting.order_id, account="a").reason == "day_expired"
    assert (SYMBOL, Side.BUY) not in account.open_quantity  # everything ended: no entry
    assert account.open_counts == {}
    check_aggregates(service)
