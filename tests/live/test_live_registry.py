"""The strategy registry: durable definitions next to the journal, ids never reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradepulse.errors import ConfigError
from tradepulse.execution.service_views import OrderConflictError
from tradepulse.live.registry import (
    StrategyConflictError,
    StrategyRecord,
    StrategyRegistry,
    registry_path,
)


def _create(registry: StrategyRegistry, **changes: object) -> tuple[StrategyRecord, bool]:
    arguments: dict[str, object] = {
        "account": "alpha",
        "plugin": "sma_cross",
        "params": {"fast": 10, "slow": 30},
        "symbol": "SPX",
        "cash": None,
        "created_ns": 1,
    }
    arguments.update(changes)
    return registry.create(**arguments)  # type: ignore[arg-type]


def test_the_registry_file_sits_next_to_the_journal() -> None:
    assert registry_path("var/x/journal.sqlite") == "var/x/journal.strategies.sqlite"
    assert registry_path("/j/orders") == "/j/orders.strategies.sqlite"
    assert registry_path(":memory:") == ":memory:"


def test_records_survive_a_reopen_and_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "journal.strategies.sqlite"
    registry = StrategyRegistry(path)
    first, created = _create(registry)
    second, _ = _create(registry, symbol="NDX", account="beta", cash=5000.0)
    registry.set_first_ts(first.strategy_id, 100)
    registry.set_first_ts(first.strategy_id, 200)  # kept: the first bar is the first
    registry.stop(second.strategy_id, stopped_ns=7)
    registry.stop(second.strategy_id, stopped_ns=9)  # kept
    registry.close()
    registry.close()  # idempotent

    reopened = StrategyRegistry(path)
    third, _ = _create(reopened)

    assert created
    assert [first.strategy_id, second.strategy_id, third.strategy_id] == ["s1", "s2", "s3"]
    assert reopened.get("s1") == StrategyRecord(
        strategy_id="s1",
        account="alpha",
        plugin="sma_cross",
        params={"fast": 10, "slow": 30},
        symbol="SPX",
        cash=None,
        created_ns=1,
        first_ts=100,
    )
    stopped = reopened.get("s2")
    assert stopped is not None
    assert (stopped.stopped_ns, stopped.active, stopped.cash) == (7, False, 5000.0)
    assert [r.strategy_id for r in reopened.records(active_only=True)] == ["s1", "s3"]
    assert [r.strategy_id for r in reopened.records(account="beta")] == ["s2"]
    assert [r.strategy_id for r in reopened.records(symbol="SPX")] == ["s1", "s3"]
    assert len(reopened) == 3
    assert reopened.path == str(path.resolve())
    assert "strategies=3" in repr(reopened)


def test_a_chosen_id_is_idempotent_for_the_same_definition_and_a_conflict_otherwise() -> None:
    registry = StrategyRegistry()
    record, created = _create(registry, strategy_id="trend-1")
    again, created_again = _create(registry, strategy_id="trend-1", created_ns=99)
    generated, _ = _create(registry)

    assert (created, created_again) == (True, False)
    assert again == record
    assert generated.strategy_id == "s2"  # "trend-1" took sequence 1
    with pytest.raises(StrategyConflictError, match="another strategy"):
        _create(registry, strategy_id="trend-1", params={"fast": 5})
    registry.stop("trend-1", stopped_ns=3)
    with pytest.raises(StrategyConflictError, match="stopped strategy"):
        _create(registry, strategy_id="trend-1")
    assert issubclass(StrategyConflictError, OrderConflictError)  # answered 409


def test_a_generated_id_skips_ids_chosen_by_clients() -> None:
    registry = StrategyRegistry()
    _create(registry, strategy_id="s2")

    record, _ = _create(registry)

    assert record.strategy_id == "s3"


def test_ids_the_account_already_uses_as_order_prefixes_are_skipped_or_refused() -> None:
    registry = StrategyRegistry()
    used = {"s1", "s2", "mine"}  # e.g. a user's orders "s1:o1", "s2:x", "mine:1"
    asked: list[str] = []

    def taken(candidate: str) -> bool:
        asked.append(candidate)
        return candidate in used

    generated, created = _create(registry, taken=taken)
    chosen, _ = _create(registry, strategy_id="fresh", taken=taken)
    with pytest.raises(StrategyConflictError, match=r"'mine:'"):
        _create(registry, strategy_id="mine", taken=taken)
    again, created_again = _create(registry, strategy_id="fresh", taken=lambda _: True)

    assert (generated.strategy_id, created) == ("s3", True)
    assert asked[:3] == ["s1", "s2", "s3"]
    assert chosen.strategy_id == "fresh"
    # a retry of an existing strategy is not refused: its own orders use its prefix
    assert (again, created_again) == (chosen, False)
    assert registry.get("mine") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy_id": "has space"}, "strategy id"),
        ({"strategy_id": "x" * 33}, "strategy id"),
        ({"params": {"bad": float("nan")}}, "JSON"),
        ({"params": {"bad": object()}}, "JSON"),
    ],
)
def test_bad_definitions_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _create(StrategyRegistry(), **changes)


def test_unknown_ids_closed_registries_and_foreign_files_are_errors(tmp_path: Path) -> None:
    registry = StrategyRegistry()
    with pytest.raises(ConfigError, match="no strategy 'nope'"):
        registry.stop("nope", stopped_ns=1)
    registry.close()
    with pytest.raises(ConfigError, match="closed"):
        _create(registry)
    not_sqlite = tmp_path / "junk.sqlite"
    not_sqlite.write_bytes(b"not a database at all, just bytes" * 10)
    with pytest.raises(ConfigError, match="not a strategy registry"):
        StrategyRegistry(not_sqlite)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot be opened"):
        StrategyRegistry(blocker / "sub" / "r.sqlite")
