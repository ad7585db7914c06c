"""Group commit: many appends (many service calls) in one journal transaction, one sync."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_helpers import FakeClock, bar, buy, config, reopen, snapshot

from tradepulse.domain import OrderStatus, OrderType
from tradepulse.execution import ExecutionService, Journal, JournalError, JournalEvent


def _events(count: int, *, start: int = 0) -> list[JournalEvent]:
    return [JournalEvent("note", 1_000 + n, {"number": n}) for n in range(start, start + count)]


def _committed(path: Path) -> list[int]:
    """Return the sequence numbers another connection sees (committed events only)."""
    with Journal.open(path, read_only=True) as reader:
        return [entry.sequence for entry in reader.entries()]


class _FailingCommit:
    """A connection whose COMMIT fails like a full disk; everything else is the real one."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal.open(tmp_path / "journal.db") as opened:
        yield opened


# ------------------------------------------------------------------------ the journal


def test_appends_in_a_group_are_invisible_until_the_group_commits(
    journal: Journal, tmp_path: Path
) -> None:
    journal.append(_events(1))
    with journal.group():
        assert journal.in_group
        assert journal.append(_events(2, start=1)) == 3
        assert journal.append(_events(1, start=3)) == 4
        assert _committed(tmp_path / "journal.db") == [1]  # not yet durable
    assert not journal.in_group
    assert _committed(tmp_path / "journal.db") == [1, 2, 3, 4]
    assert journal.append(_events(1, start=4)) == 5  # back to one transaction per append


def test_a_raising_group_discards_all_its_appends(journal: Journal, tmp_path: Path) -> None:
    journal.append(_events(1))

    def append_then_fail() -> None:
        with journal.group():
            journal.append(_events(3, start=1))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        append_then_fail()
    assert journal.last_sequence == 1
    assert _committed(tmp_path / "journal.db") == [1]
    assert journal.append(_events(1, start=1)) == 2


def test_a_failed_append_in_a_group_keeps_the_groups_earlier_appends(
    journal: Journal, tmp_path: Path
) -> None:
    with journal.group():
        journal.append(_events(2))
        journal._last_sequence = 1  # the next insert collides with event 2
        with pytest.raises(JournalError, match=r"writing events 2\.\.2 failed"):
            journal.append(_events(1, start=2))
        assert journal.last_sequence == 1
        journal._last_sequence = 2
        assert journal.append(_events(1, start=2)) == 3
    assert _committed(tmp_path / "journal.db") == [1, 2, 3]


def test_a_failed_group_commit_writes_nothing_and_says_so(journal: Journal, tmp_path: Path) -> None:
    journal.append(_events(1))
    real = journal._connection
    assert real is not None
    journal._connection = _FailingCommit(real)  # type: ignore[assignment]

    def append_in_a_group() -> None:
        with journal.group():
            journal.append(_events(2, start=1))

    with pytest.raises(JournalError, match=r"committing events 2\.\. failed: database or disk"):
        append_in_a_group()
    journal._connection = real
    assert journal.last_sequence == 1
    assert _committed(tmp_path / "journal.db") == [1]
    assert journal.append(_events(1, start=1)) == 2


def test_groups_do_not_nest_and_need_a_writer(journal: Journal, tmp_path: Path) -> None:
    with journal.group(), pytest.raises(JournalError, match="already open"), journal.group():
        pass
    reader = Journal.open(tmp_path / "journal.db", read_only=True)
    with pytest.raises(JournalError, match="read-only"), reader.group():
        pass
    reader.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"), journal.group():
        pass


# ------------------------------------------------------------------------ the service


def _service(path: Path, clock: FakeClock) -> ExecutionService:
    return ExecutionService(journal=Journal.open(path), config=config(), clock=clock)


def test_calls_in_a_commit_group_are_durable_together(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "journal.db"
    service = _service(path, clock)
    service.on_bar("ACME", bar(1, 10.0, 11.0, 9.0))
    before = len(_committed(path))
    with service.commit_group():
        first = service.submit(buy(2), account="desk", idempotency_key="k1")
        replay = service.submit(buy(2), account="desk", idempotency_key="k1")
        service.submit(buy(3), account="desk")
        fills = service.on_bar("ACME", bar(2, 10.5, 11.0, 9.5))
        assert len(_committed(path)) == before  # nothing durable inside the group
    assert first.created
    assert not replay.created
    assert replay.order == first.order
    assert [fill.quantity for fill in fills] == [2, 3]
    assert len(_committed(path)) == before + 5  # two orders, the bar, its two fills
    expected = snapshot(service)
    service.journal.close()
    assert snapshot(reopen(Journal.open(path), config(), clock)) == expected


def test_a_failed_group_commit_stops_the_service_and_keeps_earlier_calls(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "journal.db"
    service = _service(path, clock)
    kept = service.submit(buy(1, order_type=OrderType.LIMIT, limit="5.00"), account="desk")
    real = service.journal._connection
    assert real is not None
    service.journal._connection = _FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(JournalError, match="committing events"), service.commit_group():
        service.submit(buy(2, order_type=OrderType.LIMIT, limit="5.00"), account="desk")
    service.journal._connection = real
    with pytest.raises(JournalError, match="stopped after a failure"):
        service.submit(buy(3), account="desk")
    service.journal.close()

    restarted = reopen(Journal.open(path), config(), clock)
    (order,) = restarted.orders(account="desk")
    assert order == kept.order
    assert order.status is OrderStatus.ACCEPTED


def test_a_group_that_raises_before_changing_anything_leaves_the_service_running(
    tmp_path: Path,
) -> None:
    service = _service(tmp_path / "journal.db", FakeClock())
    with pytest.raises(ValueError, match="not a call"), service.commit_group():
        raise ValueError("not a call")
    assert service.submit(buy(1), account="desk").created  # still usable

    def submit_then_fail() -> None:
        with service.commit_group():
            service.submit(buy(1), account="desk")
            raise KeyError("after a change")

    with pytest.raises(KeyError):
        submit_then_fail()
    with pytest.raises(JournalError, match="stopped after a failure"):
        service.submit(buy(1), account="desk")


def test_a_commit_group_inside_a_commit_group_joins_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    service = _service(path, FakeClock())
    before = len(_committed(path))
    with service.commit_group():
        with service.commit_group():
            service.submit(buy(1), account="desk")
        assert len(_committed(path)) == before  # the inner block committed nothing
    assert len(_committed(path)) == before + 1
