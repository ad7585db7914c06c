"""The strategy registry: which live strategies exist, durably, for the owner of the journal.

A :class:`StrategyRecord` is what a client asked for (plugin, parameters,
symbol, the account it trades for, optionally the cash it sizes from) plus what
the ingress learnt: when it was created, the stamp of the first bar it was fed
(a rebuilt runner replays the service's bars from there) and when it was
stopped. :class:`StrategyRegistry` keeps the records in a small SQLite file
next to the order journal (``journal.strategies.sqlite`` beside
``journal.sqlite``), written by the journal's single owner and committed before
the caller answers, so strategies survive a restart of the ingress. Records are
never deleted: a stopped strategy keeps its id, which is never reused (its
orders at the service carry it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tradepulse.errors import ConfigError
from tradepulse.execution.journal import MEMORY
from tradepulse.execution.service_views import OrderConflictError
from tradepulse.live.runner import RUNNER_ID_PATTERN

__all__ = [
    "StrategyConflictError",
    "StrategyRecord",
    "StrategyRegistry",
    "registry_path",
]

_ID: Final = re.compile(RUNNER_ID_PATTERN)
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS strategies ("
    " sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    " strategy_id TEXT NOT NULL UNIQUE,"
    " account TEXT NOT NULL,"
    " plugin TEXT NOT NULL,"
    " params TEXT NOT NULL,"
    " symbol TEXT NOT NULL,"
    " cash REAL,"
    " created_ns INTEGER NOT NULL,"
    " first_ts INTEGER,"
    " stopped_ns INTEGER)"
)
_COLUMNS: Final = (
    "strategy_id, account, plugin, params, symbol, cash, created_ns, first_ts, stopped_ns"
)


class StrategyConflictError(OrderConflictError):
    """A strategy id is taken by another definition (an HTTP layer answers 409)."""


def registry_path(journal: str | os.PathLike[str]) -> str:
    """Return the registry file that belongs to the journal at ``journal`` (memory stays memory).

    ``var/tradepulse/journal.sqlite`` has ``var/tradepulse/journal.strategies.sqlite``.
    """
    if os.fspath(journal) == MEMORY:
        return MEMORY
    path = Path(journal)
    return str(path.with_name(f"{path.stem}.strategies{path.suffix or '.sqlite'}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyRecord:
    """One live strategy as registered.

    ``params`` are the validated parameters (JSON-ready, defaults filled in);
    ``cash`` the cash it sizes its targets from (None: the account's initial
    cash); ``created_ns`` / ``stopped_ns`` wall-clock UTC nanoseconds;
    ``first_ts`` the stamp of the first bar it was fed (None: none yet).
    """

    strategy_id: str
    account: str
    plugin: str
    params: Mapping[str, Any]
    symbol: str
    cash: float | None
    created_ns: int
    first_ts: int | None = None
    stopped_ns: int | None = None

    @property
    def active(self) -> bool:
        """Return whether the strategy still trades (not stopped)."""
        return self.stopped_ns is None

    def same_definition(self, other: StrategyRecord) -> bool:
        """Return whether ``other`` asks for the same strategy (account, plugin, params, ...)."""
        return (self.account, self.plugin, dict(self.params), self.symbol, self.cash) == (
            other.account,
            other.plugin,
            dict(other.params),
            other.symbol,
            other.cash,
        )


def _record(row: tuple[Any, ...]) -> StrategyRecord:
    strategy_id, account, plugin, params, symbol, cash, created_ns, first_ts, stopped_ns = row
    return StrategyRecord(
        strategy_id=strategy_id,
        account=account,
        plugin=plugin,
        params=json.loads(params),
        symbol=symbol,
        cash=cash,
        created_ns=created_ns,
        first_ts=first_ts,
        stopped_ns=stopped_ns,
    )


class StrategyRegistry:
    """Strategy records in one SQLite file (``":memory:"``: nothing survives :meth:`close`).

    Calls are serialised by a lock; every change is committed before it returns.

    Raises:
        ConfigError: the file cannot be opened or is not a registry.
    """

    def __init__(self, path: str | os.PathLike[str] = MEMORY) -> None:
        memory = os.fspath(path) == MEMORY
        self._path = MEMORY if memory else str(Path(path).expanduser().resolve())
        self._lock = threading.Lock()
        try:
            if not memory:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(f"strategy registry {self._path} cannot be opened: {error}") from None
        self._connection: sqlite3.Connection | None = connection
        try:
            if not memory:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
            connection.execute(_SCHEMA)
            rows = connection.execute(
                f"SELECT {_COLUMNS} FROM strategies ORDER BY sequence"
            ).fetchall()
        except sqlite3.Error as error:
            self.close()
            raise ConfigError(f"{self._path} is not a strategy registry: {error}") from None
        self._records = {record.strategy_id: record for record in map(_record, rows)}

    def __repr__(self) -> str:
        return f"StrategyRegistry({self._path!r}, strategies={len(self._records)})"

    def __len__(self) -> int:
        """Return the number of strategies ever registered (stopped ones included)."""
        return len(self._records)

    @property
    def path(self) -> str:
        """Return the resolved file path (or ``":memory:"``)."""
        return self._path

    def close(self) -> None:
        """Close the file (idempotent)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection
        if connection is None:
            raise ConfigError(f"strategy registry {self._path} is closed")
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # ----------------------------------------------------------------- reads

    def get(self, strategy_id: str) -> StrategyRecord | None:
        """Return the record of ``strategy_id`` (None when unknown)."""
        return self._records.get(strategy_id)

    def records(
        self,
        *,
        account: str | None = None,
        symbol: str | None = None,
        active_only: bool = False,
    ) -> list[StrategyRecord]:
        """Return the records, oldest first, optionally of one account or symbol, or active only."""
        with self._lock:
            records = list(self._records.values())
        return [
            record
            for record in records
            if (account is None or record.account == account)
            and (symbol is None or record.symbol == symbol)
            and (record.active or not active_only)
        ]

    # ----------------------------------------------------------------- changes

    def create(
        self,
        *,
        account: str,
        plugin: str,
        params: Mapping[str, Any],
        symbol: str,
        cash: float | None,
        created_ns: int,
        strategy_id: str | None = None,
        taken: Callable[[str], bool] | None = None,
    ) -> tuple[StrategyRecord, bool]:
        """Register a strategy; return its record and whether it is new.

        Without ``strategy_id`` the next free id ``s1``, ``s2``, ... is taken.
        With one that exists, the existing record is returned (not new) if it
        is active and has the same definition. ``taken(id)`` says whether an
        id not registered here is nevertheless in use (the strategy's orders
        are ``<id>:...``, so an id the account already used as an order-id
        prefix is taken): such an id is skipped when allocating and refused
        when given.

        Raises:
            ConfigError: ``strategy_id`` is malformed, or ``params`` is not JSON-ready.
            StrategyConflictError: ``strategy_id`` belongs to another definition,
                to a stopped strategy, or is ``taken``.
        """
        if strategy_id is not None and (
            not isinstance(strategy_id, str) or not _ID.fullmatch(strategy_id)
        ):
            raise ConfigError(
                f"strategy id must be 1 to 32 letters, digits, '_' or '-'; got {strategy_id!r}"
            )
        try:
            params_text = json.dumps(dict(params), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"params must be JSON values: {error}") from None
        with self._lock, self._transaction() as connection:
            if strategy_id is None:
                row = connection.execute(
                    "SELECT COALESCE(MAX(sequence), 0) FROM strategies"
                ).fetchone()
                number = int(row[0]) + 1
                while f"s{number}" in self._records or (taken is not None and taken(f"s{number}")):
                    number += 1
                strategy_id = f"s{number}"
            record = StrategyRecord(
                strategy_id=strategy_id,
                account=account,
                plugin=plugin,
                params=json.loads(params_text),
                symbol=symbol,
                cash=cash,
                created_ns=created_ns,
            )
            known = self._records.get(strategy_id)
            if known is not None:
                if known.active and known.same_definition(record):
                    return known, False
                state = "a stopped strategy" if not known.active else "another strategy"
                raise StrategyConflictError(
                    f"strategy id {strategy_id!r} belongs to {state}; choose another id"
                )
            if taken is not None and taken(strategy_id):
                raise StrategyConflictError(
                    f"strategy id {strategy_id!r} is taken: account {account!r} already has "
                    f"orders whose ids start with {strategy_id + ':'!r}; choose another id"
                )
            connection.execute(
                f"INSERT INTO strategies ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (strategy_id, account, plugin, params_text, symbol, cash, created_ns),
            )
            self._records[strategy_id] = record
        return record, True

    def _update(self, strategy_id: str, column: str, value: int) -> StrategyRecord:
        with self._lock:
            record = self._records.get(strategy_id)
            if record is None:
                raise ConfigError(f"no strategy {strategy_id!r} is registered")
            with self._transaction() as connection:
                connection.execute(
                    f"UPDATE strategies SET {column} = ? WHERE strategy_id = ?",
                    (value, strategy_id),
                )
            changed = StrategyRecord(**{**_fields(record), column: value})
            self._records[strategy_id] = changed
            return changed

    def set_first_ts(self, strategy_id: str, ts: int) -> StrategyRecord:
        """Record the stamp of the strategy's first bar (kept if already set).

        Raises:
            ConfigError: no such strategy.
        """
        record = self._records.get(strategy_id)
        if record is not None and record.first_ts is not None:
            return record
        return self._update(strategy_id, "first_ts", ts)

    def stop(self, strategy_id: str, *, stopped_ns: int) -> StrategyRecord:
        """Mark the strategy stopped (kept if already stopped).

        Raises:
            ConfigError: no such strategy.
        """
        record = self._records.get(strategy_id)
        if record is not None and record.stopped_ns is not None:
            return record
        return self._update(strategy_id, "stopped_ns", stopped_ns)


def _fields(record: StrategyRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in StrategyRecord.__dataclass_fields__}
