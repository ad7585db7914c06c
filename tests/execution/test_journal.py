"""The SQLite journal: append-only events, one transaction per append, exactly one writer."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tradepulse.errors import ConfigError
from tradepulse.execution import Journal, JournalError, JournalEvent
from tradepulse.execution.journal import JOURNAL_SCHEMA_VERSION


def _events(count: int, *, start: int = 0) -> list[JournalEvent]:
    return [
        JournalEvent("note", 1_000 + number, {"number": number, "price": "1.50", "ok": True})
        for number in range(start, start + count)
    ]


def test_appended_events_read_back_in_sequence(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with Journal.open(path) as journal:
        assert journal.last_sequence == 0
        assert journal.append(_events(2)) == 2
        assert journal.append([]) == 2
        assert journal.append(_events(1, start=2)) == 3

    with Journal.open(path) as journal:
        entries = list(journal.entries())
        later = [entry.sequence for entry in journal.entries(start=2)]
        assert journal.last_sequence == 3

    assert [entry.sequence for entry in entries] == [1, 2, 3]
    assert [entry.payload["number"] for entry in entries] == [0, 1, 2]
    assert entries[0].kind == "note"
    assert entries[0].ts_ns == 1_000
    assert entries[0].payload == {"number": 0, "price": "1.50", "ok": True}
    assert later == [2, 3]


def test_floats_round_trip_bit_for_bit(tmp_path: Path) -> None:
    values = [0.1, 1 / 3, 123456.789012345, 5e-324, 1.7976931348623157e308]
    with Journal.open(tmp_path / "j.db") as journal:
        journal.append([JournalEvent("bar", 0, {"values": values})])
        (entry,) = journal.entries()

    assert entry.payload["values"] == values


def test_an_append_is_all_or_nothing(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        journal.append(_events(1))
        bad = [*_events(2), JournalEvent("note", 0, {"nan": float("nan")})]

        with pytest.raises(JournalError, match="JSON"):
            journal.append(bad)

        assert journal.last_sequence == 1
        assert [entry.sequence for entry in journal.entries()] == [1]
        assert journal.append(_events(1)) == 2


def test_journal_uses_wal_and_the_chosen_synchronous_level(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        connection = journal._connection
        assert connection is not None
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with Journal.open(path, synchronous="normal") as journal:
        connection = journal._connection
        assert connection is not None
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with pytest.raises(ConfigError, match="synchronous"):
        Journal.open(path, synchronous="off")  # type: ignore[arg-type]


def test_events_cannot_be_updated_or_deleted(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        journal.append(_events(2))

    connection = sqlite3.connect(path)
    try:
        for statement in ("UPDATE events SET kind = 'x'", "DELETE FROM events"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                connection.execute(statement)
        assert connection.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2
    finally:
        connection.close()


def test_a_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.db"  # the folder is created
    with Journal.open(path) as journal:
        journal.append(_events(1))

        with pytest.raises(ConfigError) as raised:
            Journal.open(path)

        message = str(raised.value)
        assert str(path.resolve()) in message
        assert f"pid {os.getpid()}" in message
        # Inspection without the lock is allowed, writing through it is not.
        with Journal.open(path, read_only=True) as reader:
            assert [entry.sequence for entry in reader.entries()] == [1]
            assert reader.read_only
            with pytest.raises(JournalError, match="read-only"):
                reader.append(_events(1))
    with Journal.open(path) as journal:  # the lock went with the first writer
        assert journal.last_sequence == 1


def test_a_writer_in_another_process_blocks_until_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from tradepulse.execution import Journal
        journal = Journal.open({str(path)!r})
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"

        with pytest.raises(ConfigError, match=f"by pid {child.pid}"):
            Journal.open(path)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()

    with Journal.open(path) as journal:  # a killed writer leaves no stale lock
        assert journal.last_sequence == 0


def test_in_memory_journals_are_independent() -> None:
    first, second = Journal(), Journal(":memory:")
    first.append(_events(2))

    assert (first.last_sequence, second.last_sequence) == (2, 0)
    assert first.path == ":memory:"
    assert "writer" in repr(first)
    first.close()
    first.close()  # idempotent
    assert first.closed
    assert "closed" in repr(first)
    with pytest.raises(JournalError, match="closed"):
        first.append(_events(1))
    with pytest.raises(JournalError, match="closed"):
        list(first.entries())
    with pytest.raises(ConfigError, match="read-only"):
        Journal(":memory:", read_only=True)
    second.close()


def test_read_only_needs_an_existing_journal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Journal.open(tmp_path / "missing.db", read_only=True)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some bytes " * 100)
    with pytest.raises(ConfigError, match="cannot be opened"):
        Journal.open(junk)

    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    connection.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    connection.commit()
    connection.close()
    with pytest.raises(JournalError, match=f"'999'.*version {JOURNAL_SCHEMA_VERSION}"):
        Journal.open(other)
    with pytest.raises(JournalError, match="schema version"):
        Journal.open(other, read_only=True)


def _tamper(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("DROP TRIGGER events_no_update")
        connection.execute("DROP TRIGGER events_no_delete")
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def test_a_missing_event_is_named(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        journal.append(_events(4))
    _tamper(path, "DELETE FROM events WHERE sequence = 3")

    with Journal.open(path) as journal, pytest.raises(JournalError, match="event 3 is missing"):
        list(journal.entries())


@pytest.mark.parametrize("payload", ["{not json", json.dumps([1, 2])])
def test_an_unreadable_payload_is_named(tmp_path: Path, payload: str) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path) as journal:
        journal.append(_events(3))
    _tamper(path, f"UPDATE events SET payload = '{payload}' WHERE sequence = 2")

    with Journal.open(path) as journal:
        with pytest.raises(JournalError, match="event 2") as raised:
            list(journal.entries())
        assert raised.value.sequence == 2
