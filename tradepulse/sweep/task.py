"""One sweep task: a batch of combinations backtested against the shared bars.

The driver sends :class:`SweepData` (the bars as numpy columns, the strategy,
the grid and the frictions) to the executor once as ``shared``; each task gets
a small :class:`SweepBatch` (combo ids) and returns one row per combination.
The strategy's :meth:`~tradepulse.strategy.Strategy.signals_many` computes the
batch's targets (a strategy may share indicators across combinations there);
every target series then runs through the same engine call as
:func:`~tradepulse.backtest.run_backtest`, so a row equals a single backtest
of its combination.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.runner import Frictions
from tradepulse.backtest.vector import VectorisedRun
from tradepulse.errors import ConfigError
from tradepulse.metrics import Metrics
from tradepulse.strategy.api import Strategy, StrategyError, validate_signals
from tradepulse.strategy.params import param_specs
from tradepulse.sweep.grid import SweepGrid

__all__ = [
    "METRIC_COLUMNS",
    "SweepBatch",
    "SweepData",
    "evaluate_batch",
    "param_columns",
    "result_schema",
]

#: Metric columns of every result row, in order (fields of `tradepulse.metrics.Metrics`).
METRIC_COLUMNS: Final[tuple[str, ...]] = (
    "final_equity",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "turnover",
    "exposure",
)
_COMBO_COLUMN: Final = "combo_id"
_PARAM_DTYPES: Final[Mapping[str, pl.DataType]] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
}


def param_columns(grid: SweepGrid) -> dict[str, str]:
    """Return ``{parameter: column}``: the parameter's name, or ``param_<name>`` on a clash."""
    taken = {_COMBO_COLUMN, *METRIC_COLUMNS}
    return {
        name: f"param_{name}" if name in taken else name for name in param_specs(grid.params_type)
    }


def result_schema(grid: SweepGrid) -> pl.Schema:
    """Return the columns of a sweep's result rows: combo id, every parameter, the metrics."""
    specs = param_specs(grid.params_type)
    columns: dict[str, pl.DataType] = {_COMBO_COLUMN: pl.Int64()}
    for name, column in param_columns(grid).items():
        columns[column] = _PARAM_DTYPES[specs[name].kind]
    for metric in METRIC_COLUMNS:
        columns[metric] = pl.Int64() if metric == "trades" else pl.Float64()
    return pl.Schema(columns)


@dataclass(frozen=True, slots=True)
class SweepData:
    """What every task of a sweep shares: bars, strategy, grid and frictions.

    ``columns`` holds the bars as numpy arrays (``ts`` as int64 with its
    ``ts_unit`` and ``time_zone``), which an executor can share without copying;
    :meth:`bars` rebuilds the polars frame around them.
    """

    columns: tuple[tuple[str, NDArray[Any]], ...]
    ts_unit: str
    time_zone: str | None
    strategy: Strategy
    grid: SweepGrid
    frictions: Frictions

    @classmethod
    def from_bars(
        cls, bars: pl.DataFrame, *, strategy: Strategy, grid: SweepGrid, frictions: Frictions
    ) -> SweepData:
        """Return the shared data of a sweep over ``bars`` (numeric columns and ``ts``)."""
        ts = bars.get_column("ts")
        dtype = ts.dtype
        if not isinstance(dtype, pl.Datetime):
            raise ConfigError(f"bars column 'ts' must be a datetime; got {dtype}")
        unit = dtype.time_unit
        zone = dtype.time_zone
        columns: list[tuple[str, NDArray[Any]]] = [
            ("ts", np.ascontiguousarray(ts.to_physical().to_numpy()))
        ]
        for name in bars.columns:
            series = bars.get_column(name)
            if name != "ts" and series.dtype.is_numeric():
                columns.append((name, np.ascontiguousarray(series.to_numpy())))
        return cls(
            columns=tuple(columns),
            ts_unit=unit or "ns",
            time_zone=zone,
            strategy=strategy,
            grid=grid,
            frictions=frictions,
        )

    def bars(self) -> pl.DataFrame:
        """Return the bars as a polars frame over the shared arrays (no copy)."""
        series = []
        for name, values in self.columns:
            column = pl.Series(name, values)
            if name == "ts":
                column = column.cast(pl.Datetime(self.ts_unit, self.time_zone))  # type: ignore[arg-type]
            series.append(column)
        return pl.DataFrame(series)


@dataclass(frozen=True, slots=True)
class SweepBatch:
    """One task's work: batch number ``batch`` and its ``combos`` (combo ids)."""

    batch: int
    combos: NDArray[np.int64]


def _check_positions(strategy: Strategy, seen: NDArray[np.bool_], position: object) -> int:
    if not isinstance(position, int | np.integer) or not 0 <= int(position) < seen.shape[0]:
        raise StrategyError(
            f"strategy {strategy.name!r}: signals_many() yielded position {position!r}; "
            f"expected 0..{seen.shape[0] - 1}"
        )
    index = int(position)
    if seen[index]:
        raise StrategyError(
            f"strategy {strategy.name!r}: signals_many() yielded position {index} twice"
        )
    seen[index] = True
    return index


def _run(
    prepared: VectorisedRun, strategy: Strategy, bars: pl.DataFrame, targets: object
) -> Metrics:
    """Backtest ``targets`` as ``run_backtest`` would; checks them without a second pass.

    ``run_backtest`` validates a strategy's signals (``validate_signals``), then
    the engine checks them again. Here a float64 array of the right length goes
    straight to the engine, whose check finds the same non-finite values; only
    then does ``validate_signals`` run, to raise its error naming the strategy.
    """
    if not (
        isinstance(targets, np.ndarray)
        and targets.dtype == np.float64
        and targets.shape == (bars.height,)
    ):
        targets = validate_signals(targets, length=bars.height, strategy=strategy.name)
    try:
        return prepared.run(targets).metrics
    except ConfigError:
        validate_signals(targets, length=bars.height, strategy=strategy.name)
        raise


def evaluate_batch(shared: SweepData, batch: SweepBatch) -> pl.DataFrame:
    """Backtest every combination of ``batch``; return one row each, in combo-id order.

    Raises:
        StrategyError: the strategy's signals are malformed, or ``signals_many``
            skipped or repeated a combination.
        ConfigError: the bars or frictions are invalid.
    """
    bars = shared.bars()
    strategy = shared.strategy
    combos = np.sort(np.asarray(batch.combos, dtype=np.int64))
    params = [shared.grid.params_at(int(combo)) for combo in combos]
    metrics: dict[str, list[Any]] = {name: [None] * len(params) for name in METRIC_COLUMNS}
    seen = np.zeros(len(params), dtype=np.bool_)
    prepared = shared.frictions.prepare(bars)  # the bars are read and checked once a batch
    for position, targets in strategy.signals_many(bars, params):
        index = _check_positions(strategy, seen, position)
        values = _run(prepared, strategy, bars, targets)
        for name in METRIC_COLUMNS:
            metrics[name][index] = getattr(values, name)
    if not seen.all():
        missing = int(np.flatnonzero(~seen)[0])
        raise StrategyError(
            f"strategy {strategy.name!r}: signals_many() yielded no targets for position "
            f"{missing} ({params[missing]!r})"
        )
    schema = result_schema(shared.grid)
    data: dict[str, Any] = {_COMBO_COLUMN: combos}
    for name, column in param_columns(shared.grid).items():
        data[column] = [getattr(item, name) for item in params]
    data.update(metrics)
    return pl.DataFrame(data, schema=schema)
