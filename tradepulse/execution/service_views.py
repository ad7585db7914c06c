"""What the execution service takes and returns: requests, read-only views, reasons, errors.

Every view is a frozen dataclass of plain values (``str``, ``int``,
:class:`~decimal.Decimal`, the domain enums), so an HTTP layer can serialise it
field by field. Quantities are in units of the instrument, prices in quote
currency per unit, money in quote currency; ``*_ns`` fields are UTC
nanoseconds.

:class:`Reason` lists every machine-readable ``reason`` an order can carry:
why it was rejected, or why it ended without filling completely.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tradepulse.domain.orders import Liquidity, OrderStatus, OrderType, Side, TimeInForce
from tradepulse.errors import DataError, TradePulseError

__all__ = [
    "AccountView",
    "FillView",
    "InvalidBarError",
    "OrderConflictError",
    "OrderNotFoundError",
    "OrderRequest",
    "OrderView",
    "PositionView",
    "Reason",
    "SubmitOutcome",
]


class OrderNotFoundError(TradePulseError, LookupError):
    """No order has that id in that account (an HTTP layer answers 404)."""


class OrderConflictError(TradePulseError, RuntimeError):
    """The request conflicts with the order's state or with an earlier request (HTTP 409).

    Raised for a cancel or replace of an order that is already filled,
    cancelled, rejected or expired, and for an idempotency key (or client order
    id) reused with a different request.
    """


class InvalidBarError(DataError, ValueError):
    """A bar handed to the service is malformed or for a symbol it refuses (HTTP 422)."""


class Reason(StrEnum):
    """Machine-readable reasons on orders (``OrderView.reason``).

    Rejections: ``max_order_quantity``, ``max_order_notional``,
    ``max_position``, ``max_position_notional``, ``insufficient_margin`` (the
    pre-trade risk checks), ``max_open_orders``, ``rate_limit_account``,
    ``rate_limit_strategy`` (throttles), ``kill_switch``, ``unknown_symbol``,
    ``off_grid`` (quantity or price not a multiple of the lot or tick size),
    ``no_market_price`` (a notional or margin limit needs a price and the
    symbol has had no bar yet), ``venue`` (the paper exchange refused it).

    Ends without a complete fill: ``cancel_requested`` (the client cancelled),
    ``replaced`` (cancelled by a replace), ``kill_switch`` (cancelled when the
    kill switch was engaged), ``ioc_unfilled`` / ``fok_unfilled`` (the
    remainder of an immediate-or-cancel / fill-or-kill order), ``day_expired``
    (a DAY order at the end of its UTC day).
    """

    MAX_ORDER_QUANTITY = "max_order_quantity"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION = "max_position"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    MAX_OPEN_ORDERS = "max_open_orders"
    RATE_LIMIT_ACCOUNT = "rate_limit_account"
    RATE_LIMIT_STRATEGY = "rate_limit_strategy"
    KILL_SWITCH = "kill_switch"
    UNKNOWN_SYMBOL = "unknown_symbol"
    OFF_GRID = "off_grid"
    NO_MARKET_PRICE = "no_market_price"
    VENUE = "venue"
    CANCEL_REQUESTED = "cancel_requested"
    REPLACED = "replaced"
    IOC_UNFILLED = "ioc_unfilled"
    FOK_UNFILLED = "fok_unfilled"
    DAY_EXPIRED = "day_expired"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """An order a client asks for (typed values; validated when submitted).

    ``quantity`` is positive units (``side`` gives the direction). A limit order
    needs ``limit_price``, a stop order ``stop_price``, a stop-limit order both,
    a market order neither. ``client_order_id`` (optional, 1 to 64 printable
    characters without spaces) is the client's own tag; it doubles as an
    idempotency key within the account.
    """

    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderView:
    """An order as the service sees it now.

    ``order_id`` is server-assigned (``"ord-000001"``, ...). ``reason`` is a
    :class:`Reason` code when the order was rejected or ended unfilled, with
    ``reason_detail`` the human explanation. ``replaces`` / ``replaced_by`` link
    a cancel/replace chain. ``created_ns`` / ``updated_ns`` are the service
    clock at submission and at the last change.
    """

    order_id: str
    client_order_id: str | None
    account: str
    strategy: str | None
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal
    remaining_quantity: Decimal
    average_fill_price: Decimal | None
    reason: str | None
    reason_detail: str | None
    replaces: str | None
    replaced_by: str | None
    created_ns: int
    updated_ns: int

    @property
    def is_open(self) -> bool:
        """Return whether the order can still fill or be cancelled."""
        return not self.status.is_terminal


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOutcome:
    """The order a submission produced; ``created`` is False for an idempotent retry."""

    order: OrderView
    created: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class FillView:
    """One execution: ``quantity`` units at ``price``, ``commission`` charged.

    ``fill_id`` is server-assigned (``"fill-000001"``, ...); ``ts_ns`` is the
    stamp of the bar it happened on; ``liquidity`` says whether it took
    liquidity (open, trigger) or rested (a touched limit).
    """

    fill_id: str
    order_id: str
    account: str
    strategy: str | None
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    liquidity: Liquidity
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionView:
    """An account's position in one symbol, marked at ``last_price``.

    ``quantity`` is signed units (negative: short); ``average_price`` the cost
    of the open lots per unit (None when flat); ``last_price`` the latest bar
    close or fill price; ``realized_pnl`` is before commission,
    ``commission`` the total paid in this symbol.
    """

    account: str
    symbol: str
    quantity: Decimal
    average_price: Decimal | None
    last_price: Decimal | None
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    commission: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountView:
    """An account's balances, marked at each symbol's latest price.

    ``equity = cash + market value of the positions``, which equals
    ``initial_cash + realized_pnl - commission + unrealized_pnl``;
    ``gross_exposure`` is the sum of |position value|; ``kill_switch`` is True
    when new orders are blocked (the account's switch or the global one).
    """

    account: str
    initial_cash: Decimal
    cash: Decimal
    equity: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    commission: Decimal
    gross_exposure: Decimal
    open_orders: int
    kill_switch: bool
