"""Module-level task functions for the executor tests (workers import them by name)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

#: How often a `CountingPayload` was pickled in this process.
PICKLED = {"count": 0}


class CountingPayload:
    """Shared data that counts how often this process serialises it."""

    def __init__(self, values: list[int]) -> None:
        self.values = values

    def __reduce__(self) -> tuple[Any, ...]:
        PICKLED["count"] += 1
        return (CountingPayload, (self.values,))


def scaled(shared: int, item: int) -> int:
    return shared * item


def scaled_slowly(shared: int, item: int) -> int:
    # Later items finish first, so completion order differs from item order.
    time.sleep(0.01 * (shared - item))
    return 10 * item


def payload_sum(shared: CountingPayload, item: int) -> int:
    return sum(shared.values) + item


def burn(shared: int, item: int) -> int:
    total = 0
    for value in range(shared):
        total += value % (item + 1)
    return total


def failing(shared: None, item: int) -> int:
    if item == 2:
        raise ValueError("item 2 is bad")
    return item


def array_view(shared: np.ndarray, item: int) -> tuple[float, bool, bool]:
    """Return a slice sum, whether the array is writeable and whether it owns its memory."""
    return float(shared[item::7].sum()), bool(shared.flags.writeable), bool(shared.flags.owndata)


def started_then_slow(shared: str, item: int) -> int:
    """Mark the start; items after 0 sleep, then mark that they finished."""
    folder = Path(shared)
    (folder / f"started-{item}").touch()
    if item > 0:
        time.sleep(1.0)
    (folder / f"done-{item}").touch()
    return item


def killed_once(shared: str, item: int) -> int:
    """Kill this worker process the first time item 3 runs (marker file `shared`)."""
    marker = Path(shared)
    if item == 3 and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return item * item + 1


def printing(shared: str, item: int) -> int:
    print(shared, item, flush=True)
    return item


def node_id(shared: float, item: int) -> str:
    """Return the Ray node the task ran on (after holding its CPU a while)."""
    import ray  # test helper: the task itself may know it runs on Ray

    time.sleep(shared)
    return str(ray.get_runtime_context().get_node_id())
