"""Metrics of what passes through an execution backend: :class:`MeteredBackend`.

:class:`MeteredBackend` wraps an
:class:`~tradepulse.serve.backend.ExecutionBackend` (it is a
:class:`~tradepulse.serve.backend.ForwardingBackend`) and records the orders,
rejections, fills, latencies and account gauges of
:class:`~tradepulse.serve.metrics.TradingMetrics`. The acknowledgement latency
starts when the request arrived if
:class:`~tradepulse.serve.request_clock.RequestClockMiddleware` stamped it.
Re-exported by :mod:`tradepulse.serve.metrics`.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from tradepulse.domain.orders import OrderStatus
from tradepulse.errors import ConfigError
from tradepulse.execution.service_views import FillView, OrderRequest, OrderView, SubmitOutcome
from tradepulse.serve.backend import (
    BatchItemResult,
    ExecutionBackend,
    ForwardingBackend,
    SubmitItem,
)
from tradepulse.serve.request_clock import request_received
from tradepulse.strategy.api import Bar

if TYPE_CHECKING:  # tradepulse.serve.metrics re-exports this module: no import at run time
    from tradepulse.serve.metrics import TradingMetrics

__all__ = ["DEFAULT_MAX_TRACKED_ORDERS", "MeteredBackend"]

# The metrics' logger, whichever of their modules logs.
_log = logging.getLogger("tradepulse.serve.metrics")

#: Default number of working orders :class:`MeteredBackend` remembers (for fill latency).
DEFAULT_MAX_TRACKED_ORDERS: Final = 100_000
# Replacements remembered to tell a replayed replace from a new one.
_REMEMBERED_REPLACEMENTS: Final = 4096


@dataclass(slots=True)
class _Tracked:
    """A working order seen through :class:`MeteredBackend`: what its fills need."""

    strategy: str | None
    order_type: str
    remaining: Decimal
    started: float


class MeteredBackend(ForwardingBackend):
    """An :class:`~tradepulse.serve.backend.ExecutionBackend` that records what passes through.

    Submissions (single and batch) count submitted and rejected orders and
    observe ``tradepulse_request_ack_seconds``; idempotent replays count as
    replays only. Fills returned by :meth:`on_bar` / :meth:`on_bars` count
    fills and filled orders and observe ``tradepulse_signal_fill_seconds`` from
    the submission this wrapper saw. After fills, bars of held symbols, a kill
    switch change or an account's first order, the affected accounts' gauges
    are refreshed through ``inner.account`` / ``inner.positions`` (submissions
    do not change them, so they cost no extra call). A failed refresh is
    logged, never raised: metrics must not fail a trading call. Reads pass
    through unmeasured.

    Orders and bars that reach the service by another path are invisible.
    ``max_tracked_orders`` bounds the working orders remembered (oldest forgotten).

    Raises:
        ConfigError: ``max_tracked_orders`` is not a positive integer.
    """

    def __init__(
        self,
        inner: ExecutionBackend,
        metrics: TradingMetrics,
        *,
        max_tracked_orders: int = DEFAULT_MAX_TRACKED_ORDERS,
    ) -> None:
        if (
            isinstance(max_tracked_orders, bool)
            or not isinstance(max_tracked_orders, int)
            or max_tracked_orders < 1
        ):
            raise ConfigError(
                f"max_tracked_orders must be an integer >= 1, got {max_tracked_orders!r}"
            )
        super().__init__(inner)
        self._metrics = metrics
        self._max_tracked = max_tracked_orders
        self._open: OrderedDict[tuple[str, str], _Tracked] = OrderedDict()
        self._open_count: Tally[str] = Tally()
        self._replacements: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._accounts: set[str] = set()
        self._holdings: dict[str, frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"MeteredBackend({self._inner!r}, tracked_orders={len(self._open)})"

    @property
    def metrics(self) -> TradingMetrics:
        """Return the metrics it records into."""
        return self._metrics

    @property
    def tracked_orders(self) -> int:
        """Return how many working orders are remembered for fill latency."""
        return len(self._open)

    # ----------------------------------------------------------------- bookkeeping

    def _started(self) -> float:
        received = request_received()
        return self._metrics.clock() if received is None else received

    def _track(self, view: OrderView, started: float) -> None:
        key = (view.account, view.order_id)
        if key in self._open:
            return
        while len(self._open) >= self._max_tracked:
            oldest, _ = self._open.popitem(last=False)
            self._forget(oldest[0])
        self._open[key] = _Tracked(
            view.strategy, str(view.order_type), view.remaining_quantity, started
        )
        self._open_count[view.account] += 1

    def _untrack(self, key: tuple[str, str]) -> None:
        if self._open.pop(key, None) is not None:
            self._forget(key[0])

    def _forget(self, account: str) -> None:
        """Lower the count of ``account``'s remembered working orders by one."""
        left = self._open_count[account] - 1
        if left > 0:
            self._open_count[account] = left
        else:
            del self._open_count[account]

    def _new_order(self, view: OrderView, started: float) -> bool:
        """Count a freshly created order, remember it while it works; True for a new account."""
        self._metrics.record_order(view)
        if view.is_open:
            self._track(view, started)
        elif view.status is OrderStatus.FILLED:
            self._metrics.record_order_filled(view.account, view.strategy)
        if view.account in self._accounts:
            return False
        self._accounts.add(view.account)
        return True

    async def _record_fills(self, fills: Sequence[FillView], symbols: Iterable[str]) -> None:
        now = self._metrics.clock()
        touched: set[str] = set()
        untracked: dict[tuple[str, str], None] = {}
        for fill in fills:
            self._metrics.record_fill(fill)
            touched.add(fill.account)
            key = (fill.account, fill.order_id)
            tracked = self._open.get(key)
            if tracked is None:
                untracked[key] = None
                continue
            self._metrics.observe_signal_fill(tracked.order_type, now - tracked.started)
            tracked.remaining -= fill.quantity
            if tracked.remaining <= 0:
                self._untrack(key)
                self._metrics.record_order_filled(fill.account, tracked.strategy)
        for account, order_id in untracked:
            # Placed before a restart or by another path: ask whether this completed it.
            try:
                view = await self._inner.order(order_id, account=account)
            except Exception as error:  # metrics must never fail the bars call
                _log.warning("metrics: cannot look up order %s of %s: %r", order_id, account, error)
                continue
            if view.status is OrderStatus.FILLED:
                self._metrics.record_order_filled(account, view.strategy)
        self._accounts |= touched
        held = set(symbols)
        holders = {account for account, owned in self._holdings.items() if owned & held}
        if touched or holders:
            await self._refresh_safely(sorted(touched | holders))

    async def _refresh_safely(self, accounts: Sequence[str]) -> None:
        try:
            await self.refresh(accounts)
        except Exception as error:  # metrics must never fail a trading call
            _log.warning("metrics: refreshing accounts %s failed: %r", list(accounts), error)

    async def refresh(self, accounts: Iterable[str] | None = None) -> None:
        """Set the gauges of ``accounts`` (default: every account seen) from the backend.

        Also forgets remembered working orders that the backend no longer has
        open (expired, cancelled by the exchange).

        Raises:
            Exception: whatever the backend raises.
        """
        for account in sorted(self._accounts) if accounts is None else accounts:
            view = await self._inner.account(account)
            positions = await self._inner.positions(account=account)
            self._metrics.set_account(view, positions)
            self._holdings[account] = frozenset(p.symbol for p in positions if p.quantity != 0)
            if self._open_count.get(account, 0) > view.open_orders:
                working = await self._inner.orders(account=account, open_only=True)
                still_open = {order.order_id for order in working}
                for key in [key for key in self._open if key[0] == account]:
                    if key[1] not in still_open:
                        self._untrack(key)

    # ----------------------------------------------------------------- the measured calls

    async def submit(
        self,
        request: OrderRequest,
        *,
        account: str,
        strategy: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitOutcome:
        """Submit an order and record it (see the class docstring)."""
        started = self._started()
        try:
            outcome = await self._inner.submit(
                request, account=account, strategy=strategy, idempotency_key=idempotency_key
            )
        except Exception as error:
            self._metrics.record_error("submit", error)
            raise
        self._metrics.observe_ack("submit", self._metrics.clock() - started)
        if outcome.created:
            if self._new_order(outcome.order, started):
                await self._refresh_safely([account])
        else:
            self._metrics.record_replay(outcome.order.account)
        return outcome

    async def submit_batch(
        self, items: Sequence[SubmitItem], *, account: str
    ) -> list[BatchItemResult]:
        """Submit several orders and record each result."""
        started = self._started()
        try:
            results = await self._inner.submit_batch(items, account=account)
        except Exception as error:
            self._metrics.record_error("submit_batch", error)
            raise
        self._metrics.observe_ack("submit_batch", self._metrics.clock() - started)
        new_account = False
        for result in results:
            if result.outcome is not None:
                if result.outcome.created:
                    new_account |= self._new_order(result.outcome.order, started)
                else:
                    self._metrics.record_replay(result.outcome.order.account)
            elif result.failure is not None:
                self._metrics.record_failure_code("submit_batch", result.failure.code)
        if new_account:
            await self._refresh_safely([account])
        return results

    async def cancel(self, order_id: str, *, account: str) -> OrderView:
        """Cancel an open order and forget it."""
        started = self._started()
        try:
            view = await self._inner.cancel(order_id, account=account)
        except Exception as error:
            self._metrics.record_error("cancel", error)
            raise
        self._metrics.observe_ack("cancel", self._metrics.clock() - started)
        self._untrack((view.account, view.order_id))
        return view

    async def replace(
        self,
        order_id: str,
        *,
        account: str,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        idempotency_key: str | None = None,
    ) -> OrderView:
        """Cancel/replace an open order; count the replacement as a new order (once)."""
        started = self._started()
        try:
            view = await self._inner.replace(
                order_id,
                account=account,
                quantity=quantity,
                limit_price=limit_price,
                stop_price=stop_price,
                idempotency_key=idempotency_key,
            )
        except Exception as error:
            self._metrics.record_error("replace", error)
            raise
        self._metrics.observe_ack("replace", self._metrics.clock() - started)
        key = (view.account, view.order_id)
        if key in self._replacements:
            self._replacements.move_to_end(key)
            self._metrics.record_replay(view.account)
            return view
        self._replacements[key] = None
        if len(self._replacements) > _REMEMBERED_REPLACEMENTS:
            self._replacements.popitem(last=False)
        if view.status is not OrderStatus.REJECTED and view.replaces is not None:
            self._untrack((view.account, view.replaces))
        if self._new_order(view, started):
            await self._refresh_safely([account])
        return view

    async def on_bar(self, symbol: str, bar: Bar) -> Sequence[FillView]:
        """Apply one bar; record its fills and refresh the accounts it affects."""
        fills = await self._inner.on_bar(symbol, bar)
        await self._record_fills(fills, (symbol,))
        return fills

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        """Apply bars in order; record their fills and refresh the accounts they affect."""
        fills = await self._inner.on_bars(bars)
        await self._record_fills(fills, {symbol for symbol, _ in bars})
        return fills

    async def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> Sequence[OrderView]:
        """Engage or release a kill switch; refresh the gauges of the accounts in its scope."""
        cancelled = await self._inner.set_kill_switch(engaged, account=account, reason=reason)
        for view in cancelled:
            self._untrack((view.account, view.order_id))
            self._accounts.add(view.account)
        if account is None:
            self._metrics.set_global_kill_switch(engaged)
            await self._refresh_safely(sorted(self._accounts))
        else:
            self._accounts.add(account)
            await self._refresh_safely([account])
        return cancelled
