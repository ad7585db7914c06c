"""Pre-trade risk checks: each limit rejects with a reason naming the limit and the value."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from execution_helpers import INSTRUMENT, SYMBOL, make_order

from tradepulse.domain import Fill, OrderError, OrderStatus, OrderType, Portfolio, Side
from tradepulse.errors import ConfigError
from tradepulse.execution import MatchingEngine, PreTradeRisk, RiskLimits, submit_checked

BUY, SELL = Side.BUY, Side.SELL
REFERENCE = Decimal(100)


def portfolio_with(cash: str, *holdings: tuple[str, int, str]) -> Portfolio:
    """Return a portfolio with ``cash`` left after buying (symbol, units, price) holdings."""
    fills = [
        Fill(
            fill_id=number,
            client_order_id=f"f{number}",
            symbol=symbol,
            side=BUY if units > 0 else SELL,
            quantity=Decimal(abs(units)),
            price=Decimal(price),
            commission=Decimal(0),
            ts_ns=0,
        )
        for number, (symbol, units, price) in enumerate(holdings, start=1)
    ]
    spent = sum((Decimal(units) * Decimal(price) for _, units, price in holdings), Decimal(0))
    return Portfolio.from_fills(cash=Decimal(cash) + spent, fills=fills)


def check(limits: RiskLimits, order_side: Side, quantity: int, **kwargs: object) -> str | None:
    portfolio = kwargs.pop("portfolio", None) or portfolio_with("1000000")
    order = make_order("o", order_side, quantity, **kwargs)  # type: ignore[arg-type]
    return PreTradeRisk(limits).check(
        order,
        portfolio=portfolio,  # type: ignore[arg-type]
        reference_price=REFERENCE,
    )


def test_max_order_quantity() -> None:
    limits = RiskLimits(max_order_quantity=Decimal(10))

    assert check(limits, BUY, 10) is None
    assert check(limits, BUY, 11) == (
        "max_order_quantity: order quantity 11 units exceeds the limit 10 units"
    )


def test_max_order_notional_uses_the_least_favourable_price() -> None:
    limits = RiskLimits(max_order_notional=Decimal(1000))

    # Market buy: 10 * reference 100 = 1000, at the limit.
    assert check(limits, BUY, 10) is None
    # Buy limit 101: 10 * 101 = 1010.
    assert check(limits, BUY, 10, order_type=OrderType.LIMIT, limit="101") == (
        "max_order_notional: order notional 1010 (10 units at 101) exceeds the limit 1000"
    )
    # Buy stop 102 above the reference: 10 * 102.
    reason = check(limits, BUY, 10, order_type=OrderType.STOP, stop="102")
    assert reason is not None
    assert reason.startswith("max_order_notional: order notional 1020 ")
    # Sell limit 99 below the reference: the reference 100 is less favourable.
    assert check(limits, SELL, 10, order_type=OrderType.LIMIT, limit="99") is None


def test_max_position_counts_holdings_open_orders_and_the_order() -> None:
    limits = RiskLimits(max_position=Decimal(10), margin_rate=None)
    portfolio = portfolio_with("100000", (SYMBOL, 8, "100"))
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("open", BUY, 1), ts_ns=0)
    risk = PreTradeRisk(limits)

    reason = risk.check(
        make_order("o", BUY, 2),
        portfolio=portfolio,
        reference_price=REFERENCE,
        open_orders=engine.open_orders,
    )
    allowed = risk.check(
        make_order("o", BUY, 1),
        portfolio=portfolio,
        reference_price=REFERENCE,
        open_orders=engine.open_orders,
    )

    assert reason == (
        "max_position: projected position 11 units exceeds the limit 10 units "
        "(current 8, open orders 1, this order 2)"
    )
    assert allowed is None


def test_max_position_applies_to_shorts_and_never_blocks_reducing_orders() -> None:
    limits = RiskLimits(max_position=Decimal(10), margin_rate=None)
    over_limit = portfolio_with("100000", (SYMBOL, 15, "100"))

    reason = check(limits, SELL, 26, portfolio=over_limit)  # 15 - 26 = -11
    reducing = check(limits, SELL, 5, portfolio=over_limit)  # 15 -> 10

    assert reason is not None
    assert reason.startswith("max_position: projected position -11 units exceeds the limit 10")
    assert reducing is None


def test_max_position_notional() -> None:
    limits = RiskLimits(max_position_notional=Decimal(5000), margin_rate=None)
    portfolio = portfolio_with("100000", (SYMBOL, 40, "100"))

    assert check(limits, BUY, 10, portfolio=portfolio) is None  # 50 * 100 = 5000
    assert check(limits, BUY, 11, portfolio=portfolio) == (
        "max_position_notional: projected position notional 5100 (51 units at 100) "
        "exceeds the limit 5000"
    )


@dataclass(frozen=True)
class PercentCommission:
    rate: float

    def commission(self, *, quantity: float, price: float) -> float:
        return self.rate * quantity * price


def test_cash_check_is_exactly_cash_covers_notional_plus_commission() -> None:
    portfolio = portfolio_with("1000")
    limits = RiskLimits()  # margin_rate 1: fully funded

    exact = PreTradeRisk(limits).check(
        make_order("o", BUY, 10), portfolio=portfolio, reference_price=REFERENCE
    )
    one_more = PreTradeRisk(limits).check(
        make_order("o", BUY, 11), portfolio=portfolio, reference_price=REFERENCE
    )
    with_fee = PreTradeRisk(limits, commission=PercentCommission(0.001)).check(
        make_order("o", BUY, 10), portfolio=portfolio, reference_price=REFERENCE
    )

    assert exact is None
    assert one_more == (
        "insufficient cash/margin: post-trade requirement 1100 (gross exposure 1100 * "
        "margin_rate 1) exceeds post-trade equity 1000"
    )
    # 1000 notional + 1 commission > 1000 cash.
    assert with_fee is not None
    assert with_fee.endswith("exceeds post-trade equity 999")


def test_cash_check_for_a_limit_below_the_market() -> None:
    # Buy limit at 90 with the market at 100: cash must cover quantity * 90.
    portfolio = portfolio_with("1000")
    risk = PreTradeRisk(RiskLimits())

    def reason(units: int) -> str | None:
        order = make_order("o", BUY, units, order_type=OrderType.LIMIT, limit="90")
        return risk.check(order, portfolio=portfolio, reference_price=REFERENCE)

    assert reason(11) is None  # 990 <= 1000
    assert reason(12) is not None  # 1080 > 1000


@pytest.mark.parametrize(
    ("margin_rate", "side", "allowed", "refused"),
    [
        ("0.5", BUY, 20, 21),  # 2x leverage on 1000 equity: 2000 of exposure
        ("1", SELL, 10, 11),  # short fully collateralised: |short| <= equity
        ("0.25", SELL, 40, 41),
    ],
)
def test_margin_rate(margin_rate: str, side: Side, allowed: int, refused: int) -> None:
    portfolio = portfolio_with("1000")
    risk = PreTradeRisk(RiskLimits(margin_rate=Decimal(margin_rate)))

    def reason(units: int) -> str | None:
        return risk.check(
            make_order("o", side, units), portfolio=portfolio, reference_price=REFERENCE
        )

    assert reason(allowed) is None
    refusal = reason(refused)
    assert refusal is not None
    assert refusal.startswith("insufficient cash/margin")
    assert f"margin_rate {margin_rate}" in refusal


def test_margin_values_other_positions_at_their_marks() -> None:
    # 1000 cash plus 10 OTHER bought at 50 and now marked at 40: equity 1400.
    portfolio = portfolio_with("1000", ("OTHER", 10, "50"))
    portfolio.mark("OTHER", Decimal(40))
    risk = PreTradeRisk(RiskLimits(margin_rate=Decimal("0.5")))

    def reason(units: int) -> str | None:
        return risk.check(
            make_order("o", BUY, units), portfolio=portfolio, reference_price=REFERENCE
        )

    # Requirement (400 + 100 q) * 0.5 <= 1400  <=>  q <= 24.
    assert reason(24) is None
    assert reason(25) is not None


def test_open_orders_of_the_other_side_or_symbol_do_not_count() -> None:
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("sell", SELL, 50), ts_ns=0)
    other = MatchingEngine(INSTRUMENT.__class__(symbol="OTHER"))
    other.submit(make_order("elsewhere", BUY, 50, symbol="OTHER"), ts_ns=0)
    risk = PreTradeRisk(RiskLimits(max_position=Decimal(10), margin_rate=None))

    reason = risk.check(
        make_order("o", BUY, 10),
        portfolio=portfolio_with("1000"),
        reference_price=REFERENCE,
        open_orders=[*engine.open_orders, *other.open_orders],
    )

    assert reason is None


def test_margin_needs_marks_for_other_positions() -> None:
    portfolio = portfolio_with("1000", ("OTHER", 10, "50"))
    portfolio._marks.clear()  # as if the position had never been marked
    risk = PreTradeRisk(RiskLimits())

    with pytest.raises(OrderError, match="no mark price for the open position in 'OTHER'"):
        risk.check(make_order("o", BUY, 1), portfolio=portfolio, reference_price=REFERENCE)


def test_disabled_limits_pass_anything() -> None:
    assert check(RiskLimits(margin_rate=None), BUY, 10**9) is None


def test_check_input_errors() -> None:
    risk = PreTradeRisk(RiskLimits())
    portfolio = portfolio_with("1000")

    with pytest.raises(OrderError, match="reference_price"):
        risk.check(make_order("o", BUY, 1), portfolio=portfolio, reference_price=Decimal(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_position": Decimal(0)},
        {"max_order_quantity": 5},
        {"margin_rate": Decimal("NaN")},
        {"max_order_notional": Decimal(-1)},
    ],
)
def test_risk_limits_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        RiskLimits(**kwargs)  # type: ignore[arg-type]


def test_pre_trade_risk_configuration_is_checked() -> None:
    with pytest.raises(ConfigError, match="limits must be a RiskLimits"):
        PreTradeRisk({"max_position": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="commission must implement"):
        PreTradeRisk(RiskLimits(), commission=object())  # type: ignore[arg-type]
    assert "max_position=Decimal('3')" in repr(PreTradeRisk(RiskLimits(max_position=Decimal(3))))


def test_submit_checked_records_rejections_in_the_engine() -> None:
    engine = MatchingEngine(INSTRUMENT)
    risk = PreTradeRisk(RiskLimits(max_order_quantity=Decimal(5)))
    portfolio = portfolio_with("100000")

    rejected = submit_checked(
        engine,
        make_order("big", BUY, 6),
        risk=risk,
        portfolio=portfolio,
        reference_price=REFERENCE,
        ts_ns=0,
    )
    accepted = submit_checked(
        engine,
        make_order("small", BUY, 5),
        risk=risk,
        portfolio=portfolio,
        reference_price=REFERENCE,
        ts_ns=0,
    )

    assert (rejected.status, rejected.reason) == (
        OrderStatus.REJECTED,
        "max_order_quantity: order quantity 6 units exceeds the limit 5 units",
    )
    assert engine.order("big").status is OrderStatus.REJECTED
    assert accepted.status is OrderStatus.ACCEPTED
    assert [record.client_order_id for record in engine.open_orders] == ["small"]
    assert risk.limits.max_order_quantity == Decimal(5)


def test_a_running_open_quantity_decides_like_the_open_orders() -> None:
    limits = RiskLimits(max_position=Decimal(10), margin_rate=None)
    portfolio = portfolio_with("100000", (SYMBOL, 8, "100"))
    engine = MatchingEngine(INSTRUMENT)
    engine.submit(make_order("open", BUY, 1), ts_ns=0)
    engine.submit(make_order("other-side", SELL, 5), ts_ns=0)
    risk = PreTradeRisk(limits)
    order = make_order("o", BUY, 2)

    by_orders = risk.check(
        order, portfolio=portfolio, reference_price=REFERENCE, open_orders=engine.open_orders
    )
    # The caller's running sum of the buys' unfilled units (1); the open orders are not read.
    by_sum = risk.check(
        order,
        portfolio=portfolio,
        reference_price=REFERENCE,
        open_orders=[make_record_never_read()],
        open_quantity=Decimal("1.000"),
    )

    assert (
        by_orders
        == by_sum
        == (
            "max_position: projected position 11 units exceeds the limit 10 units "
            "(current 8, open orders 1, this order 2)"
        )
    )
    for bad in (Decimal(-1), Decimal("NaN"), 1):
        with pytest.raises(OrderError, match="open_quantity must be a finite Decimal >= 0"):
            risk.check(
                order,
                portfolio=portfolio,
                reference_price=REFERENCE,
                open_quantity=bad,  # type: ignore[arg-type]
            )


def make_record_never_read() -> object:
    """Return an object that fails if the check reads it as an open order."""

    class NeverRead:
        @property
        def order(self) -> object:
            raise AssertionError("open_orders must not be read when open_quantity is given")

    return NeverRead()
