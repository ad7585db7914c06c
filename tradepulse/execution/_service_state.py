"""Private records of the execution service: orders, accounts, the commission model, helpers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import Order, OrderRecord, Side
from tradepulse.execution import _service_codec as codec
from tradepulse.execution.journal import JournalEvent, encode_payload
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import FillView, Reason

__all__ = [
    "BEFORE_ANY_BAR",
    "CANCEL_DETAIL",
    "UNBOUND_REASONS",
    "AccountState",
    "NotionalRateCommission",
    "OrderState",
    "ledger_mismatches",
    "normalised",
    "off_grid",
    "update_event",
]

_PRODUCT: Final = Context(prec=60, rounding=ROUND_HALF_EVEN)
#: Engine time of a request before the symbol's first bar: earlier than any bar.
BEFORE_ANY_BAR: Final = -(2**63)
#: Why an order cancelled by its client was cancelled (its ``reason_detail``).
CANCEL_DETAIL: Final = "cancelled on request"
#: Refusals that bind no idempotency key (the request was not executed).
UNBOUND_REASONS: Final = frozenset(
    {Reason.RATE_LIMIT_ACCOUNT.value, Reason.RATE_LIMIT_STRATEGY.value}
)


class NotionalRateCommission:
    """Commission of ``rate`` times the traded notional (a matching-engine commission model).

    The product is taken in decimal from the fill's exact quantity and price;
    the engine rounds it to the instrument's cash increment (ties to even).
    """

    __slots__ = ("rate",)

    def __init__(self, rate: Decimal) -> None:
        self.rate = rate

    def __repr__(self) -> str:
        return f"NotionalRateCommission({self.rate})"

    def commission(self, *, quantity: float, price: float) -> float:
        """Return ``rate * |quantity| * price`` in quote currency."""
        notional = _PRODUCT.multiply(Decimal(repr(abs(quantity))), Decimal(repr(price)))
        return float(_PRODUCT.multiply(self.rate, notional))


class OrderState:
    """The service's record of one order (the engine's OrderRecord plus service fields)."""

    __slots__ = (
        "account",
        "client_order_id",
        "counted",
        "created_ns",
        "ended",
        "fills",
        "fingerprint",
        "keys",
        "order_id",
        "reason",
        "reason_detail",
        "record",
        "replaced_by",
        "replaces",
        "strategy",
        "updated_ns",
    )

    def __init__(
        self,
        *,
        order_id: str,
        account: str,
        strategy: str | None,
        client_order_id: str | None,
        fingerprint: codec.Fingerprint,
        record: OrderRecord,
        ts_ns: int,
        replaces: str | None = None,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.strategy = strategy
        self.client_order_id = client_order_id
        self.fingerprint = fingerprint
        self.record = record
        self.created_ns = ts_ns
        self.updated_ns = ts_ns
        self.reason: str | None = None
        self.reason_detail: str | None = None
        self.replaces = replaces
        self.replaced_by: str | None = None
        self.fills: list[FillView] = []
        # The unfilled units this order adds to its account's open quantity (None: not open).
        self.counted: Decimal | None = None
        self.keys: tuple[str, ...] = ()  # the idempotency keys bound to this order
        self.ended = False  # counted among the ended orders (see ServiceCore._refresh_open)


class AccountState:
    """One account: its portfolio, orders, idempotency keys and kill switch.

    ``open_quantity`` and ``open_counts`` aggregate the working orders per
    (symbol, side): their unfilled units and their number, kept up to date at
    every order state change so a pre-trade check never scans the open orders.
    ``order_ids``, ``keys`` and ``fills`` hold the orders kept in memory;
    ``evicted`` counts those only the journal holds any more.
    """

    __slots__ = (
        "evicted",
        "fills",
        "keys",
        "kill_reason",
        "kill_switch",
        "name",
        "open_counts",
        "open_ids",
        "open_quantity",
        "order_ids",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.order_ids: dict[str, None] = {}  # insertion-ordered set: submission order
        self.open_ids: dict[str, None] = {}  # insertion-ordered set: submission order
        self.open_quantity: dict[tuple[str, Side], Decimal] = {}
        self.open_counts: dict[tuple[str, Side], int] = {}
        self.keys: dict[str, str] = {}  # idempotency key / client order id -> order id
        self.fills: dict[str, FillView] = {}  # by fill id, in fill order
        self.evicted = 0
        self.kill_switch = False
        self.kill_reason = ""


def normalised(payload: Mapping[str, Any]) -> Any:
    """Return ``payload`` as it reads back from the journal."""
    return json.loads(encode_payload(payload))


def update_event(state: OrderState, ts_ns: int) -> JournalEvent:
    """Return the ``order_update`` event of a venue-side status change."""
    return JournalEvent(
        "order_update",
        ts_ns,
        {
            "order_id": state.order_id,
            "status": state.record.status.value,
            "reason": state.reason,
            "reason_detail": state.reason_detail,
        },
    )


def off_grid(order: Order, instrument: Instrument) -> str | None:
    """Return why ``order`` is off the instrument's lot or tick grid (None if it is on it)."""
    if not instrument.is_valid_quantity(order.quantity):
        return (
            f"off_grid: quantity {order.quantity} is not a multiple of the lot size "
            f"{instrument.quantity_increment} of {order.symbol!r}"
        )
    for name, price in (("limit_price", order.limit_price), ("stop_price", order.stop_price)):
        if price is not None and not instrument.is_valid_price(price):
            return (
                f"off_grid: {name} {price} is not a multiple of the tick size "
                f"{instrument.price_increment} of {order.symbol!r}"
            )
    return None


def ledger_mismatches(journaled: Mapping[str, Any], config: ServiceConfig) -> list[str]:
    """Return the ledger settings in which a journaled config differs from ``config``.

    Initial cash, commission rate and participation cap decide the fills a
    replay derives, so a journal must be replayed with the values it was written with.
    """
    return [
        f"{key}={theirs} (the configuration says {ours})"
        for key, theirs, ours in (
            ("initial_cash", Decimal(journaled["initial_cash"]), config.initial_cash),
            ("commission_rate", Decimal(journaled["commission_rate"]), config.commission_rate),
            ("max_participation", journaled["max_participation"], config.max_participation),
        )
        if theirs != ours
    ]
