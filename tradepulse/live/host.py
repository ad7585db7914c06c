"""Host strategy runners away from the execution service: requests in, commands out.

A :class:`RunnerHost` keeps one strategy's :class:`~tradepulse.live.StrategyRunner`
trading on a private shadow venue (:class:`~tradepulse.live.outbox.RecordingVenue`
over a paper venue with the service's instrument, commission and participation
cap) and answers :class:`HostRequest` s with :class:`HostReply` s carrying the
:class:`~tradepulse.live.outbox.Command` s the service must apply. It never
calls the service: the owner of the service (the HTTP ingress) drives it, per
bar ``b`` of the strategy's symbol:

1. ``open`` (only when the last reply's ``open_next`` says so: the strategy is
   new, or a target is due on ``b``): the runner sizes the due targets at
   ``b``'s open; the reply's commands (their market legs, superseded legs'
   cancels, orders placed in ``initialize``) go to the service;
2. the service matches ``b``;
3. ``close``: the runner matches ``b`` on the shadow (with the ``acks`` of step
   1 applied first), books its fills and runs ``handle_tick``; the reply's
   commands go to the service, to fill from the next bar on.

**The service's own cancels.** A request also carries the
:class:`~tradepulse.live.outbox.ServiceCancel` s the ingress found since its
last call: orders of the strategy the service cancelled without the runner
asking (a user's ``DELETE /orders/{id}``, the kill switch), each stamped with
the last bar the service had matched then (``after_ts``). The host cancels each
on the shadow right before the shadow matches the first bar after
``after_ts`` (after that bar's open, as the service did: it never matched that
bar with the order working), so the shadow never fills what the service no
longer has. A cancel that arrives after the shadow matched such a bar with
the order still working means the runner drifted from the service: the host
answers ``needs_history`` and rebuilds.

**Runs.** A ``run`` request carries several bars (those of one
``POST /market/bars``): the runner opens and closes them one after the other
on its shadow, assuming the service accepts every order, and answers the
commands of each bar's open and close (:class:`HostStep`). The ingress then
walks the bars, applying each bar's open commands, matching the bar, applying
its close commands: one round trip per request instead of one or two per bar.
If the service refuses one of the run's orders, the rest of the run is void:
the ingress goes on bar by bar, and the runner, now ahead of the service,
rebuilds (below) with the refusal acknowledged where it happened.

Every request carries ``previous_ts``, the stamp of the last bar the runner
must have completed (the service's last bar of the symbol in the strategy's
life).

**Pings.** Between bars the ingress pings each runner (``ping``): the host
answers whether it holds a runner that completed ``previous_ts`` (``ok``) or
not (``needs_history``, after dropping a runner that is behind or ahead),
without touching the shadow: a ping carries no acks, cancels or bars and
answers no commands. A ``needs_history`` answer makes the ingress send the
ping again with a :class:`History`, so a runner lost between bars (a replica
that died and came back empty) is rebuilt before the next bar arrives.

**Idempotent and self-healing.** An ``open`` for the bar already prepared, or a
``close`` for the bar already completed, answers the same commands again (the
service deduplicates them by client order id). A host that is behind or ahead
of ``previous_ts`` (a new replica, an evicted strategy, a lost reply) answers
``needs_history`` and drops its state; the ingress sends the request again with
a :class:`History`: every bar the service processed for the symbol since the
strategy's first, the service's refusals of the strategy's orders and its own
cancels of them. The host replays them on a fresh runner (acknowledging each
refusal where the live run did: right after the step that placed the order;
cancelling each order the service cancelled where the live run did: right
before the bar after ``after_ts`` is matched), which reproduces the lost
runner exactly, and answers the request; its first reply after a rebuild
repeats the commands of the last bar completed, in case they never reached the
service.

:class:`RunnerPool` holds hosts in this process (tests, a single-process
server); the Serve layer holds them in a multiplexed deployment. Both satisfy
:class:`RunnerClient` through :class:`LocalRunners` and the deployment client.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from tradepulse.domain.instrument import Instrument
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.live.outbox import (
    ENDED_BEFORE_REPLACE,
    Ack,
    Command,
    RecordingVenue,
    ServiceCancel,
    shadow_time,
)
from tradepulse.live.runner import RunnerState, StrategyRunner
from tradepulse.live.venues import paper_venue
from tradepulse.strategy.api import Bar, Strategy

__all__ = [
    "DEFAULT_MAX_HOSTS",
    "History",
    "HostPhase",
    "HostReply",
    "HostRequest",
    "HostStep",
    "LocalRunners",
    "RunnerClient",
    "RunnerHost",
    "RunnerPool",
    "RunnerSpec",
]

#: What a request asks: a bar's open, the bar's close, a run of bars, a report, a ping, or stop.
HostPhase = Literal["open", "close", "run", "state", "ping", "stop"]
#: How many hosts a :class:`RunnerPool` keeps before it drops the least recently used.
DEFAULT_MAX_HOSTS: Final = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class RunnerSpec:
    """Everything a host needs to (re)build a strategy's runner.

    ``strategy_id`` is the runner id (the prefix of its order ids at the
    service); ``plugin`` (a plugin name; a no-argument Strategy class in tests)
    and ``params`` (JSON-ready values) the strategy;
    ``instrument`` the service's instrument of ``symbol``; ``cash`` the cash the
    strategy sizes its targets from (quote currency); ``commission_rate`` the
    service's commission (fraction of notional); ``max_participation`` its
    participation cap (None: none).
    """

    strategy_id: str
    plugin: str | type[Strategy]
    params: Mapping[str, Any]
    symbol: str
    instrument: Instrument
    cash: float
    commission_rate: float = 0.0
    max_participation: float | None = None


@dataclass(frozen=True, slots=True)
class History:
    """What the service knows of a strategy: its bars, its refusals and cancels of its orders.

    ``bars`` are every bar of the symbol the service processed since the
    strategy's first, in order; ``rejected`` maps the (prefixed) client order
    ids of the strategy's orders the service refused to the reason;
    ``cancelled`` are the service's own cancels of the strategy's orders (a
    superset does no harm: a cancel of an order the runner ended itself by
    then changes nothing; a replace of a cancelled order was refused).
    """

    bars: tuple[Bar, ...]
    rejected: Mapping[str, str] = field(default_factory=dict)
    cancelled: tuple[ServiceCancel, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HostRequest:
    """One call to a host (see the module docstring).

    ``bar`` is the bar of an ``open`` or ``close``, ``bars`` those of a ``run``
    (in time order); ``previous_ts`` the stamp of
    the last bar the runner must have completed (None: none yet); ``acks`` the
    service's refusals of the commands of the previous reply; ``cancels`` the
    service's own cancels of the strategy's orders found since the previous
    call; ``history`` the material of a rebuild (sent after a
    ``needs_history`` reply); ``resend`` asks for the commands of the last bar
    completed again (an ingress that restarted may have lost them).
    """

    spec: RunnerSpec
    phase: HostPhase
    bar: Bar | None = None
    bars: tuple[Bar, ...] = ()
    previous_ts: int | None = None
    acks: tuple[Ack, ...] = ()
    cancels: tuple[ServiceCancel, ...] = ()
    history: History | None = None
    resend: bool = False


@dataclass(frozen=True, slots=True)
class HostStep:
    """One bar of a ``run``: the commands of its open and of its close (see :class:`HostRequest`).

    ``completed`` is False when the strategy failed on the bar.
    """

    ts: int
    open: tuple[Command, ...]
    close: tuple[Command, ...]
    completed: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class HostReply:
    """A host's answer.

    ``status`` is ``ok`` or ``needs_history`` (send the request again with a
    :class:`History`; nothing was done). ``commands`` are for the service, in
    order; ``state`` is the runner's state (None once stopped);
    ``completed_ts`` / ``prepared_ts`` the last bar completed and the bar
    between ``open`` and ``close``; ``open_next`` whether the next bar needs
    an ``open``; ``completed_bar`` whether this call completed a bar.
    """

    strategy_id: str
    status: Literal["ok", "needs_history"]
    commands: tuple[Command, ...] = ()
    state: RunnerState | None = None
    completed_ts: int | None = None
    prepared_ts: int | None = None
    open_next: bool = True
    completed_bar: bool = False
    steps: tuple[HostStep, ...] = ()


def _acks_for(
    commands: Iterable[Command], rejected: Mapping[str, str], cancelled: Set[str]
) -> list[Ack]:
    """Return the acks of the commands whose new order the service refused.

    A replace of an order the service had cancelled on its own (``cancelled``)
    was refused too: the cancel reached the service first (a replace that
    reaches it first ends the order as replaced, not cancelled).
    """
    acks = []
    for command in commands:
        new_id = command.new_order_id
        if new_id is None:
            continue
        if new_id in rejected:
            acks.append(Ack(new_id, rejected[new_id]))
        elif command.kind == "replace" and command.client_order_id in cancelled:
            acks.append(Ack(new_id, ENDED_BEFORE_REPLACE + command.client_order_id))
    return acks


class RunnerHost:
    """One strategy's runner on its shadow venue, driven by :class:`HostRequest` s.

    With ``history`` the runner is rebuilt from it at once (as a multiplexed
    loader does); without, the first request is answered ``needs_history``.

    Raises:
        ConfigError: the spec is invalid (unknown plugin, invalid parameters,
            cash or participation cap).
    """

    def __init__(self, spec: RunnerSpec, *, history: History | None = None) -> None:
        if not isinstance(spec, RunnerSpec):
            raise ConfigError(f"spec must be a RunnerSpec; got {spec!r}")
        self._spec = spec
        self._runner: StrategyRunner | None = None
        self._venue: RecordingVenue | None = None
        self._prepared: Bar | None = None
        self._completed_ts: int | None = None
        self._last_open: tuple[Command, ...] = ()
        self._last_close: tuple[Command, ...] = ()
        self._resend = False
        self._fresh = False
        self._failure: str | None = None
        # The service's cancels not mirrored yet, by order id (see _mirror_due).
        self._cancels: dict[str, ServiceCancel] = {}
        self.rebuilds = 0
        self._build()  # check the spec now
        self._runner = self._venue = None
        if history is not None:
            self._rebuild(history)
            self._fresh = True

    def __repr__(self) -> str:
        return (
            f"RunnerHost({self._spec.strategy_id!r}, synced={self.synced}, "
            f"completed_ts={self._completed_ts}, rebuilds={self.rebuilds})"
        )

    @property
    def spec(self) -> RunnerSpec:
        """Return the spec the runner is built from."""
        return self._spec

    @property
    def synced(self) -> bool:
        """Return whether the host holds a runner (False: it needs a history)."""
        return self._runner is not None

    @property
    def runner(self) -> StrategyRunner | None:
        """Return the runner (None until a history was replayed, or once stopped)."""
        return self._runner

    # ----------------------------------------------------------------- building

    def _build(self) -> tuple[StrategyRunner, RecordingVenue]:
        spec = self._spec
        shadow = paper_venue(
            spec.instrument,
            commission=spec.commission_rate,
            max_participation=spec.max_participation,
        )
        venue = RecordingVenue(shadow)
        runner = StrategyRunner(
            spec.plugin,
            spec.params,
            venue=venue,
            runner_id=spec.strategy_id,
            cash=spec.cash,
            commission=spec.commission_rate,
            max_participation=spec.max_participation,
        )
        self._runner, self._venue = runner, venue
        return runner, venue

    def _rebuild(self, history: History) -> None:
        """Replay ``history`` on a fresh runner, acknowledging refusals where the live run did."""
        _, venue = self._build()
        self._prepared, self._completed_ts, self._failure = None, None, None
        self._last_open = self._last_close = ()
        self._cancels = {cancel.client_order_id: cancel for cancel in history.cancelled}
        rejected, cancelled = history.rejected, set(self._cancels)
        for bar in history.bars:
            if self._failed():
                break
            legs = self._open(bar)
            venue.acknowledge(_acks_for(legs, rejected, cancelled))
            commands, _ = self._close(bar)
            venue.acknowledge(_acks_for(commands, rejected, cancelled))
            self._last_open, self._last_close = legs, commands
        self._resend = True
        self.rebuilds += 1

    def _desync(self) -> HostReply:
        """Drop the runner: its state does not match the service's; ask for a history."""
        self._runner = self._venue = None
        self._prepared = None
        self._cancels = {}
        return self._reply("needs_history")

    # ----------------------------------------------------------------- steps

    def _open(self, bar: Bar) -> tuple[Command, ...]:
        """Prepare ``bar`` (release the targets due at its open); return the commands."""
        runner, venue = self._live()
        try:
            self._prepared = runner.prepare_bar(bar)
        except TradePulseError as error:
            self._failure = self._failure or str(error)
        return venue.take()

    def _close(self, bar: Bar) -> tuple[tuple[Command, ...], bool]:
        """Match the prepared ``bar`` on the shadow, book, ``handle_tick``; return the commands.

        The flag says whether the bar was completed (False: the runner failed).
        """
        runner, venue = self._live()
        prepared = self._prepared
        if prepared is None:
            return venue.take(), False
        try:
            self._mirror_due(prepared.ts)
            matched = venue.process_bar(prepared)
            runner.complete_bar(matched.fills)
        except TradePulseError as error:
            self._failure = self._failure or str(error)
            return venue.take(), False
        finally:
            self._prepared = None
        self._completed_ts = prepared.ts
        return venue.take(), True

    def _mirror_due(self, ts: int) -> None:
        """Cancel on the shadow the service's cancels that took effect before bar ``ts``."""
        venue = self._live()[1]
        for order_id, cancel in list(self._cancels.items()):
            if cancel.after_ts is None or cancel.after_ts < ts:
                del self._cancels[order_id]
                venue.mirror_cancel(cancel)

    def _receive(self, cancels: Iterable[ServiceCancel]) -> bool:
        """Queue the service's cancels for the next match; return False if one came too late.

        Too late: the shadow matched a bar after the cancel's ``after_ts``
        with the order working (it still works, or it ended after then), so
        the shadow no longer matches the service. A cancel of an order the
        shadow ended by then (the runner cancelled it itself, or it was
        mirrored before) changes nothing.
        """
        venue = self._live()[1]
        matched = self._completed_ts
        for cancel in cancels:
            after = cancel.after_ts
            if matched is None or (after is not None and after >= matched):
                self._cancels[cancel.client_order_id] = cancel
                continue
            record = venue.orders.get(cancel.client_order_id)
            if record is not None and (record.is_open or record.updated_ts_ns > shadow_time(after)):
                return False
        return True

    def _run(self, bars: Sequence[Bar]) -> list[HostStep]:
        """Open and close ``bars`` one after the other; return the commands of each."""
        steps = []
        for bar in bars:
            if self._failed():
                break
            # The first bar may be prepared already (its open was answered before).
            legs = self._last_open if self._prepared is not None else self._open(bar)
            closed, completed = self._close(bar)
            self._last_open, self._last_close = legs, closed
            steps.append(HostStep(bar.ts, legs, closed, completed))
        return steps

    def _live(self) -> tuple[StrategyRunner, RecordingVenue]:
        runner, venue = self._runner, self._venue
        if runner is None or venue is None:  # pragma: no cover - callers check synced
            raise ConfigError(f"runner {self._spec.strategy_id!r} is not built")
        return runner, venue

    def _failed(self) -> bool:
        """Return whether the strategy failed (it then takes no more bars)."""
        if self._failure is not None:
            return True
        runner = self._runner
        return runner is not None and runner.state().status == "failed"

    def _open_next(self) -> bool:
        """Return whether the next bar may produce commands at its open."""
        runner = self._runner
        if runner is None or self._prepared is not None:
            return True
        if runner.state().status == "new":
            return True  # initialize runs at the first bar and may place orders
        due = runner.next_target_bar
        return due is not None and due <= runner.bars

    def _reply(
        self,
        status: Literal["ok", "needs_history"],
        commands: Sequence[Command] = (),
        *,
        completed_bar: bool = False,
        steps: Sequence[HostStep] = (),
    ) -> HostReply:
        runner = self._runner
        state = None if runner is None else runner.state()
        if state is not None and self._failure is not None and state.failure is None:
            state = _with_failure(state, self._failure)
        return HostReply(
            strategy_id=self._spec.strategy_id,
            status=status,
            commands=tuple(commands),
            state=state,
            completed_ts=self._completed_ts,
            prepared_ts=None if self._prepared is None else self._prepared.ts,
            open_next=self._open_next(),
            completed_bar=completed_bar,
            steps=tuple(steps),
        )

    # ----------------------------------------------------------------- requests

    def handle(self, request: HostRequest) -> HostReply:
        """Answer ``request`` (see the module docstring).

        Raises:
            ConfigError: the request is malformed (no bar for ``open`` / ``close``)
                or its spec cannot be built.
        """
        if not isinstance(request, HostRequest):
            raise ConfigError(f"request must be a HostRequest; got {request!r}")
        if request.spec != self._spec:
            # The strategy was redefined under this id: start over from its history.
            self._spec = request.spec
            self._runner = self._venue = None
            self._fresh = False
        if request.phase == "stop":
            self._runner = self._venue = None
            self._prepared = None
            return self._reply("ok")
        if request.history is not None and not self._fresh:
            self._rebuild(request.history)
        self._fresh = False
        if self._runner is None:
            return self._reply("needs_history")
        if request.phase == "ping":
            return self._ping(request.previous_ts)
        venue = self._live()[1]
        venue.acknowledge(request.acks)
        if not self._receive(request.cancels):
            return self._desync()
        commands: list[Command] = []
        if self._resend or request.resend:
            commands.extend(self._last_close)
            self._resend = False
        if self._failed():
            return self._reply("ok", commands)
        completed, previous = self._completed_ts, request.previous_ts
        if request.phase == "run":
            prepared = self._prepared
            if completed != previous or (
                prepared is not None and (not request.bars or request.bars[0].ts != prepared.ts)
            ):
                return self._desync()
            return self._reply("ok", commands, steps=self._run(request.bars))
        if request.phase == "state":
            return self._reply("ok", commands) if completed == previous else self._desync()
        bar = request.bar
        if not isinstance(bar, Bar):
            raise ConfigError(f"a {request.phase} request needs a Bar; got {bar!r}")
        if request.phase == "close" and completed == bar.ts:
            return self._reply("ok", self._last_close)  # a retry: the same commands again
        if completed != previous:
            return self._desync()
        prepared = self._prepared
        if prepared is not None and prepared.ts != bar.ts:
            return self._desync()  # prepared a bar the service never processed
        if request.phase == "open":
            if prepared is None:
                self._last_open = self._open(bar)
            commands.extend(self._last_open)
            return self._reply("ok", commands)
        if prepared is None:
            legs = self._open(bar)
            if legs:
                # The ingress skipped the open although orders were due there: they
                # can no longer reach the service before it matched the bar.
                self._failure = (
                    f"orders due at the open of the bar at ts {bar.ts} were not sent before "
                    "the service matched it; delete and recreate the strategy"
                )
                self._prepared = None
                return self._reply("ok", commands)
            self._last_open = legs
        closed, completed_bar = self._close(bar)
        self._last_close = closed
        commands.extend(closed)
        return self._reply("ok", commands, completed_bar=completed_bar)

    def _ping(self, previous: int | None) -> HostReply:
        """Answer a ping: ``ok`` when the runner completed ``previous`` (or failed), else rebuild.

        Nothing reaches the shadow: the request's acks and cancels (a ping
        carries none) wait for the next bar, and the commands a rebuild repeats
        (``resend``) too.
        """
        if self._failed() or self._completed_ts == previous:
            return self._reply("ok")
        return self._desync()


def _with_failure(state: RunnerState, failure: str) -> RunnerState:
    return dataclasses.replace(state, status="failed", failure=failure)


class RunnerPool:
    """Hosts of many strategies in this process, the least recently used dropped past ``max_hosts``.

    A request for a strategy the pool does not hold builds its host (from the
    request's history, if any), as the Serve deployment's multiplexed loader
    does. :meth:`drop` forgets a host (what a lost replica does).

    Raises:
        ConfigError: ``max_hosts`` is not a positive integer.
    """

    def __init__(self, *, max_hosts: int = DEFAULT_MAX_HOSTS) -> None:
        if isinstance(max_hosts, bool) or not isinstance(max_hosts, int) or max_hosts < 1:
            raise ConfigError(f"max_hosts must be a positive integer; got {max_hosts!r}")
        self._max_hosts = max_hosts
        self._hosts: OrderedDict[str, RunnerHost] = OrderedDict()

    def __repr__(self) -> str:
        return f"RunnerPool({len(self._hosts)} hosts, max_hosts={self._max_hosts})"

    def __len__(self) -> int:
        """Return the number of hosts held."""
        return len(self._hosts)

    def host(self, strategy_id: str) -> RunnerHost | None:
        """Return the host of ``strategy_id`` (None when not held)."""
        return self._hosts.get(strategy_id)

    def drop(self, strategy_id: str) -> None:
        """Forget the host of ``strategy_id`` (no error when not held)."""
        self._hosts.pop(strategy_id, None)

    def handle(self, request: HostRequest) -> HostReply:
        """Answer ``request`` with the strategy's host, building it if needed.

        Raises:
            ConfigError: see :meth:`RunnerHost.handle`.
        """
        strategy_id = request.spec.strategy_id
        host = self._hosts.get(strategy_id)
        if host is None:
            host = RunnerHost(request.spec, history=request.history)
            while len(self._hosts) >= self._max_hosts:
                self._hosts.popitem(last=False)
            self._hosts[strategy_id] = host
        else:
            self._hosts.move_to_end(strategy_id)
        reply = host.handle(request)
        if request.phase == "stop":
            self.drop(strategy_id)
        return reply


class RunnerClient(Protocol):
    """Where the ingress sends :class:`HostRequest` s: this process or a Serve deployment."""

    async def step(self, request: HostRequest) -> HostReply:
        """Answer ``request`` with the strategy's host (retrying a host that went away)."""
        ...


class LocalRunners:
    """A :class:`RunnerClient` over a :class:`RunnerPool` in this process."""

    def __init__(self, pool: RunnerPool | None = None) -> None:
        self.pool = RunnerPool() if pool is None else pool

    def __repr__(self) -> str:
        return f"LocalRunners({self.pool!r})"

    async def step(self, request: HostRequest) -> HostReply:
        """Answer ``request`` in this process."""
        return self.pool.handle(request)
