"""The executor contract: the same tests on LocalExecutor and RayExecutor."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cluster_tasks
import numpy as np
import pytest

from tradepulse.cluster import TaskFailedError
from tradepulse.executor import Executor, LocalExecutor, check_executor


def test_every_item_completes_once_with_its_index(executor: Executor) -> None:
    outcomes = list(executor.imap_unordered(cluster_tasks.scaled, [3, 1, 2, 7], shared=10))

    assert sorted((outcome.index, outcome.value) for outcome in outcomes) == [
        (0, 30),
        (1, 10),
        (2, 20),
        (3, 70),
    ]
    assert isinstance(executor, Executor)
    assert check_executor(executor) is executor


def test_map_returns_values_in_item_order(executor: Executor) -> None:
    items = list(range(12))

    values = executor.map(cluster_tasks.scaled_slowly, items, shared=12)

    assert values == [10 * item for item in items]


def test_no_items_yield_nothing(executor: Executor) -> None:
    assert list(executor.imap_unordered(cluster_tasks.scaled, [], shared=1)) == []
    assert executor.map(cluster_tasks.scaled, [], shared=1) == []


def test_shared_data_is_serialised_at_most_once(executor: Executor) -> None:
    payload = cluster_tasks.CountingPayload([1, 2, 3])
    cluster_tasks.PICKLED["count"] = 0

    values = executor.map(cluster_tasks.payload_sum, list(range(8)), shared=payload)

    assert values == [6 + item for item in range(8)]
    # Local: never pickled; Ray: once, by ray.put (sending it per task would make 8).
    assert cluster_tasks.PICKLED["count"] <= 1


def test_a_large_array_arrives_intact(executor: Executor) -> None:
    array = np.arange(2_000_000, dtype=np.float64)

    values = executor.map(cluster_tasks.array_view, [0, 3], shared=array)

    assert [value[0] for value in values] == [
        float(np.arange(0, 2_000_000, 7).sum()),
        float(np.arange(3, 2_000_000, 7).sum()),
    ]


def test_a_failing_task_ends_the_iteration_naming_its_message(executor: Executor) -> None:
    outcomes = executor.imap_unordered(cluster_tasks.failing, [0, 1, 2, 3], shared=None)

    with pytest.raises((ValueError, TaskFailedError), match="item 2 is bad"):
        for _ in outcomes:
            pass


def test_closing_early_stops_the_remaining_tasks(executor: Executor, tmp_path: Path) -> None:
    outcomes = executor.imap_unordered(
        cluster_tasks.started_then_slow, list(range(8)), shared=str(tmp_path)
    )

    first = next(outcomes)
    on_ray = not isinstance(executor, LocalExecutor)
    if on_ray:
        # Let the slow items run (2 CPUs: two at a time), so closing must cancel them.
        deadline = time.monotonic() + 10.0
        while not list(tmp_path.glob("started-[1-7]")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(tmp_path.glob("started-[1-7]"))
    outcomes.close()  # type: ignore[attr-defined]  # both executors return generators
    if on_ray:
        time.sleep(1.6)  # uncancelled, the two running items would finish within 1.0 s

    assert first.index == 0
    finished = sorted(path.name for path in tmp_path.glob("done-[1-7]"))
    # Ray may already have handed one task to a worker when the cancel arrives;
    # that one finishes (its result is dropped). Every other slow task stops.
    assert len(finished) <= (1 if on_ray else 0), finished


def test_cost_is_measured_where_the_task_ran(executor: Executor) -> None:
    outcomes = list(executor.imap_unordered(cluster_tasks.burn, [5, 6], shared=300_000))

    for outcome in outcomes:
        assert outcome.value == sum(value % (outcome.index + 6) for value in range(300_000))
        assert outcome.stats.cpu_s > 0.0
        assert outcome.stats.wall_s > 0.0
        assert outcome.stats.peak_rss_mb > 10.0
        if isinstance(executor, LocalExecutor):
            assert outcome.stats.pid == os.getpid()
        else:
            assert outcome.stats.pid != os.getpid()


def test_parallelism_is_the_number_of_slots(executor: Executor) -> None:
    expected = 1 if isinstance(executor, LocalExecutor) else 2  # ray_session has 2 CPUs

    assert executor.parallelism == expected
