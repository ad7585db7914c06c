"""Order validation, the order status state machine, and fills."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.domain import (
    ORDER_TRANSITIONS,
    Fill,
    Order,
    OrderError,
    OrderRecord,
    OrderStateError,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    check_transition,
)

S = OrderStatus
# The life cycle of the issue, written out edge by edge: new -> accepted ->
# partially_filled -> filled / cancelled / rejected / expired.
LEGAL_EDGES = {
    (S.NEW, S.ACCEPTED),
    (S.NEW, S.REJECTED),
    (S.NEW, S.CANCELLED),
    (S.ACCEPTED, S.PARTIALLY_FILLED),
    (S.ACCEPTED, S.FILLED),
    (S.ACCEPTED, S.CANCELLED),
    (S.ACCEPTED, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELLED),
    (S.PARTIALLY_FILLED, S.EXPIRED),
}
TERMINAL = {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}


def order(**overrides: object) -> Order:
    fields: dict[str, object] = {
        "client_order_id": "c-1",
        "symbol": "SPY",
        "side": Side.BUY,
        "quantity": Decimal(10),
    }
    fields.update(overrides)
    return Order(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("current", list(OrderStatus))
@pytest.mark.parametrize("new", list(OrderStatus))
def test_every_transition_is_legal_exactly_when_listed(
    current: OrderStatus, new: OrderStatus
) -> None:
    if (current, new) in LEGAL_EDGES:
        check_transition(current, new)
    else:
        with pytest.raises(OrderStateError, match=f"{current} -> {new}"):
            check_transition(current, new)


def test_terminal_statuses() -> None:
    assert {status for status in OrderStatus if status.is_terminal} == TERMINAL
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"order_type": OrderType.LIMIT}, "limit order needs limit_price"),
        ({"order_type": OrderType.STOP}, "stop order needs stop_price"),
        (
            {"order_type": OrderType.STOP_LIMIT, "limit_price": Decimal(1)},
            "stop_limit order needs stop_price",
        ),
        ({"limit_price": Decimal(1)}, "market order takes no limit_price"),
        (
            {"order_type": OrderType.LIMIT, "limit_price": Decimal(1), "stop_price": Decimal(1)},
            "limit order takes no stop_price",
        ),
        ({"order_type": OrderType.LIMIT, "limit_price": Decimal(-1)}, "limit_price must be"),
        ({"order_type": OrderType.STOP, "stop_price": Decimal("Infinity")}, "stop_price must be"),
        ({"quantity": Decimal(0)}, "quantity must be finite and > 0, got 0"),
        ({"quantity": Decimal(-3)}, "quantity must be finite and > 0"),
        ({"quantity": Decimal("NaN")}, "quantity must be finite"),
        ({"quantity": 1.5}, "quantity must be a Decimal .*Instrument.*float 1.5"),
        ({"quantity": 2}, "quantity must be a Decimal"),
        ({"client_order_id": ""}, "client_order_id must be 1 to 64"),
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
        ({"client_order_id": 7}, "client_order_id"),
        ({"symbol": ""}, "symbol"),
        ({"side": "buy"}, "side must be a Side"),
        ({"order_type": "limit"}, "order_type must be a OrderType"),
        ({"time_in_force": "gtc"}, "time_in_force must be a TimeInForce"),
    ],
)
def test_order_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(OrderError, match=message):
        order(**overrides)


def test_valid_orders_of_every_type() -> None:
    prices = {
        OrderType.MARKET: {},
        OrderType.LIMIT: {"limit_price": Decimal("9.5")},
        OrderType.STOP: {"stop_price": Decimal("10.5")},
        OrderType.STOP_LIMIT: {"stop_price": Decimal("10.5"), "limit_price": Decimal(11)},
    }

    built = [
        order(order_type=kind, time_in_force=tif, **prices[kind])
        for kind in OrderType
        for tif in TimeInForce
    ]

    assert len(built) == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        built[0].quantity = Decimal(1)  # type: ignore[misc]


def test_enum_values_match_the_strategy_api_names() -> None:
    assert [kind.value for kind in OrderType] == ["market", "limit", "stop", "stop_limit"]
    assert [tif.value for tif in TimeInForce] == ["gtc", "ioc", "fok", "day"]
    assert (Side.BUY.sign, Side.SELL.sign) == (1, -1)


def test_order_record_life_cycle() -> None:
    record = OrderRecord(order(), submitted_ts_ns=5)

    accepted = record.accept(ts_ns=6)
    partial = record.fill(quantity=Decimal(4), price=Decimal(100), ts_ns=7)
    filled = record.fill(quantity=Decimal(6), price=Decimal(101), ts_ns=8)

    assert accepted.status is S.ACCEPTED
    assert (partial.status, partial.filled_quantity, partial.remaining_quantity) == (
        S.PARTIALLY_FILLED,
        Decimal(4),
        Decimal(6),
    )
    assert (filled.status, filled.ts_ns) == (S.FILLED, 8)
    assert record.filled_notional == Decimal(1006)
    assert record.average_fill_price == Decimal("100.6")
    assert (record.submitted_ts_ns, record.updated_ts_ns) == (5, 8)
    assert not record.is_open
    assert "filled=10/10" in repr(record)


def test_order_record_refuses_illegal_moves_and_stays_unchanged() -> None:
    record = OrderRecord(order(), submitted_ts_ns=0)

    with pytest.raises(OrderStateError, match="new -> partially_filled"):
        record.fill(quantity=Decimal(1), price=Decimal(1), ts_ns=1)  # not acknowledged yet
    record.accept(ts_ns=1)
    with pytest.raises(OrderStateError, match="fill of 11 exceeds the remaining quantity 10"):
        record.fill(quantity=Decimal(11), price=Decimal(1), ts_ns=2)
    with pytest.raises(OrderStateError, match="accepted -> rejected"):
        record.reject(ts_ns=2, reason="late")
    with pytest.raises(OrderError, match="fill price must be"):
        record.fill(quantity=Decimal(1), price=Decimal(0), ts_ns=2)

    assert (record.status, record.filled_quantity, record.updated_ts_ns) == (
        S.ACCEPTED,
        Decimal(0),
        1,
    )
    assert record.average_fill_price is None


# A reference model of the life cycle for random operation sequences.
Operation = tuple[str, int]
TARGETS = {
    "accept": S.ACCEPTED,
    "reject": S.REJECTED,
    "cancel": S.CANCELLED,
    "expire": S.EXPIRED,
}


def apply(record: OrderRecord, name: str, units: int, ts: int) -> OrderUpdate:
    """Run one named operation on ``record``."""
    if name == "fill":
        return record.fill(quantity=Decimal(units), price=Decimal(1), ts_ns=ts)
    if name == "accept":
        return record.accept(ts_ns=ts)
    if name == "reject":
        return record.reject(ts_ns=ts, reason=name)
    if name == "cancel":
        return record.cancel(ts_ns=ts, reason=name)
    return record.expire(ts_ns=ts, reason=name)


@settings(deadline=None, max_examples=300)
@given(
    operations=st.lists(
        st.tuples(st.sampled_from(["fill", *TARGETS]), st.integers(1, 6)),
        max_size=10,
    )
)
def test_order_record_follows_the_reference_state_machine(operations: list[Operation]) -> None:
    record = OrderRecord(order(quantity=Decimal(10)), submitted_ts_ns=0)
    status, filled = S.NEW, 0
    for ts, (name, units) in enumerate(operations, start=1):
        if name == "fill":
            target = S.FILLED if filled + units == 10 else S.PARTIALLY_FILLED
            legal = filled + units <= 10 and (status, target) in LEGAL_EDGES
        else:
            target = TARGETS[name]
            legal = (status, target) in LEGAL_EDGES
        if legal:
            update = apply(record, name, units, ts)
            status = target
            filled += units if name == "fill" else 0
            assert update.status is status
        else:
            with pytest.raises(OrderStateError):
                apply(record, name, units, ts)
        assert record.status is status
        assert record.filled_quantity == Decimal(filled)
        assert record.filled_quantity <= record.order.quantity


def test_cancel_reason_is_kept() -> None:
    record = OrderRecord(order(), submitted_ts_ns=0)
    record.accept(ts_ns=1)

    update = record.cancel(ts_ns=2, reason="user asked")

    assert (update.status, update.reason, record.reason) == (
        S.CANCELLED,
        "user asked",
        "user asked",
    )
    assert record.snapshot() == update


def fill(**overrides: object) -> Fill:
    fields: dict[str, object] = {
        "fill_id": 1,
        "client_order_id": "c-1",
        "symbol": "SPY",
        "side": Side.SELL,
        "quantity": Decimal("2.5"),
        "price": Decimal("100.1"),
        "commission": Decimal(0),
        "ts_ns": 0,
    }
    fields.update(overrides)
    return Fill(**fields)  # type: ignore[arg-type]


def test_fill_notional_is_exact() -> None:
    assert fill().notional == Decimal("250.25")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantity": Decimal(0)}, "quantity"),
        ({"price": 100.0}, "price must be a Decimal"),
        ({"commission": Decimal(-1)}, "commission must be finite and >= 0"),
        ({"side": "sell"}, "side must be a Side"),
    ],
)
def test_fill_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(OrderError, match=message):
        fill(**overrides)
