"""The order journal: an append-only SQLite event log with exactly one writer.

Every change the execution service makes (an order accepted or rejected, a
cancel, a replace, a bar processed, a fill, a kill-switch change) is appended
as an event: a monotonically increasing ``sequence`` (1, 2, ...), a ``kind``,
the service clock's ``ts_ns`` and a JSON ``payload``. :meth:`Journal.append`
writes one call's events in a single transaction and returns only after the
commit, so the service answers a client only once the answer is durable. A
restarted service replays the events to rebuild its state
(:class:`~tradepulse.execution.service.ExecutionService`).

**Group commit.** Inside :meth:`Journal.group`, appends join one open
transaction (each still atomic on its own, through a savepoint) that commits
once when the block ends: many concurrent calls then cost one commit and one
sync instead of one each. Their callers must be answered only after the block
has ended without error.

Storage choices:

- **WAL mode** (``PRAGMA journal_mode=WAL``): a commit appends to the
  write-ahead log instead of rewriting pages, and readers (an inspection tool,
  a test) never block the writer.
- **synchronous=FULL by default**: in WAL mode, ``NORMAL`` makes a commit
  durable against a crash of the process (``kill -9``) but may lose the last
  transactions on power loss or an OS crash, because the log is synced only at
  checkpoints. An acknowledged order must survive both, so the default syncs
  the log at every commit; ``synchronous="normal"`` trades that for latency
  where the host's storage is itself replicated.
- **Append-only**: triggers make ``UPDATE`` and ``DELETE`` on the events
  table fail, so a bug cannot rewrite history.
- **Indexes**: partial expression indexes on the payloads (an order's
  events, an account's orders, fills and keys, a symbol's bars) let the
  service read back one order or one account's orders without a scan. A
  writer builds any that are missing when it opens a journal, so a journal
  written before they existed opens as it is; they change no event.
- **One writer**: a writable journal takes an exclusive ``flock`` on the
  sidecar file ``<path>.lock`` and writes its pid there. A second writer (in
  this or another process) gets a :class:`~tradepulse.errors.ConfigError`
  naming the path and the owner's pid. The kernel drops the lock when the
  owner exits, however it dies, so a crashed writer never blocks its successor.
  ``read_only=True`` opens a journal for inspection without the lock.

``Journal(":memory:")`` keeps everything in memory (tests, throwaway sessions):
nothing survives :meth:`Journal.close`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

from tradepulse.errors import ConfigError, TradePulseError

__all__ = [
    "JOURNAL_SCHEMA_VERSION",
    "MEMORY",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalEvent",
]

#: The journal format this module writes and reads.
JOURNAL_SCHEMA_VERSION: Final = 1
#: The path of an in-memory journal.
MEMORY: Final = ":memory:"

_SYNCHRONOUS: Final = {"full": "FULL", "normal": "NORMAL"}
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events ("
    " sequence INTEGER PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " ts_ns INTEGER NOT NULL,"
    " payload TEXT NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events"
    " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events"
    " BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END",
)
# Which events the lookups below read; each partial index covers one such set.
# ``json_valid`` keeps a corrupted payload out of the indexes (its event is
# still reported by :meth:`Journal.entries`), and every query repeats its
# index's WHERE terms so SQLite uses the index.
_ORDER_EVENTS: Final = (
    "kind IN ('order', 'replace', 'cancel', 'fill', 'order_update') AND json_valid(payload)"
)
_NEW_ORDERS: Final = "kind IN ('order', 'replace') AND json_valid(payload)"
_SUBMITS: Final = "kind = 'order' AND json_valid(payload)"
_REPLACES: Final = "kind = 'replace' AND json_valid(payload)"
_FILLS: Final = "kind = 'fill' AND json_valid(payload)"
_BARS: Final = "kind = 'bar' AND json_valid(payload)"
_ORDER_ID: Final = "json_extract(payload, '$.order_id')"
_REPLACED: Final = "json_extract(payload, '$.replaces')"
_ACCOUNT: Final = "json_extract(payload, '$.account')"
_IDEMPOTENCY_KEY: Final = "json_extract(payload, '$.idempotency_key')"
_CLIENT_ORDER_ID: Final = "json_extract(payload, '$.request.client_order_id')"
_SYMBOL: Final = "json_extract(payload, '$.symbol')"
#: Indexes for reading one order, one account's orders, fills or keys, or one
#: symbol's bars without a scan (the execution service reads orders it no
#: longer keeps in memory this way). Created by a writer when missing, so a
#: journal written before they existed opens as it is (the first open builds
#: them); they change no event, and code that does not know them still reads
#: and appends to the file.
_INDEXES: Final = (
    f"CREATE INDEX IF NOT EXISTS events_by_order ON events ({_ORDER_ID}) WHERE {_ORDER_EVENTS}",
    f"CREATE INDEX IF NOT EXISTS events_by_replaced ON events ({_REPLACED}) WHERE {_REPLACES}",
    "CREATE INDEX IF NOT EXISTS events_orders_by_account"
    f" ON events ({_ACCOUNT}, sequence) WHERE {_NEW_ORDERS}",
    "CREATE INDEX IF NOT EXISTS events_fills_by_account"
    f" ON events ({_ACCOUNT}, sequence) WHERE {_FILLS}",
    "CREATE INDEX IF NOT EXISTS events_by_idempotency_key"
    f" ON events ({_ACCOUNT}, {_IDEMPOTENCY_KEY}) WHERE {_NEW_ORDERS}",
    "CREATE INDEX IF NOT EXISTS events_by_client_order_id"
    f" ON events ({_ACCOUNT}, {_CLIENT_ORDER_ID}) WHERE {_SUBMITS}",
    "CREATE INDEX IF NOT EXISTS events_bars_by_symbol"
    f" ON events ({_SYMBOL}, sequence) WHERE {_BARS}",
)
_COLUMNS: Final = "sequence, kind, ts_ns, payload"
# Bound parameters per query when looking up many orders at once (SQLite allows 32,766).
_BATCH: Final = 500


class JournalError(TradePulseError, RuntimeError):
    """The journal is unreadable, inconsistent or failed to write.

    ``sequence`` is the event at fault when one is known (``None`` otherwise).
    """

    def __init__(self, message: str, *, sequence: int | None = None) -> None:
        super().__init__(message)
        self.sequence = sequence


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """An event to append: its ``kind``, the service clock's ``ts_ns`` and a JSON ``payload``.

    Payload values must be JSON types (``str``, ``int``, finite ``float``,
    ``bool``, ``None``, lists and string-keyed dicts of them); decimals are
    written as strings by the caller so they round-trip exactly.
    """

    kind: str
    ts_ns: int
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """An event read back: its ``sequence`` number plus the :class:`JournalEvent` fields."""

    sequence: int
    kind: str
    ts_ns: int
    payload: dict[str, Any]


def encode_payload(payload: Mapping[str, Any]) -> str:
    """Return ``payload`` as canonical JSON (sorted keys, no NaN, no spaces).

    Raises:
        JournalError: the payload holds a value JSON cannot represent exactly.
    """
    try:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise JournalError(f"event payload is not JSON-serialisable: {error}") from None


class Journal:
    """An append-only event log in one SQLite file (see the module docstring).

    ``path`` is the database file (created with its folder if missing) or
    ``":memory:"``. ``synchronous`` is ``"full"`` (default: every commit is
    synced to disk) or ``"normal"`` (durable against a process crash only).
    ``read_only`` opens an existing journal for inspection, without the writer
    lock; :meth:`append` then raises.

    Raises:
        ConfigError: ``synchronous`` is unknown, the file cannot be opened,
            another writer holds the journal (the message names the path and
            the owner's pid), or a read-only journal does not exist.
        JournalError: the file is not a journal of this schema version.
    """

    __slots__ = (
        "_connection",
        "_grouped",
        "_last_sequence",
        "_lock_fd",
        "_path",
        "_read_only",
    )

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        *,
        synchronous: Literal["full", "normal"] = "full",
        read_only: bool = False,
    ) -> None:
        if synchronous not in _SYNCHRONOUS:
            raise ConfigError(
                f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        self._read_only = bool(read_only)
        self._grouped = False
        self._lock_fd: int | None = None
        memory = os.fspath(path) == MEMORY
        self._path = MEMORY if memory else str(Path(path).expanduser().resolve())
        if memory and read_only:
            raise ConfigError("an in-memory journal cannot be opened read-only")
        if not memory:
            if read_only and not Path(self._path).is_file():
                raise ConfigError(f"journal {self._path} does not exist")
            if not read_only:
                self._lock_fd = _take_writer_lock(self._path)
        try:
            self._connection: sqlite3.Connection | None = _connect(
                self._path, read_only=self._read_only
            )
            self._connection.execute("PRAGMA busy_timeout=5000")
            if not self._read_only:
                mode = "memory" if memory else "wal"
                found = self._connection.execute(f"PRAGMA journal_mode={mode}").fetchone()
                if found is None or str(found[0]).lower() != mode:
                    raise ConfigError(f"journal {self._path}: cannot switch to {mode} mode")
                self._connection.execute(f"PRAGMA synchronous={_SYNCHRONOUS[synchronous]}")
                self._create_schema()
            self._check_schema()
            row = self._connection.execute("SELECT MAX(sequence) FROM events").fetchone()
            self._last_sequence = int(row[0]) if row is not None and row[0] is not None else 0
        except sqlite3.Error as error:
            self._release()
            raise ConfigError(f"journal {self._path} cannot be opened: {error}") from None
        except BaseException:
            self._release()
            raise

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = MEMORY,
        *,
        synchronous: Literal["full", "normal"] = "full",
        read_only: bool = False,
    ) -> Journal:
        """Return the journal at ``path`` (same arguments and errors as the constructor)."""
        return cls(path, synchronous=synchronous, read_only=read_only)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("read-only" if self._read_only else "writer")
        return f"Journal({self._path!r}, {state}, last_sequence={self._last_sequence})"

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> str:
        """Return the resolved database path (or ``":memory:"``)."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Return whether the journal was opened for inspection only."""
        return self._read_only

    @property
    def closed(self) -> bool:
        """Return whether :meth:`close` was called."""
        return self._connection is None

    @property
    def last_sequence(self) -> int:
        """Return the sequence number of the last event (0 when empty).

        Inside :meth:`group`, events appended in the group count before they
        are committed.
        """
        return self._last_sequence

    @property
    def in_group(self) -> bool:
        """Return whether a :meth:`group` is open."""
        return self._grouped

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Commit every :meth:`append` made inside the block in one transaction, at its end.

        Each append inside is still all-or-nothing on its own, but nothing is
        durable, or visible to other connections, until the block ends without
        error and the transaction commits (one sync for the whole group). If
        the block raises, or the commit fails, every event appended inside is
        discarded and :attr:`last_sequence` goes back to its value at the start.

        Raises:
            JournalError: the journal is closed or read-only, a group is
                already open, or the commit failed (nothing in the group was
                written).
        """
        connection = self._live()
        if self._read_only:
            raise JournalError(f"journal {self._path} is open read-only")
        if self._grouped:
            raise JournalError(f"journal {self._path}: a group is already open")
        start = self._last_sequence
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise JournalError(f"journal {self._path}: cannot open a group: {error}") from None
        self._grouped = True
        try:
            yield
        except BaseException:
            self._grouped = False
            self._last_sequence = start
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
        self._grouped = False
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            self._last_sequence = start
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise JournalError(
                f"journal {self._path}: committing events {start + 1}.. failed: {error}",
                sequence=start + 1,
            ) from None

    def _create_schema(self) -> None:
        connection = self._live()
        with _transaction(connection):
            for statement in (*_SCHEMA, *_INDEXES):
                connection.execute(statement)
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(JOURNAL_SCHEMA_VERSION),),
            )

    def _check_schema(self) -> None:
        connection = self._live()
        try:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as error:
            raise JournalError(f"{self._path} is not a TradePulse journal: {error}") from None
        if row is None or row[0] != str(JOURNAL_SCHEMA_VERSION):
            found = None if row is None else row[0]
            raise JournalError(
                f"journal {self._path} has schema version {found!r}; "
                f"this TradePulse reads version {JOURNAL_SCHEMA_VERSION}"
            )

    def _live(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is None:
            raise JournalError(f"journal {self._path} is closed")
        return connection

    def append(self, events: Sequence[JournalEvent]) -> int:
        """Append ``events`` in one transaction, commit, and return the last sequence number.

        An empty sequence writes nothing. Nothing is written unless everything is.

        Raises:
            JournalError: the journal is closed or read-only, a payload is not
                JSON-serialisable, or SQLite failed to write (nothing was written).
        """
        connection = self._live()
        if self._read_only:
            raise JournalError(f"journal {self._path} is open read-only")
        if not events:
            return self._last_sequence
        rows = []
        sequence = self._last_sequence
        for event in events:
            sequence += 1
            rows.append((sequence, event.kind, int(event.ts_ns), encode_payload(event.payload)))
        try:
            with _transaction(connection, savepoint=self._grouped):
                connection.executemany(
                    "INSERT INTO events (sequence, kind, ts_ns, payload) VALUES (?, ?, ?, ?)", rows
                )
        except sqlite3.Error as error:
            raise JournalError(
                f"journal {self._path}: writing events {rows[0][0]}..{sequence} failed: {error}",
                sequence=rows[0][0],
            ) from None
        self._last_sequence = sequence
        return sequence

    def entries(self, *, start: int = 1) -> Iterator[JournalEntry]:
        """Yield the events from sequence ``start`` on, in order.

        Raises:
            JournalError: the journal is closed, or an event is unreadable (the
                message names its sequence number).
        """
        connection = self._live()
        cursor = connection.execute(
            "SELECT sequence, kind, ts_ns, payload FROM events WHERE sequence >= ? "
            "ORDER BY sequence",
            (start,),
        )
        expected = max(start, 1)
        for sequence, kind, ts_ns, text in cursor:
            if sequence != expected:
                raise JournalError(
                    f"journal {self._path}: event {expected} is missing (found {sequence} next)",
                    sequence=expected,
                )
            expected += 1
            yield _entry(self._path, sequence, kind, ts_ns, text)

    # ----------------------------------------------------------------- indexed reads

    def order_entries(self, order_ids: Collection[str]) -> list[JournalEntry]:
        """Return the events of the orders ``order_ids``, in sequence order.

        An order's events are those whose payload names it as ``order_id``
        (``order``, ``replace``, ``cancel``, ``fill``, ``order_update``) and the
        ``replace`` events whose payload ``replaces`` it. Indexed: the cost
        does not grow with the journal.

        Raises:
            JournalError: the journal is closed, or an event is unreadable.
        """
        ids = list(dict.fromkeys(order_ids))
        found: dict[int, JournalEntry] = {}
        for first in range(0, len(ids), _BATCH):
            chunk = ids[first : first + _BATCH]
            marks = ", ".join("?" * len(chunk))
            for where in (
                f"{_ORDER_EVENTS} AND {_ORDER_ID} IN ({marks})",
                f"{_REPLACES} AND {_REPLACED} IN ({marks})",
            ):
                for entry in self._select(f"SELECT {_COLUMNS} FROM events WHERE {where}", chunk):
                    found[entry.sequence] = entry
        return [found[sequence] for sequence in sorted(found)]

    def account_orders(
        self, account: str, *, before: int | None = None, limit: int | None = None
    ) -> list[tuple[int, str, str, str | None]]:
        """Return ``account``'s ``order`` and ``replace`` events, newest first (indexed).

        Each as (sequence, order id, status, strategy): the status journaled
        with the event (``accepted`` or ``rejected``). ``before`` keeps the
        events before that sequence number, ``limit`` the newest ``limit`` of
        them (pages: pass the last sequence read as the next ``before``).

        Raises:
            JournalError: the journal is closed or SQLite failed.
        """
        query = (
            f"SELECT sequence, {_ORDER_ID}, json_extract(payload, '$.status'), "
            "json_extract(payload, '$.strategy') FROM events "
            f"WHERE {_NEW_ORDERS} AND {_ACCOUNT} = ?"
        )
        values: list[object] = [account]
        if before is not None:
            query += " AND sequence < ?"
            values.append(before)
        query += " ORDER BY sequence DESC"
        if limit is not None:
            query += " LIMIT ?"
            values.append(limit)
        return [
            (int(sequence), str(order_id), str(status), None if strategy is None else str(strategy))
            for sequence, order_id, status, strategy in self._rows(query, values)
        ]

    def account_fills(self, account: str) -> list[JournalEntry]:
        """Return the ``fill`` events of ``account``, in sequence order (indexed).

        Raises:
            JournalError: the journal is closed, or an event is unreadable.
        """
        return self._select(
            f"SELECT {_COLUMNS} FROM events WHERE {_FILLS} AND {_ACCOUNT} = ? ORDER BY sequence",
            (account,),
        )

    def keyed_entries(
        self, account: str, *, key: str | None = None, prefix: str = ""
    ) -> list[JournalEntry]:
        """Return ``account``'s order events carrying a key, in sequence order (indexed).

        A key is an ``order`` or ``replace`` event's ``idempotency_key`` or an
        ``order`` event's ``request.client_order_id``. With ``key``, the events
        carrying exactly that key; otherwise those carrying a key that starts
        with ``prefix``.

        Raises:
            JournalError: the journal is closed, or an event is unreadable.
        """
        found: dict[int, JournalEntry] = {}
        for where, field, path in (
            (_NEW_ORDERS, _IDEMPOTENCY_KEY, ("idempotency_key",)),
            (_SUBMITS, _CLIENT_ORDER_ID, ("request", "client_order_id")),
        ):
            bounded = True
            if key is not None:
                condition, values = f"{field} = ?", [account, key]
            elif not prefix:
                condition, values = f"{field} IS NOT NULL", [account]
            else:
                condition, values = f"{field} >= ?", [account, prefix]
                bounded = prefix[-1] != chr(sys.maxunicode)
                if bounded:  # the keys that start with "ab" are those in ["ab", "ac")
                    condition += f" AND {field} < ?"
                    values.append(prefix[:-1] + chr(ord(prefix[-1]) + 1))
            query = (
                f"SELECT {_COLUMNS} FROM events WHERE {where} AND {_ACCOUNT} = ? AND {condition}"
            )
            for entry in self._select(query, values):
                if bounded or str(_at(entry.payload, path)).startswith(prefix):
                    found[entry.sequence] = entry
        return [found[sequence] for sequence in sorted(found)]

    def bar_entries(self, symbol: str) -> list[JournalEntry]:
        """Return the ``bar`` events of ``symbol``, in sequence order (indexed).

        Raises:
            JournalError: the journal is closed, or an event is unreadable.
        """
        return self._select(
            f"SELECT {_COLUMNS} FROM events WHERE {_BARS} AND {_SYMBOL} = ? ORDER BY sequence",
            (symbol,),
        )

    def last_bar_ts(self, symbol: str, *, before: int) -> int | None:
        """Return the ``ts`` of the last ``bar`` event of ``symbol`` before sequence ``before``.

        None when there is none. Indexed: one lookup.

        Raises:
            JournalError: the journal is closed or SQLite failed.
        """
        rows = self._rows(
            f"SELECT json_extract(payload, '$.ts') FROM events WHERE {_BARS} AND {_SYMBOL} = ? "
            "AND sequence < ? ORDER BY sequence DESC LIMIT 1",
            (symbol, before),
        )
        return None if not rows else int(rows[0][0])

    def _rows(self, query: str, values: Sequence[object]) -> list[tuple[Any, ...]]:
        connection = self._live()
        try:
            return connection.execute(query, tuple(values)).fetchall()
        except sqlite3.Error as error:
            raise JournalError(f"journal {self._path}: reading events failed: {error}") from None

    def _select(self, query: str, values: Sequence[object]) -> list[JournalEntry]:
        return [
            _entry(self._path, sequence, kind, ts_ns, text)
            for sequence, kind, ts_ns, text in self._rows(query, values)
        ]

    def close(self) -> None:
        """Close the database and release the writer lock (idempotent)."""
        self._release()

    def _release(self) -> None:
        connection = getattr(self, "_connection", None)
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
        self._connection = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def _at(payload: Mapping[str, Any], path: tuple[str, ...]) -> object:
    """Return the value at ``path`` in nested JSON objects (None where one is missing)."""
    value: object = payload
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def _entry(path: str, sequence: int, kind: str, ts_ns: int, text: str) -> JournalEntry:
    """Return the entry of one row.

    Raises:
        JournalError: the payload is not a JSON object (the message names the event).
    """
    try:
        payload = json.loads(text)
    except (TypeError, ValueError) as error:
        raise JournalError(
            f"journal {path}: event {sequence} has an unreadable payload: {error}",
            sequence=sequence,
        ) from None
    if not isinstance(payload, dict):
        raise JournalError(
            f"journal {path}: event {sequence} payload is not a JSON object", sequence=sequence
        )
    return JournalEntry(sequence=sequence, kind=kind, ts_ns=ts_ns, payload=payload)


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection, *, savepoint: bool = False) -> Iterator[None]:
    """Run the block atomically: a transaction, or a savepoint inside an open one."""
    begin, rollback, commit = (
        ("SAVEPOINT journal_append", "ROLLBACK TO journal_append", "RELEASE journal_append")
        if savepoint
        else ("BEGIN IMMEDIATE", "ROLLBACK", "COMMIT")
    )
    connection.execute(begin)
    try:
        yield
    except BaseException:
        connection.execute(rollback)
        if savepoint:
            connection.execute(commit)  # ROLLBACK TO keeps the savepoint open
        raise
    connection.execute(commit)


def _connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    if read_only:
        uri = f"{Path(path).as_uri()}?mode=ro"
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    if path != MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def _take_writer_lock(path: str) -> int:
    """Take the exclusive writer lock of the journal at ``path``; return the lock's fd.

    Raises:
        ConfigError: the lock file cannot be opened, or another writer holds it.
    """
    lock_path = f"{path}.lock"
    try:
        Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise ConfigError(
            f"journal {path}: cannot open the lock file {lock_path}: {error}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            owner = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        raise ConfigError(
            f"journal {path} is already open for writing by pid {owner} "
            f"(lock file {lock_path}); one writer owns a journal"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd
