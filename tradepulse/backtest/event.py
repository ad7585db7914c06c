"""The event-driven backtest engine: ``handle_tick`` per bar, orders on the matching engine.

The host walks the bars in time order. For each bar it first lets the
:class:`~tradepulse.execution.MatchingEngine` match the working orders against
the bar (fills at the open, limits and stops inside the bar's range, partial
fills against the liquidity models), books the fills, then calls the
strategy's ``handle_tick(ctx, bar)`` on the bar's close. Orders placed there
can fill from the next bar on, so nothing a strategy does can use a later bar.

Two kinds of orders reach the venue:

- **Target orders** (:meth:`EventContext.order_target_percent`): the vectorised
  engine's convention. A target decided on bar t's close is sized at the open
  of bar ``t + 1 + latency_bars`` with exactly the vectorised engine's
  arithmetic (:func:`tradepulse.costs.plan_target_fills`: close a position on
  the other side, then open or adjust), and both legs are market orders that
  fill at that open. A target equal to the last one requested trades nothing.
  This is why a strategy with both forms gives the same trades and equity on
  both engines.
- **Explicit orders** (:meth:`EventContext.buy` / :meth:`EventContext.sell`):
  market, limit, stop and stop-limit orders with GTC / IOC / FOK / DAY, which
  the matching engine schedules with ``latency_bars`` and matches by its rules;
  :meth:`EventContext.cancel` and :meth:`EventContext.replace` change them
  between bars.

Fills are exact decimals on the instrument's grid (by default 1e-30, which holds
every float exactly: the vectorised engine's prices and sizes pass unchanged);
the host books them into float cash and position, marks equity at every close
and returns the same :class:`~tradepulse.backtest.BacktestResult` as the
vectorised engine, with the order log in ``orders``. Optional pre-trade risk
limits (max order size, max position, margin) reject an order with a reason
before it reaches the venue; without them cash may go negative (explicit
orders are not capped by cash). Conventions: ``docs/backtesting.md``.
"""

from __future__ import annotations

import functools
import math
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.vector import (
    _F_BAR,
    _F_CASH,
    _F_POSITION,
    _F_PRICE,
    _F_QUANTITY,
    _FILL_FIELDS,
    _T_COMMISSION,
    _T_ENTRY_BAR,
    _T_ENTRY_NOTIONAL,
    _T_ENTRY_UNITS,
    _T_EXIT_BAR,
    _T_EXIT_NOTIONAL,
    _T_EXIT_UNITS,
    _T_OPEN,
    _T_PNL,
    _T_QUANTITY,
    _T_SIDE,
    _TRADE_FIELDS,
    DEFAULT_CASH,
    BacktestResult,
    _check_number,
    _column,
    _timestamps,
)
from tradepulse.costs._kernels import commission as commission_of
from tradepulse.costs._kernels import execution_price, target_legs
from tradepulse.costs.commission import CommissionModel, CommissionTerms, combine_commissions
from tradepulse.costs.sizing import Sizing, check_sizing
from tradepulse.costs.slippage import SlippageModel, SlippageTerms, combine_slippage
from tradepulse.domain.arithmetic import LEDGER_CONTEXT
from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import (
    Fill,
    Order,
    OrderError,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from tradepulse.domain.portfolio import Portfolio
from tradepulse.errors import ConfigError, DataError, TradePulseError
from tradepulse.execution.latency import FixedLatency
from tradepulse.execution.liquidity import DepthModel
from tradepulse.execution.matching import MatchingEngine
from tradepulse.execution.risk import PreTradeRisk, RiskLimits
from tradepulse.execution.venue import Venue
from tradepulse.metrics import compute_metrics
from tradepulse.strategy.api import (
    Bar,
    OrderId,
    OrderTypeName,
    Strategy,
    StrategyError,
    TimeInForceName,
)
from tradepulse.strategy.params import Params

__all__ = ["FLOAT_EXACT_INCREMENT", "ORDER_COLUMNS", "EventContext", "run_event"]

#: Columns of `BacktestResult.orders` for the event engine, in order.
ORDER_COLUMNS: Final = (
    "order_id",
    "request",
    "bar",
    "ts",
    "side",
    "order_type",
    "time_in_force",
    "quantity",
    "limit_price",
    "stop_price",
    "status",
    "filled_quantity",
    "average_price",
    "reason",
)

#: Increment of the default instrument's prices, quantities and cash: fine enough
#: that every float the engines produce (17 significant digits, magnitude >= 1e-13)
#: becomes its exact decimal, so the event engine's fills carry the vectorised
#: engine's numbers unchanged even when a position is tiny.
FLOAT_EXACT_INCREMENT: Final = Decimal("1e-30")

_ORDER_TYPES: Final[dict[str, OrderType]] = {kind.value: kind for kind in OrderType}
_TIMES_IN_FORCE: Final[dict[str, TimeInForce]] = {tif.value: tif for tif in TimeInForce}
_NO_LATENCY: Final = FixedLatency()
_NAN: Final = math.nan
_TS_DTYPE: Final = pl.Datetime("ns", "UTC")


class _Ledger:
    """Float cash, position and the vectorised engine's fill and trade records.

    The records are flat ``array('d')`` buffers (`_FILL_FIELDS` and
    `_TRADE_FIELDS` values per record): unlike lists of lists they cost the
    garbage collector nothing, however many fills a run makes.
    """

    __slots__ = ("cash", "fills", "open_trade", "position", "trades")

    def __init__(self, cash: float) -> None:
        self.cash = cash
        self.position = 0.0
        self.open_trade = -1  # offset of the open trade's record in ``trades``
        self.fills = array("d")
        self.trades = array("d")

    def copy(self) -> _Ledger:
        """Return an independent copy (:meth:`finish` changes the trade records)."""
        twin = _Ledger(self.cash)
        twin.position = self.position
        twin.open_trade = self.open_trade
        twin.fills = array("d", self.fills)
        twin.trades = array("d", self.trades)
        return twin

    def book(self, bar: int, quantity: float, after: float, price: float, fee: float) -> None:
        """Book a fill of signed ``quantity`` at ``price`` paying ``fee``.

        ``after`` is the exact position after the fill (the host sums decimals,
        so a position closed in several fills ends at exactly 0). A fill that
        crosses zero is booked as a closing and an opening part, the commission
        shared in proportion to the units.
        """
        position = self.position
        if position != 0.0 and after != 0.0 and (position > 0.0) != (after > 0.0):
            share = abs(position) / abs(quantity)
            self._book(bar, -position, 0.0, price, fee * share)
            self._book(bar, after, after, price, fee - fee * share)
            return
        self._book(bar, quantity, after, price, fee)

    def _book(self, bar: int, quantity: float, after: float, price: float, fee: float) -> None:
        side = 1.0 if quantity > 0.0 else -1.0
        size = abs(quantity)
        self.cash = self.cash - quantity * price - fee
        trades = self.trades
        if self.position == 0.0:
            self.open_trade = len(trades)
            record = [0.0] * _TRADE_FIELDS
            record[_T_ENTRY_BAR] = bar
            record[_T_SIDE] = side
            record[_T_OPEN] = 1.0
            trades.extend(record)
        at = self.open_trade
        if side == trades[at + _T_SIDE]:
            trades[at + _T_ENTRY_UNITS] += size
            trades[at + _T_ENTRY_NOTIONAL] += size * price
        else:
            trades[at + _T_EXIT_UNITS] += size
            trades[at + _T_EXIT_NOTIONAL] += size * price
        trades[at + _T_PNL] += -quantity * price - fee
        trades[at + _T_COMMISSION] += fee
        self.position = after
        if abs(after) > trades[at + _T_QUANTITY]:
            trades[at + _T_QUANTITY] = abs(after)
        self.fills.extend((bar, side, size, price, fee, at // _TRADE_FIELDS, after, self.cash))
        if after == 0.0:
            trades[at + _T_EXIT_BAR] = bar
            trades[at + _T_OPEN] = 0.0
            self.open_trade = -1

    def finish(self, last_bar: int, last_close: float) -> tuple[NDArray[np.float64], ...]:
        """Mark an open trade to ``last_close`` and return (fill, trade) records."""
        trades = self.trades
        if self.open_trade >= 0:
            at = self.open_trade
            units = abs(self.position)
            trades[at + _T_EXIT_BAR] = last_bar
            trades[at + _T_EXIT_UNITS] += units
            trades[at + _T_EXIT_NOTIONAL] += units * last_close
            trades[at + _T_PNL] += self.position * last_close
        fills = np.frombuffer(self.fills, dtype=np.float64).reshape(-1, _FILL_FIELDS).T.copy()
        records = np.frombuffer(trades, dtype=np.float64).reshape(-1, _TRADE_FIELDS).T.copy()
        return fills, records


class _Request:
    """A strategy's order request as the host tracks it."""

    __slots__ = ("bar", "cancelled", "due", "order_id", "previous", "target", "venue_ids")

    def __init__(self, *, order_id: str, bar: int, due: int, target: float | None) -> None:
        self.order_id = order_id
        self.bar = bar  # bar on whose close it was requested
        self.due = due  # first bar it may fill on
        self.target = target  # a target request's fraction; None for an explicit order
        self.previous = 0.0  # the target requested before this one
        self.cancelled = False
        self.venue_ids: list[str] = []  # the venue orders it became


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StrategyError(f"{name} must be a number; got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise StrategyError(f"{name} must be finite; got {value!r}")
    return number


class EventContext:
    """The :class:`~tradepulse.strategy.StrategyContext` of the event-driven backtest.

    The host updates it before each ``handle_tick``; see the protocol for the
    meaning of every member. Quantities are in units, prices in quote currency.
    """

    __slots__ = ("_bar", "_host", "_index", "_indicators", "_ledger", "_params")

    def __init__(
        self,
        host: _EventHost,
        params: Params,
        indicators: Mapping[str, Sequence[float]],
    ) -> None:
        self._host = host
        self._ledger = host.ledger
        self._params = params
        self._indicators = indicators
        self._index = -1
        self._bar: Bar | None = None

    @property
    def params(self) -> Params:
        """Return the strategy's validated parameters."""
        return self._params

    @property
    def bar_index(self) -> int:
        """Return the 0-based index of the current bar."""
        return self._index

    @property
    def position(self) -> float:
        """Return the current position in signed units (negative = short)."""
        return self._ledger.position

    @property
    def cash(self) -> float:
        """Return the cash balance in quote currency."""
        return self._ledger.cash

    @property
    def equity(self) -> float:
        """Return cash plus the position marked at the current close, in quote currency."""
        ledger = self._ledger
        if self._bar is None:
            return ledger.cash
        return ledger.cash + ledger.position * self._bar[4]

    @property
    def open_orders(self) -> tuple[OrderId, ...]:
        """Return the ids of the explicit orders still working at the venue or queued."""
        return self._host.open_order_ids()

    def indicator(self, name: str, ago: int = 0) -> float:
        """Return indicator ``name`` at bar ``bar_index - ago`` (NaN before the first bar).

        Raises:
            StrategyError: ``name`` is unknown or ``ago`` is negative.
        """
        if ago < 0:
            raise StrategyError(f"indicator({name!r}, ago={ago}): ago must be >= 0")
        try:
            values = self._indicators[name]
        except KeyError:
            known = ", ".join(sorted(self._indicators)) or "none"
            raise StrategyError(
                f"unknown indicator {name!r} (the strategy's indicators(): {known})"
            ) from None
        index = self._index - ago
        return values[index] if index >= 0 else _NAN

    def order_target_percent(self, *, percent: float) -> OrderId | None:
        """Move the position to ``percent`` of equity at the next bar's open (see module doc).

        Return the request's id, or ``None`` when ``percent`` equals the target
        already requested. A second call on the same bar replaces the first.

        Raises:
            StrategyError: ``percent`` is not a finite number in [-1, 1].
        """
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise StrategyError(f"order_target_percent: percent must be a number; got {percent!r}")
        target = float(percent)
        if not -1.0 <= target <= 1.0:
            raise StrategyError(
                f"order_target_percent: percent must be in [-1, 1]; got {percent!r}"
            )
        return self._host.request_target(target)

    def buy(
        self,
        *,
        quantity: float,
        order_type: OrderTypeName = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForceName = "gtc",
    ) -> OrderId:
        """Submit a buy order for ``quantity`` units and return its id (see :meth:`sell`)."""
        return self._host.request_order(
            Side.BUY, quantity, order_type, limit_price, stop_price, time_in_force
        )

    def sell(
        self,
        *,
        quantity: float,
        order_type: OrderTypeName = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForceName = "gtc",
    ) -> OrderId:
        """Submit a sell order for ``quantity`` units and return its id.

        The order goes through the pre-trade risk checks (if any) and the
        venue's checks; a rejected order keeps its id and shows its reason in
        the result's ``orders``.

        Raises:
            StrategyError: a field is invalid (non-positive quantity, a price
                the order type lacks or forbids, an unknown type or time in force).
        """
        return self._host.request_order(
            Side.SELL, quantity, order_type, limit_price, stop_price, time_in_force
        )

    def cancel(self, order_id: OrderId) -> None:
        """Cancel the working order ``order_id``; an order already done is left as it is.

        Raises:
            StrategyError: no order has that id.
        """
        self._host.cancel(order_id)

    def replace(
        self,
        order_id: OrderId,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> OrderId:
        """Cancel the working order ``order_id`` and submit a changed copy; return its id.

        Unset fields keep the old order's values (``quantity`` its unfilled
        remainder). The replacement is a new order: it waits its latency again.

        Raises:
            StrategyError: no working order has that id, or a new field is invalid.
        """
        return self._host.replace(order_id, quantity, limit_price, stop_price)


class _EventHost:
    """Drive one strategy over one instrument's bars on a venue (a matching engine).

    The live runner (:mod:`tradepulse.live`) hosts a strategy with this class too,
    on its own per-bar step, so both place the same orders.
    """

    def __init__(
        self,
        *,
        instrument: Instrument,
        engine: Venue,
        commission: CommissionModel,
        slippage: SlippageModel,
        sizing: Sizing,
        latency_bars: int,
        risk: PreTradeRisk | None,
        initial_cash: float,
        fast_fills: bool,
    ) -> None:
        self.instrument = instrument
        self.engine = engine
        self.ledger = _Ledger(initial_cash)
        self.commission_terms = commission.terms()
        self.slippage_terms = slippage.terms()
        self.sizing: Sizing = sizing
        self.latency_bars = latency_bars
        self.risk = risk
        self.portfolio: Portfolio | None = None
        if risk is not None:
            self.portfolio = Portfolio(cash=instrument.cash_from_float(initial_cash))
        self.ctx: EventContext | None = None
        self.requests: dict[str, _Request] = {}
        self.request_of: dict[str, str] = {}  # venue order id -> request id
        self.submitted_bar: dict[str, int] = {}  # venue order id -> bar it was sent after
        self.pending: deque[_Request] = deque()  # target requests not yet sized
        self.target_venue_ids: list[str] = []  # venue orders of the last sized target
        # Target legs filled at the open without the venue (see _fill_at_open):
        # (request id, leg number, bar requested, side, units, price).
        self.direct_fills: list[tuple[str, int, int, float, float, float]] = []
        self.fast_fills = fast_fills
        self.has_slippage = bool(
            self.slippage_terms.half_spread
            or self.slippage_terms.slippage
            or self.slippage_terms.impact
        )
        terms = self.commission_terms
        self.has_commission = bool(terms.rate or terms.per_unit or terms.per_fill)
        self.last_target = 0.0
        self.sequence = 0
        # The position as an exact decimal (None: exactly the ledger's float position).
        self.exact_position: Decimal | None = Decimal(0)
        self.active = False  # whether the engine has working orders (else bars are skipped)

    # ----------------------------------------------------------------- state

    def exact(self) -> Decimal:
        """Return the position held as an exact decimal."""
        if self.exact_position is None:
            self.exact_position = Decimal(repr(self.ledger.position))
        return self.exact_position

    @property
    def index(self) -> int:
        assert self.ctx is not None
        return self.ctx._index

    @property
    def ts(self) -> int:
        assert self.ctx is not None
        bar = self.ctx._bar
        return -1 if bar is None else bar[0]

    def _next_id(self, prefix: str) -> str:
        self.sequence += 1
        return f"{prefix}{self.sequence}"

    # ----------------------------------------------------------------- targets

    def request_target(self, target: float) -> OrderId | None:
        index = self.index
        pending = self.pending
        if pending and pending[-1].bar == index:
            if pending[-1].target == target:
                return None  # already requested on this bar
            # A second call on the same bar replaces the first.
            replaced = pending.pop()
            replaced.cancelled = True
            self.last_target = replaced.previous
        if target == self.last_target:
            return None
        request = _Request(
            order_id=self._next_id("t"),
            bar=index,
            due=index + 1 + self.latency_bars,
            target=target,
        )
        request.previous = self.last_target
        self.requests[request.order_id] = request
        pending.append(request)
        self.last_target = target
        return request.order_id

    def release_targets(self, index: int, bar: Bar) -> None:
        """Size the target requests due on ``bar`` at its open and send their legs."""
        pending = self.pending
        instrument = self.instrument
        fees = self.commission_terms
        friction = self.slippage_terms
        whole = self.sizing == "whole"
        while pending and pending[0].due <= index:
            request = pending.popleft()
            # What an earlier target left unfilled (a participation cap, a depth
            # model) is superseded: the new target is sized from the position held.
            for venue_id in self.target_venue_ids:
                if self.engine.order(venue_id).is_open:
                    self.engine.cancel(
                        venue_id, ts_ns=self.ts, reason=f"superseded by {request.order_id}"
                    )
            self.target_venue_ids.clear()
            assert request.target is not None
            ledger = self.ledger
            closing, opening = target_legs(
                ledger.position,
                ledger.cash,
                bar[1],
                bar[5],
                request.target,
                fees.rate,
                fees.per_unit,
                fees.per_fill,
                friction.half_spread,
                friction.slippage,
                friction.impact,
                whole,
            )
            if self.fast_fills and not self.active:
                self._fill_at_open(request, index, bar, closing, opening)
                continue
            projected = self.exact()
            for leg, quantity in enumerate((closing, opening)):
                if quantity == 0.0:
                    continue
                if leg == 0:
                    units = projected.copy_abs()  # close exactly what is held
                else:
                    units = instrument.quantity_from_float(abs(quantity))
                if units <= 0:
                    continue
                side = Side.BUY if quantity > 0.0 else Side.SELL
                order = Order(
                    client_order_id=f"{request.order_id}.{leg + 1}",
                    symbol=instrument.symbol,
                    side=side,
                    quantity=units,
                )
                self._submit(request, order, latency=_NO_LATENCY, reference=bar[1])
                self.target_venue_ids.append(order.client_order_id)

    def _fill_at_open(
        self, request: _Request, index: int, bar: Bar, closing: float, opening: float
    ) -> None:
        """Fill a target's market legs at ``bar``'s open without the matching engine.

        Used only where the matching engine's answer is known in advance: no
        order is working, liquidity is unlimited (no participation cap or depth
        model), no risk limits, and the default float-exact grid. A market
        order then fills in full at the open moved by the execution-price model,
        and pays the commission model's fee: the same numbers the engine gives
        (a test runs both ways), for a fraction of the cost per order.
        """
        ledger = self.ledger
        fees = self.commission_terms
        friction = self.slippage_terms
        open_, volume = bar[1], bar[5]
        for leg, quantity in enumerate((closing, opening)):
            if quantity == 0.0:
                continue
            side = 1.0 if quantity > 0.0 else -1.0
            size = abs(quantity)
            price = (
                execution_price(
                    open_,
                    side,
                    size,
                    volume,
                    friction.half_spread,
                    friction.slippage,
                    friction.impact,
                )
                if self.has_slippage
                else open_
            )
            fee = (
                commission_of(size, price, fees.rate, fees.per_unit, fees.per_fill)
                if self.has_commission
                else 0.0
            )
            after = 0.0 if leg == 0 else ledger.position + quantity
            ledger.book(index, quantity, after, price, fee)
            self.exact_position = None  # the float position is exact now
            self.direct_fills.append((request.order_id, leg + 1, request.bar, side, size, price))

    # ----------------------------------------------------------------- explicit orders

    def _price(self, name: str, value: float | None) -> Decimal | None:
        if value is None:
            return None
        return self.instrument.price_from_float(_number(name, value))

    def request_order(
        self,
        side: Side,
        quantity: float,
        order_type: str,
        limit_price: float | None,
        stop_price: float | None,
        time_in_force: str,
    ) -> OrderId:
        kind = _ORDER_TYPES.get(order_type)
        if kind is None:
            raise StrategyError(
                f"order_type must be one of {', '.join(_ORDER_TYPES)}; got {order_type!r}"
            )
        tif = _TIMES_IN_FORCE.get(time_in_force)
        if tif is None:
            raise StrategyError(
                f"time_in_force must be one of {', '.join(_TIMES_IN_FORCE)}; got {time_in_force!r}"
            )
        order_id = self._next_id("o")
        try:
            order = Order(
                client_order_id=order_id,
                symbol=self.instrument.symbol,
                side=side,
                quantity=self.instrument.quantity_from_float(_number("quantity", quantity)),
                order_type=kind,
                limit_price=self._price("limit_price", limit_price),
                stop_price=self._price("stop_price", stop_price),
                time_in_force=tif,
            )
        except (OrderError, ValueError) as exc:
            raise StrategyError(f"invalid {side.value} order: {exc}") from None
        index = self.index
        request = _Request(order_id=order_id, bar=index, due=index + 1, target=None)
        self.requests[order_id] = request
        self._submit(request, order, latency=None)
        return order_id

    def _submit(
        self,
        request: _Request,
        order: Order,
        *,
        latency: FixedLatency | None,
        reference: float | None = None,
    ) -> None:
        """Send ``order`` to the venue (through the risk checks, if any).

        ``reference`` is the price the risk checks value the order at: a target
        leg's fill bar open (it was sized there), else the current close.
        """
        venue_id = order.client_order_id
        request.venue_ids.append(venue_id)
        self.request_of[venue_id] = request.order_id
        self.submitted_bar[venue_id] = request.bar
        ts = self.ts
        engine = self.engine
        if not self.active and engine.bar_index < self.index:
            engine.skip_to(bar_index=self.index, ts_ns=ts)
        if self.risk is not None:
            assert self.portfolio is not None
            assert self.ctx is not None
            if reference is None:
                if self.ctx._bar is None:
                    raise StrategyError(
                        "an order placed before the first bar cannot be risk-checked (no "
                        "price yet): place orders from handle_tick, or run without risk limits"
                    )
                reference = self.ctx._bar[4]
            reason = self.risk.check(
                order,
                portfolio=self.portfolio,
                reference_price=self.instrument.price_from_float(reference),
                open_orders=self.engine.open_orders,
            )
            if reason is not None:
                self.engine.reject(order, ts_ns=ts, reason=reason)
                return
        engine.submit(order, ts_ns=ts, latency=latency)
        self.active = engine.has_working_orders

    def _request(self, order_id: OrderId) -> _Request:
        request = self.requests.get(order_id)
        if request is None:
            raise StrategyError(f"no order has id {order_id!r}")
        return request

    def _working_order(self, request: _Request) -> str | None:
        """Return the id of the venue order of ``request`` still working, if any."""
        for venue_id in request.venue_ids:
            if self.engine.order(venue_id).is_open:
                return venue_id
        return None

    def cancel(self, order_id: OrderId) -> None:
        request = self._request(order_id)
        if request.target is not None and request in self.pending:
            self.pending.remove(request)
            request.cancelled = True
            if not self.pending or self.pending[-1].bar < request.bar:
                self.last_target = request.previous
            return
        for venue_id in request.venue_ids:
            if self.engine.order(venue_id).is_open:
                self.engine.cancel(venue_id, ts_ns=self.ts)

    def replace(
        self,
        order_id: OrderId,
        quantity: float | None,
        limit_price: float | None,
        stop_price: float | None,
    ) -> OrderId:
        request = self._request(order_id)
        working = None if request.target is not None else self._working_order(request)
        if working is None:
            raise StrategyError(f"order {order_id!r} is not a working order; it cannot be replaced")
        new_id = self._next_id("o")
        try:
            self.engine.replace(
                working,
                new_client_order_id=new_id,
                ts_ns=self.ts,
                quantity=None
                if quantity is None
                else self.instrument.quantity_from_float(_number("quantity", quantity)),
                limit_price=self._price("limit_price", limit_price),
                stop_price=self._price("stop_price", stop_price),
            )
        except (OrderError, ValueError) as exc:
            raise StrategyError(f"cannot replace {order_id!r}: {exc}") from None
        index = self.index
        replacement = _Request(order_id=new_id, bar=index, due=index + 1, target=None)
        replacement.venue_ids.append(new_id)
        self.requests[new_id] = replacement
        self.request_of[new_id] = new_id
        self.submitted_bar[new_id] = index
        return new_id

    def open_order_ids(self) -> tuple[OrderId, ...]:
        return tuple(
            order_id
            for order_id, request in self.requests.items()
            if request.target is None and self._working_order(request) is not None
        )

    # ----------------------------------------------------------------- fills

    def book(self, index: int, fills: tuple[Fill, ...]) -> None:
        ledger = self.ledger
        portfolio = self.portfolio
        for fill in fills:
            signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
            self.exact_position = LEDGER_CONTEXT.add(self.exact(), signed)
            ledger.book(
                index,
                float(signed),
                float(self.exact_position),
                float(fill.price),
                float(fill.commission),
            )
            if portfolio is not None:
                portfolio.apply_fill(fill)

    # ----------------------------------------------------------------- result

    def order_frame(self, ts: NDArray[np.int64]) -> pl.DataFrame:
        rows: dict[str, list[object]] = {name: [] for name in ORDER_COLUMNS}
        # Venue orders and target legs filled directly, in the order requested.
        keyed: list[tuple[int, str, tuple[object, ...]]] = []
        for venue_id, record in self.engine.orders.items():
            order = record.order
            bar = self.submitted_bar.get(venue_id, -1)
            average = record.average_fill_price
            values: tuple[object, ...] = (
                venue_id,
                self.request_of.get(venue_id, venue_id),
                bar,
                int(ts[bar]) if bar >= 0 else None,
                order.side.value,
                order.order_type.value,
                order.time_in_force.value,
                float(order.quantity),
                None if order.limit_price is None else float(order.limit_price),
                None if order.stop_price is None else float(order.stop_price),
                record.status.value,
                float(record.filled_quantity),
                None if average is None else float(average),
                record.reason,
            )
            keyed.append((_sequence(self.request_of.get(venue_id, venue_id)), venue_id, values))
        for request_id, leg, bar, side, size, price in self.direct_fills:
            order_id = f"{request_id}.{leg}"
            values = (
                order_id,
                request_id,
                bar,
                int(ts[bar]),
                Side.BUY.value if side > 0.0 else Side.SELL.value,
                OrderType.MARKET.value,
                TimeInForce.GTC.value,
                size,
                None,
                None,
                OrderStatus.FILLED.value,
                size,
                price,
                None,
            )
            keyed.append((_sequence(request_id), order_id, values))
        keyed.sort(key=lambda item: (item[0], item[1]))
        for _, _, values in keyed:
            for name, value in zip(ORDER_COLUMNS, values, strict=True):
                rows[name].append(value)
        return pl.DataFrame(
            rows,
            schema={
                "order_id": pl.String,
                "request": pl.String,
                "bar": pl.Int64,
                "ts": pl.Int64,
                "side": pl.String,
                "order_type": pl.String,
                "time_in_force": pl.String,
                "quantity": pl.Float64,
                "limit_price": pl.Float64,
                "stop_price": pl.Float64,
                "status": pl.String,
                "filled_quantity": pl.Float64,
                "average_price": pl.Float64,
                "reason": pl.String,
            },
        ).with_columns(pl.col("ts").cast(_TS_DTYPE))


def _sequence(request_id: str) -> int:
    """Return the creation number in a request id (``"t12"`` -> 12)."""
    return int(request_id[1:])


def array_of(values: NDArray[np.float64]) -> Sequence[float]:
    """Return ``values`` as an ``array.array('d')`` (Python floats on indexing)."""
    return array("d", values.tobytes())


def _indicator_lists(
    strategy: Strategy, bars: pl.DataFrame, params: Params
) -> dict[str, Sequence[float]]:
    """Return the strategy's indicator arrays as ``array.array`` (fast scalar reads), checked."""
    arrays = strategy.indicators(bars, params)
    if not isinstance(arrays, Mapping):
        raise StrategyError(
            f"strategy {strategy.name!r}: indicators() must return a mapping of name to "
            f"array; got {type(arrays).__name__}"
        )
    result: dict[str, Sequence[float]] = {}
    for name, values in arrays.items():
        checked = np.asarray(values)
        if (
            not isinstance(name, str)
            or checked.shape != (bars.height,)
            or checked.dtype.kind not in "biuf"
        ):
            raise StrategyError(
                f"strategy {strategy.name!r}: indicator {name!r} must be a numeric array with "
                f"one value per bar (shape ({bars.height},)); got dtype {checked.dtype}, "
                f"shape {checked.shape}"
            )
        result[name] = array_of(np.ascontiguousarray(values, dtype=np.float64))
    return result


def _check_bars(
    ts: NDArray[np.int64],
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    volume: NDArray[np.float64],
) -> None:
    """Raise `DataError` naming the first bar that breaks the bar contract.

    The matching engine may meet any bar, so the event engine checks them all:
    strictly increasing ``ts``, finite prices with ``0 < low <= open, close <=
    high``, finite ``volume >= 0``.
    """
    with np.errstate(invalid="ignore"):
        good = (
            (low > 0.0)
            & (low <= open_)
            & (open_ <= high)
            & (low <= close)
            & (close <= high)
            & (high < math.inf)
            & (volume >= 0.0)
            & (volume < math.inf)
        )
    if not good.all():
        row = int(np.argmin(good))
        raise DataError(
            f"bar {row} breaks the bar contract (0 < low <= open, close <= high, finite, "
            f"volume >= 0): open={open_[row]!r}, high={high[row]!r}, low={low[row]!r}, "
            f"close={close[row]!r}, volume={volume[row]!r}"
        )
    steps = np.diff(ts)
    if steps.size and not (steps > 0).all():
        row = int(np.argmin(steps > 0)) + 1
        raise DataError(
            f"bar {row}: ts {int(ts[row])} does not follow the previous bar's ts "
            f"{int(ts[row - 1])} (timestamps must strictly increase)"
        )


def _symbol(bars: pl.DataFrame) -> str:
    if "symbol" in bars.columns:
        symbols = bars.get_column("symbol").unique()
        if symbols.len() > 1:
            raise ConfigError("bars must hold one symbol; backtest each symbol separately")
        value = symbols.item()
        if isinstance(value, str) and value.strip():
            return value
    return "ASSET"


def run_event(
    bars: pl.DataFrame,
    strategy: Strategy,
    params: Params,
    *,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = 0.0,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing = "fractional",
    latency_bars: int = 0,
    periods_per_year: float | None = None,
    max_participation: float | None = None,
    depth: DepthModel | None = None,
    risk: RiskLimits | None = None,
    instrument: Instrument | None = None,
    fast_fills: bool = True,
) -> BacktestResult:
    """Backtest ``strategy`` (its ``handle_tick`` form) with ``params`` on ``bars``.

    ``cash``, ``commission``, ``slippage``, ``sizing``, ``latency_bars`` and
    ``periods_per_year`` mean what they mean for
    :func:`~tradepulse.backtest.run_vectorised`, and a strategy with both forms
    gets the same trades and equity here. The matching engine adds what only
    an event engine can model: ``max_participation`` (fraction of a bar's volume
    all fills on the bar may take), ``depth`` (an order-book depth model for
    orders that take liquidity), ``risk`` (pre-trade limits; a refused order is
    REJECTED with the reason in ``orders``) and ``instrument`` (tick, lot and
    cash increments; default `FLOAT_EXACT_INCREMENT` each). ``fast_fills``
    (default on) fills a target's market legs at the open without the matching
    engine when its answer is known in advance (no working order, no
    participation cap, depth model or risk limits, the default grid): the same
    fills at a fraction of the cost per order; ``False`` sends every order
    through the matching engine. Bars need ``ts``, ``open``, ``high``,
    ``low``, ``close`` and ``volume``, one symbol, strictly increasing ``ts``.

    Raises:
        ConfigError: a bars column is missing or invalid or a parameter is invalid.
        DataError: the timestamps do not strictly increase, or a bar breaks the
            bar contract (every bar is checked before the run).
        StrategyError: the strategy's indicators are malformed, it misuses the
            context, or its code raised (the message names the bar).
    """
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if bars.height == 0:
        raise ConfigError("bars must hold at least one bar; got an empty frame")
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy must be a Strategy instance; got {strategy!r}")
    if not isinstance(params, strategy.params_type):
        raise ConfigError(
            f"strategy {strategy.name!r} takes {strategy.params_type.__name__}; got {params!r}"
        )
    initial_cash, fees, friction, latency = _frictions(
        cash=cash,
        commission=commission,
        slippage=slippage,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    )
    symbol = _symbol(bars)
    default_grid = instrument is None
    if instrument is None:
        instrument = _exact_instrument(symbol)
    elif not isinstance(instrument, Instrument):
        raise ConfigError(f"instrument must be an Instrument; got {instrument!r}")
    elif instrument.symbol != symbol and symbol != "ASSET":
        raise ConfigError(f"instrument {instrument.symbol!r} does not match the bars' {symbol!r}")

    ts = _timestamps(bars)
    open_ = _column(bars, "open")
    high = _column(bars, "high")
    low = _column(bars, "low")
    close = _column(bars, "close")
    volume = _column(bars, "volume")
    _check_bars(ts, open_, high, low, close, volume)
    indicators = _indicator_lists(strategy, bars, params)

    engine = _matching_engine(
        instrument,
        fees=fees,
        friction=friction,
        latency_bars=latency,
        max_participation=max_participation,
        depth=depth,
    )
    host = _EventHost(
        instrument=instrument,
        engine=engine,
        commission=fees,
        slippage=friction,
        sizing=sizing,
        latency_bars=latency,
        risk=None if risk is None else PreTradeRisk(risk, commission=fees),
        initial_cash=initial_cash,
        fast_fills=bool(fast_fills)
        and default_grid
        and max_participation is None
        and depth is None
        and risk is None,
    )
    ctx = EventContext(host, params, indicators)
    host.ctx = ctx
    _drive(strategy, host, ctx, ts, open_, high, low, close, volume)
    return _backtest_result(
        host.ledger,
        functools.partial(host.order_frame, ts),
        ts,
        close,
        initial_cash=initial_cash,
        periods_per_year=periods_per_year,
    )


def _exact_instrument(symbol: str) -> Instrument:
    """Return the event engine's default instrument: every increment `FLOAT_EXACT_INCREMENT`."""
    return Instrument(
        symbol=symbol,
        price_increment=FLOAT_EXACT_INCREMENT,
        quantity_increment=FLOAT_EXACT_INCREMENT,
        cash_increment=FLOAT_EXACT_INCREMENT,
    )


def _frictions(
    *,
    cash: float,
    commission: float | CommissionModel | Iterable[CommissionModel] | None,
    slippage: SlippageModel | Iterable[SlippageModel] | None,
    sizing: Sizing,
    latency_bars: int,
    periods_per_year: float | None,
) -> tuple[float, CommissionTerms, SlippageTerms, int]:
    """Check the frictions of `run_event`; return (cash, commission, slippage, latency).

    Raises:
        ConfigError: a value is invalid (named with the value).
    """
    initial_cash = _check_number("cash", cash, low=0.0)
    if isinstance(latency_bars, bool) or not isinstance(latency_bars, int | np.integer):
        raise ConfigError(f"latency_bars must be an integer; got {latency_bars!r}")
    if latency_bars < 0:
        raise ConfigError(f"latency_bars must be >= 0; got {latency_bars!r}")
    check_sizing(sizing)
    fees = combine_commissions(commission)
    friction = combine_slippage(slippage)
    if periods_per_year is not None:
        _check_number("periods_per_year", periods_per_year, low=0.0)
    return initial_cash, fees, friction, int(latency_bars)


def _matching_engine(
    instrument: Instrument,
    *,
    fees: CommissionTerms,
    friction: SlippageTerms,
    latency_bars: int,
    max_participation: float | None,
    depth: DepthModel | None,
) -> MatchingEngine:
    """Return the matching engine `run_event` matches on, for these frictions.

    Raises:
        ConfigError: ``max_participation`` or ``depth`` is invalid.
    """
    return MatchingEngine(
        instrument,
        latency=FixedLatency(bars=latency_bars),
        max_participation=max_participation,
        depth=depth,
        # Zero models are left out: the engine then skips their calls on every fill.
        commission=fees if (fees.rate or fees.per_unit or fees.per_fill) else None,
        slippage=friction
        if (friction.half_spread or friction.slippage or friction.impact)
        else None,
    )


def _backtest_result(
    ledger: _Ledger,
    orders: pl.DataFrame | Callable[[], pl.DataFrame],
    ts: NDArray[np.int64],
    close: NDArray[np.float64],
    *,
    initial_cash: float,
    periods_per_year: float | None,
) -> BacktestResult:
    """Return the result of a run whose fills ``ledger`` booked over bars ``ts`` / ``close``.

    ``ledger`` is finished (an open trade marked to the last close): pass a copy
    to keep booking into the original.
    """
    count = ts.shape[0]
    fill_records, trade_records = ledger.finish(count - 1, float(close[-1]))
    latest = np.searchsorted(fill_records[_F_BAR], np.arange(count), side="right")
    position = np.concatenate(([0.0], fill_records[_F_POSITION]))[latest]
    cash_path = np.concatenate(([initial_cash], fill_records[_F_CASH]))[latest]
    equity = cash_path + position * close
    metrics = compute_metrics(
        equity,
        initial_cash=initial_cash,
        ts=ts,
        trade_pnl=trade_records[_T_PNL],
        traded_notional=fill_records[_F_QUANTITY] * fill_records[_F_PRICE],
        exposure=int(np.count_nonzero(position)) / count,
        periods_per_year=periods_per_year,
    )
    ts.setflags(write=False)
    equity.setflags(write=False)
    return BacktestResult(
        ts=ts,
        equity=equity,
        fill_records=fill_records,
        trade_records=trade_records,
        metrics=metrics,
        initial_cash=initial_cash,
        orders=orders,
    )


def _drive(
    strategy: Strategy,
    host: _EventHost,
    ctx: EventContext,
    ts: NDArray[np.int64],
    open_: NDArray[np.float64],
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    volume: NDArray[np.float64],
) -> None:
    """The hot loop: match, book, then ``handle_tick`` on every bar."""
    make_bar = functools.partial(tuple.__new__, Bar)
    # array.array columns: scalar reads as fast as a list's, and the garbage
    # collector never traverses them (a million-element list slows every collection).
    bars = map(
        make_bar,
        zip(
            array("q", ts.tobytes()),
            array("d", open_.tobytes()),
            array("d", high.tobytes()),
            array("d", low.tobytes()),
            array("d", close.tobytes()),
            array("d", volume.tobytes()),
            strict=True,
        ),
    )
    engine = host.engine
    process = engine.process_bar
    pending = host.pending
    handle = strategy.handle_tick
    index = -1
    bar: Bar | None = None
    step = "initialize"
    try:
        strategy.initialize(ctx)
        step = "bar"
        for index, bar in enumerate(bars):
            if pending and pending[0].due <= index:
                host.release_targets(index, bar)
            if host.active:
                matched = process(bar)
                if matched.fills:
                    host.book(index, matched.fills)
                host.active = engine.has_working_orders
            ctx._index = index
            ctx._bar = bar
            handle(ctx, bar)
        step = "finalize"
        strategy.finalize(ctx)
    except StrategyError as exc:
        raise StrategyError(
            f"strategy {strategy.name!r} at {_where(step, index, bar)}: {exc}"
        ) from exc
    except TradePulseError:
        raise
    except Exception as exc:
        raise StrategyError(
            f"strategy {strategy.name!r} raised {type(exc).__name__} at "
            f"{_where(step, index, bar)}: {exc}"
        ) from exc


def _where(step: str, index: int, bar: Bar | None) -> str:
    """Name the step a strategy was in: initialize, a bar (with its time) or finalize."""
    if step != "bar" or bar is None:
        return step
    return f"bar {index} (ts {bar.timestamp.isoformat()})"
