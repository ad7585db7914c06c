"""The stress matrix: one strategy x scenarios x seeds, fanned out on an executor, gated.

``run_stress(bars, "sma_cross", {"fast": 10, "slow": 30}, scenarios=..., seeds=5)``
runs one task per (scenario, seed) on an :class:`~tradepulse.executor.Executor`
(the bars travel once, as the job's ``shared`` data; each item is a scenario
and a seed). A task applies the scenario's transform to the bars and backtests
the strategy on the result (:func:`run_scenario`); a scenario whose event
position is fixed (``at`` set) runs once, whatever the seeds. One more task
backtests the untouched bars as the baseline. Each run is checked against its
scenario's thresholds; the :class:`StressReport` holds the table and the
verdict of the promotion gate (every run of every scenario within its limits).

Engines and frictions: the scenario's ``engine`` settings win over the run's
``engine``; a participation cap or depth model runs on the event engine
(:meth:`Scenario.engine_for`). The run's frictions (``config`` and keywords, as
for :func:`~tradepulse.backtest.run_backtest`) apply to every scenario, with the
scenario's own ``frictions`` keys replacing those of ``config`` (an explicit
keyword still wins).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

import polars as pl

from tradepulse.backtest.config import FrictionConfig
from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import (
    ENGINES,
    Engine,
    resolve_frictions,
    resolve_params,
    resolve_strategy,
    run_backtest,
)
from tradepulse.backtest.vector import DEFAULT_CASH, BacktestResult
from tradepulse.costs.commission import CommissionModel
from tradepulse.costs.sizing import Sizing
from tradepulse.costs.slippage import SlippageModel
from tradepulse.errors import ConfigError
from tradepulse.executor import check_executor
from tradepulse.metrics import Metrics
from tradepulse.strategy.api import Strategy
from tradepulse.strategy.params import Params
from tradepulse.stress.config import Scenario

__all__ = [
    "BASELINE",
    "ROW_COLUMNS",
    "StressJob",
    "StressOutcome",
    "StressReport",
    "StressRow",
    "run_scenario",
    "run_stress",
    "run_stress_task",
    "stress_seeds",
]

#: The scenario name of the baseline row (the strategy on the untouched bars).
BASELINE: Final = "baseline"
#: Columns of :meth:`StressReport.table`, in order.
ROW_COLUMNS: Final = (
    "scenario",
    "kind",
    "seed",
    "start",
    "start_ts",
    "engine",
    "total_return",
    "max_drawdown",
    "sharpe",
    "trades",
    "final_equity",
    "passed",
    "reason",
)
_TS_DTYPE: Final = pl.Datetime("ns", "UTC")


def stress_seeds(seeds: int | Sequence[int]) -> tuple[int, ...]:
    """Return the seeds of a run: ``0 .. seeds - 1`` for a count, else the given ones.

    Raises:
        ConfigError: a count < 1, an empty sequence, a seed that is not an integer
            >= 0, or a repeated seed.
    """
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a count >= 1 or a list of seeds; got {seeds!r}")
        return tuple(range(seeds))
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or not seeds:
        raise ConfigError(f"seeds must be a count >= 1 or a list of seeds; got {seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"every seed must be an integer >= 0; got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must not repeat; got {list(seeds)!r}")
    return tuple(seeds)


def run_scenario(
    bars: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    params: Params | Mapping[str, object] | None = None,
    *,
    scenario: Scenario,
    seed: int = 0,
    engine: Engine | None = None,
    config: FrictionConfig | None = None,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = None,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Backtest ``strategy`` on ``bars`` stressed by ``scenario`` (its event placed by ``seed``).

    Without a participation cap or depth model this is exactly
    ``run_backtest(scenario.transform.apply(bars, seed=seed), strategy, params,
    engine=..., config=...)`` with the engine of :meth:`Scenario.engine_for` and
    ``config`` changed by the scenario's frictions; with one, the same run on
    :func:`~tradepulse.backtest.run_event` with the cap and the depth model.

    Raises:
        ConfigError: an argument is invalid or the event does not fit the bars.
        ParameterError: a parameter is invalid.
        StrategyError: the strategy misbehaved.
    """
    if not isinstance(scenario, Scenario):
        raise ConfigError(f"scenario must be a Scenario; got {type(scenario).__name__}")
    instance = resolve_strategy(strategy)
    typed = resolve_params(instance, params)
    chosen = scenario.engine_for(engine, has_signals=instance.has_signals)
    frictions = scenario.frictions.apply(config, name=scenario.name)
    stressed = scenario.transform.apply(bars, seed=seed)
    cap, depth = scenario.liquidity()
    if chosen == "vector" or (cap is None and depth is None):
        return run_backtest(
            stressed,
            instance,
            typed,
            engine=chosen,
            config=frictions,
            cash=cash,
            commission=commission,
            slippage=slippage,
            sizing=sizing,
            latency_bars=latency_bars,
            periods_per_year=periods_per_year,
        )
    resolved = resolve_frictions(
        frictions,
        cash=cash,
        commission=commission,
        slippage=slippage,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    )
    return run_event(
        stressed,
        instance,
        typed,
        cash=resolved.cash,
        commission=resolved.commission,
        slippage=resolved.slippage,
        sizing=resolved.sizing,
        latency_bars=resolved.latency_bars,
        periods_per_year=resolved.periods_per_year,
        max_participation=cap,
        depth=depth,
    )


@dataclass(frozen=True, slots=True)
class StressJob:
    """What every task of a stress run shares (sent to the workers once)."""

    bars: pl.DataFrame
    strategy: str | type[Strategy] | Strategy
    params: Params
    engine: Engine | None
    config: FrictionConfig | None
    cash: float
    commission: float | CommissionModel | tuple[CommissionModel, ...] | None
    slippage: SlippageModel | tuple[SlippageModel, ...] | None
    sizing: Sizing | None
    latency_bars: int | None
    periods_per_year: float | None


@dataclass(frozen=True, slots=True)
class StressOutcome:
    """What one task returns: the run's metrics, its engine and where the event started."""

    metrics: Metrics
    engine: Engine
    start: int | None
    start_ts: datetime | None


def run_stress_task(job: StressJob, item: tuple[Scenario | None, int | None]) -> StressOutcome:
    """Run one cell: ``item`` is ``(scenario, seed)``, or ``(None, None)`` for the baseline."""
    scenario, seed = item
    keywords: dict[str, Any] = {
        "config": job.config,
        "cash": job.cash,
        "commission": job.commission,
        "slippage": job.slippage,
        "sizing": job.sizing,
        "latency_bars": job.latency_bars,
        "periods_per_year": job.periods_per_year,
    }
    instance = resolve_strategy(job.strategy)
    if scenario is None:
        engine: Engine = job.engine or ("vector" if instance.has_signals else "event")
        result = run_backtest(job.bars, instance, job.params, engine=engine, **keywords)
        return StressOutcome(metrics=result.metrics, engine=engine, start=None, start_ts=None)
    chosen = seed or 0
    result = run_scenario(
        job.bars,
        instance,
        job.params,
        scenario=scenario,
        seed=chosen,
        engine=job.engine,
        **keywords,
    )
    start = scenario.transform.start(job.bars.height, seed=chosen)
    return StressOutcome(
        metrics=result.metrics,
        engine=scenario.engine_for(job.engine, has_signals=instance.has_signals),
        start=start,
        start_ts=job.bars.get_column("ts")[start],
    )


@dataclass(frozen=True, slots=True)
class StressRow:
    """One run of the matrix and its verdict.

    ``seed`` is ``None`` for a scenario whose event position is fixed (and for
    the baseline); ``start`` / ``start_ts`` are the event's first bar (index in
    the input bars and its timestamp); ``passed`` is ``None`` for the baseline,
    which is not gated; ``reason`` says which limit failed (empty when passed).
    """

    scenario: str
    kind: str
    seed: int | None
    start: int | None
    start_ts: datetime | None
    engine: Engine
    total_return: float
    max_drawdown: float
    sharpe: float
    trades: int
    final_equity: float
    passed: bool | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-ready values (NaN and infinities as ``None``)."""
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                values[key] = None
            elif isinstance(value, datetime):
                values[key] = value.isoformat().replace("+00:00", "Z")
        return values


def _row(scenario: Scenario | None, seed: int | None, outcome: StressOutcome) -> StressRow:
    metrics = outcome.metrics
    reasons = () if scenario is None else scenario.thresholds.failures(metrics)
    return StressRow(
        scenario=BASELINE if scenario is None else scenario.name,
        kind=BASELINE if scenario is None else scenario.kind,
        seed=seed,
        start=outcome.start,
        start_ts=outcome.start_ts,
        engine=outcome.engine,
        total_return=metrics.total_return,
        max_drawdown=metrics.max_drawdown,
        sharpe=metrics.sharpe,
        trades=metrics.trades,
        final_equity=metrics.final_equity,
        passed=None if scenario is None else not reasons,
        reason="; ".join(reasons),
    )


@dataclass(frozen=True, slots=True)
class StressReport:
    """The result of :func:`run_stress`: one row per run and the gate's verdict.

    ``rows`` are in scenario order, then seed order; ``baseline`` is the run on
    the untouched bars. ``elapsed_s`` is the wall time of the fan-out,
    ``cpu_s`` the CPU seconds all tasks spent and ``peak_rss_mb`` the largest
    worker peak memory (MiB) reported by a task.
    """

    strategy: str
    params: dict[str, Any]
    seeds: tuple[int, ...]
    scenarios: tuple[Scenario, ...]
    baseline: StressRow
    rows: tuple[StressRow, ...]
    elapsed_s: float
    cpu_s: float
    peak_rss_mb: float

    @property
    def passed(self) -> bool:
        """Return whether every run of every scenario stayed within its thresholds."""
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> tuple[StressRow, ...]:
        """Return the runs that broke their scenario's thresholds."""
        return tuple(row for row in self.rows if not row.passed)

    @property
    def failing(self) -> tuple[str, ...]:
        """Return the names of the scenarios with a failed run, in scenario order."""
        names = {row.scenario for row in self.failures}
        return tuple(scenario.name for scenario in self.scenarios if scenario.name in names)

    def table(self) -> pl.DataFrame:
        """Return the rows as a polars DataFrame (`ROW_COLUMNS`; the baseline is not in it)."""
        columns = {name: [getattr(row, name) for row in self.rows] for name in ROW_COLUMNS}
        schema: dict[str, pl.DataType] = {
            "scenario": pl.String(),
            "kind": pl.String(),
            "seed": pl.Int64(),
            "start": pl.Int64(),
            "start_ts": _TS_DTYPE,
            "engine": pl.String(),
            "total_return": pl.Float64(),
            "max_drawdown": pl.Float64(),
            "sharpe": pl.Float64(),
            "trades": pl.Int64(),
            "final_equity": pl.Float64(),
            "passed": pl.Boolean(),
            "reason": pl.String(),
        }
        return pl.DataFrame(columns, schema=schema)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready object.

        Keys: ``strategy``, ``params``, ``seeds``, ``passed``, ``failing``,
        ``baseline`` and ``rows`` (:meth:`StressRow.to_dict` each), ``tasks``,
        ``elapsed_s``, ``cpu_s``, ``peak_rss_mb``.
        """
        return {
            "strategy": self.strategy,
            "params": {
                key: None if isinstance(value, float) and not math.isfinite(value) else value
                for key, value in self.params.items()
            },
            "seeds": list(self.seeds),
            "passed": self.passed,
            "failing": list(self.failing),
            "baseline": self.baseline.to_dict(),
            "rows": [row.to_dict() for row in self.rows],
            "tasks": len(self.rows) + 1,
            "elapsed_s": round(self.elapsed_s, 6),
            "cpu_s": round(self.cpu_s, 6),
            "peak_rss_mb": round(self.peak_rss_mb, 3),
        }


def run_stress(
    bars: pl.DataFrame,
    strategy: str | type[Strategy] | Strategy,
    params: Params | Mapping[str, object] | None = None,
    *,
    scenarios: Sequence[Scenario],
    seeds: int | Sequence[int] = 1,
    executor: object = None,
    engine: Engine | None = None,
    config: FrictionConfig | None = None,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = None,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing | None = None,
    latency_bars: int | None = None,
    periods_per_year: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> StressReport:
    """Backtest ``strategy`` under every scenario and seed on ``executor``; gate the results.

    ``seeds`` is a count (seeds ``0 .. n - 1``) or the seeds themselves; a
    scenario with a fixed event position runs once. ``executor`` is any
    :class:`~tradepulse.executor.Executor` (``None``: in this process).
    ``engine`` and the friction arguments mean what they mean for
    :func:`~tradepulse.backtest.run_backtest` (see the module docstring for how a
    scenario changes them). ``progress(done, total)`` is called as runs finish.
    Everything is checked before the first task starts.

    Raises:
        ConfigError: an argument is invalid, a scenario's event does not fit the
            bars, or a scenario needs the vectorised engine of a strategy without
            ``signals()``.
        ParameterError: a parameter is invalid.
        StrategyError: the strategy misbehaved in a run.
    """
    runner = check_executor(executor)
    instance = resolve_strategy(strategy)
    typed = resolve_params(instance, params)
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if engine is not None and engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    chosen_seeds = stress_seeds(seeds)
    if isinstance(scenarios, Scenario) or not isinstance(scenarios, Sequence) or not scenarios:
        raise ConfigError("scenarios must be a non-empty sequence of Scenario")
    items: list[tuple[Scenario | None, int | None]] = [(None, None)]
    names: set[str] = set()
    for scenario in scenarios:
        if not isinstance(scenario, Scenario):
            raise ConfigError(f"scenarios must hold Scenario objects; got {scenario!r}")
        if scenario.name in names:
            raise ConfigError(f"two scenarios are named {scenario.name!r}")
        names.add(scenario.name)
        chosen = scenario.engine_for(engine, has_signals=instance.has_signals)
        if chosen == "vector" and not instance.has_signals:
            raise ConfigError(
                f"scenario {scenario.name!r} needs the vectorised engine, but strategy "
                f"{instance.name!r} has no signals() form"
            )
        runs: tuple[int | None, ...] = chosen_seeds if scenario.transform.randomised else (None,)
        for seed in runs:
            scenario.transform.start(bars.height, seed=seed or 0)  # the event must fit
            items.append((scenario, seed))
    job = StressJob(
        bars=bars,
        strategy=strategy if isinstance(strategy, str | type) else instance,
        params=typed,
        engine=engine,
        config=config,
        cash=cash,
        commission=commission
        if commission is None or isinstance(commission, int | float | CommissionModel)
        else tuple(commission),
        slippage=slippage
        if slippage is None or isinstance(slippage, SlippageModel)
        else tuple(slippage),
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    )
    outcomes: dict[int, StressOutcome] = {}
    cpu_s = 0.0
    peak = 0.0
    started = time.perf_counter()
    for outcome in runner.imap_unordered(run_stress_task, items, shared=job):
        outcomes[outcome.index] = outcome.value
        cpu_s += outcome.stats.cpu_s
        peak = max(peak, outcome.stats.peak_rss_mb)
        if progress is not None:
            progress(len(outcomes), len(items))
    elapsed = time.perf_counter() - started
    rows = [_row(scenario, seed, outcomes[index]) for index, (scenario, seed) in enumerate(items)]
    return StressReport(
        strategy=instance.name,
        params=typed.to_dict(),
        seeds=chosen_seeds,
        scenarios=tuple(scenarios),
        baseline=rows[0],
        rows=tuple(rows[1:]),
        elapsed_s=elapsed,
        cpu_s=cpu_s,
        peak_rss_mb=peak,
    )
