"""The execution service: order management, pre-trade checks, paper exchange and journal.

:class:`ExecutionService` is pure Python and deterministic given its inputs
(requests, bars and its injectable ``clock``); an HTTP layer wraps it.

- **Orders.** :meth:`~ExecutionService.submit` runs, in order: the kill switch,
  the order-rate throttles (per account, then per account and strategy; a
  refused order spends no token), the symbol (``unknown_symbol``), the lot and
  tick grid (``off_grid``), ``max_open_orders`` and the pre-trade risk limits
  (:class:`~tradepulse.execution.PreTradeRisk`). A refusal is not an
  exception: the order is recorded REJECTED with a
  :class:`~tradepulse.execution.Reason` code and a detail that starts with the
  code (``insufficient cash/margin:`` for ``insufficient_margin``; the risk
  module's wording). Malformed requests raise
  :class:`~tradepulse.domain.OrderError` and record nothing.
- **Reference price.** Risk checks value an order at the symbol's last close;
  before the symbol's first bar a limit (else stop) order is valued at its own
  price, and a market order is rejected ``no_market_price`` when a notional or
  margin limit is configured (the default ``margin_rate`` of 1 is one).
- **Paper exchange.** One :class:`~tradepulse.execution.MatchingEngine` per
  account, symbol and strategy tag (the ``strategy`` given to
  :meth:`~ExecutionService.submit`; an account's untagged orders share one
  engine), in market time: an order fills from the symbol's next bar on
  (market orders at its open, limits and stops inside its range, partial
  fills under the participation cap, DAY orders expire when a bar of a later
  UTC date arrives). :meth:`~ExecutionService.on_bar` matches every
  account's orders for the bar's symbol, books the fills into the account's
  :class:`~tradepulse.domain.Portfolio` and marks positions at the close. A
  bar no newer than the symbol's last is ignored.
- **Liquidity per strategy.** Each engine has its own participation budget
  (``max_participation`` of the bar's volume), so a strategy's orders fill
  exactly as its runner's shadow engine (holding only that strategy's orders,
  with the same cap) fills them, whatever else the account trades, and manual
  orders have a budget of their own. Everything else is account-wide:
  positions, cash and PnL, the pre-trade checks and their running sums,
  ``max_open_orders``, the throttles, the kill switch (it cancels in every
  engine of the account). A replacement stays in its order's engine. A bar is
  matched account by account (in name order); an account's engines run
  untagged first, then by tag, and their fills and status changes are merged
  in the orders' arrival order (server order number), which is the order one
  shared engine gave them: fill ids, the journal and replay are deterministic.
  A journal written when an account's engine was shared per symbol replays
  identically unless orders of two tags (or tagged and untagged ones) met a
  bar on which the shared cap bound; such a bar may give other fills now, and
  then the replay refuses to start (:class:`JournalError` naming the first
  event that differs from what it derives), never diverging silently.
- **Cancel / replace.** A replace is atomic: the replacement (for the given
  quantity, else the unfilled remainder; the given prices, else the old ones)
  goes through every pre-trade check with the old order's reservation
  released; if it is rejected, the old order keeps working. The replacement
  keeps the client order id as a tag; idempotency keys stay with the orders
  they created.
- **Idempotency.** ``idempotency_key`` and the request's ``client_order_id``
  are both keys within the account: a request repeating a known key gets the
  original order (``created=False``; a rejected original included) if it
  repeats the request too, else :class:`OrderConflictError`. An order refused
  by a throttle (``rate_limit_*``) is recorded but binds no key: the request
  never ran, so a retry with the same key after a pause is evaluated afresh.
  Keys survive restarts. A retried replace needs its ``idempotency_key``
  (without one, the retry finds the old order replaced: OrderConflictError).
- **Durability.** Each mutating call appends its events to the
  :class:`~tradepulse.execution.journal.Journal` in one transaction and
  commits before it returns. A service built on a journal with events replays
  them: journaled orders are applied as recorded (throttles are not re-run),
  bars go through the engines again, and every re-derived fill, expiry and
  venue cancel must equal the journaled one (:class:`JournalError` names the
  first event that differs). A failure after validation (say, the disk is
  full) stops the service: every later call raises :class:`JournalError`
  until a restart rebuilds the state. Throttle buckets start full after a
  restart.
- **Memory.** Working orders live in memory, and so do the most recently
  ended ones (``retain_ended_orders`` of the config, 100,000 by default);
  older ended orders are evicted and read back from the journal's indexes
  whenever asked for (one order, a listing, keyed orders, an idempotent
  retry), so every answer is the same as if they had stayed, and a long
  session's memory stays bounded. Pre-trade checks keep running sums of the
  working orders per account, symbol and side, so they cost the same at
  6,000 working orders as at none.
- **Group commit.** Calls made inside :meth:`~ExecutionService.commit_group`
  share one journal transaction, committed (and synced) once when the block
  ends; their answers are durable only then, so a caller acknowledges none of
  them before the block has ended without error. A failed group commit stops
  the service like a failed single commit.

Calls are serialised by a lock, so threads may share one service.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Final

from tradepulse.domain.arithmetic import LEDGER_CONTEXT, ZERO
from tradepulse.domain.orders import OrderError, OrderStatus
from tradepulse.domain.portfolio import Portfolio
from tradepulse.execution import _service_codec as codec
from tradepulse.execution._service_archive import bound_keys, rebuild_orders
from tradepulse.execution._service_core import ServiceCore
from tradepulse.execution._service_state import BEFORE_ANY_BAR, OrderState
from tradepulse.execution.journal import Journal, JournalEvent
from tradepulse.execution.matching import BarLike
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import (
    AccountView,
    FillView,
    InvalidBarError,
    OrderConflictError,
    OrderRequest,
    OrderView,
    PositionView,
    SubmitOutcome,
)

__all__ = ["MAX_KILL_SWITCH_REASON_LENGTH", "ExecutionService"]

#: Longest kill-switch reason, in characters.
MAX_KILL_SWITCH_REASON_LENGTH: Final = 256
# Display precision of average prices (not ledger values).
_DISPLAY: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)
_add = LEDGER_CONTEXT.add
# Orders read from the journal (or memory) at a time when listing.
_PAGE: Final = 500


class ExecutionService(ServiceCore):
    """Order management and a paper exchange over a journal (see the module docstring).

    ``journal`` must be open for writing; if it holds events, the state is
    rebuilt from them. ``config`` says how to trade; ``clock`` returns the time
    in UTC nanoseconds (it stamps ``created_ns`` / ``updated_ns`` and drives the
    throttles). Every start appends a ``session`` event recording the config.

    Raises:
        ConfigError: an argument has the wrong type, the journal is read-only or
            closed, or it was written with other ledger settings (initial cash,
            commission rate, participation cap, a traded symbol's instrument).
        JournalError: replaying the journal does not reproduce its events (the
            message and ``error.sequence`` name the first bad event).
    """

    @property
    def config(self) -> ServiceConfig:
        """Return the configuration."""
        return self._config

    @property
    def journal(self) -> Journal:
        """Return the journal the service writes."""
        return self._journal

    def accounts(self) -> list[str]:
        """Return the accounts that placed an order or had a kill switch set, by name."""
        with self._lock:
            return sorted(self._accounts)

    def last_bar_ts(self, symbol: str) -> int | None:
        """Return the stamp of the last bar processed for ``symbol`` (None before the first)."""
        with self._lock:
            return self._last_bar_ts.get(symbol)

    def last_price(self, symbol: str) -> Decimal | None:
        """Return ``symbol``'s last close on its tick grid (None before its first bar)."""
        with self._lock:
            return self._last_close.get(symbol)

    def bars(self, symbol: str, *, since_ts: int | None = None) -> list[BarLike]:
        """Return the bars of ``symbol`` the service processed (from ``since_ts`` on), oldest first.

        They are read back from the journal, bit for bit as they were matched
        (a bar the service ignored as not newer is not there), through its
        index of bars by symbol: a read for rebuilding a strategy runner, not
        for a hot path.
        """
        with self._lock:
            found: list[BarLike] = []
            for entry in self._journal.bar_entries(symbol):
                _, bar = codec.decode_bar(entry.payload)
                if since_ts is None or bar.ts >= since_ts:
                    found.append(bar)
            return found

    def keyed_orders(self, *, account: str, prefix: str = "") -> dict[str, OrderView]:
        """Return ``account``'s orders by the keys bound to them that start with ``prefix``.

        Keys are idempotency keys and client order ids (see the module
        docstring): an order submitted with both has one entry per key; an
        order refused by a throttle binds none. Entries are in binding order.
        """
        with self._lock:
            known = self._accounts.get(account)
            if known is None:
                return {}
            if not known.evicted:
                owners = {key: oid for key, oid in known.keys.items() if key.startswith(prefix)}
            else:  # some owners are only in the journal: read every binding from there
                entries = self._journal.keyed_entries(account, prefix=prefix)
                owners = bound_keys(entries, prefix=prefix)
            states = self._states(owners.values())
            return {key: self._order_view(states[order_id]) for key, order_id in owners.items()}

    def order_bar_ts(self, order_id: str, *, account: str) -> int | None:
        """Return the stamp of the symbol's last matched bar when order ``order_id`` last changed.

        None: the service had matched no bar of the symbol then. For an order
        cancelled between bars (a cancel, a replace, the kill switch) it is the
        bar after which the cancel took effect: the order worked through that
        bar and no later one (a strategy's runner is told so, see
        :mod:`tradepulse.serve.strategies`). A read-only query.

        Raises:
            OrderNotFoundError: ``account`` has no order ``order_id``.
        """
        with self._lock:
            ts = self._owned(order_id, account).record.updated_ts_ns
            return None if ts == BEFORE_ANY_BAR else ts

    @contextlib.contextmanager
    def commit_group(self) -> Iterator[None]:
        """Hold the service and journal every call made inside the block in one commit.

        Other threads' calls wait until the block ends. The calls inside return
        as usual, but their events become durable only when the block ends
        without error: answer their callers only then. If the block raises or
        the commit fails, nothing of the group is journaled and, if it changed
        anything, the service stops (every later call raises
        :class:`~tradepulse.execution.journal.JournalError` until a restart
        rebuilds the state from the journal). A block inside a block joins the
        outer one.

        Raises:
            JournalError: the group's commit failed (the service stops), or the
                journal is closed.
        """
        with self._lock:
            if self._journal.in_group:
                yield
                return
            start = self._journal.last_sequence
            appended = False
            try:
                with self._journal.group():
                    try:
                        yield
                    finally:
                        appended = self._journal.last_sequence != start
            except BaseException as error:
                if appended and self._failure is None:
                    self._failure = error  # applied in memory, not in the journal
                raise

    # ----------------------------------------------------------------- orders

    def submit(
        self,
        request: OrderRequest,
        *,
        account: str,
        strategy: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitOutcome:
        """Check ``request``, accept or reject it, journal it, and return the order.

        ``created`` is False when ``idempotency_key`` or the request's client
        order id names an earlier order of ``account`` made by the same request:
        that order is returned and nothing is recorded.

        Raises:
            OrderError: the request, account, strategy or key is malformed.
            OrderConflictError: the key belongs to an order made by another request.
            JournalError: the journal failed (the service stops) or the service
                stopped earlier.
        """
        with self._lock:
            self._check_usable()
            self._check_names(account, strategy, idempotency_key)
            order_id = self._next_order_id()
            order = codec.order_of(request, order_id)
            known = self._accounts.get(account)
            if known is not None:
                keys = (idempotency_key, request.client_order_id)
                found = self._idempotent(known, keys, codec.fingerprint_of(request, strategy))
                if found is not None:
                    return SubmitOutcome(order=self._order_view(found), created=False)
            now = self._now()
            reason, detail, instrument = self._pre_trade(
                self._account(account), order, strategy=strategy, now_ns=now, replacing=None
            )
            payload: dict[str, Any] = {
                "order_id": order_id,
                "account": account,
                "strategy": strategy,
                "idempotency_key": idempotency_key,
                "request": codec.encode_request(request),
                "status": "accepted" if reason is None else "rejected",
                "reason": None if reason is None else reason.value,
                "reason_detail": detail,
                "instrument": codec.encode_instrument(instrument),
            }
            with self._mutation():
                state = self._apply_submit(payload, now, live=True)
                self._journal.append([JournalEvent("order", now, payload)])
            return SubmitOutcome(order=self._order_view(state), created=True)

    def cancel(self, order_id: str, *, account: str) -> OrderView:
        """Cancel the working order ``order_id`` of ``account``; fills so far stand.

        Raises:
            OrderError: ``account`` is malformed.
            OrderNotFoundError: ``account`` has no order ``order_id``.
            OrderConflictError: the order is already filled, cancelled, rejected or expired.
            JournalError: the journal failed (the service stops).
        """
        with self._lock:
            self._check_usable()
            self._check_names(account, None, None)
            state = self._owned(order_id, account)
            if not state.record.is_open:
                raise OrderConflictError(
                    f"order {order_id} is {state.record.status}; only a working order "
                    "can be cancelled"
                )
            now = self._now()
            payload = {"order_id": order_id, "account": account}
            with self._mutation():
                self._apply_cancel(payload, now)
                self._journal.append([JournalEvent("cancel", now, payload)])
            return self._order_view(state)

    def replace(
        self,
        order_id: str,
        *,
        account: str,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        idempotency_key: str | None = None,
    ) -> OrderView:
        """Replace the working order ``order_id``; return the new order.

        The new order is for ``quantity`` units (default: the old order's
        unfilled remainder) at the given prices (default: the old ones). If it
        passes the pre-trade checks the old order is cancelled with
        ``replaced_by`` set; if it is rejected, the old order keeps working and
        the rejected replacement is returned.

        Raises:
            OrderError: no field is given, a value is malformed or invalid for
                the order type, or ``account`` / the key is malformed.
            OrderNotFoundError: ``account`` has no order ``order_id``.
            OrderConflictError: the order is no longer working, or the key
                belongs to an order made by another request.
            JournalError: the journal failed (the service stops).
        """
        with self._lock:
            self._check_usable()
            self._check_names(account, None, idempotency_key)
            if quantity is None and limit_price is None and stop_price is None:
                raise OrderError("a replace needs a new quantity, limit_price or stop_price")
            old = self._owned(order_id, account)
            known = self._accounts[account]
            fingerprint = codec.replace_fingerprint(order_id, quantity, limit_price, stop_price)
            found = self._idempotent(known, (idempotency_key,), fingerprint)
            if found is not None:
                return self._order_view(found)
            if not old.record.is_open:
                raise OrderConflictError(
                    f"order {order_id} is {old.record.status}; only a working order can be replaced"
                )
            previous = old.record.order
            request = OrderRequest(
                symbol=previous.symbol,
                side=previous.side,
                quantity=old.record.remaining_quantity if quantity is None else quantity,
                order_type=previous.order_type,
                limit_price=previous.limit_price if limit_price is None else limit_price,
                stop_price=previous.stop_price if stop_price is None else stop_price,
                time_in_force=previous.time_in_force,
                client_order_id=old.client_order_id,
            )
            new_id = self._next_order_id()
            order = codec.order_of(request, new_id)
            now = self._now()
            reason, detail, instrument = self._pre_trade(
                known, order, strategy=old.strategy, now_ns=now, replacing=old
            )
            payload: dict[str, Any] = {
                "order_id": new_id,
                "replaces": order_id,
                "account": account,
                "strategy": old.strategy,
                "idempotency_key": idempotency_key,
                "request": codec.encode_request(request),
                "changes": {
                    "quantity": codec.decimal_text(quantity),
                    "limit_price": codec.decimal_text(limit_price),
                    "stop_price": codec.decimal_text(stop_price),
                },
                "status": "accepted" if reason is None else "rejected",
                "reason": None if reason is None else reason.value,
                "reason_detail": detail,
                "instrument": codec.encode_instrument(instrument),
            }
            with self._mutation():
                state = self._apply_replace(payload, now)
                self._journal.append([JournalEvent("replace", now, payload)])
            return self._order_view(state)

    def order(self, order_id: str, *, account: str) -> OrderView:
        """Return the order ``order_id`` of ``account``.

        Raises:
            OrderNotFoundError: ``account`` has no order ``order_id``.
        """
        with self._lock:
            return self._order_view(self._owned(order_id, account))

    def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> list[OrderView]:
        """Return ``account``'s orders, oldest first, optionally filtered.

        ``status`` keeps one status, ``open_only`` the working orders; ``limit``
        keeps the most recent ``limit`` of those (still oldest first).

        Orders no longer kept in memory (see ``retain_ended_orders``) are read
        back from the journal; with ``limit`` only as many as it takes.

        Raises:
            OrderError: ``status`` is not an OrderStatus or ``limit`` is not a
                positive integer.
        """
        if status is not None and not isinstance(status, OrderStatus):
            raise OrderError(f"status must be an OrderStatus, got {status!r}")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise OrderError(f"limit must be a positive integer, got {limit!r}")
        with self._lock:
            known = self._accounts.get(account)
            if known is None:
                return []
            candidates: Iterable[str]
            if open_only or not known.evicted:
                # Working orders are kept apart, in submission order: no scan of the history.
                candidates = reversed(known.open_ids if open_only else known.order_ids)
            else:
                candidates = self._journaled_orders(account, status)
            chosen = self._matching(candidates, status, first=_PAGE if limit is None else limit)
            newest = list(itertools.islice(chosen, limit))
            return [self._order_view(state) for state in reversed(newest)]

    def fills(self, *, account: str, order_id: str | None = None) -> list[FillView]:
        """Return ``account``'s fills (of one order if ``order_id`` is given), oldest first.

        Raises:
            OrderNotFoundError: ``order_id`` is given and ``account`` has no such order.
        """
        with self._lock:
            if order_id is not None:
                return list(self._owned(order_id, account).fills)
            known = self._accounts.get(account)
            if known is None:
                return []
            if not known.evicted:
                return list(known.fills.values())
            # Some fills belong to orders only the journal holds: read them all from there.
            strategies = {row[1]: row[3] for row in self._journal.account_orders(account)}
            return [
                codec.decode_fill(entry.payload, strategy=strategies.get(entry.payload["order_id"]))
                for entry in self._journal.account_fills(account)
            ]

    # ----------------------------------------------------------------- positions

    def positions(self, *, account: str) -> list[PositionView]:
        """Return ``account``'s positions by symbol (flat ones that traded included)."""
        with self._lock:
            portfolio = self._portfolios.get(account)
            if portfolio is None:
                return []
            views = []
            for symbol, position in sorted(portfolio.positions.items()):
                mark = portfolio.marks.get(symbol)
                quantity = position.quantity
                views.append(
                    PositionView(
                        account=account,
                        symbol=symbol,
                        quantity=quantity,
                        average_price=(
                            None
                            if quantity == 0
                            else _DISPLAY.divide(position.cost_basis, quantity)
                        ),
                        last_price=mark,
                        market_value=ZERO if mark is None else position.market_value(mark),
                        unrealized_pnl=ZERO if mark is None else position.unrealized_pnl(mark),
                        realized_pnl=position.realized_pnl,
                        commission=position.commission,
                    )
                )
            return views

    def account(self, account: str) -> AccountView:
        """Return ``account``'s balances (an account that never traded has its initial cash).

        Raises:
            OrderError: ``account`` is malformed.
        """
        self._check_names(account, None, None)
        with self._lock:
            portfolio = self._portfolios.get(account)
            if portfolio is None:
                portfolio = Portfolio(cash=self._config.initial_cash)
            realized = unrealized = commission = ZERO
            for symbol, position in portfolio.positions.items():
                realized = _add(realized, position.realized_pnl)
                commission = _add(commission, position.commission)
                if position.quantity != 0:
                    unrealized = _add(unrealized, position.unrealized_pnl(portfolio.marks[symbol]))
            known = self._accounts.get(account)
            return AccountView(
                account=account,
                initial_cash=portfolio.initial_cash,
                cash=portfolio.cash,
                equity=portfolio.equity(),
                realized_pnl=realized,
                unrealized_pnl=unrealized,
                commission=commission,
                gross_exposure=portfolio.gross_exposure(),
                open_orders=0 if known is None else len(known.open_ids),
                kill_switch=self._kill_global or (known is not None and known.kill_switch),
            )

    # ----------------------------------------------------------------- market data

    def on_bar(self, symbol: str, bar: BarLike) -> list[FillView]:
        """Match every account's working orders for ``symbol`` against ``bar``; return the fills.

        The bar is journaled with its fills, expiries and venue cancels; the
        positions in ``symbol`` are marked at its close. A bar whose ``ts`` is
        not after the last processed bar of ``symbol`` is ignored (returns []),
        so a replayed feed is harmless.

        Raises:
            InvalidBarError: the symbol is malformed or unknown (when unknown
                symbols are rejected), or the bar breaks the bar contract (a
                :class:`~tradepulse.errors.DataError` and a ``ValueError``).
            JournalError: the journal failed (the service stops).
        """
        with self._lock:
            self._check_usable()
            try:
                codec.check_identifier("symbol", symbol)
            except OrderError as error:
                raise InvalidBarError(str(error)) from None
            checked = codec.validate_bar(symbol, bar)
            if self._instrument_for(symbol) is None:
                raise InvalidBarError(
                    f"no instrument for symbol {symbol!r}: it is not configured and unknown "
                    "symbols are rejected"
                )
            last = self._last_bar_ts.get(symbol)
            if last is not None and checked.ts <= last:
                return []
            now = self._now()
            payload = codec.encode_bar(symbol, checked)
            with self._mutation():
                derived, fills = self._apply_bar(payload, now)
                self._journal.append([JournalEvent("bar", now, payload), *derived])
            return fills

    # ----------------------------------------------------------------- kill switch

    def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> list[OrderView]:
        """Engage or release the kill switch of ``account`` (None: the global one).

        Engaging blocks new orders (rejected ``kill_switch``) and cancels the
        working orders in its scope, which are returned (oldest first per
        account, accounts by name). Releasing returns [].

        Raises:
            OrderError: ``engaged`` is not a bool, ``account`` is malformed, or
                ``reason`` is not a string of at most 256 characters.
            JournalError: the journal failed (the service stops).
        """
        if not isinstance(engaged, bool):
            raise OrderError(f"engaged must be a bool, got {engaged!r}")
        if not isinstance(reason, str) or len(reason) > MAX_KILL_SWITCH_REASON_LENGTH:
            raise OrderError(
                f"reason must be a string of at most {MAX_KILL_SWITCH_REASON_LENGTH} "
                f"characters, got {reason!r}"
            )
        with self._lock:
            self._check_usable()
            if account is not None:
                self._check_names(account, None, None)
            now = self._now()
            payload = {"account": account, "engaged": engaged, "reason": reason}
            with self._mutation():
                derived, cancelled = self._apply_kill_switch(payload, now)
                self._journal.append([JournalEvent("kill_switch", now, payload), *derived])
            return [self._order_view(state) for state in cancelled]

    def kill_switch_engaged(self, account: str | None = None) -> bool:
        """Return whether the global kill switch is on, or given ``account``, its or the global."""
        with self._lock:
            if self._kill_global or account is None:
                return self._kill_global
            known = self._accounts.get(account)
            return known is not None and known.kill_switch

    # ----------------------------------------------------------------- helpers

    def _states(self, order_ids: Iterable[str]) -> dict[str, OrderState]:
        """Return the orders ``order_ids`` by id: from memory, the rest rebuilt from the journal."""
        found: dict[str, OrderState] = {}
        missing: list[str] = []
        for order_id in order_ids:
            state = self._orders.get(order_id)
            if state is None:
                missing.append(order_id)
            else:
                found[order_id] = state
        if missing:
            found.update(rebuild_orders(self._journal, missing, engine_times=False))
        return found

    def _journaled_orders(self, account: str, status: OrderStatus | None) -> Iterator[str]:
        """Yield the ids of ``account``'s orders from the journal, newest first.

        Read in pages; a status filter skips what the status an order was
        created with rules out (an order is rejected when created, or never).
        """
        before: int | None = None
        while True:
            page = self._journal.account_orders(account, before=before, limit=_PAGE)
            for sequence, order_id, created, _ in page:
                before = sequence
                if status is None or (created == "rejected") == (status is OrderStatus.REJECTED):
                    yield order_id
            if len(page) < _PAGE:
                return

    def _matching(
        self, candidates: Iterable[str], status: OrderStatus | None, *, first: int
    ) -> Iterator[OrderState]:
        """Yield the orders ``candidates`` (in their order) whose status is ``status`` (None: all).

        They are looked up in batches (orders not in memory are rebuilt from
        the journal a batch at a time): ``first`` ids, then twice as many each
        time up to a page, so a short listing rebuilds little.
        """
        remaining = iter(candidates)
        size = min(first, _PAGE)
        while batch := list(itertools.islice(remaining, size)):
            states = self._states(batch)
            for order_id in batch:
                state = states[order_id]
                if status is None or state.record.status is status:
                    yield state
            size = min(2 * size, _PAGE)

    @staticmethod
    def _check_names(account: str, strategy: str | None, key: str | None) -> None:
        codec.check_identifier("account", account)
        if strategy is not None:
            codec.check_identifier("strategy", strategy)
        if key is not None:
            codec.check_identifier("idempotency_key", key, max_length=codec.MAX_KEY_LENGTH)

    def _order_view(self, state: OrderState) -> OrderView:
        record = state.record
        order = record.order
        return OrderView(
            order_id=state.order_id,
            client_order_id=state.client_order_id,
            account=state.account,
            strategy=state.strategy,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            time_in_force=order.time_in_force,
            status=record.status,
            filled_quantity=record.filled_quantity,
            remaining_quantity=record.remaining_quantity,
            average_fill_price=record.average_fill_price,
            reason=state.reason,
            reason_detail=state.reason_detail,
            replaces=state.replaces,
            replaced_by=state.replaced_by,
            created_ns=state.created_ns,
            updated_ns=state.updated_ns,
        )
