"""How the HTTP layer reaches the execution service: an async protocol and its in-process form.

:class:`ExecutionBackend` mirrors the methods of
:class:`~tradepulse.execution.service.ExecutionService` as coroutines, plus two
batch methods (:meth:`~ExecutionBackend.submit_batch`,
:meth:`~ExecutionBackend.on_bars`) so a batch costs one round trip.
:class:`InProcessBackend` calls a synchronous service directly, one call at a
time (a lock serialises them: the service and its journal have one writer);
with ``group_commit=True`` the calls that arrive while one journal commit is
being written are run together and committed (and synced to disk) once, and
each caller is answered after the commit that holds its call.
:class:`ForwardingBackend` passes every call to another backend: the base of
wrappers that add to a few calls (the metrics'
:class:`~tradepulse.serve.metrics.MeteredBackend`).

:func:`classify_error` is the single place that says which service errors are
the client's (404, 409, 422) and which are the service's (503); anything else
is a bug and is left to propagate.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol, TypeVar, cast

import anyio.to_thread

from tradepulse.domain.orders import OrderError, OrderStateError, OrderStatus
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.execution.service_views import (
    AccountView,
    FillView,
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
    OrderView,
    PositionView,
    SubmitOutcome,
)
from tradepulse.strategy.api import Bar

__all__ = [
    "BarPipeline",
    "BatchItemResult",
    "ExecutionBackend",
    "ForwardingBackend",
    "GroupCommitService",
    "InProcessBackend",
    "MarketDataSink",
    "ServiceFailure",
    "SubmitItem",
    "SyncExecutionService",
    "classify_error",
]

_T = TypeVar("_T")

_NOT_FOUND: Final = 404
_CONFLICT: Final = 409
_UNPROCESSABLE: Final = 422
_UNAVAILABLE: Final = 503


@dataclass(frozen=True, slots=True)
class ServiceFailure:
    """A deliberate service error as data: HTTP ``status``, machine ``code``, ``message``."""

    status: int
    code: str
    message: str


def classify_error(error: BaseException) -> ServiceFailure | None:
    """Return the HTTP meaning of a service error, or None when it is not one (a bug).

    - ``OrderNotFoundError`` → 404 ``not_found``;
    - ``OrderConflictError`` and ``OrderStateError`` (a terminal order, an
      idempotency key reused with a different body) → 409 ``conflict``, or the
      error's own ``code`` (``strategy_order``: a user's replace of a live
      strategy's order);
    - any other ``TradePulseError`` that is a ``ValueError`` (``OrderError``,
      ``ConfigError``, ...) → 422 ``invalid_request``;
    - any other ``TradePulseError`` (the journal failed, ...) → 503
      ``service_unavailable``: the request was not applied.
    """
    if not isinstance(error, TradePulseError):
        return None
    message = str(error) or type(error).__name__
    if isinstance(error, OrderNotFoundError):
        return ServiceFailure(_NOT_FOUND, "not_found", message)
    if isinstance(error, OrderConflictError | OrderStateError):
        code = getattr(error, "code", None)  # a conflict may name itself
        return ServiceFailure(_CONFLICT, code if isinstance(code, str) else "conflict", message)
    if isinstance(error, OrderError | ValueError):
        return ServiceFailure(_UNPROCESSABLE, "invalid_request", message)
    return ServiceFailure(_UNAVAILABLE, "service_unavailable", message)


@dataclass(frozen=True, slots=True)
class SubmitItem:
    """One order of a batch: the request and its optional strategy tag and idempotency key."""

    request: OrderRequest
    strategy: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """The outcome of one batch item: exactly one of ``outcome`` and ``failure`` is set."""

    outcome: SubmitOutcome | None = None
    failure: ServiceFailure | None = None


class SyncExecutionService(Protocol):
    """The synchronous service :class:`InProcessBackend` wraps (``ExecutionService`` fits)."""

    def submit(
        self,
        request: OrderRequest,
        *,
        account: str,
        strategy: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitOutcome:
        """Submit an order (or return the original one for a replayed key)."""
        ...

    def cancel(self, order_id: str, *, account: str) -> OrderView:
        """Cancel an open order."""
        ...

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
        """Cancel an open order and submit its replacement; return the new order."""
        ...

    def order(self, order_id: str, *, account: str) -> OrderView:
        """Return one order."""
        ...

    def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> Sequence[OrderView]:
        """Return the account's orders."""
        ...

    def fills(self, *, account: str, order_id: str | None = None) -> Sequence[FillView]:
        """Return the account's fills."""
        ...

    def positions(self, *, account: str) -> Sequence[PositionView]:
        """Return the account's positions."""
        ...

    def account(self, account: str) -> AccountView:
        """Return the account summary."""
        ...

    def on_bar(self, symbol: str, bar: Bar) -> Sequence[FillView]:
        """Match working orders against a bar; return its fills."""
        ...

    def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> Sequence[OrderView]:
        """Engage or release a kill switch; return the orders it cancelled."""
        ...

    def kill_switch_engaged(self, account: str | None = None) -> bool:
        """Return whether new orders of ``account`` (or all, for None) are blocked."""
        ...


class GroupCommitService(SyncExecutionService, Protocol):
    """A service that can journal many calls in one commit (``ExecutionService`` fits)."""

    def commit_group(self) -> AbstractContextManager[None]:
        """Hold the service; journal every call made inside in one commit at the end."""
        ...


class ExecutionBackend(Protocol):
    """The execution service as the HTTP layer sees it: every call a coroutine.

    Methods raise the service's errors (see :func:`classify_error`), except
    :meth:`submit_batch`, which reports them per item.
    """

    async def ping(self) -> None:
        """Return when the service answers; raise when it cannot be reached."""
        ...

    async def submit(
        self,
        request: OrderRequest,
        *,
        account: str,
        strategy: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitOutcome:
        """Submit an order; ``created`` is False for an idempotent replay."""
        ...

    async def submit_batch(
        self, items: Sequence[SubmitItem], *, account: str
    ) -> list[BatchItemResult]:
        """Submit several orders in order; one result per item, failures as data."""
        ...

    async def cancel(self, order_id: str, *, account: str) -> OrderView:
        """Cancel an open order."""
        ...

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
        """Cancel/replace an open order; return the new order."""
        ...

    async def order(self, order_id: str, *, account: str) -> OrderView:
        """Return one order of the account."""
        ...

    async def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> Sequence[OrderView]:
        """Return the account's orders."""
        ...

    async def fills(self, *, account: str, order_id: str | None = None) -> Sequence[FillView]:
        """Return the account's fills (of one order when ``order_id`` is given)."""
        ...

    async def positions(self, *, account: str) -> Sequence[PositionView]:
        """Return the account's positions."""
        ...

    async def account(self, account: str) -> AccountView:
        """Return the account summary."""
        ...

    async def on_bar(self, symbol: str, bar: Bar) -> Sequence[FillView]:
        """Apply one bar; return its fills."""
        ...

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        """Apply ``(symbol, bar)`` pairs in order; return all their fills."""
        ...

    async def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> Sequence[OrderView]:
        """Engage or release a kill switch (one account, or all for None)."""
        ...

    async def kill_switch_engaged(self, account: str | None = None) -> bool:
        """Return whether new orders of ``account`` (or of all accounts) are blocked."""
        ...


class MarketDataSink(Protocol):
    """Something else that consumes ``POST /market/bars`` (the strategy runners)."""

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> object:
        """Consume ``(symbol, bar)`` pairs in order (after the execution service matched them)."""
        ...


class BarPipeline(Protocol):
    """What applies ``POST /market/bars`` when strategies trade on the bars.

    It hands the bars to the execution backend itself, with each strategy's
    steps around each bar (:class:`~tradepulse.serve.strategies.StrategyPipeline`).
    """

    async def apply_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        """Apply ``(symbol, bar)`` pairs in order; return the fills they caused."""
        ...


class ForwardingBackend:
    """An :class:`ExecutionBackend` that passes every call to an ``inner`` backend.

    A base for wrappers: a subclass overrides the calls it adds something to
    (:class:`~tradepulse.serve.metrics.MeteredBackend` measures submissions,
    cancels, bars and kill switches) and inherits the plain forwarding of the
    rest.
    """

    def __init__(self, inner: ExecutionBackend) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._inner!r})"

    @property
    def inner(self) -> ExecutionBackend:
        """Return the wrapped backend."""
        return self._inner

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
        """Submit an order; ``created`` is False for an idempotent replay."""
        return await self._inner.submit(
            request, account=account, strategy=strategy, idempotency_key=idempotency_key
        )

    async def submit_batch(
        self, items: Sequence[SubmitItem], *, account: str
    ) -> list[BatchItemResult]:
        """Submit several orders in order; one result per item, failures as data."""
        return await self._inner.submit_batch(items, account=account)

    async def cancel(self, order_id: str, *, account: str) -> OrderView:
        """Cancel an open order."""
        return await self._inner.cancel(order_id, account=account)

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
        """Cancel/replace an open order; return the new order."""
        return await self._inner.replace(
            order_id,
            account=account,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
            idempotency_key=idempotency_key,
        )

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
        """Return the account's fills (of one order when ``order_id`` is given)."""
        return await self._inner.fills(account=account, order_id=order_id)

    async def positions(self, *, account: str) -> Sequence[PositionView]:
        """Return the account's positions."""
        return await self._inner.positions(account=account)

    async def account(self, account: str) -> AccountView:
        """Return the account summary."""
        return await self._inner.account(account)

    async def on_bar(self, symbol: str, bar: Bar) -> Sequence[FillView]:
        """Apply one bar; return its fills."""
        return await self._inner.on_bar(symbol, bar)

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        """Apply ``(symbol, bar)`` pairs in order; return all their fills."""
        return await self._inner.on_bars(bars)

    async def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> Sequence[OrderView]:
        """Engage or release a kill switch (one account, or all for None)."""
        return await self._inner.set_kill_switch(engaged, account=account, reason=reason)

    async def kill_switch_engaged(self, account: str | None = None) -> bool:
        """Return whether new orders of ``account`` (or of all accounts) are blocked."""
        return await self._inner.kill_switch_engaged(account)


class InProcessBackend:
    """An :class:`ExecutionBackend` over a synchronous service in this process.

    Calls are serialised by a lock (the service has one writer). With
    ``offload=False`` (default) they run on the event loop, which is fastest
    for a service whose calls take microseconds; ``offload=True`` runs them in
    a worker thread so slow journal commits do not stall other requests.

    ``group_commit=True`` (the service must have ``commit_group``, as
    :class:`~tradepulse.execution.ExecutionService` does) queues the calls: the
    calls that arrive while a group is being committed form the next group,
    which runs in arrival order inside one
    :meth:`~tradepulse.execution.ExecutionService.commit_group` (one journal
    commit, one sync). A call's result (or error) is delivered after its
    group's commit; if that commit fails, every call of the group gets the
    commit's error. With ``offload=True`` the groups run in one worker thread,
    so the event loop keeps reading requests (the next group) while a commit
    syncs. One event loop at a time may call a grouping backend.

    ``freeze_gc_every=N`` moves every object alive after each ``N`` calls out of
    the garbage collector's reach (``gc.collect(1)`` then ``gc.freeze()``,
    under a millisecond): the service keeps every order for the life of the
    process, and without this each full collection rescans that growing history,
    a pause of ~25 ms at 15,000 orders and ~65 ms at 40,000 that lands on
    whichever requests are waiting. The cost: a reference cycle that was
    already old when frozen is never freed.

    Raises:
        ConfigError: ``group_commit`` is set and the service has no
            ``commit_group``, or ``freeze_gc_every`` is not a positive integer.
    """

    def __init__(
        self,
        service: SyncExecutionService,
        *,
        offload: bool = False,
        group_commit: bool = False,
        freeze_gc_every: int | None = None,
    ) -> None:
        if group_commit and not callable(getattr(service, "commit_group", None)):
            raise ConfigError(f"group_commit needs a service with commit_group(); got {service!r}")
        if freeze_gc_every is not None and (
            isinstance(freeze_gc_every, bool)
            or not isinstance(freeze_gc_every, int)
            or freeze_gc_every < 1
        ):
            raise ConfigError(
                f"freeze_gc_every must be a positive integer or None, got {freeze_gc_every!r}"
            )
        self._freeze_gc_every = freeze_gc_every
        self._calls_since_freeze = 0
        self._service = service
        self._offload = offload
        self._group_commit = group_commit
        self._lock = threading.Lock()
        self._queue: list[tuple[Callable[[], object], asyncio.Future[object]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return (
            f"InProcessBackend({self._service!r}, offload={self._offload}, "
            f"group_commit={self._group_commit})"
        )

    @property
    def service(self) -> SyncExecutionService:
        """Return the wrapped service."""
        return self._service

    async def _call(self, function: Callable[[], _T]) -> _T:
        if self._freeze_gc_every is not None:
            self._calls_since_freeze += 1
            if self._calls_since_freeze >= self._freeze_gc_every:
                self._calls_since_freeze = 0
                gc.collect(1)  # the young generations: the short-lived garbage goes first
                gc.freeze()
        if self._group_commit:
            return await self._grouped(function)

        def locked() -> _T:
            with self._lock:
                return function()

        if self._offload:
            return await anyio.to_thread.run_sync(locked)
        return locked()

    async def _grouped(self, function: Callable[[], _T]) -> _T:
        """Queue ``function`` for the next group; return its result after the group's commit."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._queue.append((function, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return cast(_T, await future)

    async def _drain(self) -> None:
        """Run the queued calls group by group until the queue is empty."""
        batch: list[tuple[Callable[[], object], asyncio.Future[object]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                # A caller that gave up before its group started is not run.
                live = [(call, future) for call, future in batch if not future.cancelled()]
                calls = [call for call, _ in live]
                if self._offload:
                    if self._executor is None:  # one thread: groups run one after another
                        self._executor = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
                    loop = asyncio.get_running_loop()
                    results = await loop.run_in_executor(self._executor, self._run_group, calls)
                else:
                    results = self._run_group(calls)
                for (_, future), (ok, value) in zip(live, results, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(cast(BaseException, value))
                batch = []
        except BaseException as error:  # the loop is closing, or a bug: fail every waiter
            for _, future in [*batch, *self._queue]:
                if future.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(error)
            self._queue = []
            raise
        finally:
            self._drainer = None

    def _run_group(self, calls: Sequence[Callable[[], object]]) -> list[tuple[bool, object]]:
        """Run ``calls`` in one commit group; return (True, result) or (False, error) each."""
        service = cast(GroupCommitService, self._service)
        results: list[tuple[bool, Any]] = []
        with self._lock:
            try:
                with service.commit_group():
                    for call in calls:
                        try:
                            results.append((True, call()))
                        except Exception as error:  # the caller's, as without groups
                            results.append((False, error))
            except Exception as error:  # the commit failed: no call of the group is durable
                return [(False, error)] * len(calls)
        return results

    async def ping(self) -> None:
        """Return at once: an in-process service is always reachable."""
        await self._call(lambda: self._service.kill_switch_engaged(None))

    async def submit(
        self,
        request: OrderRequest,
        *,
        account: str,
        strategy: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitOutcome:
        """Submit an order (see :meth:`ExecutionBackend.submit`)."""
        return await self._call(
            lambda: self._service.submit(
                request, account=account, strategy=strategy, idempotency_key=idempotency_key
            )
        )

    async def submit_batch(
        self, items: Sequence[SubmitItem], *, account: str
    ) -> list[BatchItemResult]:
        """Submit several orders under one lock acquisition; failures become data."""

        def run() -> list[BatchItemResult]:
            results = []
            for item in items:
                try:
                    outcome = self._service.submit(
                        item.request,
                        account=account,
                        strategy=item.strategy,
                        idempotency_key=item.idempotency_key,
                    )
                except TradePulseError as error:
                    failure = classify_error(error)
                    if failure is None:  # pragma: no cover - every TradePulseError classifies
                        raise
                    results.append(BatchItemResult(failure=failure))
                else:
                    results.append(BatchItemResult(outcome=outcome))
            return results

        return await self._call(run)

    async def cancel(self, order_id: str, *, account: str) -> OrderView:
        """Cancel an open order."""
        return await self._call(lambda: self._service.cancel(order_id, account=account))

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
        """Cancel/replace an open order; return the new order."""
        return await self._call(
            lambda: self._service.replace(
                order_id,
                account=account,
                quantity=quantity,
                limit_price=limit_price,
                stop_price=stop_price,
                idempotency_key=idempotency_key,
            )
        )

    async def order(self, order_id: str, *, account: str) -> OrderView:
        """Return one order of the account."""
        return await self._call(lambda: self._service.order(order_id, account=account))

    async def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> Sequence[OrderView]:
        """Return the account's orders."""
        return await self._call(
            lambda: self._service.orders(
                account=account, status=status, open_only=open_only, limit=limit
            )
        )

    async def fills(self, *, account: str, order_id: str | None = None) -> Sequence[FillView]:
        """Return the account's fills."""
        return await self._call(lambda: self._service.fills(account=account, order_id=order_id))

    async def positions(self, *, account: str) -> Sequence[PositionView]:
        """Return the account's positions."""
        return await self._call(lambda: self._service.positions(account=account))

    async def account(self, account: str) -> AccountView:
        """Return the account summary."""
        return await self._call(lambda: self._service.account(account))

    async def on_bar(self, symbol: str, bar: Bar) -> Sequence[FillView]:
        """Apply one bar; return its fills."""
        return await self._call(lambda: self._service.on_bar(symbol, bar))

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        """Apply bars in order under one lock acquisition; return all their fills."""

        def run() -> list[FillView]:
            fills: list[FillView] = []
            for symbol, bar in bars:
                fills.extend(self._service.on_bar(symbol, bar))
            return fills

        return await self._call(run)

    async def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> Sequence[OrderView]:
        """Engage or release a kill switch."""
        return await self._call(
            lambda: self._service.set_kill_switch(engaged, account=account, reason=reason)
        )

    async def kill_switch_engaged(self, account: str | None = None) -> bool:
        """Return whether new orders of ``account`` (or all accounts) are blocked."""
        return await self._call(lambda: self._service.kill_switch_engaged(account))
