"""The local executor and the task accounting every executor shares."""

from __future__ import annotations

import os

import pytest

from tradepulse.errors import ConfigError
from tradepulse.executor import (
    Executor,
    LocalExecutor,
    TaskOutcome,
    as_map_function,
    check_executor,
    measured,
    peak_rss_mb,
)


def scaled(shared: int, item: int) -> int:
    return shared * item


def burn(shared: int, item: int) -> int:
    total = 0
    for value in range(shared):
        total += value % (item + 1)
    return total


def failing(shared: int, item: int) -> int:
    if item == 2:
        raise ValueError("item 2 is bad")
    return item


def test_local_executor_yields_every_item_in_order_with_its_index() -> None:
    executor = LocalExecutor()

    outcomes = list(executor.imap_unordered(scaled, [3, 1, 2], shared=10))

    assert [(outcome.index, outcome.value) for outcome in outcomes] == [(0, 30), (1, 10), (2, 20)]
    assert executor.map(scaled, [4, 5], shared=2) == [8, 10]
    assert executor.parallelism == 1
    assert isinstance(executor, Executor)


def test_measured_records_cost_in_this_process() -> None:
    outcome = measured(burn, 200_000, 7, 5)

    assert isinstance(outcome, TaskOutcome)
    assert outcome.index == 5
    assert outcome.value == sum(value % 8 for value in range(200_000))
    assert outcome.stats.pid == os.getpid()
    assert outcome.stats.node == os.uname().nodename
    assert 0.0 < outcome.stats.wall_s < 60.0
    assert 0.0 <= outcome.stats.cpu_s < 60.0
    # The peak is a high-water mark: at least what this process holds now.
    assert outcome.stats.peak_rss_mb >= 10.0
    assert peak_rss_mb() >= outcome.stats.peak_rss_mb


def test_a_failing_task_ends_the_iteration_with_its_exception() -> None:
    outcomes = LocalExecutor().imap_unordered(failing, [0, 1, 2, 3], shared=None)

    assert [next(outcomes).value, next(outcomes).value] == [0, 1]
    with pytest.raises(ValueError, match="item 2 is bad"):
        next(outcomes)


def test_check_executor_defaults_to_local_and_refuses_other_objects() -> None:
    assert isinstance(check_executor(None), LocalExecutor)
    executor = LocalExecutor()
    assert check_executor(executor) is executor
    with pytest.raises(ConfigError, match=r"must implement tradepulse\.executor\.Executor"):
        check_executor(object())


class Scaler:
    """A callable holding data, as a job hands to a ``map_fn`` hook."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, item: int) -> int:
        return self.factor * item


def test_as_map_function_runs_a_map_hook_on_an_executor() -> None:
    map_fn = as_map_function(LocalExecutor())

    assert list(map_fn(Scaler(3), iter([1, 2, 5]))) == [3, 6, 15]
    assert list(map_fn(Scaler(3), [])) == []


class Reversed(LocalExecutor):
    """Completes tasks in reverse order (as a cluster may)."""

    def imap_unordered(self, fn, items, *, shared):  # type: ignore[no-untyped-def]
        return reversed(list(super().imap_unordered(fn, items, shared=shared)))


def test_as_map_function_restores_item_order() -> None:
    assert list(as_map_function(Reversed())(Scaler(2), [1, 2, 3, 4])) == [2, 4, 6, 8]
