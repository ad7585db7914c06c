"""Parameter sweeps: every combination of a grid, batched, on any executor, resumable.

``tradepulse.sweep(bars, "sma_cross", {"fast": grid_range(5, 100, 5), "slow": ...})``
returns one row per valid combination (its parameters and metrics) as a polars
frame; :func:`run_sweep` takes the same arguments and returns a
:class:`SweepResult` with the figures (combinations, skipped, elapsed time,
combinations per second, peak memory of the process tree, task cost totals).
Batches of combinations run as tasks of an executor
(:class:`~tradepulse.executor.LocalExecutor` by default, the Ray one from
:mod:`tradepulse.cluster` on a cluster); with ``out=`` the rows stream into
Parquet parts in a folder and an interrupted sweep resumes there
(:mod:`tradepulse.sweep.store`). Conventions in full: ``docs/sweeps.md``.

This package is pure core: it never imports Ray. ``tradepulse.sweep`` is both
this package and callable as :func:`sweep`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import polars as pl

from tradepulse.sweep.grid import (
    MAX_GRID_POINTS,
    SweepGrid,
    grid_range,
    parse_grid_range,
    parse_value_list,
    resolve_grid,
)
from tradepulse.sweep.memory import (
    ProcessTreeMemory,
    TreeMemory,
    process_tree_memory,
    process_tree_rss_mb,
)
from tradepulse.sweep.run import (
    MAX_BATCH_SIZE,
    MIN_BATCH_SIZE,
    TASKS_PER_WORKER,
    SweepResult,
    choose_batch_size,
    rank,
    run_sweep,
    sweep,
)
from tradepulse.sweep.store import (
    MANIFEST_NAME,
    METADATA_KEY,
    PART_GLOB,
    SweepCost,
    SweepStore,
)
from tradepulse.sweep.task import METRIC_COLUMNS, SweepBatch, SweepData, evaluate_batch

__all__ = [
    "MANIFEST_NAME",
    "MAX_BATCH_SIZE",
    "MAX_GRID_POINTS",
    "METADATA_KEY",
    "METRIC_COLUMNS",
    "MIN_BATCH_SIZE",
    "PART_GLOB",
    "TASKS_PER_WORKER",
    "ProcessTreeMemory",
    "SweepBatch",
    "SweepCost",
    "SweepData",
    "SweepGrid",
    "SweepResult",
    "SweepStore",
    "TreeMemory",
    "choose_batch_size",
    "evaluate_batch",
    "grid_range",
    "parse_grid_range",
    "parse_value_list",
    "process_tree_memory",
    "process_tree_rss_mb",
    "rank",
    "resolve_grid",
    "run_sweep",
    "sweep",
]


class _SweepModule(types.ModuleType):
    """The ``tradepulse.sweep`` package, which is also callable as :func:`sweep`.

    Importing a subpackage sets the parent's attribute of that name, so the
    package would otherwise hide the top-level ``tradepulse.sweep`` function.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> pl.DataFrame:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _SweepModule
