"""Prometheus metrics of the live service: trading counters, latency histograms, account gauges.

:class:`TradingMetrics` defines every TradePulse metric, in its own
:class:`~prometheus_client.CollectorRegistry` (never the global one, so several
apps can live in one process):

- counters ``tradepulse_orders_submitted_total{account,strategy,order_type}``
  (every new order, accepted or rejected), ``tradepulse_orders_rejected_total
  {account,strategy,reason}`` (``reason``: the machine code of
  :class:`~tradepulse.execution.service_views.Reason`),
  ``tradepulse_orders_filled_total{account,strategy}`` (orders that reached
  ``filled``), ``tradepulse_fills_total{account,strategy}`` (executions),
  ``tradepulse_orders_replayed_total{account}`` (idempotent retries, which
  create nothing) and ``tradepulse_request_errors_total{operation,code}``
  (calls the service refused, by the HTTP error code);
- histograms ``tradepulse_request_ack_seconds{operation}`` (request received →
  order acknowledged, accepted or rejected) and
  ``tradepulse_signal_fill_seconds{order_type}`` (order submitted → each of
  its fills, wall clock);
- gauges ``tradepulse_position_units{account,symbol}``,
  ``tradepulse_exposure_quote{account}`` (gross exposure, quote currency),
  ``tradepulse_pnl_quote{account,kind}`` (``kind``: ``realized``, net of
  commission, or ``unrealized``; their sum is ``equity - initial cash``),
  ``tradepulse_equity_quote{account}``, ``tradepulse_kill_switch{account}`` (1 when
  new orders are blocked; ``account="*"`` is the global switch) and
  ``tradepulse_strategy_heartbeat_timestamp_seconds{strategy}`` (Unix time of
  the strategy's last :meth:`TradingMetrics.heartbeat`; runners call
  :meth:`TradingMetrics.strategy_stopped` when a strategy is deleted).

Label values are bounded: accounts, strategies and symbols beyond a configured
number are counted under ``"other"`` (counters) or not exported (gauges);
order ids never become labels.

:class:`MeteredBackend` wraps an
:class:`~tradepulse.serve.backend.ExecutionBackend` and records what goes
through it. :class:`RequestClockMiddleware` stamps when a request arrived, so
the acknowledgement latency covers the whole request, not just the backend
call. :func:`metrics_router` serves ``GET /metrics`` (``read`` scope).

The pure core never imports this module (it imports ``prometheus_client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Generic, TypeVar

from fastapi import APIRouter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from tradepulse.domain.orders import OrderStatus
from tradepulse.errors import ConfigError
from tradepulse.execution.service_views import (
    AccountView,
    FillView,
    OrderRequest,
    OrderView,
    PositionView,
    SubmitOutcome,
)
from tradepulse.serve.auth import Scope as KeyScope
from tradepulse.serve.auth import requires
from tradepulse.serve.backend import (
    BatchItemResult,
    ExecutionBackend,
    SubmitItem,
    classify_error,
)
from tradepulse.strategy.api import Bar

__all__ = [
    "ACK_BUCKETS_SECONDS",
    "DEFAULT_MAX_ACCOUNTS",
    "DEFAULT_MAX_STRATEGIES",
    "DEFAULT_MAX_SYMBOLS",
    "DEFAULT_MAX_TRACKED_ORDERS",
    "FILL_BUCKETS_SECONDS",
    "GLOBAL_ACCOUNT",
    "OTHER_LABEL",
    "MeteredBackend",
    "RequestClockMiddleware",
    "TradingMetrics",
    "metrics_router",
]

_log = logging.getLogger(__name__)

#: Buckets of ``tradepulse_request_ack_seconds``: 0.5 ms to 1 s (25 ms is the p99 target).
ACK_BUCKETS_SECONDS: Final = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
#: Buckets of ``tradepulse_signal_fill_seconds``: 1 ms to 1 h (fills wait for the next bar).
FILL_BUCKETS_SECONDS: Final = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
#: The ``account`` label of the global kill switch.
GLOBAL_ACCOUNT: Final = "*"
#: The label value that stands for every value past a label's limit.
OTHER_LABEL: Final = "other"
#: Default number of distinct accounts exported before they become ``"other"``.
DEFAULT_MAX_ACCOUNTS: Final = 256
#: Default number of distinct strategies exported before they become ``"other"``.
DEFAULT_MAX_STRATEGIES: Final = 256
#: Default number of distinct symbols exported per position gauge.
DEFAULT_MAX_SYMBOLS: Final = 1024
#: Default number of working orders :class:`MeteredBackend` remembers (for fill latency).
DEFAULT_MAX_TRACKED_ORDERS: Final = 100_000
# Replacements remembered to tell a replayed replace from a new one.
_REMEMBERED_REPLACEMENTS: Final = 4096
# perf_counter() when the current HTTP request arrived (set by RequestClockMiddleware).
_REQUEST_RECEIVED: Final[contextvars.ContextVar[float | None]] = contextvars.ContextVar(
    "tradepulse_request_received", default=None
)

_M = TypeVar("_M", bound=MetricWrapperBase)


class _Children(Generic[_M]):
    """A metric's labelled children, cached by label values (``labels()`` costs ~1 µs)."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], _M] = {}

    def __call__(self, *values: str) -> _M:
        child = self._cache.get(values)
        if child is None:
            child = self._metric.labels(*values)
            self._cache[values] = child
        return child


class _Bounded:
    """Let at most ``limit`` distinct values through; later ones map to :data:`OTHER_LABEL`."""

    __slots__ = ("_limit", "_name", "_seen", "_warned")

    def __init__(self, name: str, limit: int) -> None:
        self._name = name
        self._limit = limit
        self._seen: set[str] = set()
        self._warned = False

    def knows(self, value: str) -> bool:
        """Return whether ``value`` has its own label value."""
        return value in self._seen

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            if not self._warned:
                self._warned = True
                _log.warning(
                    "more than %d distinct %s label values: %r and later ones are exported as %r",
                    self._limit,
                    self._name,
                    value,
                    OTHER_LABEL,
                )
            return OTHER_LABEL
        self._seen.add(value)
        return value


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return value


class TradingMetrics:
    """Every TradePulse metric, in a registry of its own (see the module docstring).

    ``clock`` measures durations (seconds, monotonic); ``wall_clock`` stamps
    heartbeats (Unix seconds). ``max_accounts`` / ``max_strategies`` /
    ``max_symbols`` bound the label values exported.

    Raises:
        ConfigError: a limit is not a positive integer or a clock is not callable.
    """

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
        max_accounts: int = DEFAULT_MAX_ACCOUNTS,
        max_strategies: int = DEFAULT_MAX_STRATEGIES,
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        if not callable(clock) or not callable(wall_clock):
            raise ConfigError(
                f"clock and wall_clock must be callable, got {clock!r}, {wall_clock!r}"
            )
        self.registry = CollectorRegistry(auto_describe=True) if registry is None else registry
        self.clock = clock
        self.wall_clock = wall_clock
        self._account = _Bounded("account", _positive_int("max_accounts", max_accounts))
        self._strategy = _Bounded("strategy", _positive_int("max_strategies", max_strategies))
        self._symbols = _positive_int("max_symbols", max_symbols)
        self._symbol = _Bounded("symbol", self._symbols)
        self._reason = _Bounded("reason", 64)  # the Reason codes are ~20
        registry = self.registry

        self.orders_submitted = Counter(
            "tradepulse_orders_submitted",
            "New orders the execution service recorded (accepted or rejected).",
            ["account", "strategy", "order_type"],
            registry=registry,
        )
        self.orders_rejected = Counter(
            "tradepulse_orders_rejected",
            "New orders rejected, by machine-readable reason.",
            ["account", "strategy", "reason"],
            registry=registry,
        )
        self.orders_filled = Counter(
            "tradepulse_orders_filled",
            "Orders that reached status filled.",
            ["account", "strategy"],
            registry=registry,
        )
        self.fills = Counter(
            "tradepulse_fills",
            "Executions (fills, partial or complete).",
            ["account", "strategy"],
            registry=registry,
        )
        self.orders_replayed = Counter(
            "tradepulse_orders_replayed",
            "Idempotent retries answered with the original order (nothing created).",
            ["account"],
            registry=registry,
        )
        self.request_errors = Counter(
            "tradepulse_request_errors",
            "Calls the execution service refused or failed, by error code.",
            ["operation", "code"],
            registry=registry,
        )
        self.request_ack_seconds = Histogram(
            "tradepulse_request_ack_seconds",
            "Request received to order acknowledged (accepted or rejected), seconds.",
            ["operation"],
            buckets=ACK_BUCKETS_SECONDS,
            registry=registry,
        )
        self.signal_fill_seconds = Histogram(
            "tradepulse_signal_fill_seconds",
            "Order submitted to each of its fills, wall-clock seconds.",
            ["order_type"],
            buckets=FILL_BUCKETS_SECONDS,
            registry=registry,
        )
        self.position_units = Gauge(
            "tradepulse_position_units",
            "Signed position, units of the instrument (negative: short).",
            ["account", "symbol"],
            registry=registry,
        )
        self.exposure = Gauge(
            "tradepulse_exposure_quote",
            "Gross exposure: sum of |position value|, quote currency.",
            ["account"],
            registry=registry,
        )
        self.pnl = Gauge(
            "tradepulse_pnl_quote",
            "Profit and loss, quote currency: realized (net of commission) or unrealized.",
            ["account", "kind"],
            registry=registry,
        )
        self.equity = Gauge(
            "tradepulse_equity_quote",
            "Cash plus marked positions, quote currency.",
            ["account"],
            registry=registry,
        )
        self.kill_switch = Gauge(
            "tradepulse_kill_switch",
            'Kill switch: 1 when new orders are blocked (account="*": the global switch).',
            ["account"],
            registry=registry,
        )
        self.strategy_heartbeat = Gauge(
            "tradepulse_strategy_heartbeat_timestamp_seconds",
            "Unix time of the strategy runner's last heartbeat.",
            ["strategy"],
            registry=registry,
        )
        self._submitted = _Children(self.orders_submitted)
        self._rejected = _Children(self.orders_rejected)
        self._filled = _Children(self.orders_filled)
        self._fills = _Children(self.fills)
        self._replayed = _Children(self.orders_replayed)
        self._errors = _Children(self.request_errors)
        self._ack = _Children(self.request_ack_seconds)
        self._fill_latency = _Children(self.signal_fill_seconds)
        self._exported_symbols: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"TradingMetrics(metrics={len(self.metric_names())})"

    def _strategy_label(self, strategy: str | None) -> str:
        return "" if strategy is None else self._strategy(strategy)

    # ----------------------------------------------------------------- recording

    def record_order(self, view: OrderView) -> None:
        """Count a new order: submitted, and rejected (by ``view.reason``) if it was."""
        account = self._account(view.account)
        strategy = self._strategy_label(view.strategy)
        self._submitted(account, strategy, str(view.order_type)).inc()
        if view.status is OrderStatus.REJECTED:
            self._rejected(account, strategy, self._reason(view.reason or "unknown")).inc()

    def record_replay(self, account: str) -> None:
        """Count an idempotent retry (it created nothing)."""
        self._replayed(self._account(account)).inc()

    def record_fill(self, fill: FillView) -> None:
        """Count one execution."""
        self._fills(self._account(fill.account), self._strategy_label(fill.strategy)).inc()

    def record_order_filled(self, account: str, strategy: str | None) -> None:
        """Count an order that reached status ``filled``."""
        self._filled(self._account(account), self._strategy_label(strategy)).inc()

    def record_error(self, operation: str, error: BaseException) -> None:
        """Count a failed call by its HTTP error code (``internal`` for an unexpected error)."""
        failure = classify_error(error)
        self._errors(operation, "internal" if failure is None else failure.code).inc()

    def record_failure_code(self, operation: str, code: str) -> None:
        """Count a failure reported as data (a batch item) by its error code."""
        self._errors(operation, code).inc()

    def observe_ack(self, operation: str, seconds: float) -> None:
        """Record one request-to-acknowledgement latency of ``operation``."""
        self._ack(operation).observe(seconds)

    def observe_signal_fill(self, order_type: str, seconds: float) -> None:
        """Record one submission-to-fill latency of an order of ``order_type``."""
        self._fill_latency(order_type).observe(seconds)

    def set_account(self, view: AccountView, positions: Sequence[PositionView]) -> None:
        """Set the account's gauges from its views; symbols no longer held read 0."""
        account = self._account(view.account)
        if account == OTHER_LABEL:
            return  # gauges of many accounts cannot share one series
        self.exposure.labels(account).set(float(view.gross_exposure))
        self.equity.labels(account).set(float(view.equity))
        self.pnl.labels(account, "realized").set(float(view.realized_pnl - view.commission))
        self.pnl.labels(account, "unrealized").set(float(view.unrealized_pnl))
        self.kill_switch.labels(account).set(1.0 if view.kill_switch else 0.0)
        exported = self._exported_symbols.setdefault(account, set())
        current: set[str] = set()
        for position in positions:
            symbol = self._symbol(position.symbol)
            if symbol == OTHER_LABEL:
                continue
            current.add(symbol)
            self.position_units.labels(account, symbol).set(float(position.quantity))
        for symbol in exported - current:
            self.position_units.labels(account, symbol).set(0.0)
        exported |= current

    def set_global_kill_switch(self, engaged: bool) -> None:
        """Set the global kill switch gauge (``account="*"``)."""
        self.kill_switch.labels(GLOBAL_ACCOUNT).set(1.0 if engaged else 0.0)

    def heartbeat(self, strategy: str, *, timestamp: float | None = None) -> None:
        """Record that ``strategy`` is alive (at ``timestamp``, Unix seconds; default now)."""
        when = self.wall_clock() if timestamp is None else timestamp
        self.strategy_heartbeat.labels(self._strategy(strategy)).set(when)

    def strategy_stopped(self, strategy: str) -> None:
        """Drop ``strategy``'s heartbeat series (a deleted strategy must not look stale)."""
        if self._strategy.knows(strategy):
            with contextlib.suppress(KeyError):  # it never sent a heartbeat
                self.strategy_heartbeat.remove(strategy)

    # ----------------------------------------------------------------- exposition

    def render(self) -> tuple[bytes, str]:
        """Return the registry in Prometheus text format 0.0.4, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4

    def metric_names(self) -> frozenset[str]:
        """Return every sample name the registry can expose (``..._total``, ``..._bucket``, ...)."""
        names: set[str] = set()
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",),
        }
        for family in self.registry.collect():
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        return frozenset(names)


@dataclass(slots=True)
class _Tracked:
    """A working order seen through :class:`MeteredBackend`: what its fills need."""

    strategy: str | None
    order_type: str
    remaining: Decimal
    started: float


class MeteredBackend:
    """An :class:`~tradepulse.serve.backend.ExecutionBackend` that records what passes through.

    Submissions (single and batch) count submitted and rejected orders and
    observe ``tradepulse_request_ack_seconds``; idempotent replays count as
    replays only. Fills returned by :meth:`on_bar` / :meth:`on_bars` count
    fills and filled orders and observe ``tradepulse_signal_fill_seconds`` from
    the submission this wrapper saw. After fills, bars of held symbols, a kill
    switch change or an account's first order, the affected accounts' gauges
    are refreshed through ``inner.account`` / ``inner.positions`` (submissions
    do not change them, so they cost no extra call). A failed refresh is
    logged, never raised: metrics must not fail a trading call.

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
        self._inner = inner
        self._metrics = metrics
        self._max_tracked = _positive_int("max_tracked_orders", max_tracked_orders)
        self._open: OrderedDict[tuple[str, str], _Tracked] = OrderedDict()
        self._open_count: Tally[str] = Tally()
        self._replacements: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._accounts: set[str] = set()
        self._holdings: dict[str, frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"MeteredBackend({self._inner!r}, tracked_orders={len(self._open)})"

    @property
    def inner(self) -> ExecutionBackend:
        """Return the wrapped backend."""
        return self._inner

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
        received = _REQUEST_RECEIVED.get()
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

    # ----------------------------------------------------------------- the protocol

    async def ping(self) -> None:
        """Return when the inner backend answers."""
        await self._inner.ping()

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

    async def order(self, order_id: str, *, account: str) -> OrderView:
        """Return one order of the account."""
        return await self._inner.order(order_id, account=account)

    async def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> Sequence[OrderView]:
        """Return the account's orders."""
        return await self._inner.orders(
            account=account, status=status, open_only=open_only, limit=limit
        )

    async def fills(self, *, account: str, order_id: str | None = None) -> Sequence[FillView]:
        """Return the account's fills."""
        return await self._inner.fills(account=account, order_id=order_id)

    async def positions(self, *, account: str) -> Sequence[PositionView]:
        """Return the account's positions."""
        return await self._inner.positions(account=account)

    async def account(self, account: str) -> AccountView:
        """Return the account summary."""
        return await self._inner.account(account)

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

    async def kill_switch_engaged(self, account: str | None = None) -> bool:
        """Return whether new orders of ``account`` (or of all accounts) are blocked."""
        return await self._inner.kill_switch_engaged(account)


class RequestClockMiddleware:
    """Stamp each HTTP request's arrival so :class:`MeteredBackend` measures from it.

    Add it outermost (``app.add_middleware(RequestClockMiddleware, clock=metrics.clock)``
    after :func:`~tradepulse.serve.api.create_app`): the acknowledgement
    latency then covers authentication, parsing and validation too. Without
    it, latency is measured from the backend call.
    """

    def __init__(self, app: ASGIApp, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _REQUEST_RECEIVED.set(self.clock())
        try:
            await self.app(scope, receive, send)
        finally:
            _REQUEST_RECEIVED.reset(token)


def metrics_router(
    metrics: TradingMetrics,
    *,
    refresh: Callable[[], Awaitable[object]] | None = None,
    refresh_timeout_seconds: float = 2.0,
) -> APIRouter:
    """Return ``GET /metrics`` (``read`` scope): ``metrics`` in Prometheus text format.

    ``refresh`` (say, :meth:`MeteredBackend.refresh`) runs before each scrape
    so the gauges are current; if it fails or takes longer than
    ``refresh_timeout_seconds``, the last values are served.

    Raises:
        ConfigError: ``refresh_timeout_seconds`` is not positive.
    """
    if not refresh_timeout_seconds > 0:
        raise ConfigError(f"refresh_timeout_seconds must be > 0, got {refresh_timeout_seconds!r}")
    router = APIRouter(tags=["observability"])

    @router.get(
        "/metrics",
        response_class=Response,
        openapi_extra=requires(KeyScope.READ),
        responses={
            200: {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def get_metrics() -> Response:
        """Return the service's Prometheus metrics (orders, fills, latency, positions, PnL)."""
        if refresh is not None:
            try:
                await asyncio.wait_for(refresh(), timeout=refresh_timeout_seconds)
            except Exception as error:  # a scrape serves the last values rather than fail
                _log.warning("metrics: refresh before the scrape failed: %r", error)
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    return router
