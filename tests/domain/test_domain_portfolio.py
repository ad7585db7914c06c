"""Positions and portfolio: FIFO accounting, rebuild from fills, exact conservation."""

from __future__ import annotations

import copy
import pickle
from collections import defaultdict
from dataclasses import FrozenInstanceError
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.domain import Fill, Lot, OrderError, Portfolio, Position, Side, rebuild_position
from tradepulse.domain.arithmetic import LEDGER_CONTEXT

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


# ----------------------------------------------------------------------------- shared lots


def reference_apply(
    lots: tuple[Lot, ...], realized: Decimal, quantity: Decimal, fill: Fill
) -> tuple[tuple[Lot, ...], Decimal]:
    """Apply ``fill`` to FIFO ``lots`` by copying them (the plain algorithm); return lots, PnL."""
    add, subtract, multiply = LEDGER_CONTEXT.add, LEDGER_CONTEXT.subtract, LEDGER_CONTEXT.multiply
    signed = fill.quantity if fill.side is BUY else -fill.quantity
    work = list(lots)
    if quantity == 0 or (quantity > 0) == (signed > 0):
        return (*work, Lot(signed, fill.price)), realized
    remaining = signed
    while remaining != 0 and work:
        lot = work[0]
        closed = min(abs(remaining), abs(lot.quantity))
        direction = Decimal(1) if lot.quantity > 0 else Decimal(-1)
        realized = add(
            realized, multiply(multiply(closed, subtract(fill.price, lot.price)), direction)
        )
        if closed == abs(lot.quantity):
            work.pop(0)
        else:
            work[0] = Lot(subtract(lot.quantity, multiply(direction, closed)), lot.price)
        remaining = add(remaining, multiply(direction, closed))
    if remaining != 0:
        work.append(Lot(remaining, fill.price))
    return tuple(work), realized


fill_runs = st.lists(
    st.tuples(
        st.integers(0, 6),  # which earlier position to apply the fill to (0: the latest)
        st.sampled_from(list(Side)),
        st.sampled_from(["1", "2", "0.5", "3.000", "0.25", "40"]),
        st.sampled_from(["100", "101.5", "99.25", "100.00"]),
    ),
    max_size=120,
)


@settings(deadline=None, max_examples=150)
@given(run=fill_runs)
def test_positions_sharing_lots_equal_the_copying_algorithm_digit_for_digit(
    run: list[tuple[int, Side, str, str]],
) -> None:
    # Positions are values: applying fills to older positions (branches) must
    # leave every other position untouched, whatever the lots they share.
    history = [(Position(symbol="A"), (), Decimal(0))]
    for number, (back, side, quantity, price) in enumerate(run, start=1):
        position, lots, realized = history[max(0, len(history) - 1 - back)]
        fill = make_fill(side, quantity, price, fill_id=number)

        history.append(
            (position.apply_fill(fill), *reference_apply(lots, realized, position.quantity, fill))
        )

    for position, lots, realized in history:
        assert position.lots == lots
        assert [(str(lot.quantity), str(lot.price)) for lot in position.lots] == [
            (str(lot.quantity), str(lot.price)) for lot in lots
        ]
        assert str(position.realized_pnl) == str(realized)
        assert position.quantity == sum((lot.quantity for lot in lots), Decimal(0))


def test_a_long_run_of_fills_keeps_one_store_and_compacts_it() -> None:
    position = Position(symbol="A")
    for number in range(1, 2001):
        position = position.apply_fill(make_fill(BUY, "1", str(100 + number % 7), fill_id=number))
    for number in range(2001, 3991):
        position = position.apply_fill(make_fill(SELL, "1", "105", fill_id=number))

    assert position.quantity == 10
    assert len(position.lots) == 10
    # 10 open lots; the 1,990 closed ones are dropped at the next opening.
    position = position.apply_fill(make_fill(BUY, "1", "100", fill_id=4000))
    assert len(position._store) == 11


def test_positions_stay_immutable_values() -> None:
    position = rebuild_position("A", [make_fill(BUY, "2", "10"), make_fill(BUY, "1", "12")])
    twin = Position(symbol="A", quantity=Decimal(3), lots=position.lots)

    assert twin == position
    assert hash(twin) == hash(position)
    assert twin != "A"
    assert repr(twin) == (
        "Position(symbol='A', quantity=Decimal('3'), lots=(Lot(quantity=Decimal('2'), "
        "price=Decimal('10')), Lot(quantity=Decimal('1'), price=Decimal('12'))), "
        "realized_pnl=Decimal('0'), commission=Decimal('0'))"
    )
    assert pickle.loads(pickle.dumps(position)) == position
    assert copy.deepcopy(position) == position
    with pytest.raises(FrozenInstanceError):
        position.quantity = Decimal(1)  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del position.symbol  # type: ignore[misc]
