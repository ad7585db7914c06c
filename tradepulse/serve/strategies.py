"""Live strategies at the ingress: their registry, runners and bar pipeline.

:class:`StrategyPipeline` lives with the execution service (the HTTP ingress
replica, the journal's single writer) and is the only one that changes the
service on a strategy's behalf. Runners run elsewhere (a Serve deployment, or
in process for tests) behind a :class:`~tradepulse.live.host.RunnerClient`;
they trade on shadow venues and answer with commands
(:mod:`tradepulse.live.host`). The pipeline is three parts:

- this module: the strategies' definitions (create, list, show, stop: the
  ``/strategies`` routes), kept durably by a
  :class:`~tradepulse.live.registry.StrategyRegistry` next to the journal, so
  a restarted ingress carries on;
- :mod:`tradepulse.serve.strategy_walk`: ``POST /market/bars`` through
  :meth:`StrategyPipeline.apply_bars`, bar by bar: the strategies' opens, the
  service's match, their closes, with each runner's bars run ahead on its
  shadow in one call;
- :mod:`tradepulse.serve.strategy_orders`: the runners' commands applied to
  the service (idempotent, refusals acknowledged to the runner), and what the
  service did on its own reported back: its cancels of a strategy's orders (a
  user's ``DELETE /orders/{id}``, the kill switch) reach the runner before its
  shadow matches the next bar, so the shadow cancels the order at the same
  point as the service and never fills what the service no longer has. A user
  may cancel a strategy's order but not replace it
  (:func:`~tradepulse.serve.strategy_orders.check_replaceable`: 409), nor
  send an order id a strategy of the account owns
  (:meth:`StrategyPipeline.has_strategy`, the order routes' predicate:
  :func:`~tradepulse.serve.strategy_orders.check_unreserved`, 409).

A runner that is lost (its replica died, it was evicted) answers
``needs_history``; the pipeline then sends the bars the service processed since
the strategy's first, the service's refusals of its orders and its own cancels
of them (each with the bar after which it took effect), read from the service
itself, and the runner rebuilds to the state of the one that never died.

**Pings.** Bars may not come for hours (daily bars, a weekend, a halt), so
whether a runner is alive is not left to them: :meth:`StrategyPipeline.ping`
pings every active strategy's runner (under the pipeline's lock, so never in
the middle of a bar walk), and :meth:`StrategyPipeline.start_pings` does it
every ``interval`` seconds in a background task (the app's lifespan starts and
stops it). A runner that answers is alive (its heartbeat); one that lost its
state is rebuilt there and then, so a restarted runner replica is ready
before the next bar; one that does not answer keeps its old heartbeat (the
``TradePulseStrategyHeartbeatStale`` alert) and is logged once per streak of
failed pings. Market data's freshness is the separate ``bar(strategy)``
signal, per completed bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.errors import ConfigError
from tradepulse.execution.service_views import (
    FillView,
    OrderConflictError,
    OrderNotFoundError,
)
from tradepulse.live.host import RunnerClient, RunnerSpec
from tradepulse.live.registry import StrategyRecord, StrategyRegistry
from tradepulse.live.runner import RunnerState
from tradepulse.serve.backend import ExecutionBackend
from tradepulse.serve.strategy_orders import (
    HasStrategy,
    LiveStrategy,
    ReservedIdError,
    ServiceLedger,
    StrategyOrderError,
    check_replaceable,
    check_unreserved,
)
from tradepulse.serve.strategy_walk import BarWalk, RunnerUnavailableError
from tradepulse.strategy.api import Bar
from tradepulse.strategy.params import ParameterError

__all__ = [
    "DEFAULT_PING_SECONDS",
    "HasStrategy",
    "ReservedIdError",
    "RunnerUnavailableError",
    "ServiceLedger",
    "StrategyDefinitionError",
    "StrategyNotFoundError",
    "StrategyOrderError",
    "StrategyPipeline",
    "StrategyStatus",
    "check_replaceable",
    "check_unreserved",
]


#: How often the app's lifespan pings the strategies' runners, seconds (0 turns pings off).
DEFAULT_PING_SECONDS: Final = 15.0

_log = logging.getLogger(__name__)


class StrategyDefinitionError(ConfigError):
    """A strategy definition is invalid; ``field`` names the part (``plugin``, ``params.fast``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class StrategyNotFoundError(OrderNotFoundError):
    """No strategy has that id in that account (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class StrategyStatus:
    """A strategy for the API: its record, runner's last state, heartbeat and last bar (Unix s)."""

    record: StrategyRecord
    state: RunnerState | None
    heartbeat: float | None
    cancelled: tuple[str, ...] = ()
    last_bar: float | None = None


class StrategyPipeline:
    """Strategies' registry, runners and bar pipeline at the ingress (see the module docstring).

    ``backend`` is the (metered) execution backend commands go through;
    ``ledger`` the same service read in process; ``registry`` the durable
    definitions; ``runners`` where the runners live. ``heartbeat(strategy)``
    is called whenever a runner answers (a ping or a completed bar),
    ``bar(strategy)`` per completed bar and ``stopped(strategy)`` on delete
    (the metrics); ``clock`` stamps records (UTC ns), ``wall_clock``
    heartbeats (s).
    """

    def __init__(
        self,
        *,
        backend: ExecutionBackend,
        ledger: ServiceLedger,
        registry: StrategyRegistry,
        runners: RunnerClient,
        heartbeat: Callable[[str], None] | None = None,
        stopped: Callable[[str], None] | None = None,
        clock: Callable[[], int] = time.time_ns,
        wall_clock: Callable[[], float] = time.time,
        bar: Callable[[str], None] | None = None,
    ) -> None:
        self._backend = backend
        self._ledger = ledger
        self._registry = registry
        self._walk = BarWalk(
            backend=backend,
            ledger=ledger,
            runners=runners,
            heartbeat=heartbeat,
            wall_clock=wall_clock,
            bar=bar,
        )
        self._stopped = stopped
        self._clock = clock
        self._lock = asyncio.Lock()
        self._pinger: asyncio.Task[None] | None = None
        self._live: dict[str, LiveStrategy] = {}
        for record in registry.records(active_only=True):
            self._live[record.strategy_id] = LiveStrategy(record, self._spec(record))

    def __repr__(self) -> str:
        return f"StrategyPipeline(active={len(self._live)}, runners={self._walk.runners!r})"

    @property
    def registry(self) -> StrategyRegistry:
        """Return the strategy registry."""
        return self._registry

    def _spec(self, record: StrategyRecord) -> RunnerSpec:
        config = self._ledger.config
        instrument = config.instrument(record.symbol)
        if instrument is None:
            raise StrategyDefinitionError(
                "symbol",
                f"symbol {record.symbol!r} is not configured and the service rejects "
                "unknown symbols",
            )
        return RunnerSpec(
            strategy_id=record.strategy_id,
            plugin=record.plugin,
            params=record.params,
            symbol=record.symbol,
            instrument=instrument,
            cash=float(config.initial_cash) if record.cash is None else record.cash,
            commission_rate=float(config.commission_rate),
            max_participation=config.max_participation,
        )

    # ----------------------------------------------------------------- definitions

    async def create(
        self,
        *,
        account: str,
        plugin: str,
        params: Mapping[str, Any],
        symbol: str,
        cash: Decimal | None = None,
        strategy_id: str | None = None,
    ) -> tuple[StrategyStatus, bool]:
        """Register a strategy (it trades from the next bar of ``symbol``); return it and if new.

        Raises:
            StrategyDefinitionError: the plugin is unknown, a parameter invalid,
                the symbol unknown to the service or the cash not positive.
            StrategyConflictError: ``strategy_id`` belongs to another strategy.
            ConfigError: ``strategy_id`` is malformed.
        """
        try:
            strategy = resolve_strategy(plugin)
        except ConfigError as error:
            raise StrategyDefinitionError("plugin", str(error)) from None
        try:
            typed = resolve_params(strategy, params)
        except ParameterError as error:
            raise StrategyDefinitionError(f"params.{error.parameter}", str(error)) from None
        except ConfigError as error:
            raise StrategyDefinitionError("params", str(error)) from None
        amount = None if cash is None else float(cash)
        async with self._lock:
            draft = StrategyRecord(
                strategy_id=strategy_id or "draft",
                account=account,
                plugin=strategy.name,
                params=typed.to_dict(),
                symbol=symbol,
                cash=amount,
                created_ns=self._clock(),
            )
            self._spec(draft)  # the symbol must have an instrument
            record, created = self._registry.create(
                account=account,
                plugin=draft.plugin,
                params=draft.params,
                symbol=symbol,
                cash=amount,
                created_ns=draft.created_ns,
                strategy_id=strategy_id,
                taken=lambda candidate: bool(
                    self._ledger.keyed_orders(account=account, prefix=f"{candidate}:")
                ),
            )
            if created:  # no order yet: nothing to read from the service
                live = LiveStrategy(record, self._spec(record), tracked=True)
                self._live[record.strategy_id] = live
            return self._status(record), created

    def _owned(self, account: str, strategy_id: str) -> StrategyRecord:
        record = self._registry.get(strategy_id)
        if record is None or record.account != account:
            raise StrategyNotFoundError(
                f"strategy {strategy_id!r} not found in account {account!r}"
            )
        return record

    def _status(self, record: StrategyRecord, cancelled: tuple[str, ...] = ()) -> StrategyStatus:
        live = self._live.get(record.strategy_id)
        if live is None:
            return StrategyStatus(record, None, None, cancelled)
        return StrategyStatus(
            live.record, live.state, live.heartbeat, cancelled, last_bar=live.last_bar
        )

    def has_strategy(self, account: str, strategy_id: str) -> bool:
        """Return whether ``strategy_id`` is a strategy of ``account``, running or stopped.

        Its runner's order ids are ``<strategy_id>:...``: the order routes
        refuse them to users (:func:`check_unreserved`).
        """
        record = self._registry.get(strategy_id)
        return record is not None and record.account == account

    def strategies(self, account: str) -> list[StrategyStatus]:
        """Return ``account``'s strategies (stopped ones included), oldest first."""
        return [self._status(record) for record in self._registry.records(account=account)]

    async def strategy(self, account: str, strategy_id: str) -> StrategyStatus:
        """Return one strategy of ``account``, asking its runner for its state if not known yet.

        Raises:
            StrategyNotFoundError: ``account`` has no such strategy.
            RunnerUnavailableError: the runner cannot be reached.
        """
        record = self._owned(account, strategy_id)
        live = self._live.get(strategy_id)
        if live is not None and live.state is None:
            async with self._lock:
                if live.state is None:
                    await self._walk.report(live)
        return self._status(record)

    async def stop(self, account: str, strategy_id: str) -> StrategyStatus:
        """Stop a strategy: no more bars, its working orders cancelled at the service.

        Answers the stopped strategy with the service ids of the orders cancelled.

        Raises:
            StrategyNotFoundError: ``account`` has no such strategy.
        """
        async with self._lock:
            record = self._owned(account, strategy_id)
            live = self._live.pop(strategy_id, None)
            if not record.active:
                return self._status(record)
            record = self._registry.stop(strategy_id, stopped_ns=self._clock())
            cancelled = []
            for view in await self._backend.orders(account=account, open_only=True):
                if view.strategy != strategy_id:
                    continue
                try:
                    await self._backend.cancel(view.order_id, account=account)
                except (OrderConflictError, OrderNotFoundError):
                    continue  # it ended meanwhile
                cancelled.append(view.order_id)
            self._walk.forget(strategy_id)
            if live is not None:
                await self._walk.stop(live)
            if self._stopped is not None:
                self._stopped(strategy_id)
            return StrategyStatus(
                record,
                None if live is None else live.state,
                None if live is None else live.heartbeat,
                tuple(cancelled),
                last_bar=None if live is None else live.last_bar,
            )

    # ----------------------------------------------------------------- bars

    async def apply_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        """Apply ``(symbol, bar)`` pairs in order through the strategies' pipeline; return fills.

        Raises:
            RunnerUnavailableError: a runner could not be reached: nothing was
                applied if it was for the run ahead, else the bars up to the
                one whose open it could not take.
            TradePulseError: the service refused a bar (see the backend).
        """
        async with self._lock:
            bars_of: dict[str, list[Bar]] = {}
            for symbol, bar in bars:
                if any(live.record.symbol == symbol for live in self._live.values()):
                    last = self._ledger.last_bar_ts(symbol)
                    if last is None or bar.ts > last:  # the service ignores the others
                        bars_of.setdefault(symbol, []).append(bar)
            lives = sorted(
                (live for live in self._live.values() if live.record.symbol in bars_of),
                key=lambda live: live.record.strategy_id,
            )
            for live in lives:
                if live.record.first_ts is None:
                    first = bars_of[live.record.symbol][0].ts
                    live.record = self._registry.set_first_ts(live.record.strategy_id, first)
            return await self._walk.walk(bars, lives, bars_of)

    # ----------------------------------------------------------------- pings

    async def ping(self) -> dict[str, bool]:
        """Ping every active strategy's runner once; return whether each answered, by id.

        Runs under the pipeline's lock (never in the middle of a bar walk);
        the pings go out together. A runner that lost its state is rebuilt.
        """
        async with self._lock:
            lives = sorted(self._live.values(), key=lambda live: live.record.strategy_id)
            answers = await asyncio.gather(*(self._walk.ping(live) for live in lives))
        return {
            live.record.strategy_id: answered for live, answered in zip(lives, answers, strict=True)
        }

    async def _ping_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.ping()
            except Exception:  # a bug must not end the pings; BarWalk.ping logs failures
                _log.exception("pinging the strategy runners failed")

    @property
    def pinging(self) -> bool:
        """Return whether the background pings run (:meth:`start_pings`)."""
        return self._pinger is not None and not self._pinger.done()

    def start_pings(self, interval: float = DEFAULT_PING_SECONDS) -> None:
        """Ping the runners every ``interval`` seconds from now on, in a background task.

        The first ping goes out after one interval. ``interval`` 0 does
        nothing (pings off); call from a running event loop.

        Raises:
            ConfigError: ``interval`` is negative or not a number, or pings already run.
        """
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise ConfigError(f"ping interval must be a number of seconds; got {interval!r}")
        if not interval >= 0:
            raise ConfigError(f"ping interval must be >= 0 seconds; got {interval!r}")
        if self.pinging:
            raise ConfigError("the strategy runners are pinged already")
        if interval > 0:
            self._pinger = asyncio.get_running_loop().create_task(
                self._ping_every(float(interval)), name="tradepulse-strategy-pings"
            )

    async def stop_pings(self) -> None:
        """Stop the background pings (a ping under way is cancelled; nothing when none run)."""
        pinger, self._pinger = self._pinger, None
        if pinger is None:
            return
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger
