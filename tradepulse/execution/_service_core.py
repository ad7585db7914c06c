"""The execution service's state and its appliers, shared by live calls and journal replay.

Private: :class:`ServiceCore` holds the accounts, orders, engines and market
state, runs the pre-trade checks, and applies journal payloads (an applier
does the same thing whether the payload was just built by a live call or read
back from the journal, which is what makes replay deterministic).
:mod:`tradepulse.execution.service` adds the public API on top.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Final

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO
from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import Order, OrderError, OrderRecord, OrderStatus
from tradepulse.domain.portfolio import Portfolio
from tradepulse.errors import ConfigError, DataError
from tradepulse.execution import _service_codec as codec
from tradepulse.execution._service_archive import bound_keys, rebuild_orders
from tradepulse.execution._service_state import (
    BEFORE_ANY_BAR,
    CANCEL_DETAIL,
    UNBOUND_REASONS,
    AccountState,
    NotionalRateCommission,
    OrderState,
    ledger_mismatches,
    normalised,
    off_grid,
    update_event,
)
from tradepulse.execution.journal import Journal, JournalError, JournalEvent, encode_payload
from tradepulse.execution.matching import BarLike, MatchingEngine, MatchResult
from tradepulse.execution.risk import PreTradeRisk, RiskLimits
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import (
    FillView,
    OrderConflictError,
    OrderNotFoundError,
    Reason,
)
from tradepulse.execution.throttle import Throttle

__all__ = ["ServiceCore"]

_VENUE_ENDS: Final = {"ioc": Reason.IOC_UNFILLED, "fok": Reason.FOK_UNFILLED}
_RISK_PREFIXES: Final = {"insufficient cash/margin": Reason.INSUFFICIENT_MARGIN}
_add = LEDGER_CONTEXT.add
_subtract = LEDGER_CONTEXT.subtract


class ServiceCore:
    """State, checks and appliers of the execution service (see the module docstring).

    ``journal`` must be writable; if it holds events the state is rebuilt from
    them. ``config`` says how to trade; ``clock`` returns the time in UTC
    nanoseconds (stamps ``created_ns`` / ``updated_ns`` and drives the throttles).

    Raises:
        ConfigError: an argument has the wrong type, the journal is read-only, or
            the journal was written with other ledger settings (initial cash,
            commission rate, participation cap, a symbol's instrument).
        JournalError: replaying the journal does not reproduce its events.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        config: ServiceConfig,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not isinstance(journal, Journal):
            raise ConfigError(f"journal must be a Journal, got {journal!r}")
        if journal.read_only or journal.closed:
            raise ConfigError(f"journal {journal.path} must be open for writing")
        if not isinstance(config, ServiceConfig):
            raise ConfigError(f"config must be a ServiceConfig, got {config!r}")
        if not callable(clock):
            raise ConfigError(f"clock must be callable, got {clock!r}")
        self._journal = journal
        self._config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._failure: BaseException | None = None
        self._commission = (
            NotionalRateCommission(config.commission_rate) if config.commission_rate else None
        )
        limits = config.risk
        self._risk = PreTradeRisk(limits, commission=self._commission)
        self._quantity_risk = PreTradeRisk(
            RiskLimits(
                max_order_quantity=limits.max_order_quantity,
                max_position=limits.max_position,
                margin_rate=None,
            )
        )
        self._needs_price = any(
            value is not None
            for value in (
                limits.max_order_notional,
                limits.max_position_notional,
                limits.margin_rate,
            )
        )
        account_limit, strategy_limit = config.account_rate_limit, config.strategy_rate_limit
        self._account_throttle = None if account_limit is None else Throttle(account_limit)
        self._strategy_throttle = None if strategy_limit is None else Throttle(strategy_limit)
        self._accounts: dict[str, AccountState] = {}
        self._portfolios: dict[str, Portfolio] = {}
        self._orders: dict[str, OrderState] = {}
        # symbol -> account -> strategy tag (None: untagged orders) -> engine: each
        # strategy's orders, and an account's untagged ones, have their own engine
        # and so their own participation budget on every bar.
        self._engines: dict[str, dict[str, dict[str | None, MatchingEngine]]] = {}
        self._instruments: dict[str, Instrument | None] = {}
        self._last_bar_ts: dict[str, int] = {}
        self._last_close: dict[str, Decimal] = {}
        self._kill_global = False
        self._kill_reason_global = ""
        self._order_count = 0
        self._fill_count = 0
        # Ended orders kept in memory, oldest ended first (when a retention is configured).
        self._ended: deque[str] = deque()
        self._evicted = 0  # ended orders only the journal holds
        replayed = self._replay()
        self._journal.append(
            [
                JournalEvent(
                    "session",
                    self._now(),
                    {"config": config.to_mapping(), "replayed_events": replayed},
                )
            ]
        )

    # ----------------------------------------------------------------- internals

    def _now(self) -> int:
        value = self._clock()
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"clock must return integer nanoseconds, got {value!r}")
        return value

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise JournalError(
                f"the execution service stopped after a failure ({self._failure!r}); "
                "restart it to rebuild its state from the journal"
            )

    @contextlib.contextmanager
    def _mutation(self) -> Iterator[None]:
        """Apply and journal a change; any failure here stops the service (fail-stop).

        Once the change is journaled, the orders ended beyond the configured
        retention are evicted from memory (never during a change: its appliers
        may still read an order that just ended).
        """
        try:
            yield
            self._evict_ended()
        except BaseException as error:
            self._failure = error
            raise

    def _account(self, name: str) -> AccountState:
        found = self._accounts.get(name)
        if found is None:
            found = self._accounts[name] = AccountState(name)
            self._portfolios[name] = Portfolio(cash=self._config.initial_cash)
        return found

    def _instrument_for(self, symbol: str) -> Instrument | None:
        if symbol not in self._instruments:
            self._instruments[symbol] = self._config.instrument(symbol)
        return self._instruments[symbol]

    def _engine_ts(self, symbol: str) -> int:
        return self._last_bar_ts.get(symbol, BEFORE_ANY_BAR)

    def _engine(
        self, account: str, strategy: str | None, symbol: str, instrument: Instrument
    ) -> MatchingEngine:
        """Return (creating it on first use) the engine of ``account``'s ``strategy`` orders."""
        by_strategy = self._engines.setdefault(symbol, {}).setdefault(account, {})
        engine = by_strategy.get(strategy)
        if engine is None:
            engine = by_strategy[strategy] = MatchingEngine(
                instrument,
                max_participation=self._config.max_participation,
                commission=self._commission,
            )
        return engine

    def _engine_of(self, state: OrderState) -> MatchingEngine:
        return self._engines[state.record.order.symbol][state.account][state.strategy]

    def _refresh_open(self, state: OrderState) -> None:
        """Bring the account's open-order set and aggregates up to date with ``state``.

        Called after every change of an order's status or filled quantity
        (accept, fill, cancel, replace, expiry, kill switch; live and replay).
        """
        account = self._accounts[state.account]
        record = state.record
        counted: Decimal | None = None
        if record.is_open:
            account.open_ids[state.order_id] = None
            counted = record.remaining_quantity
        else:
            account.open_ids.pop(state.order_id, None)
            if not state.ended:
                state.ended = True
                if self._config.retain_ended_orders is not None:
                    self._ended.append(state.order_id)
        previous = state.counted
        if previous is None and counted is None:
            return
        key = (record.order.symbol, record.order.side)
        total = account.open_quantity.get(key, ZERO)
        count = account.open_counts.get(key, 0)
        if previous is not None:
            total, count = _subtract(total, previous), count - 1
        if counted is not None:
            total, count = _add(total, counted), count + 1
        if count:
            account.open_quantity[key], account.open_counts[key] = total, count
        else:
            # No working order left: start the next sum afresh (not at 0E-12 or the like).
            del account.open_quantity[key], account.open_counts[key]
        state.counted = counted

    def _open_quantity(
        self, account: AccountState, order: Order, replacing: OrderState | None
    ) -> Decimal:
        """Return the unfilled units of ``account``'s working orders of ``order``'s symbol and side.

        The order being replaced (``replacing``) does not count: its
        reservation is released for its replacement.
        """
        key = (order.symbol, order.side)
        total = account.open_quantity.get(key, ZERO)
        if replacing is not None and replacing.counted is not None:
            previous = replacing.record.order
            if (previous.symbol, previous.side) == key:
                total = _subtract(total, replacing.counted)
        return total

    def _evict_ended(self) -> None:
        """Drop the ended orders beyond ``retain_ended_orders`` from memory, oldest ended first.

        The journal keeps everything about them; :meth:`_lookup` and the
        listing reads rebuild them from it when asked.
        """
        retain = self._config.retain_ended_orders
        ended = self._ended
        while retain is not None and len(ended) > retain:
            state = self._orders.pop(ended.popleft())
            account = self._accounts[state.account]
            del account.order_ids[state.order_id]
            for key in state.keys:
                if account.keys.get(key) == state.order_id:
                    del account.keys[key]
            for fill in state.fills:
                del account.fills[fill.fill_id]
            engine = (
                self._engines.get(state.record.order.symbol, {})
                .get(state.account, {})
                .get(state.strategy)
            )
            if engine is not None and state.order_id in engine.orders:
                engine.forget(state.order_id)
            account.evicted += 1
            self._evicted += 1

    def _lookup(self, order_id: object) -> OrderState | None:
        """Return the order ``order_id`` (from memory, else rebuilt from the journal), or None."""
        if not isinstance(order_id, str):
            return None
        state = self._orders.get(order_id)
        if state is None and self._evicted:
            number = codec.order_number(order_id)
            if number is not None and number <= self._order_count:
                state = rebuild_orders(self._journal, (order_id,)).get(order_id)
        return state

    def _archived_key_owner(self, account: str, key: str) -> str | None:
        """Return the evicted order that ``key`` is bound to in ``account`` (None: unbound)."""
        return bound_keys(self._journal.keyed_entries(account, key=key)).get(key)

    def _owned(self, order_id: str, account: str) -> OrderState:
        state = self._lookup(order_id)
        if state is None or state.account != account:
            raise OrderNotFoundError(f"order {order_id!r} not found in account {account!r}")
        return state

    def _idempotent(
        self, account: AccountState, keys: tuple[str | None, ...], fingerprint: codec.Fingerprint
    ) -> OrderState | None:
        for key in keys:
            if key is None:
                continue
            order_id = account.keys.get(key)
            if order_id is None and account.evicted:
                order_id = self._archived_key_owner(account.name, key)
            state = None if order_id is None else self._lookup(order_id)
            if state is None:
                continue
            if state.fingerprint != fingerprint:
                raise OrderConflictError(
                    f"key {key!r} of account {account.name!r} already belongs to order "
                    f"{order_id}, which was created by a different request"
                )
            return state
        return None

    # ----------------------------------------------------------------- pre-trade checks

    def _pre_trade(
        self,
        account: AccountState,
        order: Order,
        *,
        strategy: str | None,
        now_ns: int,
        replacing: OrderState | None,
    ) -> tuple[Reason | None, str | None, Instrument | None]:
        """Return (reason, detail, instrument) for a new order; reason None: accept it."""
        symbol = order.symbol
        instrument = self._instrument_for(symbol)
        if self._kill_global or account.kill_switch:
            scope, why = (
                ("global", self._kill_reason_global)
                if self._kill_global
                else (f"account {account.name!r}", account.kill_reason)
            )
            blocked = f"kill_switch: the {scope} kill switch is engaged"
            return Reason.KILL_SWITCH, blocked + (f" ({why})" if why else ""), instrument
        refusal = self._throttle(account.name, strategy, now_ns)
        if refusal is not None:
            return refusal[0], refusal[1], instrument
        if instrument is None:
            return (
                Reason.UNKNOWN_SYMBOL,
                f"unknown_symbol: {symbol!r} is not configured and unknown symbols are rejected",
                None,
            )
        grid = off_grid(order, instrument)
        if grid is not None:
            return Reason.OFF_GRID, grid, instrument
        open_count = len(account.open_ids)
        if replacing is not None and replacing.order_id in account.open_ids:
            open_count -= 1
        limit = self._config.max_open_orders
        if limit is not None and open_count >= limit:
            return (
                Reason.MAX_OPEN_ORDERS,
                f"max_open_orders: account {account.name!r} has {open_count} open orders, "
                f"the limit is {limit}",
                instrument,
            )
        pending = self._open_quantity(account, order, replacing)
        portfolio = self._portfolios[account.name]
        reference = self._last_close.get(symbol)
        if reference is None:
            reference = order.limit_price if order.limit_price is not None else order.stop_price
        detail: str | None
        if reference is None:
            detail = self._quantity_risk.check(
                order, portfolio=portfolio, reference_price=Decimal(1), open_quantity=pending
            )
            if detail is None and self._needs_price:
                return (
                    Reason.NO_MARKET_PRICE,
                    f"no_market_price: {symbol!r} has had no bar yet and a notional or margin "
                    "limit needs a price; send a limit order or wait for the first bar",
                    instrument,
                )
        else:
            detail = self._risk.check(
                order, portfolio=portfolio, reference_price=reference, open_quantity=pending
            )
        if detail is not None:
            prefix = detail.split(":", 1)[0]
            return _RISK_PREFIXES.get(prefix) or Reason(prefix), detail, instrument
        return None, None, instrument

    def _throttle(
        self, account: str, strategy: str | None, now_ns: int
    ) -> tuple[Reason, str] | None:
        checks: list[tuple[Throttle, str, Reason, str]] = []
        if self._account_throttle is not None:
            checks.append(
                (self._account_throttle, account, Reason.RATE_LIMIT_ACCOUNT, f"account {account!r}")
            )
        if self._strategy_throttle is not None and strategy is not None:
            checks.append(
                (
                    self._strategy_throttle,
                    f"{account}\x00{strategy}",
                    Reason.RATE_LIMIT_STRATEGY,
                    f"strategy {strategy!r} of account {account!r}",
                )
            )
        for throttle, key, reason, who in checks:
            wait = throttle.wait_ns(key, now_ns)
            if wait > 0:
                limit = throttle.limit
                return reason, (
                    f"{reason.value}: {who} may send {limit.per_second:g} orders per second "
                    f"(burst {limit.capacity}); retry in {wait / 1e9:.6f} s"
                )
        for throttle, key, _, _ in checks:
            throttle.consume(key, now_ns)
        return None

    # ----------------------------------------------------------------- appliers (live and replay)

    def _next_order_id(self) -> str:
        return codec.order_id_of(self._order_count + 1)

    def _claim_order_id(self, order_id: str) -> None:
        expected = self._next_order_id()
        if order_id != expected:
            raise JournalError(f"order id {order_id!r} is out of sequence (expected {expected!r})")
        self._order_count += 1

    def _check_instrument(self, symbol: str, journaled: object) -> Instrument:
        instrument = self._instrument_for(symbol)
        if instrument is None or codec.encode_instrument(instrument) != journaled:
            raise ConfigError(
                f"the journal {self._journal.path} traded {symbol!r} with the increments "
                f"{journaled}, but the configuration gives "
                f"{codec.encode_instrument(instrument)}; use the journal's instruments "
                "or a new journal"
            )
        return instrument

    def _new_state(
        self, payload: dict[str, Any], ts_ns: int, order: Order, fingerprint: codec.Fingerprint
    ) -> OrderState:
        account = self._account(payload["account"])
        rejected = payload["status"] == "rejected"
        record = OrderRecord(order, submitted_ts_ns=self._engine_ts(order.symbol))
        state = OrderState(
            order_id=order.client_order_id,
            account=account.name,
            strategy=payload["strategy"],
            client_order_id=payload["request"]["client_order_id"],
            fingerprint=fingerprint,
            record=record,
            ts_ns=ts_ns,
            replaces=payload.get("replaces"),
        )
        if rejected:
            record.reject(ts_ns=record.submitted_ts_ns, reason=str(payload["reason_detail"]))
            state.reason, state.reason_detail = payload["reason"], payload["reason_detail"]
        elif payload["status"] != "accepted":
            raise JournalError(f"unknown order status {payload['status']!r}")
        self._orders[state.order_id] = state
        account.order_ids[state.order_id] = None
        if rejected:
            self._refresh_open(state)  # ended at birth
        return state

    def _register_keys(self, state: OrderState, keys: tuple[str | None, ...]) -> None:
        if state.reason in UNBOUND_REASONS:
            return  # throttled: the request never ran, a retry with its key runs afresh
        account = self._accounts[state.account]
        state.keys = tuple(
            key
            for key in keys
            if key is not None and account.keys.setdefault(key, state.order_id) == state.order_id
        )

    def _apply_submit(self, payload: dict[str, Any], ts_ns: int, *, live: bool) -> OrderState:
        request = codec.decode_request(payload["request"])
        self._claim_order_id(payload["order_id"])
        order = codec.order_of(request, payload["order_id"])
        fingerprint = codec.fingerprint_of(request, payload["strategy"])
        state = self._new_state(payload, ts_ns, order, fingerprint)
        self._register_keys(state, (payload["idempotency_key"], request.client_order_id))
        if payload["status"] == "accepted":
            instrument = self._check_instrument(order.symbol, payload["instrument"])
            engine = self._engine(state.account, state.strategy, order.symbol, instrument)
            update = engine.submit(order, ts_ns=self._engine_ts(order.symbol))
            state.record = engine.order(state.order_id)
            if update.status is OrderStatus.REJECTED:
                if not live:
                    raise JournalError(f"the venue rejects {state.order_id}: {update.reason}")
                payload.update(status="rejected", reason=Reason.VENUE.value)
                payload["reason_detail"] = f"venue: {update.reason}"
                state.reason, state.reason_detail = Reason.VENUE.value, payload["reason_detail"]
            self._refresh_open(state)
        return state

    def _apply_replace(self, payload: dict[str, Any], ts_ns: int) -> OrderState:
        old = self._orders[payload["replaces"]]
        request = codec.decode_request(payload["request"])
        self._claim_order_id(payload["order_id"])
        order = codec.order_of(request, payload["order_id"])
        changes = payload["changes"]
        fingerprint = codec.replace_fingerprint(
            old.order_id,
            codec.decimal_from(changes["quantity"]),
            codec.decimal_from(changes["limit_price"]),
            codec.decimal_from(changes["stop_price"]),
        )
        state = self._new_state(payload, ts_ns, order, fingerprint)
        self._register_keys(state, (payload["idempotency_key"],))
        if payload["status"] == "accepted":
            self._check_instrument(order.symbol, payload["instrument"])
            engine = self._engine_of(old)
            update = engine.replace(
                old.order_id,
                new_client_order_id=state.order_id,
                ts_ns=self._engine_ts(order.symbol),
                quantity=order.quantity,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
            )
            if update.status is not OrderStatus.ACCEPTED:
                raise JournalError(f"the venue did not accept {state.order_id}: {update.reason}")
            state.record = engine.order(state.order_id)
            old.reason, old.reason_detail = Reason.REPLACED.value, f"replaced by {state.order_id}"
            old.replaced_by, old.updated_ns = state.order_id, ts_ns
            self._refresh_open(old)
            self._refresh_open(state)
        return state

    def _apply_cancel(self, payload: dict[str, Any], ts_ns: int) -> OrderState:
        state = self._orders[payload["order_id"]]
        symbol = state.record.order.symbol
        self._engine_of(state).cancel(
            state.order_id, ts_ns=self._engine_ts(symbol), reason=CANCEL_DETAIL
        )
        state.reason, state.reason_detail = Reason.CANCEL_REQUESTED.value, CANCEL_DETAIL
        state.updated_ns = ts_ns
        self._refresh_open(state)
        return state

    def _apply_kill_switch(
        self, payload: dict[str, Any], ts_ns: int
    ) -> tuple[list[JournalEvent], list[OrderState]]:
        name, engaged, why = payload["account"], bool(payload["engaged"]), str(payload["reason"])
        if name is None:
            self._kill_global, self._kill_reason_global = engaged, why
        else:
            account = self._account(name)
            account.kill_switch, account.kill_reason = engaged, why
        derived: list[JournalEvent] = []
        cancelled: list[OrderState] = []
        if not engaged:
            return derived, cancelled
        scope = "global" if name is None else f"account {name!r}"
        detail = f"kill_switch: cancelled by the {scope} kill switch" + (f" ({why})" if why else "")
        for account_name in sorted(self._accounts) if name is None else [name]:
            for order_id in list(self._accounts[account_name].open_ids):
                state = self._orders[order_id]
                self._engine_of(state).cancel(
                    order_id, ts_ns=self._engine_ts(state.record.order.symbol), reason=detail
                )
                state.reason, state.reason_detail = Reason.KILL_SWITCH.value, detail
                state.updated_ns = ts_ns
                self._refresh_open(state)
                cancelled.append(state)
                derived.append(update_event(state, ts_ns))
        return derived, cancelled

    def _apply_bar(
        self, payload: dict[str, Any], ts_ns: int
    ) -> tuple[list[JournalEvent], list[FillView]]:
        symbol, bar = codec.decode_bar(payload)
        instrument = self._instrument_for(symbol)
        if instrument is None:
            raise ConfigError(f"no instrument for the bar's symbol {symbol!r}")
        derived: list[JournalEvent] = []
        fills: list[FillView] = []
        engines = self._engines.get(symbol, {})
        for account_name in sorted(engines):
            result = _match_account(engines[account_name], bar)
            portfolio = self._portfolios[account_name]
            for fill in result.fills:
                state = self._orders[fill.client_order_id]
                self._fill_count += 1
                view = FillView(
                    fill_id=codec.fill_id_of(self._fill_count),
                    order_id=state.order_id,
                    account=account_name,
                    strategy=state.strategy,
                    symbol=symbol,
                    side=fill.side,
                    quantity=fill.quantity,
                    price=fill.price,
                    commission=fill.commission,
                    liquidity=fill.liquidity,
                    ts_ns=fill.ts_ns,
                )
                portfolio.apply_fill(fill)
                state.fills.append(view)
                self._accounts[account_name].fills[view.fill_id] = view
                state.updated_ns = ts_ns
                fills.append(view)
                derived.append(JournalEvent("fill", ts_ns, codec.encode_fill(view)))
            for update in result.updates:
                state = self._orders[update.client_order_id]
                self._refresh_open(state)
                if update.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
                    tif = state.record.order.time_in_force.value
                    code = _VENUE_ENDS.get(tif, Reason.DAY_EXPIRED)
                    state.reason, state.reason_detail = code.value, update.reason
                    state.updated_ns = ts_ns
                    derived.append(update_event(state, ts_ns))
        close = instrument.price_from_float(bar.close)
        self._last_close[symbol] = close
        self._last_bar_ts[symbol] = bar.ts
        for account_name in engines:  # each account once, whatever its engines
            portfolio = self._portfolios[account_name]
            if symbol in portfolio.positions:
                portfolio.mark(symbol, close)
        return derived, fills

    # ----------------------------------------------------------------- replay

    def _replay(self) -> int:
        """Rebuild the state from the journal; return the last sequence number read."""
        pending: deque[JournalEvent] = deque()
        last = 0
        path = self._journal.path
        for entry in self._journal.entries():
            last = entry.sequence
            where = f"journal {path}, event {entry.sequence} ({entry.kind})"
            if pending:
                expected = pending.popleft()
                derived = (expected.kind, expected.ts_ns, normalised(expected.payload))
                if (entry.kind, entry.ts_ns, entry.payload) != derived:
                    raise JournalError(
                        f"{where} differs from what the replay derives ({expected.kind} "
                        f"at {expected.ts_ns}: {encode_payload(expected.payload)}); "
                        "the journal is corrupted or was written by incompatible code",
                        sequence=entry.sequence,
                    )
                continue
            try:
                pending.extend(self._replay_entry(entry.kind, entry.payload, entry.ts_ns))
                self._evict_ended()
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
            except (
                JournalError,
                OrderError,
                DataError,
                ArithmeticError,  # decimal.InvalidOperation: a malformed decimal
                LookupError,
                TypeError,
                ValueError,
            ) as error:
                raise JournalError(
                    f"{where} cannot be replayed: {error}", sequence=entry.sequence
                ) from None
        if pending:
            missing = pending[0]
            raise JournalError(
                f"journal {path} ends at event {last}, but the replay derives a further "
                f"{missing.kind} event: {encode_payload(missing.payload)}",
                sequence=last + 1,
            )
        return last

    def _replay_entry(self, kind: str, payload: dict[str, Any], ts_ns: int) -> list[JournalEvent]:
        """Apply one journaled input event; return the events it must be followed by."""
        if kind == "session":
            self._check_ledger(payload["config"])
        elif kind == "order":
            self._apply_submit(payload, ts_ns, live=False)
        elif kind == "replace":
            self._apply_replace(payload, ts_ns)
        elif kind == "cancel":
            self._apply_cancel(payload, ts_ns)
        elif kind == "bar":
            return self._apply_bar(payload, ts_ns)[0]
        elif kind == "kill_switch":
            return self._apply_kill_switch(payload, ts_ns)[0]
        else:
            raise JournalError(f"unexpected {kind!r} event: no preceding event derives it")
        return []

    def _check_ledger(self, journaled: dict[str, Any]) -> None:
        """Refuse to replay a journal written with other ledger settings."""
        mismatches = ledger_mismatches(journaled, self._config)
        if mismatches:
            raise ConfigError(
                f"the journal {self._journal.path} was written with {'; '.join(mismatches)}; "
                "start with the journal's settings or a new journal"
            )


def _tag_order(strategy: str | None) -> tuple[bool, str]:
    """Sort key of an account's engines: untagged orders first, then strategy tags by name."""
    return strategy is not None, strategy or ""


def _arrival(order_id: str) -> int:
    """Return the arrival rank of the server order ``order_id`` (its number)."""
    number = codec.order_number(order_id)
    if number is None:
        raise JournalError(f"{order_id!r} is not a server order id")
    return number


def _match_account(by_strategy: dict[str | None, MatchingEngine], bar: BarLike) -> MatchResult:
    """Match one account's engines of a symbol against ``bar``; return the merged result.

    The engines (untagged orders first, then strategy tags by name) each spend
    their own participation budget. Their fills and updates are merged in the
    orders' arrival order (server order number; an order's own events keep
    their order), which is the order a single engine holding all of the
    account's orders gives them: journals stay independent of the split.
    """
    if len(by_strategy) == 1:
        (engine,) = by_strategy.values()
        return engine.process_bar(bar)
    results = [by_strategy[tag].process_bar(bar) for tag in sorted(by_strategy, key=_tag_order)]
    fills = [fill for result in results for fill in result.fills]
    updates = [update for result in results for update in result.updates]
    fills.sort(key=lambda fill: _arrival(fill.client_order_id))
    updates.sort(key=lambda update: _arrival(update.client_order_id))
    return MatchResult(fills=tuple(fills), updates=tuple(updates))
