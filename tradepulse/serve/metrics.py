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
  new orders are blocked; ``account="*"`` is the global switch),
  ``tradepulse_strategy_heartbeat_timestamp_seconds{strategy}`` (Unix time of
  the strategy's last :meth:`TradingMetrics.heartbeat`: its runner answered a
  ping or completed a bar; liveness, independent of market data) and
  ``tradepulse_strategy_last_bar_timestamp_seconds{strategy}`` (Unix wall time
  at which its runner last completed a bar, :meth:`TradingMetrics.strategy_bar`:
  market data's freshness, not the bar's own stamp, so replays of old data
  read as fresh); the pipeline calls :meth:`TradingMetrics.strategy_stopped`
  when a strategy is deleted.

Label values are bounded: accounts, strategies and symbols beyond a configured
number are counted under ``"other"`` (counters) or not exported (gauges);
order ids never become labels.

:class:`MeteredBackend` wraps an
:class:`~tradepulse.serve.backend.ExecutionBackend` and records what goes
through it. :class:`RequestClockMiddleware` stamps when a request arrived, so
the acknowledgement latency covers the whole request, not just the backend
call. :func:`metrics_router` serves ``GET /metrics`` (``read`` scope). These
three live in :mod:`~tradepulse.serve.metered_backend`,
:mod:`~tradepulse.serve.request_clock` and
:mod:`~tradepulse.serve.routes_metrics` and are re-exported here: import them
from this module.

The pure core never imports this module (it imports ``prometheus_client``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from tradepulse.domain.orders import OrderStatus
from tradepulse.errors import ConfigError
from tradepulse.execution.service_views import AccountView, FillView, OrderView, PositionView
from tradepulse.serve.backend import classify_error
from tradepulse.serve.metered_backend import DEFAULT_MAX_TRACKED_ORDERS, MeteredBackend
from tradepulse.serve.request_clock import RequestClockMiddleware
from tradepulse.serve.routes_metrics import metrics_router

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
            "Unix time the strategy's runner last answered (a ping or a completed bar).",
            ["strategy"],
            registry=registry,
        )
        self.strategy_last_bar = Gauge(
            "tradepulse_strategy_last_bar_timestamp_seconds",
            "Unix time (wall clock) the strategy's runner last completed a bar.",
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
        """Record that ``strategy``'s runner is alive (at ``timestamp``, Unix s; default now)."""
        self._set_strategy(self.strategy_heartbeat, strategy, timestamp)

    def strategy_bar(self, strategy: str, *, timestamp: float | None = None) -> None:
        """Record that ``strategy``'s runner completed a bar (at ``timestamp``; default now)."""
        self._set_strategy(self.strategy_last_bar, strategy, timestamp)

    def _set_strategy(self, gauge: Gauge, strategy: str, timestamp: float | None) -> None:
        label = self._strategy(strategy)
        if label == OTHER_LABEL:
            return  # timestamps of many strategies cannot share one series
        gauge.labels(label).set(self.wall_clock() if timestamp is None else timestamp)

    def strategy_stopped(self, strategy: str) -> None:
        """Drop ``strategy``'s heartbeat and last-bar series (a deleted one must not look stale)."""
        if self._strategy.knows(strategy):
            for gauge in (self.strategy_heartbeat, self.strategy_last_bar):
                with contextlib.suppress(KeyError):  # it never sent one
                    gauge.remove(strategy)

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
