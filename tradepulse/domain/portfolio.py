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
from dataclasses import FrozenInstanceError, dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO
from tradepulse.domain.orders import Fill, OrderError, Side

__all__ = ["Lot", "Portfolio", "Position", "rebuild_position"]

_add = LEDGER_CONTEXT.add
_subtract = LEDGER_CONTEXT.subtract
_multiply = LEDGER_CONTEXT.multiply
# Closed lots a shared lot store may hold before the next opening copies the open ones out.
_COMPACT_AFTER: Final = 32


@dataclass(frozen=True, slots=True)
class Lot:
    """Open units bought (``quantity`` > 0) or sold short (``quantity`` < 0) at ``price``."""

    quantity: Decimal
    price: Decimal


class Position:
    """A position in one symbol, derived from its fills (an immutable value).

    ``quantity`` is signed units (negative = short); ``lots`` are the open lots,
    oldest first, all with the sign of ``quantity``; ``realized_pnl`` is the
    profit and loss of closed units before commission and ``commission`` the
    total paid, both in quote currency. Positions compare, hash and print like
    the frozen dataclass they once were.

    Successive positions share their lots (see :meth:`apply_fill`): applying a
    fill costs the same however many lots are open, except for the lots it
    closes, so a long run of same-direction fills is linear, not quadratic.
    """

    __slots__ = (
        "_end",
        "_head",
        "_start",
        "_store",
        "commission",
        "quantity",
        "realized_pnl",
        "symbol",
    )

    symbol: str
    quantity: Decimal
    realized_pnl: Decimal
    commission: Decimal
    # The open lots are ``_store[_start:_end]``, with ``_head`` (when set) in
    # place of ``_store[_start]`` (a partly closed oldest lot). ``_store`` is
    # shared with the positions this one was derived from and to: it is only
    # ever appended to, and only by the position whose lots end at its end.
    _store: list[Lot]
    _start: int
    _end: int
    _head: Lot | None

    def __init__(
        self,
        *,
        symbol: str,
        quantity: Decimal = ZERO,
        lots: Iterable[Lot] = (),
        realized_pnl: Decimal = ZERO,
        commission: Decimal = ZERO,
    ) -> None:
        store = list(lots)
        self._set(symbol, quantity, realized_pnl, commission, store, 0, len(store), None)

    def _set(
        self,
        symbol: str,
        quantity: Decimal,
        realized_pnl: Decimal,
        commission: Decimal,
        store: list[Lot],
        start: int,
        end: int,
        head: Lot | None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "symbol", symbol)
        setter(self, "quantity", quantity)
        setter(self, "realized_pnl", realized_pnl)
        setter(self, "commission", commission)
        setter(self, "_store", store)
        setter(self, "_start", start)
        setter(self, "_end", end)
        setter(self, "_head", head)

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _key(self) -> tuple[object, ...]:
        return (self.symbol, self.quantity, self.lots, self.realized_pnl, self.commission)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Position):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Position(symbol={self.symbol!r}, quantity={self.quantity!r}, lots={self.lots!r}, "
            f"realized_pnl={self.realized_pnl!r}, commission={self.commission!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[object, ...]]:
        # Pickle the open lots only, not the store shared with other positions.
        return (_restore_position, self._key())

    @property
    def lots(self) -> tuple[Lot, ...]:
        """Return the open lots, oldest first (units and price of each)."""
        store, start, end, head = self._store, self._start, self._end, self._head
        if head is None:
            return tuple(store[start:end])
        return (head, *store[start + 1 : end])

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
        shorts); any excess opens a lot in the other direction. The new
        position shares this one's lots (this one is unchanged): opening a lot
        costs O(1) amortised, closing one O(1).

        Raises:
            OrderError: ``fill`` is for another symbol.
        """
        if fill.symbol != self.symbol:
            raise OrderError(
                f"fill for symbol {fill.symbol!r} applied to the position in {self.symbol!r}"
            )
        signed = fill.quantity if fill.side is Side.BUY else fill.quantity.copy_negate()
        store, start, end, head = self._store, self._start, self._end, self._head
        realized = self.realized_pnl
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            store, start, end, head = _appended(store, start, end, head, Lot(signed, fill.price))
        else:
            remaining = signed  # opposite sign to every open lot
            while remaining != 0 and start < end:
                lot = store[start] if head is None else head
                closed = min(remaining.copy_abs(), lot.quantity.copy_abs())
                direction = Decimal(1) if lot.quantity > 0 else Decimal(-1)
                realized = _add(
                    realized,
                    _multiply(_multiply(closed, _subtract(fill.price, lot.price)), direction),
                )
                if closed == lot.quantity.copy_abs():
                    start, head = start + 1, None
                else:
                    head = Lot(_subtract(lot.quantity, _multiply(direction, closed)), lot.price)
                remaining = _add(remaining, _multiply(direction, closed))
            if remaining != 0:
                store, start, end, head = _appended(
                    store, start, end, head, Lot(remaining, fill.price)
                )
        position = Position.__new__(Position)
        position._set(
            self.symbol,
            _add(self.quantity, signed),
            realized,
            _add(self.commission, fill.commission),
            store,
            start,
            end,
            head,
        )
        return position


def _restore_position(
    symbol: str,
    quantity: Decimal,
    lots: tuple[Lot, ...],
    realized_pnl: Decimal,
    commission: Decimal,
) -> Position:
    """Return the position that :meth:`Position.__reduce__` pickled."""
    return Position(
        symbol=symbol,
        quantity=quantity,
        lots=lots,
        realized_pnl=realized_pnl,
        commission=commission,
    )


def _appended(
    store: list[Lot], start: int, end: int, head: Lot | None, lot: Lot
) -> tuple[list[Lot], int, int, Lot | None]:
    """Return the lots ``store[start:end]`` (``head`` first) plus ``lot``, sharing ``store``.

    ``lot`` goes on the end of ``store`` in place when the lots end there (no
    later position appended to it) and the closed lots before ``start`` are
    not the larger part of it; otherwise the open lots are copied to a new
    store (a branch, or a compaction that keeps a long-lived position's store
    from growing with every lot it ever held).
    """
    if end == len(store) and start <= max(_COMPACT_AFTER, end - start):
        store.append(lot)
        # Another thread may have appended to this store at the same time: then
        # the new lot is not at ``end`` and this position takes a copy instead.
        if len(store) == end + 1:
            return store, start, end + 1, head
    fresh = [] if start == end else [store[start] if head is None else head]
    fresh.extend(store[start + 1 : end])
    fresh.append(lot)
    return fresh, 0, len(fresh), None


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
