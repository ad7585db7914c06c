"""The executor protocol: how research jobs fan work out, locally or on a cluster.

Sweeps, walk-forward folds, stress matrices and golden checks hand their tasks
to an :class:`Executor`. The core ships :class:`LocalExecutor` (in-process, for
tests and small jobs); :mod:`tradepulse.cluster` implements the same protocol
on Ray. A job never captures its data in a closure: it passes the data once as
``shared`` (the Ray executor puts it in the object store once; every task
receives it zero-copy) and a list of small, picklable items.

``fn(shared, item)`` must be a module-level function (picklable by reference)
and deterministic. Each task's outcome carries the value and what the task
cost (:class:`TaskStats`), measured inside the task, so a job can total CPU
seconds, wall time and peak memory per strategy and team.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from tradepulse.errors import ConfigError

__all__ = [
    "Executor",
    "LocalExecutor",
    "TaskOutcome",
    "TaskStats",
    "as_map_function",
    "check_executor",
    "measured",
    "peak_rss_mb",
]

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741  (item)
R = TypeVar("R")


def peak_rss_mb() -> float:
    """Return this process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


@dataclass(frozen=True, slots=True)
class TaskStats:
    """What one task cost, measured where it ran.

    ``cpu_s``: CPU seconds of the task's process spent in the task (user +
    system); ``wall_s``: wall-clock seconds; ``peak_rss_mb``: the peak resident
    memory of the worker process at the end of the task (MiB; a process-wide
    high-water mark, so tasks sharing a worker report the worker's peak);
    ``pid``: the worker process; ``node``: the host it ran on.
    """

    cpu_s: float
    wall_s: float
    peak_rss_mb: float
    pid: int
    node: str


@dataclass(frozen=True, slots=True)
class TaskOutcome(Generic[R]):
    """The result of task ``index`` (its position in the submitted items) and its cost."""

    index: int
    value: R
    stats: TaskStats


def measured(fn: Callable[[S, I], R], shared: S, item: I, index: int) -> TaskOutcome[R]:
    """Run ``fn(shared, item)`` and return its value with what it cost."""
    cpu = time.process_time()
    wall = time.perf_counter()
    value = fn(shared, item)
    return TaskOutcome(
        index=index,
        value=value,
        stats=TaskStats(
            cpu_s=time.process_time() - cpu,
            wall_s=time.perf_counter() - wall,
            peak_rss_mb=peak_rss_mb(),
            pid=os.getpid(),
            node=os.uname().nodename,
        ),
    )


@runtime_checkable
class Executor(Protocol):
    """Run ``fn(shared, item)`` for many items; yield outcomes as tasks finish."""

    @property
    def parallelism(self) -> int:
        """Return how many tasks can run at once (a hint for batch sizes)."""
        ...

    def imap_unordered(
        self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S
    ) -> Iterator[TaskOutcome[R]]:
        """Yield one :class:`TaskOutcome` per item, in completion order.

        ``shared`` is sent to the workers once. Closing the iterator early
        (``break``, an exception, Ctrl-C) cancels the tasks not yet finished.
        A task that raises ends the iteration with that exception.
        """
        ...

    def map(self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S) -> list[R]:
        """Return ``[fn(shared, item) for item in items]`` (in item order)."""
        ...


class LocalExecutor:
    """Run every task in this process, one after another (tests, small jobs)."""

    @property
    def parallelism(self) -> int:
        """Return 1: tasks run one at a time."""
        return 1

    def __repr__(self) -> str:
        return "LocalExecutor()"

    def imap_unordered(
        self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S
    ) -> Iterator[TaskOutcome[R]]:
        """Yield each item's outcome in item order (see :meth:`Executor.imap_unordered`)."""
        for index, item in enumerate(items):
            yield measured(fn, shared, item, index)

    def map(self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S) -> list[R]:
        """Return ``[fn(shared, item) for item in items]``."""
        return [fn(shared, item) for item in items]


def _apply(function: Callable[[I], R], item: I) -> R:
    return function(item)


def as_map_function(executor: Executor) -> Callable[[Callable[[I], R], Iterable[I]], Iterator[R]]:
    """Return a ``map``-like function that runs on ``executor``.

    ``map_fn(function, items)`` yields ``function(item)`` for every item, in item
    order, as soon as each result and those before it are in (so a progress
    bar moves while the tasks run). ``function`` (typically an object holding
    the job's data) is sent to the workers once as the executor's ``shared``
    value, not once per item: this is how a job written against a plain
    ``map`` hook (walk-forward's ``map_fn``) runs on a cluster.
    """

    def map_fn(function: Callable[[I], R], items: Iterable[I]) -> Iterator[R]:
        waiting: dict[int, R] = {}
        following = 0
        for outcome in executor.imap_unordered(_apply, list(items), shared=function):
            waiting[outcome.index] = outcome.value
            while following in waiting:
                yield waiting.pop(following)
                following += 1

    return map_fn


def check_executor(executor: object) -> Executor:
    """Return ``executor`` (``None``: a new `LocalExecutor`) after checking the protocol.

    Raises:
        ConfigError: ``executor`` does not implement :class:`Executor`.
    """
    if executor is None:
        return LocalExecutor()
    if not isinstance(executor, Executor):
        raise ConfigError(f"executor must implement tradepulse.executor.Executor; got {executor!r}")
    return executor
