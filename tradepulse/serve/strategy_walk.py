"""The walk of bars through live strategies' runners and the execution service.

:class:`BarWalk` is the part of the ingress's
:class:`~tradepulse.serve.strategies.StrategyPipeline` that drives the runners
(:mod:`tradepulse.live.host`) bar by bar. For each bar ``b`` of a symbol ``S``
with active strategies:

1. each strategy of ``S`` whose runner said a target is due (or that is new)
   gets an ``open``: the legs sized at ``b``'s open are submitted to the
   service;
2. the service matches ``b``;
3. the strategies' orders the service cancelled on its own (a user's
   ``DELETE /orders/{id}``, the kill switch) are looked for
   (:meth:`~tradepulse.serve.strategy_orders.StrategyOrders.find_cancels`);
4. each strategy of ``S`` gets a ``close``: its runner cancels on its shadow
   the orders the service cancelled before ``b``, matches ``b``, runs
   ``handle_tick``, and the orders it placed are applied to the service
   (they fill from the next bar on).

To spare a round trip per bar, each runner first runs all of the request's
bars of its symbol ahead on its shadow (a ``run``: the commands of every bar's
open and close at once, with the cancels found so far), and the walk applies
them in the order above. A run assumes the service does what the shadow did:
once the service refuses one of a strategy's orders, or is found to have
cancelled one before a bar the run matched with it working, the rest of that
strategy's run is void, it goes on one call per bar and its runner rebuilds
(from a :class:`~tradepulse.live.host.History` that places the refusal and
the cancel where they happened). Bars of symbols without strategies go to the
service in batches.

If a runner cannot be reached for the run, nothing is applied; for an
``open`` the bars before stand (503: send the bar again); for a ``close`` the
bar stands and the runner catches up (rebuilds) on its next bar.

Two signals per strategy come out of the walk: ``bar(strategy)`` when its
runner completes a bar (market data reaches it), and ``heartbeat(strategy)``
when its runner answers at all: a completed bar, or a :meth:`BarWalk.ping`
between bars (a runner that lost its state is rebuilt by the ping, so it is
ready before the next bar).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from tradepulse.errors import TradePulseError
from tradepulse.execution.service_views import FillView
from tradepulse.live.host import HostPhase, HostReply, HostRequest, HostStep, RunnerClient
from tradepulse.live.runner import RunnerState
from tradepulse.serve.backend import ExecutionBackend
from tradepulse.serve.strategy_orders import LiveStrategy, ServiceLedger, StrategyOrders
from tradepulse.strategy.api import Bar

__all__ = ["BarWalk", "RunnerUnavailableError"]

_log = logging.getLogger(__name__)


class RunnerUnavailableError(TradePulseError, RuntimeError):
    """A strategy's runner cannot be reached or rebuilt (HTTP 503: nothing was applied)."""


@dataclass(slots=True)
class _Plan:
    """A runner's run of a request's bars: the commands per bar, its state after the last."""

    steps: deque[HostStep]
    state: RunnerState | None
    open_next: bool


class BarWalk:
    """Walk bars through strategies' runners and the service (see the module docstring).

    ``backend`` is the (metered) execution backend; ``ledger`` the same
    service read in this process; ``runners`` where the runners live.
    ``heartbeat(strategy)`` is called whenever the strategy's runner answers
    a ping or completes a bar, after the strategy's ``heartbeat`` is set to
    ``wall_clock()`` (Unix seconds); ``bar(strategy)`` per completed bar.
    """

    def __init__(
        self,
        *,
        backend: ExecutionBackend,
        ledger: ServiceLedger,
        runners: RunnerClient,
        heartbeat: Callable[[str], None] | None,
        wall_clock: Callable[[], float],
        bar: Callable[[str], None] | None = None,
    ) -> None:
        self._backend = backend
        self._ledger = ledger
        self._runners = runners
        self._orders = StrategyOrders(backend=backend, ledger=ledger)
        self._heartbeat = heartbeat
        self._bar_done = bar
        self._wall_clock = wall_clock
        # Strategies whose last ping failed (their failure was logged once).
        self._unreachable: set[str] = set()

    def __repr__(self) -> str:
        return f"BarWalk(runners={self._runners!r})"

    @property
    def runners(self) -> RunnerClient:
        """Return where the runners live."""
        return self._runners

    # ----------------------------------------------------------------- bars

    async def walk(
        self,
        bars: Sequence[tuple[str, Bar]],
        lives: list[LiveStrategy],
        bars_of: Mapping[str, list[Bar]],
    ) -> list[FillView]:
        """Apply ``bars`` in order, those in ``bars_of`` through ``lives``; return the fills.

        ``bars_of`` holds, per symbol with strategies, the bars the service
        has not processed yet; ``lives`` are those symbols' strategies.

        Raises:
            RunnerUnavailableError: a runner could not be reached: nothing was
                applied if it was for the run ahead, else the bars up to the
                one whose open it could not take.
            TradePulseError: the service refused a bar (see the backend).
        """
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

    def previous(self, live: LiveStrategy) -> int | None:
        """Return the last bar the strategy's runner must have completed (the service's)."""
        first = live.record.first_ts
        last = self._ledger.last_bar_ts(live.record.symbol)
        if first is None or last is None or last < first:
            return None
        return last

    async def _plan(
        self, lives: list[LiveStrategy], bars_of: Mapping[str, list[Bar]]
    ) -> dict[str, _Plan]:
        """Have each runner run its symbol's bars ahead; return the plans by strategy id.

        A plan holds, per bar, the commands of its open and of its close as the
        runner's shadow took them, assuming the service does as the shadow did.

        Raises:
            RunnerUnavailableError: a runner cannot be reached (nothing applied).
        """
        for live in lives:
            self._orders.find_cancels(live)
        replies = await asyncio.gather(
            *(
                self._step(
                    live,
                    "run",
                    None,
                    self.previous(live),
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
            await self._orders.apply(live, reply.commands)  # the last bar's, repeated
            plans[live.record.strategy_id] = _Plan(deque(reply.steps), reply.state, reply.open_next)
        if failed is not None:
            for live in lives:
                live.force_history = True  # the others ran ahead of the service
            if isinstance(failed, TradePulseError):
                raise failed
            raise RunnerUnavailableError(f"a strategy runner failed: {failed!r}") from failed
        return plans

    def _abandon(self, live: LiveStrategy, plans: dict[str, _Plan]) -> None:
        """Drop a strategy's plan: the service did not do as its run assumed; rebuild the runner."""
        plans.pop(live.record.strategy_id, None)
        live.force_history = True
        live.open_next = True

    def _finish(self, live: LiveStrategy, plan: _Plan, plans: dict[str, _Plan]) -> None:
        plans.pop(live.record.strategy_id, None)
        live.state = plan.state
        live.open_next = plan.open_next

    async def _bar(
        self, symbol: str, bar: Bar, lives: list[LiveStrategy], plans: dict[str, _Plan]
    ) -> list[FillView]:
        """Apply one bar: the strategies' opens, the service's match, their closes."""
        previous = {live.record.strategy_id: self.previous(live) for live in lives}
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
                if await self._orders.apply(live, plan.steps[0].open):
                    self._abandon(live, plans)
            elif live.open_next:
                try:
                    reply = await self._step(live, "open", bar, previous[strategy_id])
                except TradePulseError as error:
                    raise RunnerUnavailableError(
                        f"bar {bar.ts} of {symbol!r} was not applied: the runner of strategy "
                        f"{strategy_id!r} cannot take its open ({error}); send the bar again"
                    ) from error
                await self._orders.apply(live, reply.commands)
        fills = await self._backend.on_bars([(symbol, bar)])
        for live in acting:
            strategy_id = live.record.strategy_id
            self._orders.find_cancels(live)
            plan = plans.get(strategy_id)
            if plan is not None and live.cancelled_before(bar.ts):
                # The run matched this bar with an order the service had cancelled.
                self._abandon(live, plans)
                plan = None
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
                await self._orders.apply(live, reply.commands)
                continue
            step = plan.steps.popleft()
            rejected = await self._orders.apply(live, step.close)
            if step.completed:
                self._beat(live)
            if rejected:
                self._abandon(live, plans)
            elif not plan.steps:
                self._finish(live, plan, plans)
        return list(fills)

    # ----------------------------------------------------------------- runner calls

    async def _step(
        self,
        live: LiveStrategy,
        phase: HostPhase,
        bar: Bar | None,
        previous: int | None,
        *,
        bars: tuple[Bar, ...] = (),
        record: bool = True,
    ) -> HostReply:
        """Call the strategy's runner (rebuilding it if it asks); return its reply.

        The request carries the refusals and cancels queued for the runner.
        ``record`` keeps the reply's state and hint (a run's are those after
        its last bar: they are kept once the walk gets there).
        """
        orders = self._orders
        request = HostRequest(
            spec=live.spec,
            phase=phase,
            bar=bar,
            bars=bars,
            previous_ts=previous,
            acks=tuple(live.acks),
            cancels=tuple(live.cancels.values()),
            resend=live.resend,
            history=orders.history(live) if live.force_history else None,
        )
        reply = await self._runners.step(request)
        if reply.status == "needs_history":
            reply = await self._runners.step(replace(request, history=orders.history(live)))
            if reply.status == "needs_history":
                raise RunnerUnavailableError(
                    f"strategy {live.record.strategy_id!r}: its runner did not rebuild"
                )
        live.acks.clear()
        live.cancels.clear()
        live.resend = live.force_history = False
        if record:
            live.open_next = reply.open_next
            live.state = reply.state
        if reply.completed_bar:
            self._beat(live)
        return reply

    def _beat(self, live: LiveStrategy) -> None:
        """Record that the strategy completed a bar (market data, and a heartbeat)."""
        self._alive(live)
        live.last_bar = live.heartbeat
        if self._bar_done is not None:
            self._bar_done(live.record.strategy_id)

    def _alive(self, live: LiveStrategy) -> None:
        """Record that the strategy's runner answered (its heartbeat)."""
        live.heartbeat = self._wall_clock()
        if self._heartbeat is not None:
            self._heartbeat(live.record.strategy_id)

    async def ping(self, live: LiveStrategy) -> bool:
        """Ping the strategy's runner (rebuilding it if it lost its state); return if it answered.

        The ping carries no acks, cancels or bars and applies nothing to the
        service: the queued acks and cancels wait for the next bar, unless a
        rebuild took them in (its history holds every refusal and cancel the
        service made). An answer is a heartbeat; a failure is logged once per
        streak of failures and leaves the heartbeat alone. The caller keeps
        bars out meanwhile (the pipeline's lock).
        """
        strategy_id = live.record.strategy_id
        orders = self._orders
        request = HostRequest(
            spec=live.spec,
            phase="ping",
            previous_ts=self.previous(live),
            history=orders.history(live) if live.force_history else None,
        )
        try:
            reply = await self._runners.step(request)
            if reply.status == "needs_history":
                request = replace(request, history=orders.history(live))
                reply = await self._runners.step(request)
        except Exception as error:  # any failure means "not reachable"; logged, never raised
            return self._unanswered(strategy_id, repr(error))
        if reply.status == "needs_history":
            return self._unanswered(strategy_id, "its runner did not rebuild")
        if request.history is not None:
            live.acks.clear()
            live.cancels.clear()
            live.force_history = False
        live.open_next = reply.open_next
        live.state = reply.state
        if strategy_id in self._unreachable:
            self._unreachable.discard(strategy_id)
            _log.info("strategy %s: its runner answers pings again", strategy_id)
        self._alive(live)
        return True

    def _unanswered(self, strategy_id: str, why: str) -> bool:
        if strategy_id not in self._unreachable:
            self._unreachable.add(strategy_id)
            _log.warning("strategy %s: its runner does not answer pings: %s", strategy_id, why)
        return False

    def forget(self, strategy_id: str) -> None:
        """Forget what the walk knows of a stopped strategy's pings."""
        self._unreachable.discard(strategy_id)

    async def report(self, live: LiveStrategy) -> HostReply:
        """Ask the strategy's runner for its state (rebuilding it if needed); return the reply.

        Raises:
            RunnerUnavailableError: the runner cannot be reached or rebuilt.
        """
        self._orders.find_cancels(live)
        reply = await self._step(live, "state", None, self.previous(live))
        await self._orders.apply(live, reply.commands)
        return reply

    async def stop(self, live: LiveStrategy) -> None:
        """Tell the strategy's runner to forget it (a failure is only logged)."""
        try:
            await self._runners.step(HostRequest(spec=live.spec, phase="stop"))
        except Exception as error:  # the runner forgets it anyway when evicted
            _log.warning(
                "strategy %s: stopping its runner failed: %r", live.record.strategy_id, error
            )
