"""InProcessBackend(group_commit=True): concurrent calls share one commit, answered after it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from serve_fakes import FakeService

from tradepulse.domain import Side
from tradepulse.errors import ConfigError
from tradepulse.execution import (
    JournalError,
    OrderNotFoundError,
    OrderRequest,
    OrderView,
    SubmitOutcome,
)
from tradepulse.serve.backend import InProcessBackend


class GroupingService(FakeService):
    """The fake service plus ``commit_group``: records which orders each commit held."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[list[str]] = []
        self.threads: set[str] = set()
        self.fail_next_commit = False
        self.hold: threading.Event | None = None  # a commit waits for it (a slow disk)
        self.committing = threading.Event()
        self._current: list[str] | None = None

    @contextlib.contextmanager
    def commit_group(self) -> Iterator[None]:
        self._current = []
        self.threads.add(threading.current_thread().name)
        yield
        held, self._current = self._current, None
        self.committing.set()
        if self.hold is not None:
            self.hold.wait(timeout=10)
        if self.fail_next_commit:
            self.fail_next_commit = False
            raise JournalError("the journal commit failed")
        self.groups.append(held)

    def _create(self, request: OrderRequest, *, account: str, strategy: str | None) -> OrderView:
        view = super()._create(request, account=account, strategy=strategy)
        if self._current is not None:
            self._current.append(view.order_id)
        return view


def _order(quantity: int = 1) -> OrderRequest:
    return OrderRequest(symbol="SPX", side=Side.BUY, quantity=Decimal(quantity))


def test_concurrent_calls_share_one_commit_and_are_answered_after_it() -> None:
    service = GroupingService()
    backend = InProcessBackend(service, group_commit=True)

    async def submit(number: int) -> str:
        outcome = await backend.submit(_order(), account="desk", idempotency_key=f"k{number}")
        order_id = outcome.order.order_id
        assert any(order_id in group for group in service.groups)  # committed before answered
        return order_id

    async def main() -> list[str]:
        return await asyncio.gather(*(submit(number) for number in range(12)))

    order_ids = asyncio.run(main())

    assert service.groups == [order_ids]  # one commit, in arrival order
    assert len(set(order_ids)) == 12


def test_calls_that_arrive_during_a_commit_form_the_next_group() -> None:
    service = GroupingService()
    service.hold = threading.Event()
    backend = InProcessBackend(service, offload=True, group_commit=True)

    async def main() -> list[str]:
        first = asyncio.ensure_future(backend.submit(_order(), account="desk"))
        while not service.committing.is_set():  # the first group is syncing in its thread
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(backend.submit(_order(), account="desk")) for _ in range(5)]
        await asyncio.sleep(0.05)
        assert service.groups == []  # nobody answered while the commit is pending
        assert not first.done()
        assert service.hold is not None
        service.hold.set()
        outcomes = await asyncio.gather(first, *later)
        return [outcome.order.order_id for outcome in outcomes]

    order_ids = asyncio.run(main())

    assert service.groups == [order_ids[:1], order_ids[1:]]
    assert {name.split("_")[0] for name in service.threads} == {"group-commit"}


def test_a_failing_call_gets_its_own_error_and_the_rest_of_the_group_commits() -> None:
    service = GroupingService()
    backend = InProcessBackend(service, group_commit=True)

    async def main() -> list[object]:
        return await asyncio.gather(
            backend.submit(_order(), account="desk"),
            backend.cancel("ord-404", account="desk"),
            backend.submit(_order(2), account="desk"),
            return_exceptions=True,
        )

    first, missing, second = asyncio.run(main())

    assert isinstance(missing, OrderNotFoundError)
    assert isinstance(first, SubmitOutcome)
    assert isinstance(second, SubmitOutcome)
    assert service.groups == [[first.order.order_id, second.order.order_id]]


def test_a_failed_commit_fails_every_call_of_its_group_only() -> None:
    service = GroupingService()
    service.fail_next_commit = True
    backend = InProcessBackend(service, group_commit=True)

    async def main() -> tuple[list[object], SubmitOutcome]:
        failed = await asyncio.gather(
            backend.submit(_order(), account="desk"),
            backend.orders(account="desk"),
            return_exceptions=True,
        )
        return failed, await backend.submit(_order(), account="desk")

    failed, later = asyncio.run(main())

    assert all(isinstance(result, JournalError) for result in failed)
    assert service.groups == [[later.order.order_id]]


def test_a_caller_that_gave_up_before_its_group_ran_is_not_run() -> None:
    service = GroupingService()
    backend = InProcessBackend(service, group_commit=True)

    async def main() -> SubmitOutcome:
        abandoned = asyncio.ensure_future(backend.submit(_order(), account="desk"))
        await asyncio.sleep(0)  # it is queued; its group has not run yet
        abandoned.cancel()
        return await backend.submit(_order(7), account="desk")

    kept = asyncio.run(main())

    assert [view.quantity for view in service.orders(account="desk")] == [7]
    assert service.groups == [[kept.order.order_id]]


def test_group_commit_needs_a_service_that_can_group() -> None:
    with pytest.raises(ConfigError, match="commit_group"):
        InProcessBackend(FakeService(), group_commit=True)
    grouped = InProcessBackend(GroupingService(), group_commit=True)
    assert "group_commit=True" in repr(grouped)


def test_every_nth_call_freezes_the_objects_alive_out_of_the_collectors_reach() -> None:
    backend = InProcessBackend(GroupingService(), group_commit=True, freeze_gc_every=3)

    async def calls(count: int) -> None:
        for _ in range(count):
            await backend.orders(account="desk")

    gc.unfreeze()
    try:
        asyncio.run(calls(2))
        assert gc.get_freeze_count() == 0
        asyncio.run(calls(1))
        frozen = gc.get_freeze_count()
        assert frozen > 0
        asyncio.run(calls(2))
        assert gc.get_freeze_count() == frozen  # the next freeze is three calls later
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("every", [0, -1, True, 2.5])
def test_freeze_gc_every_must_be_a_positive_integer(every: object) -> None:
    with pytest.raises(ConfigError, match="freeze_gc_every"):
        InProcessBackend(FakeService(), freeze_gc_every=every)  # type: ignore[arg-type]
