"""Positions and a portfolio derived by applying fills, in exact decimal arithmetic.

A :class:`Position` is an immutable value: ``position.apply_fill(fill)``
returns the next one, so a position can always be rebuilt from its fills
(:func:`rebuild_position`). Open quantity is kept as FIFO :class:`Lot` s, so
realised profit and loss is exact (no average-price division). A
:class:`Portfolio` holds cash and one position per symbol; a fill moves cash by
``-side * quantity * price - commission``. Every sum and product runs under
:data:`~tradepulse.domain.arithmetic.LEDGER_CONTEXT`, which raises rather than
round, so a zero-commission fill conserves cash plus positions marked at the
fill price exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO
from tradepulse.domain.orders import Fill, OrderError, Side

__all__ = ["Lot", "Portfolio", "Position", "rebuild_position"]

_add = LEDGER_CONTEXT.add
_subtract = LEDGER_CONTEXT.subtract
_multiply = LEDGER_CONTEXT.multiply


@dataclass(frozen=True, slots=True)
class Lot:
    """Open units bought (``quantity`` > 0) or sold short (``quantity`` < 0) at ``price``."""

    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """A position in one symbol, derived from its fills.

    ``quantity`` is signed units (negative = short); ``lots`` are the open lots,
    oldest first, all with the sign of ``quantity``; ``realized_pnl`` is the
    profit and loss of closed units before commission and ``commission`` the
    total paid, both in quote currency.
    """

    symbol: str
    quantity: Decimal = ZERO
    lots: tuple[Lot, ...] = ()
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO

    @property
    def cost_basis(self) -> Decimal:
        """Return the signed sum of quantity * price over the open lots (quote currency)."""
        total = ZERO
        for lot in self.lots:
            total = _add(total, _multiply(lot.quantity, lot.price))
        return total

    def market_value(self, price: Decimal) -> Decimal:
        """Return the signed value of the position marked at ``price`` (quote currency)."""
        return _multiply(self.quantity, price)

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """Return the profit and loss of the open lots marked at ``price`` (quote currency)."""
        return _subtract(self.market_value(price), self.cost_basis)

    def apply_fill(self, fill: Fill) -> Position:
        """Return the position after ``fill``: reduce lots first in, first out, then open.

        A fill against the position's direction closes the oldest lots first,
        realising ``closed units * (fill price - lot price)`` (sign-adjusted for
        shorts); any excess opens a lot in the other direction.

        Raises:
            OrderError: ``fill`` is for another symbol.
        """
        if fill.symbol != self.symbol:
            raise OrderError(
                f"fill for symbol {fill.symbol!r} applied to the position in {self.symbol!r}"
            )
        signed = fill.quantity if fill.side is Side.BUY else fill.quantity.copy_negate()
        lots = list(self.lots)
        realized = self.realized_pnl
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            lots.append(Lot(signed, fill.price))
        else:
            remaining = signed  # opposite sign to every open lot
            while remaining != 0 and lots:
                lot = lots[0]
                closed = min(remaining.copy_abs(), lot.quantity.copy_abs())
                direction = Decimal(1) if lot.quantity > 0 else Decimal(-1)
                realized = _add(
                    realized,
                    _multiply(_multiply(closed, _subtract(fill.price, lot.price)), direction),
                )
                if closed == lot.quantity.copy_abs():
                    lots.pop(0)
                else:
                    lots[0] = Lot(_subtract(lot.quantity, _multiply(direction, closed)), lot.price)
                remaining = _add(remaining, _multiply(direction, closed))
            if remaining != 0:
                lots.append(Lot(remaining, fill.price))
        return Position(
            symbol=self.symbol,
            quantity=_add(self.quantity, signed),
            lots=tuple(lots),
            realized_pnl=realized,
            commission=_add(self.commission, fill.commission),
        )


def rebuild_position(symbol: str, fills: Iterable[Fill]) -> Position:
    """Return the position in ``symbol`` obtained by applying ``fills`` in order to a flat one.

    Raises:
        OrderError: a fill is for another symbol.
    """
    position = Position(symbol=symbol)
    for fill in fills:
        position = position.apply_fill(fill)
    return position


class Portfolio:
    """Cash and positions, changed only by fills (and marked by prices for valuation).

    ``cash`` is in quote currency (one currency for every symbol). Marks are the
    latest known price per symbol: a fill sets its symbol's mark to the fill
    price; :meth:`mark` sets it from market data (e.g. each bar's close).

    Raises:
        OrderError: ``cash`` is not a finite Decimal.
    """

    __slots__ = ("_cash", "_initial_cash", "_marks", "_positions")

    def __init__(self, *, cash: Decimal) -> None:
        if not isinstance(cash, Decimal) or not cash.is_finite():
            raise OrderError(f"cash must be a finite Decimal, got {cash!r}")
        self._cash = cash
        self._initial_cash = cash
        self._positions: dict[str, Position] = {}
        self._marks: dict[str, Decimal] = {}

    def __repr__(self) -> str:
        return f"Portfolio(cash={self._cash}, positions={len(self._positions)})"

    @classmethod
    def from_fills(cls, *, cash: Decimal, fills: Iterable[Fill]) -> Portfolio:
        """Return a portfolio that started with ``cash`` and applied ``fills`` in order."""
        portfolio = cls(cash=cash)
        for fill in fills:
            portfolio.apply_fill(fill)
        return portfolio

    @property
    def cash(self) -> Decimal:
        """Return the cash balance (quote currency; negative when borrowing on margin)."""
        return self._cash

    @property
    def initial_cash(self) -> Decimal:
        """Return the cash the portfolio started with (quote currency)."""
        return self._initial_cash

    @property
    def positions(self) -> Mapping[str, Position]:
        """Return a read-only view of the positions by symbol (flat ones included)."""
        return MappingProxyType(self._positions)

    @property
    def marks(self) -> Mapping[str, Decimal]:
        """Return a read-only view of the latest price per symbol."""
        return MappingProxyType(self._marks)

    def position(self, symbol: str) -> Position:
        """Return the position in ``symbol`` (flat if it never traded)."""
        found = self._positions.get(symbol)
        return found if found is not None else Position(symbol=symbol)

    def mark(self, symbol: str, price: Decimal) -> None:
        """Set ``symbol``'s mark to ``price`` (quote currency per unit).

        Raises:
            OrderError: ``price`` is not a positive finite Decimal.
        """
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise OrderError(f"mark price for {symbol!r} must be a positive Decimal, got {price!r}")
        self._marks[symbol] = price

    def apply_fill(self, fill: Fill) -> None:
        """Apply ``fill``: move cash, update the position and the symbol's mark."""
        position = self.position(fill.symbol).apply_fill(fill)
        traded = fill.notional
        flow = traded if fill.side is Side.SELL else traded.copy_negate()
        self._cash = _subtract(_add(self._cash, flow), fill.commission)
        self._positions[fill.symbol] = position
        self._marks[fill.symbol] = fill.price

    def _mark_of(self, symbol: str, marks: Mapping[str, Decimal] | None) -> Decimal:
        if marks is not None and symbol in marks:
            return marks[symbol]
        if symbol in self._marks:
            return self._marks[symbol]
        raise OrderError(f"no mark price for the open position in {symbol!r}")

    def market_value(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Return the signed value of every position (quote currency).

        ``marks`` overrides the stored marks for the symbols it names.

        Raises:
            OrderError: an open position has no mark.
        """
        total = ZERO
        for symbol, position in self._positions.items():
            if position.quantity != 0:
                total = _add(total, position.market_value(self._mark_of(symbol, marks)))
        return total

    def gross_exposure(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Return the sum of |position value| over symbols (quote currency).

        Raises:
            OrderError: an open position has no mark.
        """
        total = ZERO
        for symbol, position in self._positions.items():
            if position.quantity != 0:
                value = position.market_value(self._mark_of(symbol, marks))
                total = _add(total, value.copy_abs())
        return total

    def equity(self, marks: Mapping[str, Decimal] | None = None) -> Decimal:
        """Return cash plus positions marked to market (quote currency).

        Raises:
            OrderError: an open position has no mark.
        """
        return _add(self._cash, self.market_value(marks))
