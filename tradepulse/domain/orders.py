"""Orders, their life cycle, and fills.

An :class:`Order` is an immutable, validated request. Its life cycle lives in an
:class:`OrderRecord`, a small state machine:

- ``NEW`` → ``ACCEPTED`` (acknowledged), ``REJECTED`` or ``CANCELLED``;
- ``ACCEPTED`` → ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELLED`` or ``EXPIRED``;
- ``PARTIALLY_FILLED`` → ``PARTIALLY_FILLED`` (another fill), ``FILLED``,
  ``CANCELLED`` or ``EXPIRED``.

``FILLED``, ``CANCELLED``, ``REJECTED`` and ``EXPIRED`` are terminal; any other
move raises :class:`OrderStateError` (see :data:`ORDER_TRANSITIONS`). A
:class:`Fill` records one execution; prices, quantities and commissions are
:class:`~decimal.Decimal` (see :mod:`tradepulse.domain.arithmetic`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO
from tradepulse.errors import TradePulseError

__all__ = [
    "MAX_CLIENT_ORDER_ID_LENGTH",
    "ORDER_TRANSITIONS",
    "Fill",
    "Liquidity",
    "Order",
    "OrderError",
    "OrderRecord",
    "OrderStateError",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Side",
    "TimeInForce",
    "check_transition",
]

#: Longest accepted client order id, in characters.
MAX_CLIENT_ORDER_ID_LENGTH: Final = 64

# OrderRecord.average_fill_price is a display value, not ledger: 28 significant digits.
_AVERAGE_CONTEXT: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)


class OrderError(TradePulseError, ValueError):
    """An order, fill or order request is invalid (the message names the field and value)."""


class OrderStateError(OrderError):
    """An order cannot make the requested status change (e.g. cancelling a filled order)."""


class Side(StrEnum):
    """Buy or sell; :attr:`sign` is ``+1`` for buys and ``-1`` for sells."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """Return ``+1`` for a buy, ``-1`` for a sell."""
        return 1 if self is Side.BUY else -1


class OrderType(StrEnum):
    """Market, limit, stop (stop-market) or stop-limit."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """Good till cancelled, immediate or cancel, fill or kill, or day."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"


class Liquidity(StrEnum):
    """Whether a fill took liquidity (at the open or a trigger) or rested (limit touched)."""

    TAKER = "taker"
    MAKER = "maker"


class OrderStatus(StrEnum):
    """Where an order is in its life cycle."""

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        """Return whether no further change is possible."""
        return self in _TERMINAL


#: Every legal status change; terminal statuses map to an empty set.
ORDER_TRANSITIONS: Final[Mapping[OrderStatus, frozenset[OrderStatus]]] = MappingProxyType(
    {
        OrderStatus.NEW: frozenset(
            {OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.CANCELLED}
        ),
        OrderStatus.ACCEPTED: frozenset(
            {
                OrderStatus.PARTIALLY_FILLED,
                OrderStatus.FILLED,
                OrderStatus.CANCELLED,
                OrderStatus.EXPIRED,
            }
        ),
        OrderStatus.PARTIALLY_FILLED: frozenset(
            {
                OrderStatus.PARTIALLY_FILLED,
                OrderStatus.FILLED,
                OrderStatus.CANCELLED,
                OrderStatus.EXPIRED,
            }
        ),
        OrderStatus.FILLED: frozenset(),
        OrderStatus.CANCELLED: frozenset(),
        OrderStatus.REJECTED: frozenset(),
        OrderStatus.EXPIRED: frozenset(),
    }
)


_TERMINAL: Final = frozenset(status for status, moves in ORDER_TRANSITIONS.items() if not moves)


def check_transition(current: OrderStatus, new: OrderStatus) -> None:
    """Raise unless an order may move from ``current`` to ``new``.

    Raises:
        OrderStateError: the move is not in :data:`ORDER_TRANSITIONS`.
    """
    if new not in ORDER_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ORDER_TRANSITIONS[current])) or "none (terminal)"
        raise OrderStateError(
            f"illegal order status transition {current} -> {new} (allowed: {allowed})"
        )


def _check_decimal(name: str, value: object, *, allow_zero: bool = False) -> None:
    if type(value) is Decimal and value.is_finite() and (value > 0 or (allow_zero and value == 0)):
        return  # the common case, checked first
    if not isinstance(value, Decimal):
        raise OrderError(
            f"{name} must be a Decimal (convert floats with Instrument.*_from_float), "
            f"got {type(value).__name__} {value!r}"
        )
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise OrderError(f"{name} must be finite and {bound}, got {value}")


def _check_text(name: str, value: object) -> None:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_CLIENT_ORDER_ID_LENGTH
        or not value.isprintable()  # False for every separator except the ASCII space
        or " " in value
    ):
        raise OrderError(
            f"{name} must be 1 to {MAX_CLIENT_ORDER_ID_LENGTH} printable characters "
            f"without spaces, got {value!r}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A validated order request (immutable).

    ``quantity`` is in units of the instrument (always positive; ``side`` gives
    the direction); ``limit_price`` and ``stop_price`` are in quote currency per
    unit. A limit order needs ``limit_price``, a stop order ``stop_price``, a
    stop-limit order both, and a market order neither. Numbers must already be
    :class:`~decimal.Decimal`: floats are converted at the edge with
    :class:`~tradepulse.domain.Instrument`, so the quantisation is explicit.
    ``client_order_id`` identifies the order for cancel and replace.

    Raises:
        OrderError: a field has the wrong type, a non-positive or non-finite
            number, or a price the order type forbids or lacks.
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC

    def __post_init__(self) -> None:
        _check_text("client_order_id", self.client_order_id)
        _check_text("symbol", self.symbol)
        for name, kind in (
            ("side", Side),
            ("order_type", OrderType),
            ("time_in_force", TimeInForce),
        ):
            if not isinstance(getattr(self, name), kind):
                raise OrderError(f"{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
        _check_decimal("quantity", self.quantity)
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        for name, needed in (("limit_price", needs_limit), ("stop_price", needs_stop)):
            value = getattr(self, name)
            if needed and value is None:
                raise OrderError(f"a {self.order_type} order needs {name}, got None")
            if not needed and value is not None:
                raise OrderError(f"a {self.order_type} order takes no {name}, got {value}")
            if value is not None:
                _check_decimal(name, value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One execution of (part of) an order.

    ``quantity`` (units, > 0), ``price`` (quote currency per unit, > 0) and
    ``commission`` (quote currency, >= 0) are exact decimals. ``ts_ns`` is the
    stamp of the bar it happened on (UTC nanoseconds); ``fill_id`` numbers the
    venue's fills from 1; ``liquidity`` says whether it took or provided liquidity.

    Raises:
        OrderError: a number is not a Decimal, not finite, or out of range.
    """

    fill_id: int
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    ts_ns: int
    liquidity: Liquidity = Liquidity.TAKER

    def __post_init__(self) -> None:
        if not isinstance(self.side, Side):
            raise OrderError(f"side must be a Side, got {self.side!r}")
        _check_decimal("quantity", self.quantity)
        _check_decimal("price", self.price)
        _check_decimal("commission", self.commission, allow_zero=True)

    @property
    def notional(self) -> Decimal:
        """Return ``quantity * price`` exactly, in quote currency (unsigned)."""
        return LEDGER_CONTEXT.multiply(self.quantity, self.price)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderUpdate:
    """A snapshot published whenever an order changes status (or fills again).

    Quantities are in units; ``reason`` explains rejections, cancellations and
    expiries (``None`` otherwise); ``ts_ns`` is when the change took effect.
    """

    client_order_id: str
    status: OrderStatus
    ts_ns: int
    filled_quantity: Decimal
    remaining_quantity: Decimal
    reason: str | None = None


class OrderRecord:
    """The mutable life cycle of one :class:`Order`: status, fills so far and why it ended.

    Every status change goes through :func:`check_transition`, so an illegal one
    (filling a cancelled order, cancelling a filled one, ...) raises
    :class:`OrderStateError` and leaves the record unchanged.
    """

    __slots__ = (
        "_filled_notional",
        "_filled_quantity",
        "_order",
        "_reason",
        "_remaining_quantity",
        "_status",
        "_submitted_ts_ns",
        "_updated_ts_ns",
    )

    def __init__(self, order: Order, *, submitted_ts_ns: int) -> None:
        self._order = order
        self._status = OrderStatus.NEW
        self._filled_quantity = ZERO
        self._remaining_quantity = order.quantity
        self._filled_notional = ZERO
        self._reason: str | None = None
        self._submitted_ts_ns = submitted_ts_ns
        self._updated_ts_ns = submitted_ts_ns

    def __repr__(self) -> str:
        return (
            f"OrderRecord({self._order.client_order_id!r}, status={self._status}, "
            f"filled={self._filled_quantity}/{self._order.quantity})"
        )

    @property
    def order(self) -> Order:
        """Return the order request."""
        return self._order

    @property
    def client_order_id(self) -> str:
        """Return the order's client id."""
        return self._order.client_order_id

    @property
    def status(self) -> OrderStatus:
        """Return the current status."""
        return self._status

    @property
    def is_open(self) -> bool:
        """Return whether the order can still fill or be cancelled."""
        return self._status not in _TERMINAL

    @property
    def filled_quantity(self) -> Decimal:
        """Return the units filled so far."""
        return self._filled_quantity

    @property
    def remaining_quantity(self) -> Decimal:
        """Return the units not yet filled (zero once filled)."""
        return self._remaining_quantity

    @property
    def filled_notional(self) -> Decimal:
        """Return the exact sum of quantity * price over the fills, in quote currency."""
        return self._filled_notional

    @property
    def average_fill_price(self) -> Decimal | None:
        """Return the volume-weighted fill price (28 significant digits), or None if unfilled."""
        if self._filled_quantity == 0:
            return None
        return _AVERAGE_CONTEXT.divide(self._filled_notional, self._filled_quantity)

    @property
    def reason(self) -> str | None:
        """Return why the order was rejected, cancelled or expired (None otherwise)."""
        return self._reason

    @property
    def submitted_ts_ns(self) -> int:
        """Return when the order was submitted (UTC nanoseconds)."""
        return self._submitted_ts_ns

    @property
    def updated_ts_ns(self) -> int:
        """Return when the order last changed (UTC nanoseconds)."""
        return self._updated_ts_ns

    def snapshot(self) -> OrderUpdate:
        """Return the current state as an :class:`OrderUpdate`."""
        return OrderUpdate(
            client_order_id=self._order.client_order_id,
            status=self._status,
            ts_ns=self._updated_ts_ns,
            filled_quantity=self._filled_quantity,
            remaining_quantity=self._remaining_quantity,
            reason=self._reason,
        )

    def _move(self, new: OrderStatus, *, ts_ns: int, reason: str | None = None) -> OrderUpdate:
        try:
            check_transition(self._status, new)
        except OrderStateError as error:
            raise OrderStateError(f"order {self.client_order_id!r}: {error}") from None
        self._status = new
        self._updated_ts_ns = ts_ns
        if reason is not None:
            self._reason = reason
        return self.snapshot()

    def accept(self, *, ts_ns: int) -> OrderUpdate:
        """Mark the order acknowledged by the venue.

        Raises:
            OrderStateError: the order is not NEW.
        """
        return self._move(OrderStatus.ACCEPTED, ts_ns=ts_ns)

    def reject(self, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Mark the order rejected with ``reason``.

        Raises:
            OrderStateError: the order is not NEW.
        """
        return self._move(OrderStatus.REJECTED, ts_ns=ts_ns, reason=reason)

    def cancel(self, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Cancel the unfilled remainder with ``reason`` (fills so far stand).

        Raises:
            OrderStateError: the order is already terminal.
        """
        return self._move(OrderStatus.CANCELLED, ts_ns=ts_ns, reason=reason)

    def expire(self, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Expire the unfilled remainder (e.g. a DAY order at the session's end).

        Raises:
            OrderStateError: the order is not ACCEPTED or PARTIALLY_FILLED.
        """
        return self._move(OrderStatus.EXPIRED, ts_ns=ts_ns, reason=reason)

    def fill(self, *, quantity: Decimal, price: Decimal, ts_ns: int) -> OrderUpdate:
        """Record an execution of ``quantity`` units at ``price``.

        The status becomes FILLED when nothing remains, PARTIALLY_FILLED otherwise.

        Raises:
            OrderError: ``quantity`` or ``price`` is not a positive Decimal.
            OrderStateError: the order cannot fill in its status, or ``quantity``
                exceeds the remaining quantity.
        """
        _check_decimal("fill quantity", quantity)
        _check_decimal("fill price", price)
        remaining = self._remaining_quantity
        if quantity > remaining:
            raise OrderStateError(
                f"order {self.client_order_id!r}: fill of {quantity} exceeds the "
                f"remaining quantity {remaining}"
            )
        new = OrderStatus.FILLED if quantity == remaining else OrderStatus.PARTIALLY_FILLED
        try:
            check_transition(self._status, new)
        except OrderStateError as error:
            raise OrderStateError(f"order {self.client_order_id!r}: {error}") from None
        self._filled_quantity = LEDGER_CONTEXT.add(self._filled_quantity, quantity)
        self._remaining_quantity = LEDGER_CONTEXT.subtract(remaining, quantity)
        self._filled_notional = LEDGER_CONTEXT.add(
            self._filled_notional, LEDGER_CONTEXT.multiply(quantity, price)
        )
        self._status = new
        self._updated_ts_ns = ts_ns
        return self.snapshot()
