"""The Ray implementation of :class:`tradepulse.executor.Executor`.

``shared`` goes into the object store once per call (``ray.put``); every task
receives the reference as a top-level argument, so Ray hands each worker the
stored value itself (numpy arrays zero-copy and read-only) instead of a copy
per task. A task is a thin ``@ray.remote`` wrapper around
:func:`tradepulse.executor.measured`, so its cost is measured in the worker.
Results stream back in completion order with a bounded number of tasks in
flight; a task whose worker dies is retried; closing the stream cancels what is
still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import ray
from ray.exceptions import RayError, RayTaskError

from tradepulse.cluster.connect import cluster_cpus, connect
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.executor import Executor, TaskOutcome, measured

__all__ = ["DEFAULT_MAX_RETRIES", "RayExecutor", "TaskFailedError", "executor_for"]

S = TypeVar("S")
I = TypeVar("I")  # noqa: E741  (item)
R = TypeVar("R")

#: How often a task is re-run after its worker process or node died.
DEFAULT_MAX_RETRIES = 3
#: With ``max_in_flight=None``, at most this many tasks per cluster CPU are outstanding.
TASKS_PER_CPU_IN_FLIGHT = 2
#: How often (seconds) the cluster's CPU count is re-read while streaming (autoscaling).
_REFRESH_S = 1.0


class TaskFailedError(TradePulseError, RuntimeError):
    """A task raised (or could not be run); ``index`` is its item's position."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"task for item {index} failed: {reason}")


@ray.remote
def _run_task(
    fn: Callable[[Any, Any], Any], shared: Any, item: Any, index: int
) -> TaskOutcome[Any]:
    # Ray resolves the top-level ObjectRef `shared` to the stored value.
    return measured(fn, shared, item, index)


def _check_function(fn: object) -> None:
    if not callable(fn):
        raise ConfigError(f"fn must be a module-level function; got {fn!r}")
    qualname = str(getattr(fn, "__qualname__", ""))
    if "<lambda>" in qualname or "<locals>" in qualname:
        # Lambdas and nested functions would be pickled (with what they
        # capture) into every task: pass data as `shared` instead.
        raise ConfigError(
            f"fn must be a module-level function, not {qualname!r}; pass data as `shared`"
        )


def _ensure_connected() -> None:
    if not ray.is_initialized():
        connect()


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


class RayExecutor:
    """Run tasks on the connected Ray cluster (connecting locally if need be).

    Args:
        max_in_flight: At most this many tasks outstanding at once (bounds the
            memory held by results not yet consumed). ``None``: twice the
            cluster's CPUs, re-read while running so an autoscaling cluster
            gets more work as it grows.
        max_retries: How often a task is re-run after its worker process or
            node died (tasks are deterministic, so results are unchanged). A
            task that raises is not retried.
        num_cpus: CPUs each task reserves.
        memory_mb: Memory each task reserves for scheduling, MiB (``None``: none).
        resources: Custom Ray resources each task needs (e.g. ``{"highmem": 1}``).
        spread: Spread tasks over the nodes (Ray's ``SPREAD`` strategy) rather
            than filling the local node first.

    Raises:
        ConfigError: A limit is not positive (``max_retries`` negative).
    """

    def __init__(
        self,
        *,
        max_in_flight: int | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        num_cpus: float = 1.0,
        memory_mb: float | None = None,
        resources: Mapping[str, float] | None = None,
        spread: bool = False,
    ) -> None:
        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be >= 1; got {max_in_flight}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0; got {max_retries}")
        if num_cpus <= 0:
            raise ConfigError(f"num_cpus must be > 0; got {num_cpus}")
        if memory_mb is not None and memory_mb <= 0:
            raise ConfigError(f"memory_mb must be > 0; got {memory_mb}")
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.memory_mb = memory_mb
        self.resources = dict(resources) if resources else {}
        self.spread = spread

    def __repr__(self) -> str:
        return (
            f"RayExecutor(max_in_flight={self.max_in_flight}, max_retries={self.max_retries}, "
            f"num_cpus={self.num_cpus:g}, memory_mb={self.memory_mb}, "
            f"resources={self.resources}, spread={self.spread})"
        )

    @property
    def parallelism(self) -> int:
        """Return how many tasks the cluster runs at once (its CPUs / ``num_cpus``, >= 1)."""
        _ensure_connected()
        return max(1, int(cluster_cpus() // self.num_cpus))

    def _in_flight_limit(self) -> int:
        if self.max_in_flight is not None:
            return self.max_in_flight
        return TASKS_PER_CPU_IN_FLIGHT * self.parallelism

    def _task_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_cpus": self.num_cpus,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
        }
        if self.memory_mb is not None:
            options["memory"] = int(self.memory_mb * 1024 * 1024)
        if self.resources:
            options["resources"] = dict(self.resources)
        if self.spread:
            options["scheduling_strategy"] = "SPREAD"
        return options

    def imap_unordered(
        self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S
    ) -> Iterator[TaskOutcome[R]]:
        """Yield one :class:`TaskOutcome` per item, in completion order.

        ``shared`` is put into the object store once (an ``ObjectRef`` is
        passed through as is). Closing the iterator early cancels the tasks
        still outstanding.

        Raises:
            ConfigError: ``fn`` is a lambda or a nested function; ``shared`` or
                an item cannot be serialised (raised while iterating).
            TaskFailedError: A task raised, or its worker died ``max_retries``
                + 1 times (raised while iterating).
        """
        _check_function(fn)
        return self._stream(fn, list(items), shared)

    def _stream(
        self, fn: Callable[[S, I], R], items: list[I], shared: S
    ) -> Iterator[TaskOutcome[R]]:
        if not items:
            return
        _ensure_connected()
        shared_ref = shared if isinstance(shared, ray.ObjectRef) else _put(shared)
        task = _run_task.options(**self._task_options())
        pending: dict[ray.ObjectRef[TaskOutcome[Any]], int] = {}
        submitted = 0
        limit = self._in_flight_limit()
        refreshed = time.monotonic()
        try:
            while submitted < len(items) or pending:
                if self.max_in_flight is None and time.monotonic() - refreshed > _REFRESH_S:
                    limit, refreshed = self._in_flight_limit(), time.monotonic()
                while submitted < len(items) and len(pending) < limit:
                    try:
                        ref = task.remote(fn, shared_ref, items[submitted], submitted)
                    except TypeError as error:  # Ray's "could not serialize"
                        raise ConfigError(
                            f"item {submitted} ({items[submitted]!r:.80}) cannot be sent to "
                            f"the cluster: {_first_line(str(error))}"
                        ) from None
                    pending[ref] = submitted
                    submitted += 1
                waiting = list(pending)
                ready, rest = ray.wait(waiting, num_returns=1)
                if rest:
                    # Collect everything else already finished in the same round trip.
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                    ready.extend(more)
                for done in ready:
                    index = pending.pop(cast("ray.ObjectRef[TaskOutcome[Any]]", done))
                    yield _fetch(done, index)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def map(self, fn: Callable[[S, I], R], items: Sequence[I], *, shared: S) -> list[R]:
        """Return ``[fn(shared, item) for item in items]`` (in item order), run on the cluster.

        Raises:
            ConfigError: ``fn`` is a lambda or a nested function; ``shared`` or
                an item cannot be serialised.
            TaskFailedError: A task raised, or its worker kept dying.
        """
        values: list[Any] = [None] * len(items)
        for outcome in self.imap_unordered(fn, items, shared=shared):
            values[outcome.index] = outcome.value
        return cast("list[R]", values)


def _put(shared: object) -> ray.ObjectRef[Any]:
    """Put ``shared`` into the object store (once per call)."""
    try:
        return ray.put(shared)
    except TypeError as error:  # Ray's "could not serialize"
        raise ConfigError(
            f"shared data cannot be put into the object store: {_first_line(str(error))}"
        ) from None


def _fetch(ref: Any, index: int) -> TaskOutcome[Any]:
    """Return task ``index``'s outcome, turning Ray's errors into :class:`TaskFailedError`."""
    try:
        outcome = ray.get(ref)
    except RayTaskError as error:
        cause = error.cause
        if cause is None or isinstance(cause, RayError):
            reason = f"{type(cause or error).__name__}: {_first_line(str(cause or error))}"
        else:
            reason = f"{type(cause).__name__}: {cause}"
        raise TaskFailedError(index, reason) from cause
    except RayError as error:
        # The worker (or its node) died more often than max_retries allows, or
        # the object was lost: no exception of the task's own to report.
        raise TaskFailedError(index, f"{type(error).__name__}: {_first_line(str(error))}") from None
    if not isinstance(outcome, TaskOutcome) or outcome.index != index:
        raise TaskFailedError(
            index, f"the worker returned {type(outcome).__name__}, not its outcome"
        )
    return outcome


def executor_for(address: str | None = None, *, dashboard: bool = False) -> Executor:
    """Connect (see :func:`tradepulse.cluster.connect`) and return a :class:`RayExecutor`.

    Raises:
        ConfigError: The cluster cannot be reached or started.
    """
    connect(address, dashboard=dashboard)
    return RayExecutor()
