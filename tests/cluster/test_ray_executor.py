"""RayExecutor specifics: the object store, bounded streaming, retries, errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cluster_tasks
import numpy as np
import pytest
import ray

from tradepulse.cluster import ClusterInfo, RayExecutor, TaskFailedError, executor_for
from tradepulse.errors import ConfigError, TradePulseError

pytestmark = pytest.mark.usefixtures("ray_session")


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Record the arguments of every call to ``ray.<name>``."""
    calls: list[Any] = []
    original: Callable[..., Any] = getattr(ray, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(ray, name, wrapper)
    return calls


def test_shared_array_is_put_once_and_read_zero_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    puts = _counting(monkeypatch, "put")
    array = np.arange(1_000_000, dtype=np.float64)

    values = RayExecutor(max_in_flight=3).map(
        cluster_tasks.array_view, list(range(7)), shared=array
    )

    assert len(puts) == 1
    for item, (total, writeable, owndata) in enumerate(values):
        assert total == float(array[item::7].sum())
        # A view of the object store's buffer: read-only and not a private copy.
        assert (writeable, owndata) == (False, False)


def test_an_object_ref_is_passed_through_without_another_put(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = ray.put(np.arange(70.0))
    puts = _counting(monkeypatch, "put")

    values = RayExecutor().map(cluster_tasks.array_view, [0, 1], shared=ref)

    assert puts == []
    assert [value[0] for value in values] == [sum(range(0, 70, 7)), sum(range(1, 70, 7))]


def test_at_most_max_in_flight_tasks_are_outstanding(monkeypatch: pytest.MonkeyPatch) -> None:
    waits = _counting(monkeypatch, "wait")

    values = RayExecutor(max_in_flight=3).map(cluster_tasks.scaled, list(range(20)), shared=2)

    assert values == [2 * item for item in range(20)]
    assert max(len(args[0]) for args in waits) == 3


def test_a_killed_worker_is_retried_and_results_are_unchanged(tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    expected = [item * item + 1 for item in range(8)]  # what every task returns undisturbed

    outcomes = list(
        RayExecutor(max_retries=3).imap_unordered(
            cluster_tasks.killed_once, list(range(8)), shared=str(marker)
        )
    )

    assert marker.exists(), "the task never killed its worker"
    assert sorted(outcome.index for outcome in outcomes) == list(range(8))
    assert [outcome.value for outcome in sorted(outcomes, key=lambda o: o.index)] == expected


def test_without_retries_a_killed_worker_fails_the_task(tmp_path: Path) -> None:
    marker = tmp_path / "killed"

    with pytest.raises(
        TaskFailedError, match=r"task for item 0 failed: WorkerCrashedError"
    ) as info:
        RayExecutor(max_retries=0).map(cluster_tasks.killed_once, [3], shared=str(marker))

    assert marker.exists()
    assert info.value.index == 0  # item 3 is the only item: position 0
    # The message is one line, not Ray's worker-death report.
    assert "\n" not in str(info.value)


def test_a_failing_task_raises_a_tradepulse_error_naming_the_item() -> None:
    with pytest.raises(TaskFailedError) as info:
        RayExecutor().map(cluster_tasks.failing, [0, 1, 2, 3], shared=None)

    error = info.value
    assert isinstance(error, TradePulseError)
    assert error.index == 2
    assert str(error) == "task for item 2 failed: ValueError: item 2 is bad"
    assert isinstance(error.__cause__, ValueError)


def test_lambdas_and_nested_functions_are_refused() -> None:
    def nested(shared: int, item: int) -> int:
        return shared + item

    executor = RayExecutor()
    with pytest.raises(ConfigError, match="module-level function"):
        executor.map(lambda shared, item: item, [1], shared=None)
    with pytest.raises(ConfigError, match="nested"):
        executor.imap_unordered(nested, [1], shared=0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_in_flight": 0}, "max_in_flight must be >= 1; got 0"),
        ({"max_retries": -1}, "max_retries must be >= 0; got -1"),
        ({"num_cpus": 0}, "num_cpus must be > 0; got 0"),
        ({"memory_mb": -5}, "memory_mb must be > 0; got -5"),
    ],
)
def test_invalid_limits_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RayExecutor(**options)


def test_resources_and_spread_reach_the_tasks() -> None:
    executor = RayExecutor(num_cpus=0.5, memory_mb=10, spread=True, max_retries=1)

    assert executor.parallelism == 4  # 2 CPUs / 0.5 CPU per task
    assert executor.map(cluster_tasks.scaled, [1, 2, 3], shared=3) == [3, 6, 9]
    assert "num_cpus=0.5" in repr(executor)
    assert "spread=True" in repr(executor)


def test_interrupting_the_wait_cancels_a_task_that_never_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No node offers "gpu_lab": the task stays queued until Ctrl-C (simulated
    # while waiting for results) closes the stream, which must cancel it.
    waited: list[Any] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        waited.append(args[0])
        raise KeyboardInterrupt

    outcomes = RayExecutor(resources={"gpu_lab": 1}).imap_unordered(
        cluster_tasks.scaled, [1], shared=1
    )
    monkeypatch.setattr(ray, "wait", interrupted)

    with pytest.raises(KeyboardInterrupt):
        next(outcomes)

    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(waited[0][0], timeout=10)


def test_executor_for_reuses_the_running_cluster(ray_session: ClusterInfo) -> None:
    executor = executor_for()

    assert isinstance(executor, RayExecutor)
    assert executor.parallelism == 2
    assert ray.get_runtime_context().gcs_address == ray_session.address


def test_data_that_cannot_be_serialised_is_a_config_error() -> None:
    executor = RayExecutor()

    with pytest.raises(ConfigError, match="shared data cannot be put into the object store"):
        executor.map(cluster_tasks.scaled, [1], shared=threading.Lock())
    with pytest.raises(ConfigError, match=r"item 1 \(<unlocked _thread.lock.*cannot be sent"):
        executor.map(cluster_tasks.scaled, [1, threading.Lock()], shared=2)
