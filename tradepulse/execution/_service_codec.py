"""Private helpers of the execution service: identifiers, bars, and journal payload codecs.

Journal payloads are JSON objects; decimals travel as strings (``str`` of a
:class:`~decimal.Decimal` reads back to the same coefficient and exponent),
bar prices as floats (JSON writes a float's shortest round-trip form, so a
replayed bar is bit for bit the bar that was processed).
"""

from __future__ import annotations

import math
import operator
from decimal import Decimal
from typing import Any, Final, NamedTuple

from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import (
    Liquidity,
    Order,
    OrderError,
    OrderType,
    Side,
    TimeInForce,
)
from tradepulse.execution.matching import BarLike
from tradepulse.execution.service_views import FillView, InvalidBarError, OrderRequest

__all__: list[str] = []

#: Longest account, strategy or symbol name, in characters.
MAX_NAME_LENGTH: Final = 64
#: Longest idempotency key, in characters.
MAX_KEY_LENGTH: Final = 128

#: What makes two requests "the same" for idempotency (Decimals compare by value).
Fingerprint = tuple[object, ...]


class ServiceBar(NamedTuple):
    """A validated bar (satisfies :class:`~tradepulse.execution.matching.BarLike`)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


def check_identifier(name: str, value: object, *, max_length: int = MAX_NAME_LENGTH) -> str:
    """Return ``value`` if it is 1 to ``max_length`` printable characters without spaces.

    Raises:
        OrderError: it is not (the message names ``name`` and the value).
    """
    if (
        not isinstance(value, str)
        or not value
        or len(value) > max_length
        or not value.isprintable()
        or " " in value
    ):
        raise OrderError(
            f"{name} must be 1 to {max_length} printable characters without spaces, got {value!r}"
        )
    return value


def order_id_of(number: int) -> str:
    """Return the server order id of the ``number``-th order (``"ord-000001"``)."""
    return f"ord-{number:06d}"


def order_number(order_id: object) -> int | None:
    """Return ``n`` for the server order id of the ``n``-th order (None for anything else)."""
    if not isinstance(order_id, str) or not order_id.startswith("ord-"):
        return None
    digits = order_id[4:]
    if not (digits.isascii() and digits.isdigit()) or order_id_of(int(digits)) != order_id:
        return None
    return int(digits)


def fill_id_of(number: int) -> str:
    """Return the server fill id of the ``number``-th fill (``"fill-000001"``)."""
    return f"fill-{number:06d}"


def order_of(request: OrderRequest, order_id: str) -> Order:
    """Return the domain order for ``request`` under the server id ``order_id``.

    Raises:
        OrderError: a field has the wrong type or value, or the client order id is invalid.
    """
    if not isinstance(request, OrderRequest):
        raise OrderError(f"request must be an OrderRequest, got {request!r}")
    if request.client_order_id is not None:
        check_identifier("client_order_id", request.client_order_id)
    return Order(
        client_order_id=order_id,
        symbol=request.symbol,
        side=request.side,
        quantity=request.quantity,
        order_type=request.order_type,
        limit_price=request.limit_price,
        stop_price=request.stop_price,
        time_in_force=request.time_in_force,
    )


def fingerprint_of(request: OrderRequest, strategy: str | None) -> Fingerprint:
    """Return what an idempotent retry of a submission must repeat."""
    return (
        "submit",
        request.symbol,
        request.side,
        request.quantity,
        request.order_type,
        request.limit_price,
        request.stop_price,
        request.time_in_force,
        request.client_order_id,
        strategy,
    )


def replace_fingerprint(
    order_id: str,
    quantity: Decimal | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
) -> Fingerprint:
    """Return what an idempotent retry of a replace must repeat."""
    return ("replace", order_id, quantity, limit_price, stop_price)


def decimal_text(value: Decimal | None) -> str | None:
    """Return ``value`` as exact text (None stays None)."""
    return None if value is None else str(value)


def decimal_from(value: object) -> Decimal | None:
    """Return the decimal written by :func:`decimal_text` (None stays None).

    Raises:
        ValueError: ``value`` is neither None nor a string.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {value!r}")
    return Decimal(value)


def encode_request(request: OrderRequest) -> dict[str, Any]:
    """Return ``request`` as a JSON object."""
    return {
        "symbol": request.symbol,
        "side": request.side.value,
        "quantity": str(request.quantity),
        "order_type": request.order_type.value,
        "limit_price": decimal_text(request.limit_price),
        "stop_price": decimal_text(request.stop_price),
        "time_in_force": request.time_in_force.value,
        "client_order_id": request.client_order_id,
    }


def decode_request(data: dict[str, Any]) -> OrderRequest:
    """Return the request written by :func:`encode_request`.

    Raises:
        KeyError, ValueError: the object is not such a request.
    """
    quantity = decimal_from(data["quantity"])
    if quantity is None:
        raise ValueError("quantity is missing")
    return OrderRequest(
        symbol=str(data["symbol"]),
        side=Side(data["side"]),
        quantity=quantity,
        order_type=OrderType(data["order_type"]),
        limit_price=decimal_from(data["limit_price"]),
        stop_price=decimal_from(data["stop_price"]),
        time_in_force=TimeInForce(data["time_in_force"]),
        client_order_id=data["client_order_id"],
    )


def encode_instrument(instrument: Instrument | None) -> dict[str, str] | None:
    """Return an instrument's increments as a JSON object (None stays None)."""
    if instrument is None:
        return None
    return {
        "price_increment": str(instrument.price_increment),
        "quantity_increment": str(instrument.quantity_increment),
        "cash_increment": str(instrument.cash_increment),
    }


def encode_fill(fill: FillView) -> dict[str, Any]:
    """Return a fill as a JSON object (the ``fill`` event's payload)."""
    return {
        "fill_id": fill.fill_id,
        "order_id": fill.order_id,
        "account": fill.account,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "quantity": str(fill.quantity),
        "price": str(fill.price),
        "commission": str(fill.commission),
        "liquidity": fill.liquidity.value,
        "ts_ns": fill.ts_ns,
    }


def decode_fill(data: dict[str, Any], *, strategy: str | None) -> FillView:
    """Return the fill written by :func:`encode_fill` (of an order of ``strategy``).

    Raises:
        KeyError, ValueError: the object is not such a fill.
    """
    quantity, price, commission = (
        decimal_from(data[name]) for name in ("quantity", "price", "commission")
    )
    if quantity is None or price is None or commission is None:
        raise ValueError(f"fill {data.get('fill_id')!r} lacks its quantity, price or commission")
    return FillView(
        fill_id=str(data["fill_id"]),
        order_id=str(data["order_id"]),
        account=str(data["account"]),
        strategy=strategy,
        symbol=str(data["symbol"]),
        side=Side(data["side"]),
        quantity=quantity,
        price=price,
        commission=commission,
        liquidity=Liquidity(data["liquidity"]),
        ts_ns=int(data["ts_ns"]),
    )


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            number = float(value)  # type: ignore[arg-type]  # numpy scalars and the like
        except (TypeError, ValueError):
            raise InvalidBarError(f"bar {name} must be a number, got {value!r}") from None
    else:
        number = float(value)
    return number


def validate_bar(symbol: str, bar: BarLike) -> ServiceBar:
    """Return ``bar`` as a :class:`ServiceBar` after checking the bar contract.

    Raises:
        InvalidBarError: ``ts`` is not an integer, a price is not finite and positive,
            ``low <= open, close <= high`` fails, or the volume is negative.
    """
    try:
        ts = operator.index(bar.ts)
    except (TypeError, AttributeError):
        raise InvalidBarError(f"bar ts for {symbol!r} must be integer nanoseconds") from None
    if isinstance(bar.ts, bool):
        raise InvalidBarError(f"bar ts for {symbol!r} must be integer nanoseconds, got {bar.ts!r}")
    open_, high, low, close, volume = (
        _real(name, getattr(bar, name)) for name in ("open", "high", "low", "close", "volume")
    )
    if not (
        0.0 < low <= min(open_, close)
        and max(open_, close) <= high < math.inf
        and 0.0 <= volume < math.inf
    ):
        raise InvalidBarError(
            f"bar for {symbol!r} at ts {ts} breaks the bar contract: open={open_}, "
            f"high={high}, low={low}, close={close}, volume={volume}"
        )
    return ServiceBar(ts, open_, high, low, close, volume)


def encode_bar(symbol: str, bar: ServiceBar) -> dict[str, Any]:
    """Return the ``bar`` event's payload."""
    return {
        "symbol": symbol,
        "ts": bar.ts,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
    }


def decode_bar(data: dict[str, Any]) -> tuple[str, ServiceBar]:
    """Return the symbol and bar of a ``bar`` event.

    Raises:
        KeyError, InvalidBarError: the payload is not such a bar.
    """
    symbol = str(data["symbol"])
    bar = ServiceBar(
        int(data["ts"]),
        float(data["open"]),
        float(data["high"]),
        float(data["low"]),
        float(data["close"]),
        float(data["volume"]),
    )
    return symbol, validate_bar(symbol, bar)
