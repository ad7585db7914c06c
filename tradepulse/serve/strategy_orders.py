"""Live strategies' orders at the execution service: commands in; refusals and cancels out.

:class:`StrategyOrders` is the part of the ingress's
:class:`~tradepulse.serve.strategies.StrategyPipeline` that changes and reads
the execution service for one strategy (:class:`LiveStrategy`) at a time:

- :meth:`StrategyOrders.apply` applies a runner's commands through the
  (metered) execution backend, in the account of the key that created the
  strategy, tagged ``strategy=<id>``, with the runner's order id
  (``<id>:t3.1``) as both client order id and idempotency key, so a command
  sent twice (a retry, a rebuilt runner repeating its last bar) creates
  nothing. A refusal by the service (risk limits, throttles, kill switch) is
  queued as an :class:`~tradepulse.live.outbox.Ack` for the runner's next
  call, which cancels the order on its shadow; a refused replace also cancels
  the order it replaced, so both sides agree the strategy has neither.
  Cancelling an order the service already ended counts as done.
- :meth:`StrategyOrders.find_cancels` finds the strategy's orders the service
  cancelled on its own: a user's ``DELETE /orders/{id}``, the kill switch. It
  keeps the strategy's *working* orders (accepted by the service, not ended
  by a command of the runner) and reads each one's status from the service in
  this process; one found cancelled becomes a
  :class:`~tradepulse.live.outbox.ServiceCancel` stamped with the bar after
  which the cancel took effect
  (:meth:`~tradepulse.execution.ExecutionService.order_bar_ts`), queued for the
  runner's next call. The pipeline looks after every bar the service matches,
  so the runner hears of a cancel before its shadow matches a bar the service
  matched without the order. An ingress that (re)starts reads the strategy's
  orders once instead, and sends all the service's cancels of them (the
  runner ignores those it knows). Expiries and the ends of
  immediate-or-cancel orders are not sent: the shadow's matching engine ends
  them on the same bar.
- :meth:`StrategyOrders.history` reads what a lost runner rebuilds from: the
  bars the service processed since the strategy's first, its refusals of the
  strategy's orders and its own cancels of them.

A user may cancel a strategy's order, but not replace it: the runner could not
follow a replacement it did not make (the strategy would not know the new
order, and its positions would drift from the service's), so
:func:`check_replaceable` refuses it (HTTP 409, code ``strategy_order``).

Nor may a user take an id a strategy's runner will use: an order of the
strategy's account whose client order id or idempotency key is
``<strategy id>:...`` would be what the runner's own submit of that id gets
back (or a conflict). So :func:`check_unreserved`, given a :data:`HasStrategy`
predicate (:meth:`~tradepulse.serve.strategies.StrategyPipeline.has_strategy`),
refuses every such id a user sends to the order routes when its part before
the first ':' is a strategy of the account, running or stopped: the ids stay
bound in the journal (HTTP 409, code ``reserved_id``).
The runners' commands go to the backend directly and are never checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol

from tradepulse.domain.orders import OrderError, OrderStatus
from tradepulse.errors import ConfigError
from tradepulse.execution.matching import BarLike
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import (
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
    OrderView,
    Reason,
)
from tradepulse.live.host import History, RunnerSpec
from tradepulse.live.outbox import ENDED_BEFORE_REPLACE, Ack, Command, ServiceCancel
from tradepulse.live.registry import StrategyRecord
from tradepulse.live.runner import RunnerState
from tradepulse.serve.backend import ExecutionBackend
from tradepulse.strategy.api import Bar

__all__ = [
    "SERVICE_CANCEL_REASONS",
    "HasStrategy",
    "LiveStrategy",
    "ReservedIdError",
    "ServiceLedger",
    "StrategyOrderError",
    "StrategyOrders",
    "check_replaceable",
    "check_unreserved",
    "check_untagged",
    "strategy_of_key",
]

#: Reasons of the orders the service cancelled between bars (the runner may not know).
#: ``replaced`` is not one: only the runner replaces a strategy's order.
SERVICE_CANCEL_REASONS: Final = frozenset({Reason.CANCEL_REQUESTED.value, Reason.KILL_SWITCH.value})


class StrategyOrderError(OrderConflictError):
    """A user asked to replace an order a live strategy placed (HTTP 409 ``strategy_order``)."""

    code: ClassVar[str] = "strategy_order"


def check_replaceable(view: OrderView) -> None:
    """Refuse a user's replace of ``view`` when a live strategy placed it.

    A strategy's orders carry its id as ``strategy`` and client order ids
    ``<strategy id>:<runner id>``; only the strategy's runner replaces them.

    Raises:
        StrategyOrderError: the order is a strategy's.
    """
    strategy = view.strategy
    if strategy is not None and (view.client_order_id or "").startswith(f"{strategy}:"):
        raise StrategyOrderError(
            f"strategy_order: order {view.order_id} ({view.client_order_id}) belongs to the "
            f"live strategy {strategy!r} and only its runner may replace it; cancel it (the "
            "strategy sees the cancel) or stop the strategy"
        )


#: ``has_strategy(account, strategy_id)``: whether ``account`` has (or had) the live
#: strategy ``strategy_id``, whose runner's order ids are ``<strategy_id>:...``.
HasStrategy = Callable[[str, str], bool]


class ReservedIdError(OrderConflictError):
    """A user sent an order id reserved for a live strategy's runner (HTTP 409 ``reserved_id``)."""

    code: ClassVar[str] = "reserved_id"


def strategy_of_key(key: str) -> str | None:
    """Return the strategy id a runner's order ``key`` would carry: its part before the first ':'.

    A key without ':' (or starting with one) names no strategy: None.
    """
    strategy_id, colon, _ = key.partition(":")
    return strategy_id if colon and strategy_id else None


def check_unreserved(
    has_strategy: HasStrategy | None, *, account: str, field_name: str, key: str | None
) -> None:
    """Refuse a user's ``key`` (the ``field_name`` of a request) that a strategy's runner owns.

    ``has_strategy`` is None when no strategies run here: nothing is reserved.

    Raises:
        ReservedIdError: ``key`` is ``<id>:...`` and ``id`` is a strategy of ``account``.
    """
    if has_strategy is None or key is None:
        return
    strategy_id = strategy_of_key(key)
    if strategy_id is not None and has_strategy(account, strategy_id):
        raise ReservedIdError(
            f"{field_name} {key!r} is reserved: ids starting with {strategy_id + ':'!r} belong "
            f"to the orders of the live strategy {strategy_id!r} of account {account!r} "
            "(running or stopped); choose another id"
        )


def check_untagged(has_strategy: HasStrategy | None, *, account: str, tag: str | None) -> None:
    """Refuse a user's order ``strategy`` tag that names a live strategy of ``account``.

    A strategy's orders match in its own paper engine, with its own share of a
    bar's volume, exactly as on its runner's shadow; a user's order tagged
    with its id would take from that share and make the runner drift.

    Raises:
        ReservedIdError: ``tag`` is the id of a strategy of ``account``.
    """
    if has_strategy is not None and tag is not None and has_strategy(account, tag):
        raise ReservedIdError(
            f"strategy {tag!r} is reserved: it is a live strategy of account {account!r} "
            "(running or stopped), and only its runner places orders tagged with it; "
            "tag the order with another name"
        )


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

    def order(self, order_id: str, *, account: str) -> OrderView:
        """Return the order ``order_id`` of ``account``."""
        ...

    def order_bar_ts(self, order_id: str, *, account: str) -> int | None:
        """Return the stamp of the symbol's last matched bar when the order last changed."""
        ...


@dataclass(slots=True)
class LiveStrategy:
    """The ingress's view of one active strategy.

    ``acks`` and ``cancels`` (by runner order id) wait for the runner's next
    call; ``working`` maps the runner ids of the strategy's orders the service
    works to the service's ids (``tracked``: read from the service since this
    ingress started); ``order_ids`` every runner id met to its service id.
    ``open_next`` is the runner's hint that the next bar needs an ``open``;
    ``resend`` asks for its last commands again (first contact since this
    ingress started); ``force_history`` makes the next call rebuild it.
    ``heartbeat`` and ``last_bar`` are the Unix times (seconds) its runner
    last answered (a ping or a bar) and last completed a bar.
    """

    record: StrategyRecord
    spec: RunnerSpec
    acks: list[Ack] = field(default_factory=list)
    cancels: dict[str, ServiceCancel] = field(default_factory=dict)
    working: dict[str, str] = field(default_factory=dict)
    tracked: bool = False
    open_next: bool = True
    resend: bool = True
    force_history: bool = False
    state: RunnerState | None = None
    heartbeat: float | None = None
    last_bar: float | None = None
    order_ids: dict[str, str] = field(default_factory=dict)

    def cancelled_before(self, ts: int) -> bool:
        """Return whether a queued cancel took effect before the bar stamped ``ts``."""
        return any(
            cancel.after_ts is None or cancel.after_ts < ts for cancel in self.cancels.values()
        )


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


def _cancelled_by_service(view: OrderView) -> bool:
    return view.status is OrderStatus.CANCELLED and view.reason in SERVICE_CANCEL_REASONS


class StrategyOrders:
    """Apply strategies' commands to the service and read back what the runners must know.

    ``backend`` is the (metered) execution backend commands go through;
    ``ledger`` the same service read in this process. See the module docstring.
    """

    def __init__(self, *, backend: ExecutionBackend, ledger: ServiceLedger) -> None:
        self._backend = backend
        self._ledger = ledger

    def __repr__(self) -> str:
        return f"StrategyOrders({self._backend!r})"

    # ----------------------------------------------------------------- the service's own cancels

    def _cancel_of(self, runner_id: str, view: OrderView) -> ServiceCancel:
        code = str(view.reason)
        detail = view.reason_detail or code
        return ServiceCancel(
            runner_id,
            self._ledger.order_bar_ts(view.order_id, account=view.account),
            detail if detail.startswith(code) else f"{code}: {detail}",
        )

    def find_cancels(self, live: LiveStrategy) -> None:
        """Queue, for the runner's next call, the service's own cancels of the strategy's orders.

        The strategy's working orders the service no longer works leave
        ``working``; those it cancelled on its own go to ``cancels``. The first
        call since this ingress started reads every order of the strategy.
        """
        ledger = self._ledger
        account = live.record.account
        if not live.tracked:
            keyed = ledger.keyed_orders(account=account, prefix=f"{live.record.strategy_id}:")
            for key, view in keyed.items():
                live.order_ids[key] = view.order_id
                if view.is_open:
                    live.working[key] = view.order_id
                elif _cancelled_by_service(view):
                    live.cancels[key] = self._cancel_of(key, view)
            live.tracked = True
            return
        for runner_id, service_id in list(live.working.items()):
            view = ledger.order(service_id, account=account)
            if view.is_open:
                continue
            del live.working[runner_id]
            if _cancelled_by_service(view):
                live.cancels[runner_id] = self._cancel_of(runner_id, view)

    def history(self, live: LiveStrategy) -> History:
        """Return what the service knows of the strategy, for its runner to rebuild from."""
        ledger = self._ledger
        record = live.record
        bars: tuple[Bar, ...] = ()
        if record.first_ts is not None:
            bars = tuple(
                _as_bar(bar) for bar in ledger.bars(record.symbol, since_ts=record.first_ts)
            )
        keyed = ledger.keyed_orders(account=record.account, prefix=f"{record.strategy_id}:")
        rejected = {
            key: view.reason_detail or str(view.reason)
            for key, view in keyed.items()
            if view.status is OrderStatus.REJECTED
        }
        # A throttled order binds no key: find it by its client order id.
        for view in ledger.orders(account=record.account, status=OrderStatus.REJECTED):
            tag = view.client_order_id
            if view.strategy == record.strategy_id and view.replaces is None and tag:
                rejected.setdefault(tag, view.reason_detail or str(view.reason))
        cancelled = tuple(
            self._cancel_of(key, view) for key, view in keyed.items() if _cancelled_by_service(view)
        )
        return History(bars=bars, rejected=rejected, cancelled=cancelled)

    # ----------------------------------------------------------------- commands

    async def _service_id(self, live: LiveStrategy, runner_order_id: str) -> str | None:
        known = live.order_ids.get(runner_order_id)
        if known is not None:
            return known
        found = self._ledger.keyed_orders(account=live.record.account, prefix=runner_order_id)
        view = found.get(runner_order_id)
        if view is None:
            return None
        live.order_ids[runner_order_id] = view.order_id
        return view.order_id

    def _placed(self, live: LiveStrategy, runner_id: str, view: OrderView) -> None:
        """Note that ``view`` is the service's order of ``runner_id`` (working, if it is open)."""
        live.order_ids[runner_id] = view.order_id
        if view.is_open:
            live.working[runner_id] = view.order_id

    async def apply(self, live: LiveStrategy, commands: Sequence[Command]) -> bool:
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
                self._placed(live, new_id, view)
                if view.status is OrderStatus.REJECTED:
                    live.acks.append(Ack(new_id, view.reason_detail or str(view.reason)))
                continue
            old_id = command.client_order_id
            service_id = await self._service_id(live, old_id)
            # The runner ends it itself before its shadow matches the next bar: a
            # cancel of it by the service since then is news to nobody.
            live.working.pop(old_id, None)
            live.cancels.pop(old_id, None)
            if command.kind == "cancel":
                if service_id is not None:
                    await self._cancel(service_id, account)
                continue
            assert new_id is not None  # a replace carries its replacement
            if service_id is None:
                live.acks.append(Ack(new_id, f"the service has no order {old_id!r} to replace"))
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
                reason = str(error)
                if not self._ledger.order(service_id, account=account).is_open:
                    # The service cancelled it first (a user, the kill switch): say so
                    # as a rebuilt runner will (it cannot read this error back).
                    reason = ENDED_BEFORE_REPLACE + old_id
                live.acks.append(Ack(new_id, reason))
                await self._cancel(service_id, account)
                continue
            self._placed(live, new_id, replaced)
            if replaced.status is OrderStatus.REJECTED:
                live.acks.append(Ack(new_id, replaced.reason_detail or str(replaced.reason)))
                await self._cancel(service_id, account)
        return len(live.acks) > refused

    async def _cancel(self, service_id: str, account: str) -> None:
        # An order already ended at the service: the cancel is done.
        with contextlib.suppress(OrderConflictError, OrderNotFoundError):
            await self._backend.cancel(service_id, account=account)
