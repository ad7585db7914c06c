"""The matching engine on hand-made bars: every order type and time in force, and its rules.

Expected prices and quantities follow from the rules in the docstring of
``tradepulse.execution.matching`` (quoted next to each expectation), applied by
hand to bars chosen so that each rule decides the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from execution_helpers import DAY, INSTRUMENT, SYMBOL, bar, drive, make_order

from tradepulse.domain import (
    Fill,
    Instrument,
    Liquidity,
    OrderError,
    OrderStateError,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from tradepulse.errors import ConfigError, DataError
from tradepulse.execution import (
    ConstantDepth,
    DepthExecution,
    FixedLatency,
    MatchingEngine,
    OrderTiming,
)

BUY, SELL = Side.BUY, Side.SELL
MARKET, LIMIT, STOP, STOP_LIMIT = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
)
GTC, IOC, FOK, DAY_TIF = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.DAY
FILLED, PARTIAL = OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED
CANCELLED, EXPIRED = OrderStatus.CANCELLED, OrderStatus.EXPIRED

# One bar per UTC day, symmetric about 100 so a sell scenario is the buy
# scenario reflected (price p <-> 200 - p). Volume 1000; "capped" runs allow
# 0.5% participation, i.e. 5 units per bar.
MATRIX_BARS = [
    bar(0 * DAY, 100.0, 101.0, 99.0, volume=1000.0),  # bar 0: the order is submitted after it
    bar(1 * DAY, 100.0, 101.0, 99.0, volume=1000.0),  # bar 1: first eligible bar, narrow
    bar(2 * DAY, 100.0, 106.0, 94.0, volume=1000.0),  # bar 2: wide, touches 94 and 106
    bar(3 * DAY, 100.0, 101.0, 99.0, volume=1000.0),  # bar 3: narrow again
]
CAP = 0.005
# Buy-side prices; the sell side reflects them.
PRICES: dict[OrderType, tuple[str | None, str | None]] = {
    MARKET: (None, None),
    LIMIT: ("97", None),
    STOP: (None, "103"),
    STOP_LIMIT: ("104", "103"),
}

Expected = tuple[list[tuple[int, int, str]], OrderStatus]
# (order type, time in force, capped) -> ([(bar, units, buy price)], final status)
EXPECTED: dict[tuple[OrderType, TimeInForce, bool], Expected] = {
    # Market orders fill at the open of their first eligible bar (bar 1, open 100).
    (MARKET, GTC, False): ([(1, 10, "100")], FILLED),
    (MARKET, DAY_TIF, False): ([(1, 10, "100")], FILLED),
    (MARKET, IOC, False): ([(1, 10, "100")], FILLED),
    (MARKET, FOK, False): ([(1, 10, "100")], FILLED),
    # Capped at 5 per bar: GTC continues at bar 2's open; DAY's session is day 1,
    # so it expires when bar 2 (day 2) arrives; IOC keeps 5 and cancels; FOK kills.
    (MARKET, GTC, True): ([(1, 5, "100"), (2, 5, "100")], FILLED),
    (MARKET, DAY_TIF, True): ([(1, 5, "100")], EXPIRED),
    (MARKET, IOC, True): ([(1, 5, "100")], CANCELLED),
    (MARKET, FOK, True): ([], CANCELLED),
    # Limit 97: bar 1's low 99 never reaches it; bar 2 opens above (100) and its
    # low 94 touches it, so it fills at the limit. IOC / FOK are judged on bar 1.
    (LIMIT, GTC, False): ([(2, 10, "97")], FILLED),
    (LIMIT, DAY_TIF, False): ([], EXPIRED),
    (LIMIT, IOC, False): ([], CANCELLED),
    (LIMIT, FOK, False): ([], CANCELLED),
    # Capped: 5 at 97 on bar 2; bar 3's low 99 does not touch 97 again.
    (LIMIT, GTC, True): ([(2, 5, "97")], PARTIAL),
    (LIMIT, DAY_TIF, True): ([], EXPIRED),
    (LIMIT, IOC, True): ([], CANCELLED),
    (LIMIT, FOK, True): ([], CANCELLED),
    # Stop 103: bar 1's high 101 does not trigger; bar 2's high 106 does, after
    # an open of 100 below the stop, so it fills at max(open, stop) = 103. IOC /
    # FOK are judged on the trigger bar.
    (STOP, GTC, False): ([(2, 10, "103")], FILLED),
    (STOP, DAY_TIF, False): ([], EXPIRED),
    (STOP, IOC, False): ([(2, 10, "103")], FILLED),
    (STOP, FOK, False): ([(2, 10, "103")], FILLED),
    # Capped: 5 at 103 on bar 2; the triggered stop then fills at bar 3's open.
    (STOP, GTC, True): ([(2, 5, "103"), (3, 5, "100")], FILLED),
    (STOP, DAY_TIF, True): ([], EXPIRED),
    (STOP, IOC, True): ([(2, 5, "103")], CANCELLED),
    (STOP, FOK, True): ([], CANCELLED),
    # Stop-limit 103 / 104: triggers like the stop; the trigger price 103 is
    # within the limit 104, so it fills there. Later it is a limit at 104, and
    # bar 3 opens at 100 <= 104: the rest fills at the open.
    (STOP_LIMIT, GTC, False): ([(2, 10, "103")], FILLED),
    (STOP_LIMIT, DAY_TIF, False): ([], EXPIRED),
    (STOP_LIMIT, IOC, False): ([(2, 10, "103")], FILLED),
    (STOP_LIMIT, FOK, False): ([(2, 10, "103")], FILLED),
    (STOP_LIMIT, GTC, True): ([(2, 5, "103"), (3, 5, "100")], FILLED),
    (STOP_LIMIT, DAY_TIF, True): ([], EXPIRED),
    (STOP_LIMIT, IOC, True): ([(2, 5, "103")], CANCELLED),
    (STOP_LIMIT, FOK, True): ([], CANCELLED),
}


def _reflect(price: str | None, side: Side) -> str | None:
    if price is None or side is BUY:
        return price
    return str(Decimal(200) - Decimal(price))


def _fills_by_bar(fills: list[Fill]) -> list[tuple[int, int, Decimal]]:
    return [(fill.ts_ns // DAY, int(fill.quantity), fill.price) for fill in fills]


def test_expected_table_covers_every_type_and_time_in_force() -> None:
    keys = {
        (kind, tif, capped) for kind in OrderType for tif in TimeInForce for capped in (False, True)
    }

    assert set(EXPECTED) == keys


@pytest.mark.parametrize("side", [BUY, SELL])
@pytest.mark.parametrize("capped", [False, True], ids=["ample", "capped"])
@pytest.mark.parametrize("tif", list(TimeInForce))
@pytest.mark.parametrize("kind", list(OrderType))
def test_order_type_by_time_in_force(
    kind: OrderType, tif: TimeInForce, capped: bool, side: Side
) -> None:
    # Arrange
    limit, stop = PRICES[kind]
    engine = MatchingEngine(INSTRUMENT, max_participation=CAP if capped else None)
    engine.process_bar(MATRIX_BARS[0])
    order = make_order(
        "o1",
        side,
        10,
        order_type=kind,
        limit=_reflect(limit, side),
        stop=_reflect(stop, side),
        tif=tif,
    )
    submitted = engine.submit(order, ts_ns=MATRIX_BARS[0].ts)

    # Act
    fills, updates = drive(engine, MATRIX_BARS[1:])

    # Assert
    expected_fills, expected_status = EXPECTED[(kind, tif, capped)]
    expected = [
        (index, units, Decimal(str(_reflect(price, side))))
        for index, units, price in expected_fills
    ]
    assert submitted.status is OrderStatus.ACCEPTED
    assert _fills_by_bar(fills) == expected
    assert all(fill.side is side and fill.symbol == SYMBOL for fill in fills)
    record = engine.order("o1")
    assert record.status is expected_status
    assert record.filled_quantity == sum((fill.quantity for fill in fills), Decimal(0))
    assert updates[-1].status is expected_status
    if expected_status.is_terminal:
        assert engine.open_orders == ()


@pytest.mark.parametrize(
    ("side", "limit", "expected"),
    [
        (BUY, "101", "100.00"),  # bar opens at 100 <= 101: price improvement to the open
        (BUY, "99", "99"),  # opens above, low 98 <= 99: at the limit
        (SELL, "99", "100.00"),  # opens at 100 >= 99: at the open
        (SELL, "101", "101"),  # opens below, high 102 >= 101: at the limit
    ],
)
def test_limit_fills_at_the_better_of_open_and_limit(side: Side, limit: str, expected: str) -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", side, 3, order_type=LIMIT, limit=limit), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 102.0, 98.0)])

    assert [(fill.quantity, fill.price) for fill in fills] == [(Decimal(3), Decimal(expected))]
    improved = Decimal(expected) != Decimal(limit)
    assert fills[0].liquidity is (Liquidity.TAKER if improved else Liquidity.MAKER)


@pytest.mark.parametrize(
    ("side", "limit", "low", "high", "fills"),
    [
        (BUY, "98", 98.0, 102.0, 1),  # low == limit: fills
        (BUY, "98", 98.01, 102.0, 0),  # one cent short
        (SELL, "102", 98.0, 102.0, 1),  # high == limit: fills
        (SELL, "102", 98.0, 101.99, 0),
    ],
)
def test_limit_touch_is_inclusive(
    side: Side, limit: str, low: float, high: float, fills: int
) -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", side, 1, order_type=LIMIT, limit=limit), ts_ns=0)

    found, _ = drive(engine, [bar(DAY, 100.0, high, low)])

    assert len(found) == fills


@pytest.mark.parametrize(
    ("side", "stop", "bar_", "expected"),
    [
        (BUY, "101", bar(DAY, 100.0, 101.0, 99.0), "101"),  # high == stop triggers at the stop
        (BUY, "101", bar(DAY, 103.0, 104.0, 102.0), "103.00"),  # gap above: at the open
        (SELL, "99", bar(DAY, 100.0, 101.0, 99.0), "99"),
        (SELL, "99", bar(DAY, 97.0, 98.0, 96.0), "97.00"),  # gap below: at the open
        (BUY, "101", bar(DAY, 100.0, 100.99, 99.0), None),  # never reaches the stop
        (SELL, "99", bar(DAY, 100.0, 101.0, 99.01), None),
    ],
)
def test_stop_triggers_at_worse_of_open_and_stop(
    side: Side, stop: str, bar_: object, expected: str | None
) -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", side, 2, order_type=STOP, stop=stop), ts_ns=0)

    fills, _ = drive(engine, [bar_])  # type: ignore[list-item]

    assert [fill.price for fill in fills] == ([] if expected is None else [Decimal(expected)])


def test_stop_limit_triggered_at_open_beyond_limit_fills_at_limit_when_touched() -> None:
    # Buy stop 101 / limit 102; bar gaps to 104 (trigger at the open, beyond the
    # limit) and later trades down to 101.5 <= 102: the touch follows the trigger.
    engine = MatchingEngine(INSTRUMENT)
    order = make_order("o", BUY, 4, order_type=STOP_LIMIT, stop="101", limit="102")
    engine.submit(order, ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 104.0, 105.0, 101.5)])

    assert [(fill.price, fill.liquidity) for fill in fills] == [(Decimal(102), Liquidity.MAKER)]


def test_stop_limit_triggered_intrabar_beyond_limit_rests_as_limit() -> None:
    # Buy stop 101 / limit 100.5: triggered intrabar at 101 (> limit). The bar's
    # low 99 came before or after the trigger, unknown: no fill on that bar. On
    # the next bar it is a plain limit at 100.5 and the open 100 is below it.
    engine = MatchingEngine(INSTRUMENT)
    order = make_order("o", BUY, 4, order_type=STOP_LIMIT, stop="101", limit="100.5")
    engine.submit(order, ts_ns=0)

    first, _ = drive(engine, [bar(DAY, 100.0, 102.0, 99.0)])
    second, _ = drive(engine, [bar(2 * DAY, 100.0, 100.2, 99.8)])

    assert first == []
    assert [fill.price for fill in second] == [Decimal("100.00")]


def test_stop_limit_ioc_is_judged_on_its_trigger_bar() -> None:
    engine = MatchingEngine(INSTRUMENT)
    order = make_order("o", BUY, 4, order_type=STOP_LIMIT, stop="101", limit="100.5", tif=IOC)
    engine.submit(order, ts_ns=0)

    drive(engine, [bar(DAY, 100.0, 100.5, 99.0)])  # not triggered: still working
    status_before = engine.order("o").status
    fills, _ = drive(engine, [bar(2 * DAY, 100.0, 102.0, 99.0)])  # triggered, no fill

    assert status_before is OrderStatus.ACCEPTED
    assert fills == []
    assert engine.order("o").status is CANCELLED


def test_orders_fill_in_arrival_order_under_the_participation_cap() -> None:
    # Volume 100 at 10% participation: 10 units per bar, shared by both sides.
    engine = MatchingEngine(INSTRUMENT, max_participation=0.1)
    engine.submit(make_order("first", BUY, 8), ts_ns=0)
    engine.submit(make_order("second", SELL, 8), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 101.0, 99.0, volume=100.0)])

    assert [(fill.client_order_id, fill.quantity) for fill in fills] == [
        ("first", Decimal(8)),
        ("second", Decimal(2)),
    ]


def test_zero_volume_bar_fills_nothing_under_a_cap() -> None:
    engine = MatchingEngine(INSTRUMENT, max_participation=0.5)
    engine.submit(make_order("o", BUY, 3, tif=IOC), ts_ns=0)

    fills, updates = drive(engine, [bar(DAY, 100.0, 101.0, 99.0, volume=0.0)])

    assert fills == []
    assert updates[-1].status is CANCELLED
    assert updates[-1].reason is not None
    assert "IOC" in updates[-1].reason


def test_cap_rounds_down_to_the_lot() -> None:
    # 3% of 250 = 7.5 units; whole-unit lots allow 7.
    engine = MatchingEngine(INSTRUMENT, max_participation=0.03)
    engine.submit(make_order("o", BUY, 20), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 101.0, 99.0, volume=250.0)])

    assert [fill.quantity for fill in fills] == [Decimal(7)]


# --- latency -----------------------------------------------------------------


def test_order_submitted_after_bar_t_fills_no_earlier_than_t_plus_one_plus_latency() -> None:
    engine = MatchingEngine(INSTRUMENT, latency=FixedLatency(bars=2))
    bars = [bar(index * DAY, 100.0 + index, 101.0 + index, 99.0 + index) for index in range(6)]
    engine.process_bar(bars[0])
    engine.submit(make_order("o", BUY, 1), ts_ns=bars[0].ts)

    fills, _ = drive(engine, bars[1:])

    # Submitted after bar 0: eligible from bar 0 + 1 + 2 = 3, at its open 103.
    assert [(fill.ts_ns, fill.price) for fill in fills] == [(3 * DAY, Decimal("103.00"))]


def test_acknowledgement_latency_keeps_the_order_new_until_acknowledged() -> None:
    minute = 60 * 10**9
    engine = MatchingEngine(INSTRUMENT, latency=FixedLatency(acknowledge_ns=90 * 10**9))
    submitted = engine.submit(make_order("o", BUY, 1), ts_ns=0)

    # The bar at 1 minute precedes the acknowledgement at 90 s: nothing happens.
    early_fills, early_updates = drive(engine, [bar(minute, 100.0, 101.0, 99.0)])
    status_early = engine.order("o").status
    fills, updates = drive(engine, [bar(2 * minute, 100.5, 101.0, 99.0)])

    assert submitted.status is OrderStatus.NEW
    assert (early_fills, early_updates, status_early) == ([], [], OrderStatus.NEW)
    assert [(update.status, update.ts_ns) for update in updates] == [
        (OrderStatus.ACCEPTED, 90 * 10**9),
        (FILLED, 2 * minute),
    ]
    assert [fill.price for fill in fills] == [Decimal("100.50")]


def test_match_latency_in_nanoseconds_skips_bars_stamped_too_early() -> None:
    minute = 60 * 10**9
    engine = MatchingEngine(INSTRUMENT, latency=FixedLatency(match_ns=2 * minute))
    engine.process_bar(bar(0, 100.0, 101.0, 99.0))
    engine.submit(make_order("o", BUY, 1), ts_ns=0)

    fills, _ = drive(
        engine, [bar(index * minute, 100.0 + index, 101.0 + index, 99.0) for index in (1, 2, 3)]
    )

    # Eligible from ts >= 2 minutes: bar 2 (open 102).
    assert [(fill.ts_ns, fill.price) for fill in fills] == [(2 * minute, Decimal("102.00"))]


def test_a_latency_model_that_allows_same_bar_fills_is_refused() -> None:
    @dataclass(frozen=True)
    class Clairvoyant:
        def schedule(self, *, submit_bar: int, submit_ts_ns: int) -> OrderTiming:
            return OrderTiming(
                acknowledge_ts_ns=submit_ts_ns, eligible_bar=submit_bar, eligible_ts_ns=0
            )

    engine = MatchingEngine(INSTRUMENT, latency=Clairvoyant())

    with pytest.raises(ConfigError, match="next bar"):
        engine.submit(make_order("o", BUY, 1), ts_ns=0)
    assert "o" not in engine.orders


# --- DAY expiry ----------------------------------------------------------------


def test_day_order_expires_when_the_utc_date_changes() -> None:
    hour = 3600 * 10**9
    engine = MatchingEngine(INSTRUMENT)
    engine.process_bar(bar(DAY + 20 * hour, 100.0, 101.0, 99.0))
    order = make_order("o", BUY, 1, order_type=LIMIT, limit="90", tif=DAY_TIF)
    engine.submit(order, ts_ns=DAY + 20 * hour)

    same_day, _ = drive(engine, [bar(DAY + hour * h, 100.0, 101.0, 99.0) for h in (21, 22, 23)])
    status_late = engine.order("o").status
    _, updates = drive(engine, [bar(2 * DAY, 100.0, 101.0, 80.0)])  # midnight: would fill

    assert same_day == []
    assert status_late is OrderStatus.ACCEPTED
    assert [update.status for update in updates] == [EXPIRED]
    assert updates[0].reason is not None
    assert "DAY" in updates[0].reason


def test_day_order_placed_after_the_close_belongs_to_the_next_session() -> None:
    # Daily bars: submitted after day 1's bar, it trades on day 2's bar.
    engine = MatchingEngine(INSTRUMENT)
    engine.process_bar(bar(DAY, 100.0, 101.0, 99.0))
    engine.submit(make_order("o", BUY, 1, tif=DAY_TIF), ts_ns=DAY)

    fills, _ = drive(engine, [bar(2 * DAY, 100.0, 101.0, 99.0)])

    assert len(fills) == 1


# --- cancel and replace ----------------------------------------------------------


def test_cancel_stops_further_fills_and_keeps_earlier_ones() -> None:
    engine = MatchingEngine(INSTRUMENT, max_participation=0.01)
    engine.submit(make_order("o", BUY, 10), ts_ns=0)
    first, _ = drive(engine, [bar(DAY, 100.0, 101.0, 99.0, volume=400.0)])  # 4 units

    update = engine.cancel("o", ts_ns=DAY)
    later, _ = drive(engine, [bar(2 * DAY, 100.0, 101.0, 99.0, volume=400.0)])

    assert [fill.quantity for fill in first] == [Decimal(4)]
    assert (update.status, update.filled_quantity, update.remaining_quantity) == (
        CANCELLED,
        Decimal(4),
        Decimal(6),
    )
    assert later == []
    assert engine.open_orders == ()


def test_cancel_of_a_finished_or_unknown_order_raises() -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", BUY, 1), ts_ns=0)
    drive(engine, [bar(DAY, 100.0, 101.0, 99.0)])

    with pytest.raises(OrderStateError, match="filled -> cancelled"):
        engine.cancel("o", ts_ns=DAY)
    with pytest.raises(OrderError, match="unknown client_order_id 'nope'"):
        engine.cancel("nope", ts_ns=DAY)


def test_cancel_before_acknowledgement() -> None:
    engine = MatchingEngine(INSTRUMENT, latency=FixedLatency(acknowledge_ns=DAY * 5))
    engine.submit(make_order("o", BUY, 1), ts_ns=0)

    update = engine.cancel("o", ts_ns=1)

    assert update.status is CANCELLED


def test_replace_defaults_to_the_unfilled_remainder_and_links_the_orders() -> None:
    engine = MatchingEngine(INSTRUMENT, max_participation=0.01)
    engine.submit(make_order("o", BUY, 10, order_type=LIMIT, limit="100"), ts_ns=0)
    drive(engine, [bar(DAY, 100.0, 101.0, 99.0, volume=300.0)])  # 3 of 10 filled

    update = engine.replace("o", new_client_order_id="o2", ts_ns=DAY, limit_price=Decimal("95"))
    fills, _ = drive(engine, [bar(2 * DAY, 96.0, 97.0, 94.0, volume=10_000.0)])

    old, new = engine.order("o"), engine.order("o2")
    assert (old.status, old.filled_quantity, old.reason) == (
        CANCELLED,
        Decimal(3),
        "replaced by 'o2'",
    )
    assert update.status is OrderStatus.ACCEPTED
    assert (new.order.quantity, new.order.limit_price) == (Decimal(7), Decimal(95))
    assert [(fill.client_order_id, fill.quantity, fill.price) for fill in fills] == [
        ("o2", Decimal(7), Decimal(95))
    ]


def test_replacement_waits_for_latency_again() -> None:
    engine = MatchingEngine(INSTRUMENT, latency=FixedLatency(bars=1))
    engine.submit(make_order("o", BUY, 5, order_type=LIMIT, limit="90"), ts_ns=0)
    drive(engine, [bar(DAY, 100.0, 101.0, 99.0), bar(2 * DAY, 100.0, 101.0, 99.0)])

    engine.replace("o", new_client_order_id="o2", ts_ns=2 * DAY, limit_price=Decimal("100"))
    not_yet, _ = drive(engine, [bar(3 * DAY, 100.0, 101.0, 99.0)])
    fills, _ = drive(engine, [bar(4 * DAY, 100.0, 101.0, 99.0)])

    assert not_yet == []
    assert [fill.quantity for fill in fills] == [Decimal(5)]


def test_invalid_replacement_leaves_the_original_working() -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", BUY, 5, order_type=LIMIT, limit="90"), ts_ns=0)
    engine.submit(make_order("other", BUY, 1, order_type=LIMIT, limit="90"), ts_ns=0)

    with pytest.raises(OrderError, match="tick size"):
        engine.replace("o", new_client_order_id="o2", ts_ns=0, limit_price=Decimal("90.001"))
    with pytest.raises(OrderError, match="duplicate client_order_id 'other'"):
        engine.replace("o", new_client_order_id="other", ts_ns=0)
    engine.submit(make_order("m", BUY, 1), ts_ns=0)
    with pytest.raises(OrderError, match="market order takes no limit_price"):
        engine.replace("m", new_client_order_id="m2", ts_ns=0, limit_price=Decimal(1))

    assert engine.order("o").status is OrderStatus.ACCEPTED
    assert "o2" not in engine.orders


def test_replace_of_a_finished_order_raises() -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", BUY, 1), ts_ns=0)
    drive(engine, [bar(DAY, 100.0, 101.0, 99.0)])

    with pytest.raises(OrderStateError):
        engine.replace("o", new_client_order_id="o2", ts_ns=DAY)
    assert "o2" not in engine.orders


# --- venue validation and input errors ------------------------------------------------


@pytest.mark.parametrize(
    ("order_kwargs", "reason"),
    [
        ({"symbol": "OTHER"}, "symbol 'OTHER' is not traded here"),
        ({"quantity": "1.5"}, "quantity 1.5 is not a multiple of the lot size 1"),
        (
            {"order_type": LIMIT, "limit": "100.005"},
            "limit_price 100.005 is not a multiple of the tick size 0.01",
        ),
        (
            {"order_type": STOP, "stop": "0.001"},
            "stop_price 0.001 is not a multiple of the tick size 0.01",
        ),
    ],
)
def test_orders_that_do_not_fit_the_venue_are_rejected(
    order_kwargs: dict[str, str], reason: str
) -> None:
    engine = MatchingEngine(INSTRUMENT)
    quantity = order_kwargs.pop("quantity", "1")
    order = make_order("o", BUY, quantity, **order_kwargs)  # type: ignore[arg-type]

    update = engine.submit(order, ts_ns=0)

    assert update.status is OrderStatus.REJECTED
    assert update.reason is not None
    assert update.reason.startswith(reason)
    assert engine.open_orders == ()


def test_submit_errors() -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("o", BUY, 1), ts_ns=0)
    engine.process_bar(bar(DAY, 100.0, 101.0, 99.0))

    with pytest.raises(OrderError, match="duplicate client_order_id 'o'"):
        engine.submit(make_order("o", BUY, 1), ts_ns=DAY)
    with pytest.raises(OrderError, match="precedes the last processed bar"):
        engine.submit(make_order("p", BUY, 1), ts_ns=DAY - 1)
    with pytest.raises(OrderError, match="ts_ns must be an integer"):
        engine.submit(make_order("q", BUY, 1), ts_ns=1.5)  # type: ignore[arg-type]
    with pytest.raises(OrderError, match="order must be an Order"):
        engine.submit("buy 1", ts_ns=DAY)  # type: ignore[arg-type]
    with pytest.raises(OrderError, match="reason must be a non-empty string"):
        engine.reject(make_order("r", BUY, 1), ts_ns=DAY, reason="")


def test_bars_must_increase_and_honour_the_contract() -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.process_bar(bar(DAY, 100.0, 101.0, 99.0))
    engine.submit(make_order("o", BUY, 1), ts_ns=DAY)

    with pytest.raises(DataError, match="does not follow"):
        engine.process_bar(bar(DAY, 100.0, 101.0, 99.0))
    with pytest.raises(DataError, match="breaks the bar contract"):
        engine.process_bar(bar(2 * DAY, 100.0, 99.0, 98.0))  # open above high
    with pytest.raises(DataError, match="breaks the bar contract"):
        engine.process_bar(bar(3 * DAY, 100.0, 101.0, 99.0, volume=float("nan")))
    assert (engine.bar_index, engine.last_ts_ns) == (0, DAY)  # refused bars leave no trace


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_participation": 0.0}, "max_participation"),
        ({"max_participation": 1.5}, "max_participation"),
        ({"max_participation": True}, "max_participation"),
        ({"latency": object()}, "latency must implement LatencyModel"),
        ({"depth": object()}, "depth must implement DepthModel"),
        ({"commission": object()}, "commission must implement CommissionModel"),
    ],
)
def test_engine_configuration_is_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MatchingEngine(INSTRUMENT, **kwargs)  # type: ignore[arg-type]


def test_engine_needs_an_instrument() -> None:
    with pytest.raises(ConfigError, match="instrument must be an Instrument"):
        MatchingEngine("TEST")  # type: ignore[arg-type]


# --- costs and depth through the engine ------------------------------------------------


@dataclass(frozen=True)
class PercentCommission:
    """A stand-in commission model: a fraction of notional."""

    rate: float

    def commission(self, *, quantity: float, price: float) -> float:
        return self.rate * quantity * price


def test_commission_model_prices_every_fill_on_the_cash_grid() -> None:
    instrument = Instrument(
        symbol=SYMBOL,
        price_increment=Decimal("0.01"),
        quantity_increment=Decimal(1),
        cash_increment=Decimal("0.01"),
    )
    engine = MatchingEngine(instrument, commission=PercentCommission(0.001))
    engine.submit(make_order("o", BUY, 3), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.37, 101.0, 99.0)])

    # 0.001 * 3 * 100.37 = 0.30111 -> 0.30 on a cent grid.
    assert [fill.commission for fill in fills] == [Decimal("0.30")]


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "1"])
def test_a_broken_commission_model_is_reported(value: object) -> None:
    class Broken:
        def commission(self, *, quantity: float, price: float) -> float:
            return value  # type: ignore[return-value]

    engine = MatchingEngine(INSTRUMENT, commission=Broken())
    engine.submit(make_order("o", BUY, 1), ts_ns=0)

    with pytest.raises(ConfigError, match="commission model"):
        engine.process_bar(bar(DAY, 100.0, 101.0, 99.0))


def test_depth_model_fills_partly_and_walks_the_book() -> None:
    # 3 levels of 4 units, 100 bps apart, from the open 100: 100, 101, 102.
    depth = ConstantDepth(quantity_per_level=4.0, level_spacing_bps=100.0, levels=3)
    engine = MatchingEngine(INSTRUMENT, depth=depth)
    engine.submit(make_order("a", BUY, 6), ts_ns=0)
    engine.submit(make_order("b", BUY, 10), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 103.0, 99.0)])

    # a: 4 @ 100 + 2 @ 101 -> 100.33...; b takes the rest: 2 @ 101 + 4 @ 102 -> 101.67.
    assert [(fill.client_order_id, fill.quantity, fill.price) for fill in fills] == [
        ("a", Decimal(6), Decimal("100.33")),
        ("b", Decimal(6), Decimal("101.67")),
    ]
    assert engine.order("b").status is PARTIAL


def test_depth_never_fills_a_limit_beyond_its_limit() -> None:
    depth = ConstantDepth(quantity_per_level=4.0, level_spacing_bps=100.0, levels=3)
    engine = MatchingEngine(INSTRUMENT, depth=depth)
    engine.submit(make_order("a", BUY, 10, order_type=LIMIT, limit="101"), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 103.0, 99.0)])

    # Levels 100 and 101 qualify: 8 units averaging 100.5.
    assert [(fill.quantity, fill.price) for fill in fills] == [(Decimal(8), Decimal("100.50"))]


@pytest.mark.parametrize(
    "execution",
    [
        DepthExecution(quantity=2.0, price=100.0),  # more than requested
        DepthExecution(quantity=-1.0, price=100.0),
        DepthExecution(quantity=1.0, price=float("nan")),
        DepthExecution(quantity=1.0, price=105.0),  # beyond the limit 101
    ],
)
def test_a_broken_depth_model_is_reported(execution: DepthExecution) -> None:
    class Broken:
        def execute(self, **_: object) -> DepthExecution:
            return execution

    engine = MatchingEngine(INSTRUMENT, depth=Broken())
    engine.submit(make_order("o", BUY, 1, order_type=LIMIT, limit="101"), ts_ns=0)

    with pytest.raises(ConfigError, match="depth model"):
        engine.process_bar(bar(DAY, 100.0, 103.0, 99.0))


def test_depth_model_fill_of_nothing_leaves_the_order_working() -> None:
    class Empty:
        def execute(self, **_: object) -> DepthExecution:
            return DepthExecution(quantity=0.0, price=100.0)

    engine = MatchingEngine(INSTRUMENT, depth=Empty())
    engine.submit(make_order("o", BUY, 1), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 103.0, 99.0)])

    assert fills == []
    assert engine.order("o").status is OrderStatus.ACCEPTED


def test_engine_views_and_repr() -> None:
    engine = MatchingEngine(INSTRUMENT, max_participation=0.5)
    engine.submit(make_order("o", BUY, 1), ts_ns=0)

    assert engine.instrument is INSTRUMENT
    assert (engine.bar_index, engine.last_ts_ns) == (-1, None)
    assert [record.client_order_id for record in engine.open_orders] == ["o"]
    assert "max_participation=0.5" in repr(engine)
    assert "FixedLatency(bars=0" in repr(engine)
    drive(engine, [bar(DAY, 100.0, 101.0, 99.0)])
    assert (engine.bar_index, engine.last_ts_ns) == (0, DAY)


# --- slippage and the cost models of tradepulse.costs ------------------------------------


@dataclass(frozen=True)
class BpsSlippage:
    """A stand-in execution-price model: ``bps`` basis points against the taker."""

    bps: float

    def execution_price(self, price: float, *, side: int, quantity: float, volume: float) -> float:
        return price * (1.0 + side * self.bps * 1e-4)


@pytest.mark.parametrize(
    ("side", "order_type", "limit", "expected", "liquidity"),
    [
        (BUY, MARKET, None, "100.10", Liquidity.TAKER),  # 100 * (1 + 10 bps)
        (SELL, MARKET, None, "99.90", Liquidity.TAKER),
        (BUY, LIMIT, "100.05", "100.05", Liquidity.TAKER),  # slipped to 100.10, capped
        (BUY, LIMIT, "99.50", "99.50", Liquidity.MAKER),  # resting: its limit, no slippage
    ],
)
def test_slippage_moves_taker_prices_and_never_passes_a_limit(
    side: Side, order_type: OrderType, limit: str | None, expected: str, liquidity: Liquidity
) -> None:
    engine = MatchingEngine(INSTRUMENT, slippage=BpsSlippage(10.0))
    engine.submit(make_order("o", side, 2, order_type=order_type, limit=limit), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 101.0, 99.0)])

    assert [(fill.price, fill.liquidity) for fill in fills] == [(Decimal(expected), liquidity)]


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan"), "100"])
def test_a_broken_slippage_model_is_reported(value: object) -> None:
    class Broken:
        def execution_price(
            self, price: float, *, side: int, quantity: float, volume: float
        ) -> float:
            return value  # type: ignore[return-value]

    engine = MatchingEngine(INSTRUMENT, slippage=Broken())
    engine.submit(make_order("o", BUY, 1), ts_ns=0)

    with pytest.raises(ConfigError, match="slippage model"):
        engine.process_bar(bar(DAY, 100.0, 101.0, 99.0))


def test_the_cost_models_of_tradepulse_costs_plug_in() -> None:
    costs = pytest.importorskip("tradepulse.costs")
    commission = costs.NotionalCommission(rate=0.001)
    slippage = costs.combine_slippage(costs.FixedSlippage(slippage_bps=10.0))
    instrument = Instrument(
        symbol=SYMBOL, price_increment=Decimal("0.0001"), quantity_increment=Decimal(1)
    )
    engine = MatchingEngine(instrument, commission=commission, slippage=slippage)
    engine.submit(make_order("o", BUY, 3), ts_ns=0)

    fills, _ = drive(engine, [bar(DAY, 100.0, 101.0, 99.0, volume=500.0)])

    # Expected from the models themselves, then put on the instrument's grids.
    price = slippage.execution_price(100.0, side=1, quantity=3.0, volume=500.0)
    assert [fill.price for fill in fills] == [instrument.price_from_float(price)]
    fee = commission.commission(quantity=3.0, price=float(fills[0].price))
    assert fills[0].commission == instrument.cash_from_float(fee)
