"""Run a parameter sweep: plan batches, fan them out on an executor, stream the rows out.

``run_sweep(bars, "sma_cross", {"fast": range(5, 101, 5), "slow": range(20, 301, 10)})``
backtests every valid combination of the grid (see :mod:`tradepulse.sweep.grid`)
and returns a :class:`SweepResult`; :func:`sweep` returns its rows as a polars
frame. Combinations are cut into batches (several per worker, for load balance
and fine-grained resumption), each a task of the executor that backtests many
combinations with the compiled vectorised engine; the bars go to the executor
once. With ``out`` the rows stream into Parquet parts in that folder as tasks
finish (:mod:`tradepulse.sweep.store`), so the driver's memory stays flat, and
``resume=True`` continues an interrupted sweep there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse import metrics as metric_functions
from tradepulse.backtest.config import FrictionConfig
from tradepulse.backtest.runner import Frictions, resolve_frictions, resolve_strategy
from tradepulse.backtest.vector import DEFAULT_CASH
from tradepulse.costs.commission import CommissionModel, combine_commissions
from tradepulse.costs.sizing import Sizing
from tradepulse.costs.slippage import SlippageModel, combine_slippage
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.executor import Executor, check_executor
from tradepulse.strategy.api import Strategy
from tradepulse.sweep.grid import SweepGrid, resolve_grid
from tradepulse.sweep.memory import ProcessTreeMemory
from tradepulse.sweep.store import PART_GLOB, SweepCost, SweepStore
from tradepulse.sweep.task import (
    METRIC_COLUMNS,
    SweepBatch,
    SweepData,
    evaluate_batch,
    result_schema,
)

__all__ = [
    "MAX_BATCH_SIZE",
    "MIN_BATCH_SIZE",
    "TASKS_PER_WORKER",
    "SweepResult",
    "choose_batch_size",
    "rank",
    "run_sweep",
    "sweep",
]

#: Batches planned per unit of executor parallelism (load balance, resumption).
TASKS_PER_WORKER: Final = 8
#: Fewest combinations per batch (a task costs ~1 ms on Ray: amortise it).
MIN_BATCH_SIZE: Final = 4
#: Most combinations per batch (bounds the work lost to an interruption).
MAX_BATCH_SIZE: Final = 256
# Bars of the warm-up task's data (enough to run every kernel once).
_WARM_UP_BARS: Final = 512
#: Metrics where smaller is better when ranking.
_ASCENDING: Final = frozenset({"max_drawdown"})

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def choose_batch_size(combos: int, parallelism: int) -> int:
    """Return the combinations per batch: about `TASKS_PER_WORKER` batches per worker.

    Clamped to [`MIN_BATCH_SIZE`, `MAX_BATCH_SIZE`].
    """
    target = max(1, int(parallelism)) * TASKS_PER_WORKER
    return min(MAX_BATCH_SIZE, max(MIN_BATCH_SIZE, math.ceil(max(combos, 1) / target)))


def rank(rows: FrameT, *, by: str = "sharpe", top: int | None = None) -> FrameT:
    """Return ``rows`` best first by metric ``by`` (``top``: only the first rows).

    Larger is better, except for ``max_drawdown``; NaN ranks last; ties keep
    combo-id order. Returns the same kind of frame it is given.

    Raises:
        ConfigError: ``by`` is not a metric column or ``top`` < 1.
    """
    if by not in METRIC_COLUMNS:
        raise ConfigError(f"rank by must be one of {', '.join(METRIC_COLUMNS)}; got {by!r}")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ConfigError(f"top must be an integer >= 1; got {top!r}")
    key = pl.col(by).cast(pl.Float64).fill_nan(None)
    ranked = rows.sort(
        [key, pl.col("combo_id")],
        descending=[by not in _ASCENDING, False],
        nulls_last=True,
    )
    return ranked if top is None else ranked.head(top)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did and where its rows are.

    ``combos``: valid combinations (one row each); ``skipped``: combinations
    refused by the strategy's constraints; ``evaluated``: combinations this
    call backtested (the rest were on disk already: ``resumed``);
    ``batches`` of ``batch_size``; ``elapsed_s``: wall seconds of the sweep
    (planning, tasks, writing); ``startup_s``: wall seconds spent warming the
    executor's workers up first (imports and compiled kernels loaded by one
    tiny task per worker), not part of ``elapsed_s``; ``peak_rss_mb`` and
    ``peak_pss_mb``: the peak summed resident and proportional memory of this
    process tree during the sweep (MiB; see :mod:`tradepulse.sweep.memory`);
    ``cost``: the tasks' CPU, wall time and peak memory totalled over every
    batch of the result; ``out``: the result folder (``None``: in memory).
    """

    strategy: str
    team: str | None
    grid: dict[str, list[Any]]
    fixed: dict[str, Any]
    combos: int
    skipped: int
    evaluated: int
    resumed: int
    batches: int
    batch_size: int
    elapsed_s: float
    startup_s: float
    peak_rss_mb: float
    peak_pss_mb: float | None
    cost: SweepCost
    executor: str
    out: Path | None
    _rows: pl.DataFrame | None = field(default=None, repr=False)

    @property
    def combos_per_s(self) -> float:
        """Return combinations backtested per second by this call (``evaluated / elapsed_s``)."""
        return self.evaluated / self.elapsed_s if self.elapsed_s > 0 else math.nan

    def scan(self) -> pl.LazyFrame:
        """Return every result row as a lazy frame (read from ``out`` when there is one)."""
        if self._rows is not None:
            return self._rows.lazy()
        if self.out is None:
            raise ConfigError("this sweep result has no rows")
        return pl.scan_parquet(self.out / PART_GLOB)

    def results(self) -> pl.DataFrame:
        """Return every result row, in combo-id order."""
        frame: pl.DataFrame = self.scan().sort("combo_id").collect()
        return frame

    def top(self, count: int = 10, *, by: str = "sharpe") -> pl.DataFrame:
        """Return the ``count`` best rows by metric ``by`` (see :func:`rank`).

        Raises:
            ConfigError: ``by`` is not a metric or ``count`` < 1.
        """
        return rank(self.scan(), by=by, top=count).collect()

    def summary(self) -> dict[str, Any]:
        """Return the figures of the sweep as a JSON-ready dictionary (no rows)."""
        return {
            "strategy": self.strategy,
            "team": self.team,
            "grid": self.grid,
            "fixed": self.fixed,
            "combos": self.combos,
            "skipped": self.skipped,
            "evaluated": self.evaluated,
            "resumed": self.resumed,
            "batches": self.batches,
            "batch_size": self.batch_size,
            "elapsed_s": round(self.elapsed_s, 6),
            "startup_s": round(self.startup_s, 6),
            "combos_per_s": round(self.combos_per_s, 3) if self.elapsed_s > 0 else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "peak_pss_mb": None if self.peak_pss_mb is None else round(self.peak_pss_mb, 1),
            "cost": self.cost.to_dict(),
            "executor": self.executor,
            "out": None if self.out is None else str(self.out),
        }


def _check_bars(bars: object) -> pl.DataFrame:
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if bars.height == 0:
        raise ConfigError("bars must hold at least one bar; got an empty frame")
    if "symbol" in bars.columns and bars.get_column("symbol").n_unique() > 1:
        raise ConfigError("bars must hold one symbol; sweep each symbol separately")
    if "ts" not in bars.columns:
        raise ConfigError(f"bars must have a 'ts' column; got columns {bars.columns}")
    if not isinstance(bars.schema["ts"], pl.Datetime):
        raise ConfigError(f"bars column 'ts' must be a datetime; got {bars.schema['ts']}")
    return bars


def _data_digest(data: SweepData) -> str:
    digest = hashlib.sha256(f"{data.ts_unit}|{data.time_zone}".encode())
    for name, values in data.columns:
        digest.update(f"|{name}:{values.dtype.str}:{values.shape[0]}|".encode())
        digest.update(np.ascontiguousarray(values).data)
    return digest.hexdigest()


def _describe_frictions(frictions: Frictions) -> dict[str, Any]:
    """The frictions as the engine applies them (equal runs describe equally)."""
    return {
        "cash": frictions.cash,
        "commission": asdict(combine_commissions(frictions.commission)),
        "slippage": asdict(combine_slippage(frictions.slippage)),
        "sizing": frictions.sizing,
        "latency_bars": frictions.latency_bars,
        "periods_per_year": frictions.periods_per_year,
    }


def _definition(
    instance: Strategy,
    grid: SweepGrid,
    data: SweepData,
    frictions: Frictions,
    *,
    random: int | None,
    seed: int,
) -> dict[str, Any]:
    kind = type(instance)
    return {
        "strategy": instance.name,
        "strategy_class": f"{kind.__module__}:{kind.__qualname__}",
        "data_sha256": _data_digest(data),
        "bars": int(data.columns[0][1].shape[0]),
        **grid.describe(),
        "random": random,
        "seed": seed if random is not None else None,
        "frictions": _describe_frictions(frictions),
    }


def _annualised(frictions: Frictions, bars: pl.DataFrame) -> Frictions:
    """Return ``frictions`` with the annualisation the engine would derive, computed once.

    The engine derives the same value from the same timestamps on every run;
    passing it saves that work per combination and changes no result.
    """
    if frictions.periods_per_year is not None:
        return frictions
    ts = bars.get_column("ts")
    if isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_unit != "ns":
        ts = ts.cast(pl.Datetime("ns", ts.dtype.time_zone))
    periods = metric_functions.periods_per_year(ts.to_physical().to_numpy())
    return dataclasses.replace(frictions, periods_per_year=periods)


def _warm_up(executor: Executor, data: SweepData, combos: NDArray[np.int64]) -> float:
    """Run one tiny task per worker (imports, compiled kernels); return its wall seconds."""
    started = time.perf_counter()
    small = dataclasses.replace(
        data, columns=tuple((name, values[:_WARM_UP_BARS]) for name, values in data.columns)
    )
    batch = SweepBatch(batch=-1, combos=combos)
    executor.map(evaluate_batch, [batch] * max(1, executor.parallelism), shared=small)
    return time.perf_counter() - started


def _plan(
    store: SweepStore | None,
    grid: SweepGrid,
    valid: NDArray[np.int64],
    skipped: int,
    batch_size: int | None,
    parallelism: int,
) -> tuple[list[SweepBatch], int]:
    """Cut the valid combos into batches (Z-order); return them and the batch size.

    A resumed folder's stored batch size wins over the default.
    """
    size = batch_size
    if size is None and store is not None and store.plan is not None:
        size = int(store.plan["batch_size"])
    if size is None:
        size = choose_batch_size(valid.shape[0], parallelism)
    ordered = grid.batch_order(valid)
    batches = [
        SweepBatch(batch=number, combos=ordered[start : start + size])
        for number, start in enumerate(range(0, ordered.shape[0], size))
    ]
    if store is not None:
        store.start(
            {
                "batch_size": size,
                "batches": len(batches),
                "combos": int(valid.shape[0]),
                "skipped": skipped,
                "order_sha256": hashlib.sha256(ordered.tobytes()).hexdigest(),
            }
        )
    return batches, size


def _stream(
    executor: Executor,
    pending: list[SweepBatch],
    data: SweepData,
    store: SweepStore | None,
    *,
    tags: tuple[str, str | None],
    progress: Callable[[int], None] | None,
) -> tuple[list[pl.DataFrame], list[dict[str, Any]]]:
    """Run the pending batches; write each to ``store`` (or keep it) as it finishes.

    Returns the rows kept in memory (none with a store) and each task's cost.
    """
    strategy, team = tags
    collected: list[pl.DataFrame] = []
    stats: list[dict[str, Any]] = []
    finished = 0
    outcomes = executor.imap_unordered(evaluate_batch, pending, shared=data)
    try:
        for outcome in outcomes:
            batch = pending[outcome.index]
            rows = _check_rows(outcome.value, batch)
            if store is not None:
                stats.append(
                    store.write_part(batch.batch, rows, outcome.stats, strategy=strategy, team=team)
                )
            else:
                collected.append(rows)
                stats.append(asdict(outcome.stats))
            finished += rows.height
            if progress is not None:
                progress(finished)
    finally:
        # Closing the stream cancels the tasks still running (an error, Ctrl-C).
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
    return collected, stats


def _check_options(*, team: object, batch_size: object) -> None:
    if team is not None and (not isinstance(team, str) or not team.strip()):
        raise ConfigError(f"team must be a non-empty string; got {team!r}")
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    ):
        raise ConfigError(f"batch_size must be an integer >= 1; got {batch_size!r}")


def _check_rows(rows: object, batch: SweepBatch) -> pl.DataFrame:
    """Validate what a task sent back: one row per combination of the batch."""
    if not isinstance(rows, pl.DataFrame) or "combo_id" not in rows.columns:
        raise TradePulseError(
            f"sweep task for batch {batch.batch} returned {type(rows).__name__}, not result rows"
        )
    got = rows.get_column("combo_id").to_numpy()
    if not np.array_equal(got, np.sort(batch.combos)):
        raise TradePulseError(
            f"sweep task for batch {batch.batch} returned rows for other combinations "
            f"({rows.height} rows for {batch.combos.shape[0]} combinations)"
        )
    return rows


def run_sweep(
    bars: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    grid: Mapping[str, Sequence[object]] | None = None,
    *,
    params: Mapping[str, object] | None = None,
    random: int | None = None,
    seed: int = 0,
    config: FrictionConfig | None = None,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = None,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
    executor: Executor | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    team: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Backtest every valid combination of ``grid`` for ``strategy`` on one instrument's ``bars``.

    ``grid`` maps parameter names to the values to try (numbers or their text;
    ``tradepulse.sweep.grid_range`` builds inclusive ranges); ``None`` sweeps
    every parameter not in ``params`` over its declared range. ``params`` fixes
    values for every combination. ``random`` draws that many distinct grid
    points (deterministic in ``seed``) instead of all of them. Combinations
    that break the strategy's constraints are skipped and counted.
    Frictions come from the keywords or ``config`` as in
    :func:`~tradepulse.backtest.run_backtest`; every row equals a single
    ``run_backtest`` of its combination.

    ``executor`` (default: a new :class:`~tradepulse.executor.LocalExecutor`)
    runs the batches; ``batch_size`` (default from the combinations and the
    executor's parallelism) sets the combinations per task. With ``out`` the
    rows go to Parquet parts in that folder as tasks finish; the folder must
    be empty or absent unless ``resume``, which skips the batches already on
    disk (the folder must hold the same sweep). ``team`` tags the cost
    accounting. ``progress(done, total)`` is called as batches finish.

    Raises:
        ConfigError: the bars, grid, frictions, executor or output folder are
            invalid, the strategy has no vectorised ``signals()`` form, or no
            combination satisfies the constraints.
        ParameterError: a fixed value is unknown or invalid.
        StrategyError: the strategy's signals are malformed.
    """
    with ProcessTreeMemory() as memory:
        frame = _check_bars(bars)
        chosen = check_executor(executor)
        _check_options(team=team, batch_size=batch_size)
        instance = resolve_strategy(strategy)
        if not instance.has_signals:
            raise ConfigError(
                f"strategy {instance.name!r} has no vectorised signals() form, which a sweep "
                "needs to backtest many combinations"
            )
        swept = resolve_grid(instance, grid, params)
        frictions = resolve_frictions(
            config,
            cash=cash,
            commission=commission,
            slippage=slippage,
            sizing=sizing,
            latency_bars=latency_bars,
            periods_per_year=periods_per_year,
        )
        # A flat run over the first bars checks the frictions and columns before any
        # fan-out (and loads the engine's compiled kernels before the clock starts).
        frictions.run(frame.slice(0, 2), np.zeros(min(2, frame.height)))
        started = time.perf_counter()
        valid, skipped = swept.valid_combos(random=random, seed=seed)
        if valid.shape[0] == 0:
            raise ConfigError(
                f"no combination of the grid satisfies the constraints of strategy "
                f"{instance.name!r} ({skipped} tried)"
            )
        data = SweepData.from_bars(
            frame, strategy=instance, grid=swept, frictions=_annualised(frictions, frame)
        )

        store: SweepStore | None = None
        if out is not None:
            definition = _definition(instance, swept, data, frictions, random=random, seed=seed)
            store = SweepStore(out, definition=definition, resume=resume)
        batches, size = _plan(store, swept, valid, skipped, batch_size, chosen.parallelism)
        done = {} if store is None else store.completed([b.combos.shape[0] for b in batches])
        pending = [batch for batch in batches if batch.batch not in done]
        total = int(valid.shape[0])
        resumed = sum(batches[batch].combos.shape[0] for batch in done)
        if progress is not None:
            progress(resumed, total)
        startup_s = _warm_up(chosen, data, valid[:1]) if pending else 0.0
        collected, stats = _stream(
            chosen,
            pending,
            data,
            store,
            tags=(instance.name, team),
            progress=None if progress is None else lambda rows: progress(resumed + rows, total),
        )
        # Costs of every batch of the result: those found on disk, then this run's.
        stats = [*done.values(), *stats]

        cost = SweepCost.total(stats, strategy=instance.name, team=team)
        in_memory = None
        if store is None:
            in_memory = (
                pl.concat(collected).sort("combo_id")
                if collected
                else pl.DataFrame(schema=result_schema(swept))
            )
        elapsed = time.perf_counter() - started - startup_s
        result = SweepResult(
            strategy=instance.name,
            team=team,
            grid=swept.describe()["grid"],
            fixed=swept.describe()["fixed"],
            combos=total,
            skipped=skipped,
            evaluated=total - resumed,
            resumed=resumed,
            batches=len(batches),
            batch_size=size,
            elapsed_s=elapsed,
            startup_s=startup_s,
            peak_rss_mb=memory.peak_rss_mb,
            peak_pss_mb=memory.peak_pss_mb,
            cost=cost,
            executor=repr(chosen),
            out=None if store is None else store.path,
            _rows=in_memory,
        )
        if store is not None:
            store.finish(cost, result.summary())
    return result


def sweep(
    bars: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    grid: Mapping[str, Sequence[object]] | None = None,
    *,
    params: Mapping[str, object] | None = None,
    random: int | None = None,
    seed: int = 0,
    config: FrictionConfig | None = None,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = None,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
    executor: Executor | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    team: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pl.DataFrame:
    """Return the rows of :func:`run_sweep` (same arguments): one per combination, by combo id.

    Columns: ``combo_id`` (the combination's position in the grid: parameters
    in declaration order, the last varying fastest), every strategy parameter
    (``param_<name>`` if a name clashes), then
    `~tradepulse.sweep.task.METRIC_COLUMNS`.

    Raises:
        ConfigError: see :func:`run_sweep`.
        ParameterError: see :func:`run_sweep`.
        StrategyError: see :func:`run_sweep`.
    """
    return run_sweep(
        bars,
        strategy,
        grid,
        params=params,
        random=random,
        seed=seed,
        config=config,
        cash=cash,
        commission=commission,
        slippage=slippage,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
        executor=executor,
        out=out,
        resume=resume,
        team=team,
        batch_size=batch_size,
        progress=progress,
    ).results()
