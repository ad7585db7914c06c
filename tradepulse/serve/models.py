"""Request and response bodies of the HTTP API (pydantic v2), and their number policy.

Requests are strict-ish: unknown fields are refused, enums must be one of
their lowercase values, booleans must be JSON ``true``/``false``. Quantities
and prices (:data:`Amount`) may be JSON numbers or decimal strings; they must
be finite, greater than 0, at most :data:`MAX_AMOUNT`, with at most
:data:`MAX_SIGNIFICANT_DIGITS` significant digits and
:data:`MAX_DECIMAL_PLACES` decimal places. A JSON number becomes the decimal it
prints as (``0.1`` is ``Decimal("0.1")``). Responses carry every decimal as a
string in positional notation, so no digit is lost to a float.

A bar's ``ts`` is an integer of nanoseconds since the Unix epoch (UTC) or an
ISO-8601 string with a UTC offset (``2024-01-02T14:30:00Z``; up to nine
fractional digits) or a plain date (midnight UTC).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tradepulse.domain.orders import (
    MAX_CLIENT_ORDER_ID_LENGTH,
    Liquidity,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from tradepulse.execution.service_views import Reason

__all__ = [
    "MAX_AMOUNT",
    "MAX_BARS_PER_REQUEST",
    "MAX_BATCH_ORDERS",
    "MAX_DECIMAL_PLACES",
    "MAX_PRICE",
    "MAX_SIGNIFICANT_DIGITS",
    "MAX_VOLUME",
    "RETRY_AFTER_SECONDS",
    "TOO_LARGE_RESPONSE",
    "UNAVAILABLE_RESPONSE",
    "AccountOut",
    "Amount",
    "BarIn",
    "BarsOut",
    "BatchItemOut",
    "BatchOrdersIn",
    "BatchOrdersOut",
    "ErrorDetail",
    "ErrorInfo",
    "ErrorOut",
    "FillList",
    "FillOut",
    "HealthOut",
    "KillSwitchIn",
    "KillSwitchOut",
    "KillSwitchState",
    "OrderIn",
    "OrderList",
    "OrderOut",
    "PositionList",
    "PositionOut",
    "ReadyOut",
    "ReplaceIn",
    "parse_amount",
    "parse_timestamp_ns",
]

#: Largest accepted quantity or price (units, or quote currency per unit).
MAX_AMOUNT: Final = Decimal("1e15")
#: Most significant digits accepted in a quantity or price.
MAX_SIGNIFICANT_DIGITS: Final = 18
#: Most digits after the decimal point accepted in a quantity or price.
MAX_DECIMAL_PLACES: Final = 12
#: Largest accepted bar price, quote currency per unit.
MAX_PRICE: Final = 1e15
#: Largest accepted bar volume, units.
MAX_VOLUME: Final = 1e18
#: Most orders in one ``POST /orders/batch``.
MAX_BATCH_ORDERS: Final = 100
#: Most bars in one ``POST /market/bars``.
MAX_BARS_PER_REQUEST: Final = 1000

_MAX_NUMBER_TEXT: Final = 64
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?")
_NON_FINITE_TEXT: Final = re.compile(r"[+-]?(?:nan|snan|inf|infinity)", re.IGNORECASE)
_ISO_TS: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})"
    r"(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2}))?"
)
_MAX_TS_NS: Final = 2**63 - 1
_NS_PER_SECOND: Final = 1_000_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Symbols: letters, digits and the punctuation tickers use (BRK.B, BTC-USD, ES=F, ^GSPC).
_SYMBOL_PATTERN: Final = r"^[A-Za-z0-9^][A-Za-z0-9._:/^=+-]{0,31}$"
# Client order ids follow the domain rule, restricted to printable ASCII.
_CLIENT_ID_PATTERN: Final = rf"^[!-~]{{1,{MAX_CLIENT_ORDER_ID_LENGTH}}}$"
_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_AMOUNT_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]{1,16}(\.[0-9]{1,12})?$"},
        {"type": "number", "exclusiveMinimum": 0, "maximum": float(MAX_AMOUNT)},
    ],
    "description": (
        f"A positive decimal (JSON number or string), at most {MAX_AMOUNT:.0E}, "
        f"{MAX_SIGNIFICANT_DIGITS} significant digits and {MAX_DECIMAL_PLACES} decimal places."
    ),
    "examples": ["100.25", 10],
}
_TS_SCHEMA: Final[dict[str, Any]] = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": _MAX_TS_NS},
        {"type": "string", "format": "date-time"},
        {"type": "string", "format": "date"},
    ],
    "description": "Nanoseconds since the Unix epoch (UTC), or ISO-8601 with a UTC offset.",
    "examples": ["2024-01-02T14:30:00Z", 1704205800000000000],
}


def parse_amount(value: object) -> Decimal:
    """Return ``value`` (a JSON number or decimal string) as a checked positive Decimal.

    Raises:
        ValueError: not a number, not finite, not > 0, above :data:`MAX_AMOUNT`,
            or more digits than :data:`MAX_SIGNIFICANT_DIGITS` /
            :data:`MAX_DECIMAL_PLACES` allow.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a decimal number (JSON number or string such as '100.5')")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be finite (NaN and Infinity are not numbers here)")
        if abs(value) > float(MAX_AMOUNT):
            raise ValueError(f"must be at most {MAX_AMOUNT:.0E}")
        number = Decimal(repr(value))
    elif isinstance(value, int):
        if abs(value) > MAX_AMOUNT:
            raise ValueError(f"must be at most {MAX_AMOUNT:.0E}")
        number = Decimal(value)
    elif isinstance(value, str):
        text = value
        if len(text) > _MAX_NUMBER_TEXT:
            raise ValueError(f"must be at most {_MAX_NUMBER_TEXT} characters")
        if _NON_FINITE_TEXT.fullmatch(text):
            raise ValueError("must be finite (NaN and Infinity are not numbers here)")
        if not _DECIMAL_TEXT.fullmatch(text):
            raise ValueError("must be a decimal number such as '100.5'")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            raise ValueError("must be a decimal number such as '100.5'") from None
    else:
        number = value
    if not number.is_finite():
        raise ValueError("must be finite (NaN and Infinity are not numbers here)")
    if number <= 0:
        raise ValueError("must be greater than 0")
    if number > MAX_AMOUNT:
        raise ValueError(f"must be at most {MAX_AMOUNT:.0E}")
    _, digits, exponent = number.as_tuple()
    exponent = cast(int, exponent)  # an int for every finite Decimal (checked above)
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if len(digits) - trailing > MAX_SIGNIFICANT_DIGITS:
        raise ValueError(f"must have at most {MAX_SIGNIFICANT_DIGITS} significant digits")
    if exponent + trailing < -MAX_DECIMAL_PLACES:
        raise ValueError(f"must have at most {MAX_DECIMAL_PLACES} decimal places")
    return number


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


def _id_text(value: object) -> object:
    # Ids may be ints in the service; the API always shows them as strings.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def parse_timestamp_ns(value: object) -> int:
    """Return a bar stamp (epoch nanoseconds or ISO-8601 text) as UTC nanoseconds.

    Raises:
        ValueError: not an integer or ISO-8601 text, naive (no UTC offset),
            an impossible date, or outside ``[1970, 2262]``.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("must be nanoseconds since the epoch (integer) or ISO-8601 text")
    if isinstance(value, int):
        ns = value
    else:
        match = _ISO_TS.fullmatch(value) if len(value) <= _MAX_NUMBER_TEXT else None
        if match is None:
            raise ValueError(
                "must be ISO-8601 with a UTC offset, e.g. '2024-01-02T14:30:00Z', "
                "or a date such as '2024-01-02'"
            )
        date, clock, fraction, offset = match.groups()
        if clock is None:
            clock, offset = "00:00:00", "+00:00"
        if offset in ("Z", "z"):
            offset = "+00:00"
        try:
            moment = datetime.fromisoformat(f"{date}T{clock}{offset}")
        except ValueError:
            raise ValueError(f"is not a valid date and time: {value!r}") from None
        delta = moment - _EPOCH
        seconds = delta.days * 86_400 + delta.seconds
        ns = seconds * _NS_PER_SECOND + int((fraction or "").ljust(9, "0"))
    if not 0 <= ns <= _MAX_TS_NS:
        raise ValueError("must be between 1970-01-01 and 2262-04-11 (UTC)")
    return ns


def _parse_price(value: object) -> float:
    return _parse_float(value, name="price", minimum_exclusive=True, maximum=MAX_PRICE)


def _parse_volume(value: object) -> float:
    return _parse_float(value, name="volume", minimum_exclusive=False, maximum=MAX_VOLUME)


def _parse_float(value: object, *, name: str, minimum_exclusive: bool, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a JSON number")
    if isinstance(value, int) and abs(value) > maximum:
        raise ValueError(f"{name} must be at most {maximum:.0e}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite (NaN and Infinity are not numbers here)")
    if number < 0 or (minimum_exclusive and number == 0):
        raise ValueError(f"{name} must be {'greater than' if minimum_exclusive else 'at least'} 0")
    if number > maximum:
        raise ValueError(f"{name} must be at most {maximum:.0e}")
    return number


#: A positive decimal quantity or price (see the module docstring for the policy).
Amount = Annotated[
    Decimal,
    PlainValidator(parse_amount),
    PlainSerializer(_decimal_text, return_type=str),
    WithJsonSchema(_AMOUNT_SCHEMA, mode="validation"),
]
_Price = Annotated[
    float,
    PlainValidator(_parse_price),
    WithJsonSchema(
        {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_PRICE}, mode="validation"
    ),
]
_Volume = Annotated[
    float,
    PlainValidator(_parse_volume),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_VOLUME}, mode="validation"),
]
_TimestampNs = Annotated[int, PlainValidator(parse_timestamp_ns), WithJsonSchema(_TS_SCHEMA)]
_DecimalText = Annotated[
    Decimal,
    PlainSerializer(_decimal_text, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["100.25"]}, mode="serialization"),
]
_IdText = Annotated[str, BeforeValidator(_id_text)]
_Symbol = Annotated[str, Field(pattern=_SYMBOL_PATTERN, examples=["AAPL"])]
_ClientOrderId = Annotated[str, Field(pattern=_CLIENT_ID_PATTERN)]
_Name = Annotated[str, Field(pattern=_NAME_PATTERN)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


# ----------------------------------------------------------------- requests


class OrderIn(_Request):
    """A new order: ``POST /orders`` (and each item of ``POST /orders/batch``).

    A limit order needs ``limit_price``, a stop order ``stop_price``, a
    stop-limit order both, and a market order neither.
    """

    symbol: _Symbol
    side: Side
    quantity: Amount
    order_type: OrderType = OrderType.MARKET
    limit_price: Amount | None = Field(default=None, validate_default=True)
    stop_price: Amount | None = Field(default=None, validate_default=True)
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: _ClientOrderId | None = None
    strategy: _Name | None = Field(
        default=None, description="Tag the order with a strategy (risk throttles per strategy)."
    )

    @field_validator("limit_price", "stop_price")
    @classmethod
    def _price_matches_type(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        order_type = info.data.get("order_type")
        if not isinstance(order_type, OrderType):
            return value  # order_type itself failed: its own error says so
        name = info.field_name
        needed = order_type in (
            (OrderType.LIMIT, OrderType.STOP_LIMIT)
            if name == "limit_price"
            else (OrderType.STOP, OrderType.STOP_LIMIT)
        )
        if needed and value is None:
            raise ValueError(f"a {order_type} order needs {name}")
        if not needed and value is not None:
            raise ValueError(f"a {order_type} order takes no {name}")
        return value


class BatchOrdersIn(_Request):
    """Several new orders in one request (``POST /orders/batch``)."""

    orders: list[OrderIn] = Field(min_length=1, max_length=MAX_BATCH_ORDERS)


class ReplaceIn(_Request):
    """Cancel/replace an open order (``PUT /orders/{id}``): the fields to change."""

    quantity: Amount | None = None
    limit_price: Amount | None = None
    stop_price: Amount | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> ReplaceIn:
        if self.quantity is None and self.limit_price is None and self.stop_price is None:
            raise ValueError("give at least one of quantity, limit_price, stop_price")
        return self


class KillSwitchIn(_Request):
    """Engage or release the kill switch (``POST /kill-switch``, admin scope)."""

    engaged: StrictBool
    reason: str = Field(default="", max_length=200, pattern=r"^[ -~]*$")
    all_accounts: StrictBool = Field(
        default=False, description="Act on every account, not only the key's own."
    )


class BarIn(_Request):
    """One OHLCV bar for ``POST /market/bars``.

    Prices in quote currency (> 0), volume in units (>= 0), and
    ``low <= min(open, close) <= max(open, close) <= high``.
    """

    symbol: _Symbol
    ts: _TimestampNs
    open: _Price
    high: _Price
    low: _Price
    close: _Price
    volume: _Volume = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> BarIn:
        if self.low > min(self.open, self.close) or max(self.open, self.close) > self.high:
            raise ValueError(
                "bar violates low <= min(open, close) <= max(open, close) <= high "
                f"(open={self.open}, high={self.high}, low={self.low}, close={self.close})"
            )
        return self


# ---------------------------------------------------------------- responses


class ErrorDetail(BaseModel):
    """One problem with a request: the field (dotted path, e.g. ``body.quantity``) and why."""

    field: str | None = None
    message: str
    type: str


class ErrorInfo(BaseModel):
    """A machine-readable ``code``, a human ``message`` and, for 422, the field ``details``."""

    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorInfo


#: OpenAPI ``responses`` entries of the routes that take a body: too large, not JSON.
TOO_LARGE_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    413: {"model": ErrorOut, "description": "Body larger than the server's limit"},
    415: {
        "model": ErrorOut,
        "description": "Body sent without 'Content-Type: application/json'",
    },
}

#: Seconds a 503 asks the client to wait before retrying (its ``Retry-After``).
RETRY_AFTER_SECONDS: Final = 1

#: OpenAPI ``responses`` entry of a 503 (every route that reaches the service).
UNAVAILABLE_RESPONSE: Final[dict[str, Any]] = {
    "model": ErrorOut,
    "description": "The service is unavailable; nothing was applied (retry after Retry-After)",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer"},
        }
    },
}


class OrderOut(_Response):
    """An order as the execution service sees it (decimals as strings).

    ``reason`` is a machine-readable code for rejected, cancelled or expired
    orders (``reason_detail`` explains it); ``replaces`` / ``replaced_by`` link
    the orders of a cancel/replace.
    """

    order_id: _IdText
    client_order_id: str | None
    account: str
    strategy: str | None
    symbol: str
    side: Side
    order_type: OrderType
    quantity: _DecimalText
    limit_price: _DecimalText | None
    stop_price: _DecimalText | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: _DecimalText
    remaining_quantity: _DecimalText
    average_fill_price: _DecimalText | None
    reason: Reason | None
    reason_detail: str | None
    replaces: _IdText | None
    replaced_by: _IdText | None
    created_ns: int
    updated_ns: int


class OrderList(BaseModel):
    """Orders of the key's account."""

    orders: list[OrderOut]


class BatchItemOut(BaseModel):
    """The outcome of one order of a batch: ``status`` is the HTTP status it would have had."""

    index: int
    status: int
    order: OrderOut | None = None
    error: ErrorInfo | None = None


class BatchOrdersOut(BaseModel):
    """One result per submitted order, in request order."""

    results: list[BatchItemOut]


class FillOut(_Response):
    """One execution (decimals as strings; ``ts_ns`` in UTC nanoseconds)."""

    fill_id: _IdText
    order_id: _IdText
    account: str
    strategy: str | None
    symbol: str
    side: Side
    quantity: _DecimalText
    price: _DecimalText
    commission: _DecimalText
    liquidity: Liquidity
    ts_ns: int


class FillList(BaseModel):
    """Fills of the key's account."""

    fills: list[FillOut]


class PositionOut(_Response):
    """A position (signed quantity: negative is short) marked at ``last_price``.

    ``average_price`` is None when flat; ``realized_pnl`` is before
    ``commission`` (the total paid in this symbol).
    """

    account: str
    symbol: str
    quantity: _DecimalText
    average_price: _DecimalText | None
    last_price: _DecimalText | None
    market_value: _DecimalText
    unrealized_pnl: _DecimalText
    realized_pnl: _DecimalText
    commission: _DecimalText


class PositionList(BaseModel):
    """Positions of the key's account."""

    positions: list[PositionOut]


class AccountOut(_Response):
    """The key's account: cash, equity, PnL, exposure, open orders and kill-switch state.

    ``equity = cash + market value of the positions``; ``kill_switch`` is true
    when new orders are blocked (the account's switch or the global one).
    """

    account: str
    initial_cash: _DecimalText
    cash: _DecimalText
    equity: _DecimalText
    realized_pnl: _DecimalText
    unrealized_pnl: _DecimalText
    commission: _DecimalText
    gross_exposure: _DecimalText
    open_orders: int
    kill_switch: bool


class KillSwitchOut(BaseModel):
    """The kill switch after the change, and the open orders it cancelled.

    ``engaged`` says whether new orders of ``account`` are still blocked, by
    its own switch or by the global one; ``all_accounts_engaged`` says whether
    the global one is on (then releasing one account's switch leaves
    ``engaged`` true).
    """

    engaged: bool
    account: str | None = Field(description="The account acted on; null for every account.")
    all_accounts_engaged: bool = Field(
        description="The global switch (every account) is engaged after the change."
    )
    cancelled: list[OrderOut]


class KillSwitchState(BaseModel):
    """Whether new orders of the key's account are blocked, and by which switch."""

    account: str
    engaged: bool
    all_accounts_engaged: bool


class BarsOut(BaseModel):
    """How many bars were applied and the fills they caused."""

    bars: int
    fills: list[FillOut]


class HealthOut(BaseModel):
    """Liveness: the server answers."""

    status: Literal["ok"] = "ok"
    version: str
    api: str


class ReadyOut(BaseModel):
    """Readiness: the execution backend answers."""

    status: Literal["ready"] = "ready"
