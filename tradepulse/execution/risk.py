"""Pre-trade risk checks: refuse an order before it reaches the venue, and say why.

:class:`PreTradeRisk` checks an order against :class:`RiskLimits` and the
portfolio; :func:`submit_checked` runs the check and either submits the order
to a :class:`~tradepulse.execution.matching.MatchingEngine` or records it there
as REJECTED with the reason. A reason names the limit, the offending value and
the limit's value, e.g. ``"max_position: projected position 150 units exceeds
the limit 100 units (current 100, open orders 0, this order 50)"``.

Checks run in this order and the first failure is reported:

1. ``max_order_quantity``: the order's quantity (units);
2. ``max_order_notional``: quantity * estimated price (quote currency);
3. ``max_position``: |projected position| (units);
4. ``max_position_notional``: |projected position| * estimated price;
5. cash / margin (``margin_rate``): after the order, gross exposure *
   ``margin_rate`` must not exceed equity.

The *projected position* assumes this order and every open order of the same
symbol and side fill completely. Checks 3 to 5 skip orders that only reduce the
position (toward zero, without crossing it): closing risk is never refused.

The *estimated price* is the one least favourable to the check: a buy's limit
price if it has one, otherwise ``max(reference, stop)``; a sell's highest of
reference, limit and stop. The cash / margin check values every position at the
portfolio's marks (this symbol at ``reference_price``), charges the estimated
commission, and books the projected fills at the estimated price; with
``margin_rate = 1`` and no shorts it is exactly "cash covers notional plus
commission".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO, to_decimal
from tradepulse.domain.orders import Order, OrderError, OrderRecord, OrderUpdate, Side
from tradepulse.domain.portfolio import Portfolio
from tradepulse.errors import ConfigError
from tradepulse.execution.matching import CommissionModel, MatchingEngine

__all__ = ["DEFAULT_MARGIN_RATE", "PreTradeRisk", "RiskLimits", "submit_checked"]

#: Default margin rate: positions fully funded (no leverage).
DEFAULT_MARGIN_RATE: Final = Decimal(1)

_add = LEDGER_CONTEXT.add
_subtract = LEDGER_CONTEXT.subtract
_multiply = LEDGER_CONTEXT.multiply


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """Pre-trade limits; ``None`` disables a check.

    ``max_order_quantity`` and ``max_position`` are units; ``max_order_notional``
    and ``max_position_notional`` quote currency; ``margin_rate`` the fraction
    of gross exposure that equity must cover (1: fully funded, 0.5: 2x leverage).

    Raises:
        ConfigError: a limit is not a positive finite Decimal.
    """

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_position_notional: Decimal | None = None
    margin_rate: Decimal | None = DEFAULT_MARGIN_RATE

    def __post_init__(self) -> None:
        for name in (
            "max_order_quantity",
            "max_order_notional",
            "max_position",
            "max_position_notional",
            "margin_rate",
        ):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, Decimal) or not value.is_finite() or value <= 0
            ):
                raise ConfigError(
                    f"{name} must be a positive finite Decimal or None, got {value!r}"
                )


def _plain(value: Decimal | None) -> str:
    """Return ``value`` without trailing zeros, in positional notation (for reasons)."""
    if value is None:
        return "None"
    return format(value.normalize(), "f")


def _estimated_price(order: Order, reference: Decimal) -> Decimal:
    if order.side is Side.BUY:
        if order.limit_price is not None:
            return order.limit_price
        return reference if order.stop_price is None else max(reference, order.stop_price)
    prices = [price for price in (order.limit_price, order.stop_price) if price is not None]
    return max([reference, *prices])


class PreTradeRisk:
    """Check orders against :class:`RiskLimits` and a portfolio.

    ``commission`` (optional) estimates the commission charged by the cash /
    margin check.

    Raises:
        ConfigError: ``limits`` is not a RiskLimits or ``commission`` lacks its method.
    """

    __slots__ = ("_commission", "_limits")

    def __init__(self, limits: RiskLimits, *, commission: CommissionModel | None = None) -> None:
        if not isinstance(limits, RiskLimits):
            raise ConfigError(f"limits must be a RiskLimits, got {limits!r}")
        if commission is not None and not isinstance(commission, CommissionModel):
            raise ConfigError(f"commission must implement CommissionModel, got {commission!r}")
        self._limits = limits
        self._commission = commission

    def __repr__(self) -> str:
        return f"PreTradeRisk({self._limits!r}, commission={self._commission!r})"

    @property
    def limits(self) -> RiskLimits:
        """Return the limits checked."""
        return self._limits

    def check(
        self,
        order: Order,
        *,
        portfolio: Portfolio,
        reference_price: Decimal,
        open_orders: Iterable[OrderRecord] = (),
        open_quantity: Decimal | None = None,
    ) -> str | None:
        """Return why ``order`` must be rejected, or ``None`` if it passes every check.

        ``reference_price`` is the latest price of the order's symbol (quote
        currency per unit, e.g. the last close); ``open_orders`` are the orders
        still working (only those of the same symbol and side count). A caller
        that keeps the unfilled units of its working orders per symbol and side
        passes that sum for the order's symbol and side as ``open_quantity``
        instead (units; ``open_orders`` is then not read): the check then costs
        the same however many orders are working, and decides exactly as with
        the orders themselves.

        Raises:
            OrderError: ``reference_price`` is not a positive Decimal,
                ``open_quantity`` is not a finite Decimal >= 0, or another open
                position has no mark in ``portfolio``.
        """
        if (
            not isinstance(reference_price, Decimal)
            or not reference_price.is_finite()
            or reference_price <= 0
        ):
            raise OrderError(f"reference_price must be a positive Decimal, got {reference_price!r}")
        if open_quantity is not None and (
            not isinstance(open_quantity, Decimal)
            or not open_quantity.is_finite()
            or open_quantity < 0
        ):
            raise OrderError(f"open_quantity must be a finite Decimal >= 0, got {open_quantity!r}")
        limits = self._limits
        quantity = order.quantity
        price = _estimated_price(order, reference_price)
        notional = _multiply(quantity, price)
        if limits.max_order_quantity is not None and quantity > limits.max_order_quantity:
            return (
                f"max_order_quantity: order quantity {_plain(quantity)} units exceeds the limit "
                f"{_plain(limits.max_order_quantity)} units"
            )
        if limits.max_order_notional is not None and notional > limits.max_order_notional:
            return (
                f"max_order_notional: order notional {_plain(notional)} "
                f"({_plain(quantity)} units at {_plain(price)}) "
                f"exceeds the limit {_plain(limits.max_order_notional)}"
            )
        current = portfolio.position(order.symbol).quantity
        pending = ZERO if open_quantity is None else open_quantity
        if open_quantity is None:
            for record in open_orders:
                if record.order.symbol == order.symbol and record.order.side is order.side:
                    pending = _add(pending, record.remaining_quantity)
        added = _add(pending, quantity)
        signed_added = added if order.side is Side.BUY else added.copy_negate()
        projected = _add(current, signed_added)
        flips = (projected > 0 > current) or (projected < 0 < current)
        if not flips and projected.copy_abs() <= current.copy_abs():
            return None  # only reduces the position: never refused
        size = projected.copy_abs()
        if limits.max_position is not None and size > limits.max_position:
            return (
                f"max_position: projected position {_plain(projected)} units exceeds the limit "
                f"{_plain(limits.max_position)} units (current {_plain(current)}, "
                f"open orders {_plain(pending)}, "
                f"this order {_plain(quantity)})"
            )
        position_notional = _multiply(size, price)
        if (
            limits.max_position_notional is not None
            and position_notional > limits.max_position_notional
        ):
            return (
                f"max_position_notional: projected position notional {_plain(position_notional)} "
                f"({_plain(projected)} units at {_plain(price)}) "
                f"exceeds the limit {_plain(limits.max_position_notional)}"
            )
        if limits.margin_rate is not None:
            return self._margin_reason(
                order=order,
                rate=limits.margin_rate,
                portfolio=portfolio,
                reference_price=reference_price,
                price=price,
                signed_added=signed_added,
                projected=projected,
            )
        return None

    def _margin_reason(
        self,
        *,
        order: Order,
        rate: Decimal,
        portfolio: Portfolio,
        reference_price: Decimal,
        price: Decimal,
        signed_added: Decimal,
        projected: Decimal,
    ) -> str | None:
        commission = ZERO
        if self._commission is not None:
            estimate = self._commission.commission(
                quantity=float(signed_added.copy_abs()), price=float(price)
            )
            commission = to_decimal(estimate, name="commission estimate")
        marks = dict(portfolio.marks)
        marks[order.symbol] = reference_price
        others_value = ZERO
        others_gross = ZERO
        for symbol, position in portfolio.positions.items():
            if symbol != order.symbol and position.quantity != 0:
                if symbol not in marks:
                    raise OrderError(f"no mark price for the open position in {symbol!r}")
                value = position.market_value(marks[symbol])
                others_value = _add(others_value, value)
                others_gross = _add(others_gross, value.copy_abs())
        cash = _subtract(_subtract(portfolio.cash, _multiply(signed_added, price)), commission)
        own_value = _multiply(projected, reference_price)
        equity = _add(_add(cash, others_value), own_value)
        gross = _add(others_gross, own_value.copy_abs())
        required = _multiply(gross, rate)
        if required > equity:
            return (
                f"insufficient cash/margin: post-trade requirement {_plain(required)} "
                f"(gross exposure {_plain(gross)} * margin_rate {_plain(rate)}) "
                f"exceeds post-trade equity "
                f"{_plain(equity)}"
            )
        return None


def submit_checked(
    engine: MatchingEngine,
    order: Order,
    *,
    risk: PreTradeRisk,
    portfolio: Portfolio,
    reference_price: Decimal,
    ts_ns: int,
) -> OrderUpdate:
    """Check ``order`` with ``risk``; submit it to ``engine`` or record it there as REJECTED.

    The engine's open orders count toward the projected position. Return the
    order's first update (REJECTED with the risk reason, or whatever
    :meth:`MatchingEngine.submit` returns).

    Raises:
        OrderError: as :meth:`PreTradeRisk.check` and :meth:`MatchingEngine.submit`.
    """
    reason = risk.check(
        order,
        portfolio=portfolio,
        reference_price=reference_price,
        open_orders=engine.open_orders,
    )
    if reason is not None:
        return engine.reject(order, ts_ns=ts_ns, reason=reason)
    return engine.submit(order, ts_ns=ts_ns)
