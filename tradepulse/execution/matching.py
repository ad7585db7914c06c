"""A deterministic bar-by-bar matching engine for one instrument.

The engine is a venue: orders are submitted, cancelled and replaced by client
order id between bars; :meth:`MatchingEngine.process_bar` then matches the
working orders against one OHLCV bar and returns the fills and status changes.
It reads no clock and draws no random numbers: the same bars and requests give
the same fills, bit for bit. The event-driven backtester and the live paper
exchange both drive it.

Intrabar rules (conservative: a bar's path between open and close is unknown,
so an order never gets a price the bar cannot be shown to have offered):

- **Eligibility.** An order submitted after bar ``t`` (at ``ts_ns``) may fill
  from bar ``t + 1`` on, later if the latency model says so
  (:mod:`tradepulse.execution.latency`); it is acknowledged (NEW → ACCEPTED) on
  submission, or on the first bar stamped at or after its acknowledgement time.
- **Market** orders fill at the open of their first eligible bar.
- **Limit** buys fill when ``low <= limit``: at the open if the bar opens at or
  through the limit (``open <= limit``; price improvement), otherwise at the
  limit. Sells mirror this (``high >= limit``, ``max(open, limit)``).
- **Stop** buys trigger when ``high >= stop`` and fill at ``max(open, stop)``
  (a gap through the stop fills at the open); sells trigger when
  ``low <= stop`` at ``min(open, stop)``. A triggered stop that did not fill
  completely continues as a market order at later opens.
- **Stop-limit** orders trigger like stops, then behave as limits: marketable
  at the trigger price if it is within the limit; if the stop triggered at the
  open and the price went on to touch the limit, at the limit; otherwise the
  order rests as a limit order from the next bar.
- **Liquidity.** ``max_participation`` caps the units filled on one bar, all
  orders together, at that fraction of the bar's volume (rounded down to the
  lot). Orders that take liquidity at the open or a trigger price walk the
  ``depth`` model's book (:mod:`tradepulse.execution.liquidity`), which may
  fill them partly and at a worse average price (never beyond their limit);
  resting limits touched by the bar's range fill at their limit price, bounded
  by the participation cap only. Orders are matched in arrival order (time
  priority); an unfilled remainder keeps working.
- **Time in force.** GTC works until filled or cancelled. IOC fills what it
  can on its first eligible bar and cancels the rest; FOK fills completely on
  that bar or is cancelled without a fill. For stop and stop-limit orders the
  "first bar" is the bar on which the stop triggers. DAY orders belong to the
  UTC date of the first bar on which they may fill and expire, unfilled
  remainder only, when a bar of a later UTC date arrives.
- **Cancel / replace** take effect immediately (between bars). A replace
  cancels the working order and submits a new one (new client order id, new
  latency, no time priority) for the cancelled order's unfilled remainder
  unless another quantity is given.
- **Costs.** An optional execution-price (slippage) model moves the price of
  every fill that takes liquidity, after the depth model, never beyond a
  limit; resting limit fills get their limit. An optional commission model
  prices every fill; the commission is rounded to the instrument's cash
  increment.

Prices, quantities and commissions on fills are exact decimals on the
instrument's grid (:mod:`tradepulse.domain.arithmetic`); bars stay floats.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Protocol, runtime_checkable

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO
from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import (
    Fill,
    Liquidity,
    Order,
    OrderError,
    OrderRecord,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
)
from tradepulse.errors import ConfigError, DataError
from tradepulse.execution.latency import FixedLatency, LatencyModel, OrderTiming
from tradepulse.execution.liquidity import DepthExecution, DepthModel

__all__ = [
    "NS_PER_DAY",
    "BarLike",
    "CommissionModel",
    "ExecutionPriceModel",
    "MatchResult",
    "MatchingEngine",
]

#: Nanoseconds in a UTC day (DAY orders expire when the UTC date changes).
NS_PER_DAY: Final = 86_400 * 1_000_000_000
# Relative tolerance for a depth model's average price beyond the worst price
# (float rounding in the model); anything larger is a broken model.
_WORST_PRICE_TOLERANCE: Final = 1e-9


@runtime_checkable
class CommissionModel(Protocol):
    """Price the commission of one fill (``tradepulse.costs`` models satisfy this)."""

    def commission(self, *, quantity: float, price: float) -> float:
        """Return the commission in quote currency for ``quantity`` units at ``price``."""
        ...


@runtime_checkable
class ExecutionPriceModel(Protocol):
    """Move a taker's price for spread, slippage or impact (``tradepulse.costs`` models fit)."""

    def execution_price(self, price: float, *, side: int, quantity: float, volume: float) -> float:
        """Return the execution price for ``quantity`` units at reference ``price``.

        ``side`` is +1 for a buy and -1 for a sell; ``volume`` is the bar's volume.
        """
        ...


class BarLike(Protocol):
    """One OHLCV bar: ``ts`` in UTC nanoseconds, prices in quote currency, volume in units.

    :class:`tradepulse.strategy.api.Bar` satisfies it.
    """

    @property
    def ts(self) -> int:
        """Return the bar's stamp (UTC nanoseconds)."""
        ...

    @property
    def open(self) -> float:
        """Return the opening price."""
        ...

    @property
    def high(self) -> float:
        """Return the highest price."""
        ...

    @property
    def low(self) -> float:
        """Return the lowest price."""
        ...

    @property
    def close(self) -> float:
        """Return the closing price."""
        ...

    @property
    def volume(self) -> float:
        """Return the traded volume (units)."""
        ...


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What one bar did: its fills and every order status change, in order."""

    fills: tuple[Fill, ...] = ()
    updates: tuple[OrderUpdate, ...] = ()


_NO_MATCH: Final = MatchResult()
# Members bound once: the matching loop compares them by identity.
_MARKET: Final = OrderType.MARKET
_LIMIT: Final = OrderType.LIMIT
_STOP: Final = OrderType.STOP
_DAY: Final = TimeInForce.DAY
_IOC: Final = TimeInForce.IOC
_FOK: Final = TimeInForce.FOK


class _BarBook:
    """Liquidity left on the bar being matched (created when an order first meets it)."""

    __slots__ = (
        "_instrument",
        "_open",
        "_open_decimal",
        "budget",
        "consumed_buy",
        "consumed_sell",
        "volume",
    )

    def __init__(
        self,
        instrument: Instrument,
        *,
        open_: float,
        volume: float,
        max_participation: float | None,
    ) -> None:
        self._instrument = instrument
        self._open = open_
        self._open_decimal: Decimal | None = None
        self.volume = volume
        # Units still allowed on this bar by the participation cap (None: no cap).
        self.budget: Decimal | None = None
        if max_participation is not None:
            self.budget = instrument.quantity_from_float(max_participation * volume)
        # Units already taken from each side of the depth model's book on this bar.
        self.consumed_buy = 0.0
        self.consumed_sell = 0.0

    @property
    def open_decimal(self) -> Decimal:
        """Return the bar's open on the tick grid (converted once)."""
        if self._open_decimal is None:
            self._open_decimal = self._instrument.price_from_float(self._open)
        return self._open_decimal


class _Working:
    """Engine-side state of one working order."""

    __slots__ = (
        "acknowledge_ts_ns",
        "acknowledged",
        "eligible_bar",
        "eligible_ts_ns",
        "kind",
        "limit",
        "limit_price",
        "record",
        "session_day",
        "side",
        "sign",
        "stop",
        "stop_price",
        "tif",
        "triggered",
    )

    def __init__(self, record: OrderRecord, timing: OrderTiming) -> None:
        order = record.order
        self.record = record
        self.side = order.side
        self.sign = 1 if order.side is Side.BUY else -1
        self.kind = order.order_type
        self.tif = order.time_in_force
        self.limit = order.limit_price
        self.stop = order.stop_price
        self.limit_price = math.nan if order.limit_price is None else float(order.limit_price)
        self.stop_price = math.nan if order.stop_price is None else float(order.stop_price)
        self.acknowledge_ts_ns = timing.acknowledge_ts_ns
        self.eligible_bar = timing.eligible_bar
        self.eligible_ts_ns = timing.eligible_ts_ns
        self.session_day: int | None = None
        self.triggered = False
        self.acknowledged = False


class MatchingEngine:
    """Match orders for one instrument against bars, one bar at a time.

    ``latency`` schedules acknowledgement and first fill (default
    :class:`~tradepulse.execution.latency.FixedLatency`: next bar, no delay).
    ``max_participation`` (a fraction in (0, 1], default none) caps the units
    filled per bar at that share of the bar's volume. ``depth`` (default none:
    unlimited liquidity at the reference price) prices orders that take
    liquidity. ``slippage`` (default none) moves the price of every fill that
    takes liquidity (after the depth model; a limit still caps it).
    ``commission`` (default none: free) prices each fill. See the module
    docstring for the matching rules.

    Raises:
        ConfigError: a parameter is out of range or a model lacks its method.
    """

    __slots__ = (
        "_bar_index",
        "_commission",
        "_depth",
        "_fill_sequence",
        "_instrument",
        "_last_ts_ns",
        "_latency",
        "_max_participation",
        "_records",
        "_slippage",
        "_working",
    )

    def __init__(
        self,
        instrument: Instrument,
        *,
        latency: LatencyModel | None = None,
        max_participation: float | None = None,
        depth: DepthModel | None = None,
        commission: CommissionModel | None = None,
        slippage: ExecutionPriceModel | None = None,
    ) -> None:
        if not isinstance(instrument, Instrument):
            raise ConfigError(f"instrument must be an Instrument, got {instrument!r}")
        if max_participation is not None and (
            isinstance(max_participation, bool)
            or not isinstance(max_participation, int | float)
            or not 0.0 < max_participation <= 1.0
        ):
            raise ConfigError(
                f"max_participation must be a fraction in (0, 1], got {max_participation!r}"
            )
        for name, model, kind in (
            ("latency", latency, LatencyModel),
            ("depth", depth, DepthModel),
            ("commission", commission, CommissionModel),
            ("slippage", slippage, ExecutionPriceModel),
        ):
            if model is not None and not isinstance(model, kind):
                raise ConfigError(f"{name} must implement {kind.__name__}, got {model!r}")
        self._instrument = instrument
        self._latency: LatencyModel = latency if latency is not None else FixedLatency()
        self._max_participation = max_participation
        self._depth = depth
        self._commission = commission
        self._slippage = slippage
        self._records: dict[str, OrderRecord] = {}
        # Working orders by client order id, in arrival order (time priority).
        self._working: dict[str, _Working] = {}
        self._bar_index = -1
        self._last_ts_ns: int | None = None
        self._fill_sequence = 0

    def __repr__(self) -> str:
        return (
            f"MatchingEngine({self._instrument.symbol!r}, latency={self._latency!r}, "
            f"max_participation={self._max_participation!r}, depth={self._depth!r}, "
            f"commission={self._commission!r}, slippage={self._slippage!r})"
        )

    @property
    def instrument(self) -> Instrument:
        """Return the instrument this engine matches."""
        return self._instrument

    @property
    def bar_index(self) -> int:
        """Return the index of the last bar processed (-1 before the first)."""
        return self._bar_index

    @property
    def last_ts_ns(self) -> int | None:
        """Return the stamp of the last bar processed (None before the first)."""
        return self._last_ts_ns

    @property
    def orders(self) -> Mapping[str, OrderRecord]:
        """Return a read-only view of every order record by client order id."""
        return MappingProxyType(self._records)

    @property
    def open_orders(self) -> tuple[OrderRecord, ...]:
        """Return the working orders (NEW, ACCEPTED, PARTIALLY_FILLED) in arrival order."""
        return tuple(working.record for working in self._working.values())

    @property
    def has_working_orders(self) -> bool:
        """Return whether any order is working (so :meth:`process_bar` has work to do)."""
        return bool(self._working)

    def skip_to(self, *, bar_index: int, ts_ns: int) -> None:
        """Account for bars on which no order was working, without processing them.

        A host that knows no order is working (:attr:`has_working_orders` is
        false) may skip :meth:`process_bar` on idle bars and call this before its
        next submission: the engine then stands after bar ``bar_index``, stamped
        ``ts_ns``, exactly as if it had processed every bar up to it.

        Raises:
            OrderError: orders are working, or ``bar_index`` / ``ts_ns`` do not
                move forward from the last processed bar.
        """
        if self._working:
            raise OrderError(
                f"cannot skip to bar {bar_index}: {len(self._working)} order(s) are working"
            )
        if isinstance(bar_index, bool) or not isinstance(bar_index, int):
            raise OrderError(f"bar_index must be an integer, got {bar_index!r}")
        if bar_index < self._bar_index:
            raise OrderError(f"bar_index {bar_index} precedes the last bar {self._bar_index}")
        if bar_index == self._bar_index:
            return
        self._check_request_time(ts_ns)
        if self._last_ts_ns is not None and ts_ns <= self._last_ts_ns:
            raise OrderError(f"ts_ns {ts_ns} does not follow the last bar's ts {self._last_ts_ns}")
        self._bar_index = bar_index
        self._last_ts_ns = ts_ns

    def order(self, client_order_id: str) -> OrderRecord:
        """Return the record of ``client_order_id``.

        Raises:
            OrderError: no order has that id.
        """
        record = self._records.get(client_order_id)
        if record is None:
            raise OrderError(f"unknown client_order_id {client_order_id!r}")
        return record

    def forget(self, client_order_id: str) -> None:
        """Drop the record of the ended order ``client_order_id`` (to free its memory).

        A host that keeps its own copy of ended orders (the execution service
        reads old ones back from its journal) calls this; the engine then no
        longer knows the id, so :meth:`order` raises for it and a new order may
        reuse it. Matching is unaffected: ended orders never match.

        Raises:
            OrderError: no order has that id, or it is still working.
        """
        record = self.order(client_order_id)
        if record.is_open:
            raise OrderError(f"order {client_order_id!r} is still working; cancel it first")
        del self._records[client_order_id]

    def _check_request_time(self, ts_ns: int) -> None:
        if isinstance(ts_ns, bool) or not isinstance(ts_ns, int):
            raise OrderError(f"ts_ns must be an integer (UTC nanoseconds), got {ts_ns!r}")
        if self._last_ts_ns is not None and ts_ns < self._last_ts_ns:
            raise OrderError(
                f"ts_ns {ts_ns} precedes the last processed bar's ts {self._last_ts_ns}"
            )

    def _register(self, order: Order, ts_ns: int) -> OrderRecord:
        if not isinstance(order, Order):
            raise OrderError(f"order must be an Order, got {order!r}")
        self._check_request_time(ts_ns)
        if order.client_order_id in self._records:
            raise OrderError(f"duplicate client_order_id {order.client_order_id!r}")
        record = OrderRecord(order, submitted_ts_ns=ts_ns)
        self._records[order.client_order_id] = record
        return record

    def _venue_reason(self, order: Order) -> str | None:
        instrument = self._instrument
        if order.symbol != instrument.symbol:
            return f"symbol {order.symbol!r} is not traded here ({instrument.symbol!r})"
        if not instrument.is_valid_quantity(order.quantity):
            return (
                f"quantity {order.quantity} is not a multiple of the lot size "
                f"{instrument.quantity_increment}"
            )
        for name, price in (("limit_price", order.limit_price), ("stop_price", order.stop_price)):
            if price is not None and not instrument.is_valid_price(price):
                return (
                    f"{name} {price} is not a multiple of the tick size "
                    f"{instrument.price_increment}"
                )
        return None

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit ``order`` at ``ts_ns`` (UTC nanoseconds) and return its first update.

        The update is ACCEPTED when the latency model acknowledges at once, NEW
        when acknowledgement is delayed, or REJECTED (with a reason) when the
        order does not fit the venue: another symbol, a quantity off the lot
        grid, a price off the tick grid. ``latency`` schedules this order instead
        of the engine's model (a host that already held the order for its
        latency in bars forwards it with ``FixedLatency()``).

        Raises:
            OrderError: ``client_order_id`` was used before, or ``ts_ns`` precedes
                the last processed bar.
            ConfigError: the latency model returned an impossible schedule.
        """
        record = self._register(order, ts_ns)
        reason = self._venue_reason(order)
        if reason is not None:
            return record.reject(ts_ns=ts_ns, reason=reason)
        model = self._latency if latency is None else latency
        timing = model.schedule(submit_bar=self._bar_index, submit_ts_ns=ts_ns)
        if (
            timing.eligible_bar <= self._bar_index
            or timing.acknowledge_ts_ns < ts_ns
            or timing.eligible_ts_ns < timing.acknowledge_ts_ns
        ):
            del self._records[order.client_order_id]
            raise ConfigError(
                f"latency model {model!r} scheduled {timing} for an order submitted "
                f"after bar {self._bar_index} at {ts_ns}: it must be acknowledged no earlier "
                f"than submitted and fill no earlier than the next bar and its acknowledgement"
            )
        working = _Working(record, timing)
        self._working[order.client_order_id] = working
        if timing.acknowledge_ts_ns <= ts_ns:
            working.acknowledged = True
            return record.accept(ts_ns=ts_ns)
        return record.snapshot()

    def reject(self, order: Order, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Record ``order`` as REJECTED with ``reason`` (e.g. by a pre-trade risk check).

        Raises:
            OrderError: ``client_order_id`` was used before, ``ts_ns`` precedes the
                last processed bar, or ``reason`` is empty.
        """
        if not isinstance(reason, str) or not reason:
            raise OrderError(f"reason must be a non-empty string, got {reason!r}")
        record = self._register(order, ts_ns)
        return record.reject(ts_ns=ts_ns, reason=reason)

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel the working order ``client_order_id`` at ``ts_ns``; fills so far stand.

        Raises:
            OrderError: no order has that id, or ``ts_ns`` precedes the last bar.
            OrderStateError: the order is already filled, cancelled, rejected or expired.
        """
        record = self.order(client_order_id)
        self._check_request_time(ts_ns)
        update = record.cancel(ts_ns=ts_ns, reason=reason)
        self._working.pop(client_order_id, None)
        return update

    def replace(
        self,
        client_order_id: str,
        *,
        new_client_order_id: str,
        ts_ns: int,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> OrderUpdate:
        """Cancel ``client_order_id`` and submit its replacement; return the new order's update.

        The replacement copies the order with ``new_client_order_id`` and the
        given fields; ``quantity`` defaults to the cancelled order's unfilled
        remainder. It is a new submission: it goes through latency again and
        queues behind orders already working. If the replacement is invalid
        nothing changes.

        Raises:
            OrderError: an id is unknown or already used, a new field is invalid
                for the order type, the replacement does not fit the venue, or
                ``ts_ns`` precedes the last bar.
            OrderStateError: the order is no longer working.
        """
        record = self.order(client_order_id)
        self._check_request_time(ts_ns)
        if not record.is_open:
            # Let the state machine word the refusal.
            record.cancel(ts_ns=ts_ns, reason="replace")
        if new_client_order_id in self._records:
            raise OrderError(f"duplicate client_order_id {new_client_order_id!r}")
        old = record.order
        replacement = dataclasses.replace(
            old,
            client_order_id=new_client_order_id,
            quantity=record.remaining_quantity if quantity is None else quantity,
            limit_price=old.limit_price if limit_price is None else limit_price,
            stop_price=old.stop_price if stop_price is None else stop_price,
        )
        reason = self._venue_reason(replacement)
        if reason is not None:
            raise OrderError(f"replacement of {client_order_id!r} rejected: {reason}")
        self.cancel(client_order_id, ts_ns=ts_ns, reason=f"replaced by {new_client_order_id!r}")
        return self.submit(replacement, ts_ns=ts_ns)

    def _commission_of(self, quantity: Decimal, price: Decimal) -> Decimal:
        if self._commission is None:
            return ZERO
        value = self._commission.commission(quantity=float(quantity), price=float(price))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value < math.inf
        ):
            raise ConfigError(
                f"commission model {self._commission!r} returned {value!r} for "
                f"{quantity} units at {price}: expected a finite number >= 0"
            )
        return self._instrument.cash_from_float(value)

    def _take(
        self,
        working: _Working,
        *,
        want: Decimal,
        reference: float,
        reference_decimal: Decimal,
        volume: float,
        consumed: float,
    ) -> tuple[Decimal, Decimal]:
        """Return (units, price) for an order taking liquidity from ``reference``."""
        depth = self._depth
        units = want
        average = reference  # float average price before slippage
        exact: Decimal | None = reference_decimal  # ``average`` on the tick grid, if known
        if depth is not None:
            requested = float(want)
            execution = depth.execute(
                side=working.side,
                quantity=requested,
                reference_price=reference,
                worst_price=None if working.limit is None else working.limit_price,
                volume=volume,
                consumed=consumed,
            )
            self._check_execution(execution, requested, working)
            if execution.quantity <= 0:
                return ZERO, reference_decimal
            if execution.quantity < requested:
                units = min(want, self._instrument.quantity_from_float(execution.quantity))
                if units <= 0:
                    return ZERO, reference_decimal
            if execution.price != reference:
                average, exact = execution.price, None
        slippage = self._slippage
        if slippage is not None:
            adjusted = slippage.execution_price(
                average, side=working.sign, quantity=float(units), volume=volume
            )
            if (
                isinstance(adjusted, bool)
                or not isinstance(adjusted, int | float)
                or not 0.0 < adjusted < math.inf
            ):
                raise ConfigError(
                    f"slippage model {slippage!r} returned {adjusted!r} for {units} units "
                    f"at {average}: expected a positive finite price"
                )
            if adjusted != average:
                average, exact = adjusted, None
        price = exact if exact is not None else self._instrument.price_from_float(average)
        worst = working.limit
        if worst is not None:
            price = min(price, worst) if working.sign > 0 else max(price, worst)
        return units, price

    def _check_execution(
        self, execution: DepthExecution, requested: float, working: _Working
    ) -> None:
        quantity, price = execution.quantity, execution.price
        broken = not (0.0 <= quantity <= requested) or not (math.isfinite(price) and price > 0)
        if not broken and quantity > 0 and working.limit is not None:
            excess = working.sign * (price - working.limit_price)
            broken = excess > _WORST_PRICE_TOLERANCE * working.limit_price
        if broken:
            raise ConfigError(
                f"depth model {self._depth!r} returned {execution} for a {working.side} of "
                f"{requested} units (limit {working.limit}): quantity must lie in "
                f"[0, requested] and the price be positive and within the limit"
            )

    def _execute(
        self,
        working: _Working,
        book: _BarBook,
        *,
        taker: bool,
        reference: float,
        reference_decimal: Decimal | None,
        ts: int,
        fills: list[Fill],
        updates: list[OrderUpdate],
    ) -> None:
        """Fill what ``book`` allows of ``working``; apply IOC / FOK to the rest."""
        record = working.record
        remaining = record.remaining_quantity
        budget = book.budget
        want = remaining if budget is None else min(remaining, budget)
        units = ZERO
        price = ZERO
        if want > 0:
            if not taker and working.limit is not None:
                units, price = want, working.limit
            else:
                if reference_decimal is None:
                    reference_decimal = book.open_decimal
                units, price = self._take(
                    working,
                    want=want,
                    reference=reference,
                    reference_decimal=reference_decimal,
                    volume=book.volume,
                    consumed=book.consumed_buy if working.sign > 0 else book.consumed_sell,
                )
        tif = working.tif
        available = units
        if tif is _FOK and units < remaining:
            units = ZERO
        if units > 0:
            if taker:
                if working.sign > 0:
                    book.consumed_buy += float(units)
                else:
                    book.consumed_sell += float(units)
            if budget is not None:
                book.budget = LEDGER_CONTEXT.subtract(budget, units)
            self._fill_sequence += 1
            fills.append(
                Fill(
                    fill_id=self._fill_sequence,
                    client_order_id=record.client_order_id,
                    symbol=self._instrument.symbol,
                    side=working.side,
                    quantity=units,
                    price=price,
                    commission=self._commission_of(units, price),
                    ts_ns=ts,
                    liquidity=Liquidity.TAKER if taker else Liquidity.MAKER,
                )
            )
            updates.append(record.fill(quantity=units, price=price, ts_ns=ts))
        if record.is_open and (tif is _IOC or tif is _FOK):
            reason = (
                f"IOC: {record.remaining_quantity} unfilled units cancelled "
                f"after filling {units} on the bar"
                if tif is _IOC
                else f"FOK: {remaining} units could not fill in full "
                f"(only {available} available on the bar)"
            )
            updates.append(record.cancel(ts_ns=ts, reason=reason))

    def process_bar(self, bar: BarLike) -> MatchResult:
        """Match the working orders against ``bar`` and return its fills and status changes.

        Bars must arrive in strictly increasing ``ts`` order; each must satisfy
        the bar contract (``0 < low <= open, close <= high``, finite, volume >= 0),
        which is checked whenever orders are working.

        Raises:
            DataError: ``bar.ts`` does not increase, or the bar breaks the contract.
            ConfigError: a depth or commission model returned an impossible value.
        """
        ts = bar.ts
        last = self._last_ts_ns
        if last is not None and ts <= last:
            raise DataError(f"bar ts {ts} does not follow the previous bar's ts {last}")
        if not self._working:
            self._last_ts_ns = ts
            self._bar_index += 1
            return _NO_MATCH
        open_, high, low, volume = bar.open, bar.high, bar.low, bar.volume
        close = bar.close
        if not (
            0.0 < low <= open_ <= high
            and low <= close <= high
            and high < math.inf
            and 0.0 <= volume < math.inf
        ):
            raise DataError(
                f"bar at ts {ts} breaks the bar contract: open={open_}, high={high}, "
                f"low={low}, close={close}, volume={volume}"
            )
        self._last_ts_ns = ts
        self._bar_index += 1
        bar_index = self._bar_index
        day = ts // NS_PER_DAY
        fills: list[Fill] = []
        updates: list[OrderUpdate] = []
        book: _BarBook | None = None
        finished = False
        for working in self._working.values():
            # Hot path: most working orders do not meet most bars; keep it lean.
            if not working.acknowledged:
                if ts < working.acknowledge_ts_ns:
                    continue
                working.acknowledged = True
                updates.append(working.record.accept(ts_ns=working.acknowledge_ts_ns))
            if bar_index < working.eligible_bar or ts < working.eligible_ts_ns:
                continue
            tif = working.tif
            if tif is _DAY:
                if working.session_day is None:
                    working.session_day = day
                elif day > working.session_day:
                    updates.append(
                        working.record.expire(
                            ts_ns=ts,
                            reason=f"DAY order expired at the end of UTC day {working.session_day}"
                            " (days since 1970-01-01)",
                        )
                    )
                    finished = True
                    continue
            # Does the order take liquidity from ``reference`` (the open or its
            # stop), or rest at its limit (maker), on this bar?
            sign = working.sign
            kind = working.kind
            taker = maker = False
            reference = open_
            reference_decimal: Decimal | None = None  # None: the open, on the tick grid
            if kind is _MARKET:
                taker = True
            elif kind is _LIMIT or working.triggered:
                if kind is _STOP:
                    taker = True  # a triggered stop is a market order
                else:
                    limit = working.limit_price
                    if sign > 0:
                        if open_ <= limit:
                            taker = True
                        else:
                            maker = low <= limit
                    elif open_ >= limit:
                        taker = True
                    else:
                        maker = high >= limit
            else:
                stop = working.stop_price
                if (high < stop) if sign > 0 else (low > stop):
                    continue  # not triggered: IOC / FOK wait for the trigger bar
                working.triggered = True
                at_open = sign * (open_ - stop) >= 0
                if not at_open:
                    reference = stop
                    reference_decimal = working.stop
                if kind is _STOP:
                    taker = True
                else:
                    limit = working.limit_price
                    if sign * (limit - reference) >= 0:
                        taker = True
                    else:
                        # Only a trigger at the open is known to precede the touch.
                        maker = at_open and ((low <= limit) if sign > 0 else (high >= limit))
            if taker or maker:
                if book is None:
                    book = _BarBook(
                        self._instrument,
                        open_=open_,
                        volume=volume,
                        max_participation=self._max_participation,
                    )
                self._execute(
                    working,
                    book,
                    taker=taker,
                    reference=reference,
                    reference_decimal=reference_decimal,
                    ts=ts,
                    fills=fills,
                    updates=updates,
                )
                finished = finished or not working.record.is_open
            elif tif is _IOC or tif is _FOK:
                record = working.record
                updates.append(
                    record.cancel(
                        ts_ns=ts,
                        reason=f"{tif.name}: {record.remaining_quantity} units cancelled, "
                        "the bar did not reach the order's price",
                    )
                )
                finished = True
        if finished:
            self._working = {
                key: working for key, working in self._working.items() if working.record.is_open
            }
        if not updates:
            return _NO_MATCH
        return MatchResult(fills=tuple(fills), updates=tuple(updates))
