"""Live strategies at the ingress: their registry, and the bar pipeline that trades for them.

:class:`StrategyPipeline` lives with the execution service (the HTTP ingress
replica, the journal's single writer) and is the only one that changes the
service on a strategy's behalf. Runners run elsewhere (a Serve deployment, or
in process for tests) behind a :class:`~tradepulse.live.host.RunnerClient`;
they trade on shadow venues and answer with commands
(:mod:`tradepulse.live.host`). ``POST /market/bars`` goes through
:meth:`StrategyPipeline.apply_bars`; for each bar ``b`` of a symbol ``S`` with
active strategies:

1. each strategy of ``S`` whose runner said a target is due (or that is new)
   gets an ``open``: the legs sized at ``b``'s open are submitted to the
   service;
2. the service matches ``b`` (so those legs fill at ``b``'s open, as in the
   backtest);
3. each strategy of ``S`` gets a ``close``: its runner matches ``b`` on its
   shadow, runs ``handle_tick``, and the orders it placed are applied to the
   service (they fill from the next bar on).

To spare a round trip per bar, each runner first runs all of the request's
bars of its symbol ahead on its shadow (a ``run``: the commands of every bar's
open and close at once), and the pipeline walks the bars applying them in the
order above; once the service refuses one of a strategy's orders, that
strategy goes on one call per bar (and its runner rebuilds). Bars of symbols
without strategies go to the service in one batch, as before.
Commands are applied through the (metered) execution backend, in the account
of the key that created the strategy, tagged ``strategy=<id>``, with the
runner's order id (``<id>:t3.1``) as both client order id and idempotency key,
so a command sent twice (a retry, a rebuilt runner repeating its last bar)
creates nothing. A refusal by the service (risk limits, throttles, kill switch)
is acknowledged to the runner on its next call, which cancels the order on its
shadow; a refused replace also cancels the order it replaced, so both sides
agree the strategy has neither. Cancelling an order the service already ended
counts as done.

A runner that is lost (its replica died, it was evicted) answers
``needs_history``; the pipeline then sends the bars the service processed since
the strategy's first and the service's refusals of its orders, read from the
service itself, and the runner rebuilds. If a runner cannot be reached for an
``open``, the bar is not applied (503: retry the bar); for a ``close`` the bar
stands and the runner catches up on its next bar.

:class:`~tradepulse.live.registry.StrategyRegistry` keeps the definitions
durably next to the journal, so a restarted ingress carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol

from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.domain.orders import OrderError, OrderStatus
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.execution.matching import BarLike
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import (
    FillView,
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
    OrderView,
)
from tradepulse.live.host import (
    History,
    HostPhase,
    HostReply,
    HostRequest,
    HostStep,
    RunnerClient,
    RunnerSpec,
)
from tradepulse.live.outbox import Ack, Command
from tradepulse.live.registry import StrategyRecord, StrategyRegistry
from tradepulse.live.runner import RunnerState
from tradepulse.serve.backend import ExecutionBackend
from tradepulse.strategy.api import Bar
from tradepulse.strategy.params import ParameterError

__all__ = [
    "RunnerUnavailableError",
    "ServiceLedger",
    "StrategyDefinitionError",
    "StrategyNotFoundError",
    "StrategyPipeline",
    "StrategyStatus",
]

_log = logging.getLogger(__name__)


class StrategyDefinitionError(ConfigError):
    """A strategy definition is invalid; ``field`` names the part (``plugin``, ``params.fast``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class StrategyNotFoundError(OrderNotFoundError):
    """No strategy has that id in that account (HTTP 404)."""


class RunnerUnavailableError(TradePulseError, RuntimeError):
    """A strategy's runner cannot be reached or rebuilt (HTTP 503: nothing was applied)."""


class ServiceLedger(Protocol):
    """What the pipeline reads from the execution service in its process (``ExecutionService``)."""

    @property
    def config(self) -> ServiceConfig:
        """Return the service's configuration (instruments, commission, cash)."""
        ...

    def last_bar_ts(self, symbol: str) -> int | None:
        """Return the stamp of the last bar processed for ``symbol``."""
        ...

    def bars(self, symbol: str, *, since_ts: int | None = None) -> list[BarLike]:
        """Return the bars processed for ``symbol`` from ``since_ts`` on."""
        ...

    def keyed_orders(self, *, account: str, prefix: str = "") -> dict[str, OrderView]:
        """Return ``account``'s orders by their keys starting with ``prefix``."""
        ...

    def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> list[OrderView]:
        """Return ``account``'s orders."""
        ...


@dataclass(frozen=True, slots=True)
class StrategyStatus:
    """A strategy for the API: its record, its runner's last state and heartbeat (Unix seconds)."""

    record: StrategyRecord
    state: RunnerState | None
    heartbeat: float | None
    cancelled: tuple[str, ...] = ()


@dataclass(slots=True)
class _Live:
    """The ingress's view of one active strategy."""

    record: StrategyRecord
    spec: RunnerSpec
    acks: list[Ack] = field(default_factory=list)
    open_next: bool = True
    resend: bool = True  # first contact since this ingress started
    force_history: bool = False  # the runner ran ahead of the service: rebuild it
    state: RunnerState | None = None
    heartbeat: float | None = None
    order_ids: dict[str, str] = field(default_factory=dict)  # runner id -> service order id


@dataclass(slots=True)
class _Plan:
    """A runner's run of a request's bars: the commands per bar, its state after the last."""

    steps: deque[HostStep]
    state: RunnerState | None
    open_next: bool


def _request_of(order_command: Command) -> OrderRequest:
    order = order_command.order
    assert order is not None  # submit and replace commands carry their order
    return OrderRequest(
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        client_order_id=order.client_order_id,
    )


def _as_bar(bar: BarLike) -> Bar:
    return Bar(int(bar.ts), bar.open, bar.high, bar.low, bar.close, bar.volume)


class StrategyPipeline:
    """Strategies' registry, runners and bar pipeline at the ingress (see the module docstring).

    ``backend`` is the (metered) execution backend commands go through;
    ``ledger`` the same service read in process; ``registry`` the durable
    definitions; ``runners`` where the runners live. ``heartbeat(strategy)``
    is called per completed bar and ``stopped(strategy)`` on delete (the
    metrics); ``clock`` stamps records (UTC ns), ``wall_clock`` heartbeats (s).
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
    ) -> None:
        self._backend = backend
        self._ledger = ledger
        self._registry = registry
        self._runners = runners
        self._heartbeat = heartbeat
        self._stopped = stopped
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = asyncio.Lock()
        self._live: dict[str, _Live] = {}
        for record in registry.records(active_only=True):
            self._live[record.strategy_id] = _Live(record, self._spec(record))

    def __repr__(self) -> str:
        return f"StrategyPipeline(active={len(self._live)}, runners={self._runners!r})"

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
            )
            if created:
                self._live[record.strategy_id] = _Live(record, self._spec(record))
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
        return StrategyStatus(live.record, live.state, live.heartbeat, cancelled)

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
                    await self._call(live, "state", None, self._previous(live))
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
            if live is not None:
                try:
                    await self._runners.step(HostRequest(spec=live.spec, phase="stop"))
                except Exception as error:  # the runner forgets it anyway when evicted
                    _log.warning("strategy %s: stopping its runner failed: %r", strategy_id, error)
            if self._stopped is not None:
                self._stopped(strategy_id)
            return StrategyStatus(
                record,
                None if live is None else live.state,
                None if live is None else live.heartbeat,
                tuple(cancelled),
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
            plans = await self._plan(lives, bars_of)
            pipelined = {(symbol, bar.ts) for symbol, listed in bars_of.items() for bar in listed}
            fills: list[FillView] = []
            plain: list[tuple[str, Bar]] = []
            for symbol, bar in bars:
                if (symbol, bar.ts) not in pipelined:
                    plain.append((symbol, bar))
                    continue
                if plain:
                    fills.extend(await self._backend.on_bars(plain))
                    plain = []
                running = [live for live in lives if live.record.symbol == symbol]
                fills.extend(await self._bar(symbol, bar, running, plans))
            if plain:
                fills.extend(await self._backend.on_bars(plain))
            return fills

    def _previous(self, live: _Live) -> int | None:
        """Return the last bar the strategy's runner must have completed (the service's)."""
        first = live.record.first_ts
        last = self._ledger.last_bar_ts(live.record.symbol)
        if first is None or last is None or last < first:
            return None
        return last

    async def _plan(self, lives: list[_Live], bars_of: Mapping[str, list[Bar]]) -> dict[str, _Plan]:
        """Have each runner run its symbol's bars ahead; return the plans by strategy id.

        A plan holds, per bar, the commands of its open and of its close as the
        runner's shadow took them, assuming the service accepts every order; the
        walk through the bars falls back to one call per bar for a strategy once
        the service refuses one of its orders (the runner then rebuilds).

        Raises:
            RunnerUnavailableError: a runner cannot be reached (nothing applied).
        """
        replies = await asyncio.gather(
            *(
                self._step(
                    live,
                    "run",
                    None,
                    self._previous(live),
                    bars=tuple(bars_of[live.record.symbol]),
                    record=False,
                )
                for live in lives
            ),
            return_exceptions=True,
        )
        plans = {}
        failed = None
        for live, reply in zip(lives, replies, strict=True):
            if isinstance(reply, BaseException):
                failed = failed or reply
                continue
            await self._apply(live, reply.commands)  # the last bar's commands, repeated
            plans[live.record.strategy_id] = _Plan(deque(reply.steps), reply.state, reply.open_next)
        if failed is not None:
            for live in lives:
                live.force_history = True  # the others ran ahead of the service
            if isinstance(failed, TradePulseError):
                raise failed
            raise RunnerUnavailableError(f"a strategy runner failed: {failed!r}") from failed
        return plans

    def _abandon(self, live: _Live, plans: dict[str, _Plan]) -> None:
        """Drop a strategy's plan: the service refused an order, so the runner must rebuild."""
        plans.pop(live.record.strategy_id, None)
        live.force_history = True
        live.open_next = True

    def _finish(self, live: _Live, plan: _Plan, plans: dict[str, _Plan]) -> None:
        plans.pop(live.record.strategy_id, None)
        live.state = plan.state
        live.open_next = plan.open_next

    async def _bar(
        self, symbol: str, bar: Bar, lives: list[_Live], plans: dict[str, _Plan]
    ) -> list[FillView]:
        """Apply one bar: the strategies' opens, the service's match, their closes."""
        previous = {live.record.strategy_id: self._previous(live) for live in lives}
        acting = []
        for live in lives:
            strategy_id = live.record.strategy_id
            plan = plans.get(strategy_id)
            if plan is not None and (not plan.steps or plan.steps[0].ts != bar.ts):
                self._finish(live, plan, plans)  # the strategy failed before this bar
                continue
            if live.state is not None and live.state.status == "failed" and plan is None:
                continue
            acting.append(live)
            if plan is not None:
                if await self._apply(live, plan.steps[0].open):
                    self._abandon(live, plans)
            elif live.open_next:
                try:
                    reply = await self._step(live, "open", bar, previous[strategy_id])
                except TradePulseError as error:
                    raise RunnerUnavailableError(
                        f"bar {bar.ts} of {symbol!r} was not applied: the runner of strategy "
                        f"{strategy_id!r} cannot take its open ({error}); send the bar again"
                    ) from error
                await self._apply(live, reply.commands)
        fills = await self._backend.on_bars([(symbol, bar)])
        for live in acting:
            strategy_id = live.record.strategy_id
            plan = plans.get(strategy_id)
            if plan is None:
                try:
                    reply = await self._step(live, "close", bar, previous[strategy_id])
                except TradePulseError as error:
                    # The bar stands; the runner catches up (rebuilds) on its next bar.
                    live.force_history = True
                    live.open_next = True
                    _log.warning(
                        "strategy %s missed the close of bar %d: %s", strategy_id, bar.ts, error
                    )
                    continue
                await self._apply(live, reply.commands)
                continue
            step = plan.steps.popleft()
            rejected = await self._apply(live, step.close)
            if step.completed:
                self._beat(live)
            if rejected:
                self._abandon(live, plans)
            elif not plan.steps:
                self._finish(live, plan, plans)
        return list(fills)

    # ----------------------------------------------------------------- runner calls

    def _history(self, live: _Live) -> History:
        """Return what the service knows of the strategy, for its runner to rebuild from."""
        record = live.record
        bars: tuple[Bar, ...] = ()
        if record.first_ts is not None:
            bars = tuple(
                _as_bar(bar) for bar in self._ledger.bars(record.symbol, since_ts=record.first_ts)
            )
        prefix = f"{record.strategy_id}:"
        rejected = {
            key: view.reason_detail or str(view.reason)
            for key, view in self._ledger.keyed_orders(
                account=record.account, prefix=prefix
            ).items()
            if view.status is OrderStatus.REJECTED
        }
        # A throttled order binds no key: find it by its client order id.
        for view in self._ledger.orders(account=record.account, status=OrderStatus.REJECTED):
            tag = view.client_order_id
            if view.strategy == record.strategy_id and view.replaces is None and tag:
                rejected.setdefault(tag, view.reason_detail or str(view.reason))
        return History(bars=bars, rejected=rejected)

    async def _step(
        self,
        live: _Live,
        phase: HostPhase,
        bar: Bar | None,
        previous: int | None,
        *,
        bars: tuple[Bar, ...] = (),
        record: bool = True,
    ) -> HostReply:
        """Call the strategy's runner (rebuilding it if it asks); return its reply.

        ``record`` keeps the reply's state and hint (a run's are those after
        its last bar: they are kept once the walk gets there).
        """
        request = HostRequest(
            spec=live.spec,
            phase=phase,
            bar=bar,
            bars=bars,
            previous_ts=previous,
            acks=tuple(live.acks),
            resend=live.resend,
            history=self._history(live) if live.force_history else None,
        )
        reply = await self._runners.step(request)
        if reply.status == "needs_history":
            reply = await self._runners.step(replace(request, history=self._history(live)))
            if reply.status == "needs_history":
                raise RunnerUnavailableError(
                    f"strategy {live.record.strategy_id!r}: its runner did not rebuild"
                )
        live.acks.clear()
        live.resend = live.force_history = False
        if record:
            live.open_next = reply.open_next
            live.state = reply.state
        if reply.completed_bar:
            self._beat(live)
        return reply

    def _beat(self, live: _Live) -> None:
        """Record that the strategy completed a bar (its heartbeat)."""
        live.heartbeat = self._wall_clock()
        if self._heartbeat is not None:
            self._heartbeat(live.record.strategy_id)

    async def _call(
        self, live: _Live, phase: HostPhase, bar: Bar | None, previous: int | None
    ) -> HostReply:
        reply = await self._step(live, phase, bar, previous)
        await self._apply(live, reply.commands)
        return reply

    # ----------------------------------------------------------------- commands

    async def _service_id(self, live: _Live, runner_order_id: str) -> str | None:
        known = live.order_ids.get(runner_order_id)
        if known is not None:
            return known
        found = self._ledger.keyed_orders(account=live.record.account, prefix=runner_order_id)
        view = found.get(runner_order_id)
        if view is None:
            return None
        live.order_ids[runner_order_id] = view.order_id
        return view.order_id

    async def _apply(self, live: _Live, commands: Sequence[Command]) -> bool:
        """Apply a runner's commands to the service in order; queue the refusals as acks.

        Return whether the service refused one.
        """
        refused = len(live.acks)
        account = live.record.account
        strategy_id = live.record.strategy_id
        backend = self._backend
        for command in commands:
            new_id = command.new_order_id
            if command.kind == "submit":
                assert new_id is not None  # a submit carries its order
                try:
                    outcome = await backend.submit(
                        _request_of(command),
                        account=account,
                        strategy=strategy_id,
                        idempotency_key=new_id,
                    )
                except (OrderError, OrderConflictError, ConfigError) as error:
                    live.acks.append(Ack(new_id, str(error)))
                    continue
                view = outcome.order
                live.order_ids[new_id] = view.order_id
                if view.status is OrderStatus.REJECTED:
                    live.acks.append(Ack(new_id, view.reason_detail or str(view.reason)))
                continue
            service_id = await self._service_id(live, command.client_order_id)
            if command.kind == "cancel":
                if service_id is not None:
                    await self._cancel(service_id, account)
                continue
            assert new_id is not None  # a replace carries its replacement
            if service_id is None:
                live.acks.append(
                    Ack(new_id, f"the service has no order {command.client_order_id!r} to replace")
                )
                continue
            try:
                replaced = await backend.replace(
                    service_id,
                    account=account,
                    quantity=command.quantity,
                    limit_price=command.limit_price,
                    stop_price=command.stop_price,
                    idempotency_key=new_id,
                )
            except (OrderError, OrderConflictError, OrderNotFoundError, ConfigError) as error:
                live.acks.append(Ack(new_id, str(error)))
                await self._cancel(service_id, account)
                continue
            live.order_ids[new_id] = replaced.order_id
            if replaced.status is OrderStatus.REJECTED:
                live.acks.append(Ack(new_id, replaced.reason_detail or str(replaced.reason)))
                await self._cancel(service_id, account)
        return len(live.acks) > refused

    async def _cancel(self, service_id: str, account: str) -> None:
        # An order already ended at the service: the cancel is done.
        with contextlib.suppress(OrderConflictError, OrderNotFoundError):
            await self._backend.cancel(service_id, account=account)
