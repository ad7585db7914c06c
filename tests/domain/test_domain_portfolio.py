"""Positions and portfolio: FIFO accounting, rebuild from fills, exact conservation."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.domain import Fill, Lot, OrderError, Portfolio, Position, Side, rebuild_position

BUY, SELL = Side.BUY, Side.SELL


def make_fill(
    side: Side,
    quantity: str,
    price: str,
    *,
    symbol: str = "A",
    commission: str = "0",
    fill_id: int = 1,
) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=f"c{fill_id}",
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        price=Decimal(price),
        commission=Decimal(commission),
        ts_ns=fill_id,
    )


def test_fifo_reduction_and_flip() -> None:
    fills = [
        make_fill(BUY, "10", "100"),
        make_fill(BUY, "5", "110"),
        make_fill(SELL, "12", "120"),  # closes 10 @ 100 (+200) and 2 @ 110 (+20)
        make_fill(SELL, "5", "100"),  # closes 3 @ 110 (-30), opens a 2-unit short at 100
    ]

    steps = []
    position = Position(symbol="A")
    for item in fills:
        position = position.apply_fill(item)
        steps.append((position.quantity, position.realized_pnl, position.lots))

    assert steps == [
        (Decimal(10), Decimal(0), (Lot(Decimal(10), Decimal(100)),)),
        (Decimal(15), Decimal(0), (Lot(Decimal(10), Decimal(100)), Lot(Decimal(5), Decimal(110)))),
        (Decimal(3), Decimal(220), (Lot(Decimal(3), Decimal(110)),)),
        (Decimal(-2), Decimal(190), (Lot(Decimal(-2), Decimal(100)),)),
    ]
    assert position.cost_basis == Decimal(-200)
    assert position.unrealized_pnl(Decimal(90)) == Decimal(20)  # short 2 from 100 to 90


def test_short_then_cover() -> None:
    position = rebuild_position("A", [make_fill(SELL, "4", "50"), make_fill(BUY, "6", "40")])

    assert (position.quantity, position.realized_pnl) == (Decimal(2), Decimal(40))
    assert position.lots == (Lot(Decimal(2), Decimal(40)),)


def test_portfolio_cash_and_equity() -> None:
    portfolio = Portfolio(cash=Decimal(10_000))

    portfolio.apply_fill(make_fill(BUY, "10", "100", commission="1.5"))
    portfolio.apply_fill(make_fill(SELL, "3", "50", symbol="B", commission="0.5", fill_id=2))

    assert portfolio.cash == Decimal("9148.0")  # 10000 - 1000 - 1.5 + 150 - 0.5
    assert portfolio.initial_cash == Decimal(10_000)
    assert portfolio.equity() == Decimal("9998.0")  # marks: last fills, 100 and 50
    marks = {"A": Decimal(110), "B": Decimal(40)}
    assert portfolio.equity(marks) == Decimal("9148.0") + 1100 - 120
    assert portfolio.gross_exposure(marks) == Decimal(1220)
    assert portfolio.position("A").commission == Decimal("1.5")
    assert portfolio.position("C") == Position(symbol="C")
    assert set(portfolio.positions) == {"A", "B"}
    portfolio.mark("A", Decimal(120))
    assert portfolio.marks["A"] == Decimal(120)
    assert "positions=2" in repr(portfolio)


def test_flat_positions_add_nothing_and_need_no_mark() -> None:
    portfolio = Portfolio.from_fills(
        cash=Decimal(100), fills=[make_fill(BUY, "2", "10"), make_fill(SELL, "2", "12", fill_id=2)]
    )

    assert portfolio.position("A").quantity == 0
    assert portfolio.position("A").realized_pnl == Decimal(4)
    assert portfolio.equity({}) == portfolio.gross_exposure() + Decimal(104)


def test_portfolio_errors() -> None:
    with pytest.raises(OrderError, match="cash must be a finite Decimal"):
        Portfolio(cash=100.0)  # type: ignore[arg-type]
    portfolio = Portfolio(cash=Decimal(0))
    with pytest.raises(OrderError, match="mark price"):
        portfolio.mark("A", Decimal(0))
    with pytest.raises(OrderError, match="fill for symbol 'B'"):
        Position(symbol="A").apply_fill(make_fill(BUY, "1", "1", symbol="B"))


def test_equity_needs_a_mark_for_every_open_position() -> None:
    portfolio = Portfolio(cash=Decimal(0))
    portfolio.apply_fill(make_fill(BUY, "1", "10"))
    stale = Portfolio.from_fills(cash=Decimal(0), fills=[])
    stale._positions["A"] = portfolio.position("A")  # a position without any mark

    with pytest.raises(OrderError, match="no mark price for the open position in 'A'"):
        stale.equity()


def test_ledger_ignores_the_callers_decimal_context() -> None:
    # 30 significant digits would be rounded by a 5-digit current context.
    fills = [make_fill(BUY, "123456.789012345678", "9876.54321098765432")]

    with localcontext(prec=5):
        low = Portfolio.from_fills(cash=Decimal(0), fills=fills)
    normal = Portfolio.from_fills(cash=Decimal(0), fills=fills)

    exact = -Fraction("123456.789012345678") * Fraction("9876.54321098765432")
    assert Fraction(low.cash) == Fraction(normal.cash) == exact


symbols = st.sampled_from(["A", "B"])
fills_strategy = st.lists(
    st.builds(
        lambda number, symbol, side, lots, cents, fee: make_fill(
            side,
            str(Decimal(lots) / 1000),
            str(Decimal(cents) / 100),
            symbol=symbol,
            commission=str(Decimal(fee) / 100),
            fill_id=number,
        ),
        st.integers(1, 10**6),
        symbols,
        st.sampled_from(list(Side)),
        st.integers(1, 50_000),  # 0.001 to 50 units
        st.integers(1, 1_000_000),  # 0.01 to 10,000 per unit
        st.sampled_from([0, 0, 1, 37]),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=200)
@given(fills=fills_strategy)
def test_rebuilt_positions_equal_the_running_ones(fills: list[Fill]) -> None:
    portfolio = Portfolio(cash=Decimal(1000))
    for item in fills:
        portfolio.apply_fill(item)

    rebuilt = Portfolio.from_fills(cash=Decimal(1000), fills=fills)

    for symbol in ("A", "B"):
        own = [item for item in fills if item.symbol == symbol]
        assert rebuild_position(symbol, own) == portfolio.position(symbol)
        assert rebuilt.position(symbol) == portfolio.position(symbol)
    assert rebuilt.cash == portfolio.cash


@settings(deadline=None, max_examples=200)
@given(fills=fills_strategy)
def test_accounting_identities_hold_exactly(fills: list[Fill]) -> None:
    portfolio = Portfolio.from_fills(cash=Decimal(1000), fills=fills)

    flows: dict[str, Decimal] = defaultdict(Decimal)  # signed units bought
    cash = Decimal(1000)
    for item in fills:
        sign = 1 if item.side is BUY else -1
        flows[item.symbol] += sign * item.quantity
        cash += -sign * item.quantity * item.price - item.commission
    positions = [portfolio.position(symbol) for symbol in ("A", "B")]
    commission = sum((item.commission for item in fills), Decimal(0))

    assert portfolio.cash == cash  # default context: values here stay under 28 digits
    for position in positions:
        assert position.quantity == flows[position.symbol]
        assert sum((lot.quantity for lot in position.lots), Decimal(0)) == position.quantity
        assert all((lot.quantity > 0) == (position.quantity > 0) for lot in position.lots)
    # cash = initial - open cost + realised P&L - commission, to the last digit.
    assert portfolio.cash == (
        Decimal(1000)
        - sum((position.cost_basis for position in positions), Decimal(0))
        + sum((position.realized_pnl for position in positions), Decimal(0))
        - commission
    )


@settings(deadline=None, max_examples=200)
@given(fills=fills_strategy)
def test_zero_cost_fills_conserve_cash_plus_marked_positions(fills: list[Fill]) -> None:
    portfolio = Portfolio(cash=Decimal(1000))
    for item in fills:
        if item.commission != 0:
            portfolio.apply_fill(item)
            continue
        # Mark everything at current marks, this symbol at the fill price.
        marks = dict(portfolio.marks)
        marks[item.symbol] = item.price
        before = portfolio.equity(marks)

        portfolio.apply_fill(item)

        assert portfolio.equity(marks) == before
