"""The golden regression check: every golden case as an executor task, compared with tolerances.

``run_golden_checks(executor=...)`` checks three suites, one task per case:

- ``indicators``: one task per shipped data file (every indicator column);
- ``backtests``: one task per backtest case and engine;
- ``stress``: one task per stress case, scenario and seed.

Everything the tasks read is loaded once, on the caller's side, into a
:class:`GoldenInputs` (the shipped bars and their sha256, the stored golden
files, the scenarios) and sent to the workers as the job's ``shared`` data:
tasks read no file, so they run unchanged on any node of a cluster. A missing
or corrupted golden file fails before the first task starts.

Each task returns a :class:`CaseCheck`: the case's drifts (:class:`Drift`,
one per drifted column), the largest absolute and relative differences over
every compared value (drifted or not) and, for a drifted case, the golden and
current values of its first drifted series (:class:`DriftChart`) for the
report's chart. :class:`RegressionRun` collects them in case order with what
the tasks cost (:class:`~tradepulse.executor.TaskStats`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.runner import ENGINES, Engine
from tradepulse.data.loaders import load_bars
from tradepulse.data.samples import SAMPLE_FILES
from tradepulse.errors import ConfigError, DataError
from tradepulse.executor import TaskStats, check_executor
from tradepulse.golden.backtests import (
    _EQUITY_KINDS,
    _TRADE_KINDS,
    BACKTEST_ABSOLUTE_TOLERANCE,
    BACKTEST_RELATIVE_TOLERANCE,
    BacktestCase,
    BacktestDrift,
    StoredCase,
    compare,
    compute_case,
    golden_backtest_cases,
    load_stored_case,
)
from tradepulse.golden.indicators import (
    ABSOLUTE_TOLERANCE,
    RELATIVE_TOLERANCE,
    GoldenDrift,
    compare_indicator_frames,
    compute_indicator_golden,
    golden_root,
    indicator_golden_path,
    read_indicator_golden,
)
from tradepulse.golden.stress import (
    _ROW_KINDS,
    STRESS_ABSOLUTE_TOLERANCE,
    STRESS_RELATIVE_TOLERANCE,
    StoredStressCase,
    StressGoldenCase,
    compare_stress_run,
    compute_stress_run,
    golden_stress_cases,
    load_golden_scenarios,
    load_stored_stress_case,
    stress_definition,
)
from tradepulse.stress.config import Scenario

__all__ = [
    "SUITES",
    "TOLERANCES",
    "CaseCheck",
    "Drift",
    "DriftChart",
    "GoldenInputs",
    "GoldenTask",
    "RegressionRun",
    "Suite",
    "check_golden_task",
    "prepare_golden_checks",
    "run_golden_checks",
    "run_golden_tasks",
]

Suite = Literal["indicators", "backtests", "stress"]
#: The golden suites, in the order they run.
SUITES: Final[tuple[Suite, ...]] = ("indicators", "backtests", "stress")
#: ``(rtol, atol)`` of each suite's float comparisons.
TOLERANCES: Final[dict[Suite, tuple[float, float]]] = {
    "indicators": (RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE),
    "backtests": (BACKTEST_RELATIVE_TOLERANCE, BACKTEST_ABSOLUTE_TOLERANCE),
    "stress": (STRESS_RELATIVE_TOLERANCE, STRESS_ABSOLUTE_TOLERANCE),
}
# The unit a row number counts, per part of a case.
_ROW_UNITS: Final = {"indicators": "bar", "equity": "bar", "trades": "trade"}


@dataclass(frozen=True, slots=True)
class Drift:
    """One golden column (or metric, or metadata key) that the recomputation no longer matches.

    ``suite`` and ``case`` name the case (``engine`` is empty for indicators);
    ``part`` is ``indicators``, ``equity``, ``trades``, ``metrics`` or
    ``metadata``; ``first_row`` the first bar (``indicators``, ``equity``) or
    trade (``trades``) that differs, ``None`` where rows mean nothing;
    ``mismatches`` how many rows differ; ``expected`` / ``actual`` the golden
    and recomputed values there; ``max_abs_diff`` / ``max_rel_diff`` the largest
    differences over the differing numeric rows (``None`` for text).
    """

    suite: Suite
    case: str
    engine: str
    part: str
    column: str
    mismatches: int
    first_row: int | None
    expected: str
    actual: str
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None

    @property
    def row_unit(self) -> str:
        """Return what ``first_row`` counts: ``bar``, ``trade`` or ``row``."""
        return _ROW_UNITS.get(self.part, "row")

    @property
    def location(self) -> str:
        """Return where the drift starts, e.g. ``bar 2000`` (empty without a row)."""
        return "" if self.first_row is None else f"{self.row_unit} {self.first_row}"

    def __str__(self) -> str:
        engine = f" [{self.engine}]" if self.engine else ""
        first = "" if self.first_row is None else f"first at {self.location}: "
        count = "" if self.first_row is None else f" in {self.mismatches} {self.row_unit}s"
        size = ""
        if self.max_abs_diff is not None and self.max_rel_diff is not None:
            size = f"; max |diff| {self.max_abs_diff:.3g}, max rel {self.max_rel_diff:.3g}"
        return (
            f"{self.case}{engine} {self.part} {self.column!r} differs{count} "
            f"({first}expected {self.expected}, got {self.actual}{size})"
        )

    @classmethod
    def from_backtest(cls, suite: Suite, drift: BacktestDrift) -> Drift:
        """Return a backtest (or stress) drift record as a :class:`Drift`."""
        return cls(
            suite=suite,
            case=drift.case,
            engine=drift.engine,
            part=drift.part,
            column=drift.column,
            mismatches=drift.mismatches,
            first_row=drift.first_row,
            expected=drift.expected,
            actual=drift.actual,
            max_abs_diff=drift.max_abs_diff,
            max_rel_diff=drift.max_rel_diff,
        )

    @classmethod
    def from_indicator(cls, case: str, drift: GoldenDrift) -> Drift:
        """Return an indicator drift record as a :class:`Drift` of case ``case``."""
        missing = drift.column == "<rows>" or drift.actual == "missing"
        return cls(
            suite="indicators",
            case=case,
            engine="",
            part="indicators",
            column=drift.column,
            mismatches=drift.mismatches,
            first_row=None if missing else drift.first_row,
            expected=drift.expected,
            actual=drift.actual,
            max_abs_diff=drift.max_abs_diff,
            max_rel_diff=drift.max_rel_diff,
        )


@dataclass(frozen=True, slots=True)
class DriftChart:
    """The values behind a drifted case's chart.

    ``kind`` ``"series"``: ``golden`` and ``current`` are one column over its
    rows (``unit`` says what a row is: bar or trade); ``"values"``: one value
    per name in ``labels`` (a stress run's or a backtest's metrics).
    ``drifting`` holds the positions beyond tolerance (``rtol``, ``atol``).
    """

    kind: Literal["series", "values"]
    title: str
    column: str
    unit: str
    golden: NDArray[np.float64]
    current: NDArray[np.float64]
    drifting: NDArray[np.int64]
    labels: tuple[str, ...]
    rtol: float
    atol: float


@dataclass(frozen=True, slots=True)
class CaseCheck:
    """The outcome of one golden case (one task).

    ``values`` counts the numeric values compared; ``max_abs_diff`` and
    ``max_rel_diff`` are the largest differences over all of them, within
    tolerance or not (0.0 when the recomputation is bit-identical); ``chart``
    is set for a drifted case with a numeric drift.
    """

    suite: Suite
    case: str
    engine: str
    drifts: tuple[Drift, ...]
    values: int
    max_abs_diff: float
    max_rel_diff: float
    chart: DriftChart | None = None

    @property
    def passed(self) -> bool:
        """Return whether the recomputation matched every golden value."""
        return not self.drifts

    @property
    def label(self) -> str:
        """Return ``case`` with its engine, e.g. ``sma_cross-sp500_daily [vector]``."""
        return f"{self.case} [{self.engine}]" if self.engine else self.case

    @property
    def first_drift(self) -> str:
        """Return where the first drift with a row starts (``bar 2000 (equity 'equity')``).

        Falls back to the first drift's part and column; empty when passed.
        """
        for drift in self.drifts:
            if drift.first_row is not None:
                return f"{drift.location} ({drift.part} {drift.column!r})"
        if self.drifts:
            return f"{self.drifts[0].part} {self.drifts[0].column!r}"
        return ""


@dataclass(frozen=True, slots=True)
class GoldenTask:
    """One task of the check: a case of a suite (an executor item; small and picklable).

    ``name`` is the case as reported; ``data_file`` the shipped file it reads;
    ``backtest`` / ``engine`` are set for the backtest suite, ``stress`` /
    ``scenario`` / ``seed`` for the stress suite.
    """

    suite: Suite
    name: str
    data_file: str
    engine: str = ""
    backtest: BacktestCase | None = None
    stress: StressGoldenCase | None = None
    scenario: str = ""
    seed: int = 0


@dataclass(frozen=True, slots=True)
class GoldenInputs:
    """Everything the tasks read, loaded once and sent to the workers once (``shared``).

    ``suites`` are the suites checked; ``bars`` and ``data_sha256`` by shipped
    data file name; ``indicators`` the stored golden indicator frames by data
    file name; ``backtests`` and ``stress`` the stored cases by case name;
    ``scenarios`` the stress scenarios by name; ``stress_definitions`` each
    stress case's current definition by case name.
    """

    suites: tuple[Suite, ...]
    bars: dict[str, pl.DataFrame]
    data_sha256: dict[str, str]
    indicators: dict[str, pl.DataFrame]
    backtests: dict[str, StoredCase]
    stress: dict[str, StoredStressCase]
    scenarios: dict[str, Scenario]
    stress_definitions: dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RegressionRun:
    """The result of :func:`run_golden_checks`: every case's outcome and what the check cost.

    ``checks`` and ``stats`` are in task order (suite, then case, then
    engine or scenario and seed). ``elapsed_s`` is the wall time of the check
    (loading the goldens and running the tasks; connecting to a cluster
    excluded), ``load_s`` the part spent loading; ``executor`` describes where
    the tasks ran.
    """

    suites: tuple[Suite, ...]
    checks: tuple[CaseCheck, ...]
    stats: tuple[TaskStats, ...]
    elapsed_s: float
    load_s: float
    executor: str

    @property
    def passed(self) -> bool:
        """Return whether every case matched its goldens."""
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> tuple[CaseCheck, ...]:
        """Return the drifted cases, in task order."""
        return tuple(check for check in self.checks if not check.passed)

    def of_suite(self, suite: Suite) -> tuple[CaseCheck, ...]:
        """Return the cases of ``suite``, in task order."""
        return tuple(check for check in self.checks if check.suite == suite)

    @property
    def cpu_s(self) -> float:
        """Return the CPU seconds all tasks spent."""
        return sum(stat.cpu_s for stat in self.stats)

    @property
    def task_wall_s(self) -> float:
        """Return the wall seconds all tasks took, summed."""
        return sum(stat.wall_s for stat in self.stats)

    @property
    def peak_rss_mb(self) -> float:
        """Return the largest peak memory a worker reported (MiB)."""
        return max((stat.peak_rss_mb for stat in self.stats), default=0.0)

    @property
    def workers(self) -> int:
        """Return how many worker processes ran tasks."""
        return len({(stat.node, stat.pid) for stat in self.stats})


# ------------------------------------------------------------------------------ preparing


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chosen_engines(engines: Iterable[str] | None) -> tuple[Engine, ...]:
    if engines is None:
        return ENGINES
    wanted = tuple(engines)
    unknown = [engine for engine in wanted if engine not in ENGINES]
    if unknown:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {unknown[0]!r}")
    return tuple(engine for engine in ENGINES if engine in wanted)


def _chosen_suites(suites: Iterable[str] | None) -> tuple[Suite, ...]:
    if suites is None:
        return SUITES
    wanted = tuple(suites)
    unknown = [suite for suite in wanted if suite not in SUITES]
    if unknown:
        raise ConfigError(f"suite must be one of {', '.join(SUITES)}; got {unknown[0]!r}")
    return tuple(suite for suite in SUITES if suite in wanted)


def prepare_golden_checks(
    *,
    suites: Iterable[str] | None = None,
    engines: Iterable[str] | None = None,
    root: Path | None = None,
) -> tuple[GoldenInputs, list[GoldenTask]]:
    """Load everything the check reads and list its tasks (see :func:`run_golden_checks`).

    Raises:
        ConfigError: a suite or engine name is unknown, or a scenario file is invalid.
        DataError: a data or golden file is missing or corrupted.
    """
    chosen_suites = _chosen_suites(suites)
    chosen_engines = _chosen_engines(engines)
    root = root or golden_root()
    symbols: dict[str, str] = {}
    tasks: list[GoldenTask] = []
    indicators: dict[str, pl.DataFrame] = {}
    backtests: dict[str, StoredCase] = {}
    stress: dict[str, StoredStressCase] = {}
    scenarios: dict[str, Scenario] = {}
    stress_cases: list[StressGoldenCase] = []
    if "indicators" in chosen_suites:
        for symbol, data_file in SAMPLE_FILES.items():
            symbols[data_file] = symbol
            indicators[data_file] = read_indicator_golden(indicator_golden_path(data_file, root))
            tasks.append(GoldenTask("indicators", Path(data_file).stem, data_file))
    if "backtests" in chosen_suites:
        for case in golden_backtest_cases():
            runs = [engine for engine in case.engines if engine in chosen_engines]
            if runs:
                symbols[case.data_file] = case.symbol
                backtests[case.name] = load_stored_case(case, root=root)
            tasks.extend(
                GoldenTask("backtests", case.name, case.data_file, engine=engine, backtest=case)
                for engine in runs
            )
    if "stress" in chosen_suites:
        for stress_case in golden_stress_cases():
            stress_cases.append(stress_case)
            symbols[stress_case.data_file] = stress_case.symbol
            stored = load_stored_stress_case(stress_case, root=root)
            stress[stress_case.name] = stored
            scenarios.update(load_golden_scenarios(stress_case))
            for scenario, seed in stress_case.runs():
                stored.row(scenario, seed)  # a missing row fails here, not in a task
                tasks.append(
                    GoldenTask(
                        "stress",
                        stress_case.run_name(scenario, seed),
                        stress_case.data_file,
                        stress=stress_case,
                        scenario=scenario,
                        seed=seed,
                    )
                )
    bars: dict[str, pl.DataFrame] = {}
    data_sha256: dict[str, str] = {}
    for data_file, symbol in sorted(symbols.items()):
        source = root / "data" / data_file
        if not source.is_file():
            raise DataError(f"golden data file {source} is missing; run from a TradePulse clone")
        bars[data_file] = load_bars(source, symbol=symbol)
        data_sha256[data_file] = _sha256(source)
    definitions = {
        case.name: stress_definition(case, scenarios, data_sha256=data_sha256[case.data_file])
        for case in stress_cases
    }
    inputs = GoldenInputs(
        suites=chosen_suites,
        bars=bars,
        data_sha256=data_sha256,
        indicators=indicators,
        backtests=backtests,
        stress=stress,
        scenarios=scenarios,
        stress_definitions=definitions,
    )
    return inputs, tasks


# ------------------------------------------------------------------------------ one task


def _floats(frame: pl.DataFrame, column: str) -> NDArray[np.float64]:
    values: NDArray[np.float64] = frame.get_column(column).cast(pl.Float64).to_numpy()
    return values


def _largest(
    pairs: Iterable[tuple[NDArray[np.float64], NDArray[np.float64]]],
) -> tuple[int, float, float]:
    """Return how many values were compared and the largest absolute and relative difference.

    Pairs of different lengths are compared over their common rows; NaN and
    infinite values are skipped; the relative difference is taken where the
    golden value is not zero.
    """
    count, largest_abs, largest_rel = 0, 0.0, 0.0
    for expected, actual in pairs:
        rows = min(expected.shape[0], actual.shape[0])
        wanted, got = expected[:rows], actual[:rows]
        finite = np.isfinite(wanted) & np.isfinite(got)
        count += int(finite.sum())
        if not finite.any():
            continue
        diff = np.abs(got[finite] - wanted[finite])
        largest_abs = max(largest_abs, float(diff.max()))
        scale = np.abs(wanted[finite])
        nonzero = scale > 0.0
        if nonzero.any():
            largest_rel = max(largest_rel, float((diff[nonzero] / scale[nonzero]).max()))
    return count, largest_abs, largest_rel


def _drifting(
    expected: NDArray[np.float64], actual: NDArray[np.float64], rtol: float, atol: float
) -> NDArray[np.int64]:
    rows = min(expected.shape[0], actual.shape[0])
    close = np.isclose(actual[:rows], expected[:rows], rtol=rtol, atol=atol, equal_nan=True)
    drifting: NDArray[np.int64] = np.flatnonzero(~close).astype(np.int64)
    return drifting


def _series_chart(
    suite: Suite,
    title: str,
    column: str,
    unit: str,
    expected: NDArray[np.float64],
    actual: NDArray[np.float64],
) -> DriftChart:
    rtol, atol = TOLERANCES[suite]
    return DriftChart(
        kind="series",
        title=title,
        column=column,
        unit=unit,
        golden=expected,
        current=actual,
        drifting=_drifting(expected, actual, rtol, atol),
        labels=(),
        rtol=rtol,
        atol=atol,
    )


def _values_chart(
    suite: Suite,
    title: str,
    expected: Mapping[str, float | int],
    actual: Mapping[str, float | int],
) -> DriftChart:
    rtol, atol = TOLERANCES[suite]
    labels = tuple(name for name in expected if name in actual)
    golden = np.array([float(expected[name]) for name in labels], dtype=np.float64)
    current = np.array([float(actual[name]) for name in labels], dtype=np.float64)
    return DriftChart(
        kind="values",
        title=title,
        column="metrics",
        unit="metric",
        golden=golden,
        current=current,
        drifting=_drifting(golden, current, rtol, atol),
        labels=labels,
        rtol=rtol,
        atol=atol,
    )


def _check_indicators(inputs: GoldenInputs, task: GoldenTask) -> CaseCheck:
    expected = inputs.indicators[task.data_file]
    actual = compute_indicator_golden(inputs.bars[task.data_file])
    drifts = compare_indicator_frames(Path(task.data_file).stem + ".csv", expected, actual)
    floats = [
        column
        for column in expected.columns
        if column in actual.columns
        and (expected.schema[column].is_float() or actual.schema[column].is_float())
    ]
    pairs = [(_floats(expected, column), _floats(actual, column)) for column in floats]
    values, largest_abs, largest_rel = _largest(pairs)
    chart = None
    numeric = [drift for drift in drifts if drift.column in floats]
    if numeric:
        column = numeric[0].column
        chart = _series_chart(
            "indicators",
            f"indicators {task.name}: {column!r}",
            column,
            "bar",
            _floats(expected, column),
            _floats(actual, column),
        )
    return CaseCheck(
        suite="indicators",
        case=task.name,
        engine="",
        drifts=tuple(Drift.from_indicator(task.name, drift) for drift in drifts),
        values=values,
        max_abs_diff=largest_abs,
        max_rel_diff=largest_rel,
        chart=chart,
    )


def _numeric_metrics(metrics: Mapping[str, float | int]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items() if not isinstance(value, bool)}


def _check_backtest(inputs: GoldenInputs, task: GoldenTask) -> CaseCheck:
    case = task.backtest
    if case is None or task.engine not in ENGINES:
        raise ConfigError(f"golden task {task.name!r} has no backtest case and engine")
    engine: Engine = "vector" if task.engine == "vector" else "event"
    stored = inputs.backtests[case.name]
    computed = compute_case(
        case,
        engine,
        inputs.bars[case.data_file],
        data_sha256=inputs.data_sha256[case.data_file],
    )
    result = compare(case, computed, stored)
    pairs = [(_floats(stored.equity, "equity"), _floats(computed.equity, "equity"))]
    pairs.extend(
        (_floats(stored.trades, column), _floats(computed.trades, column))
        for column, kind in _TRADE_KINDS.items()
        if kind == "float"
    )
    wanted = _numeric_metrics(stored.metrics)
    got = _numeric_metrics(computed.metrics)
    names = [name for name in wanted if name in got]
    pairs.append(
        (
            np.array([wanted[name] for name in names], dtype=np.float64),
            np.array([got[name] for name in names], dtype=np.float64),
        )
    )
    values, largest_abs, largest_rel = _largest(pairs)
    chart = None
    title = f"backtests {case.name} [{engine}]"
    tables = {"equity": (stored.equity, computed.equity, _EQUITY_KINDS)}
    tables["trades"] = (stored.trades, computed.trades, _TRADE_KINDS)
    for drift in result.drifts:
        if drift.part in tables and drift.first_row is not None:
            expected, actual, kinds = tables[drift.part]
            if kinds.get(drift.column) in ("float", "integer"):
                chart = _series_chart(
                    "backtests",
                    f"{title}: {drift.part} {drift.column!r}",
                    drift.column,
                    _ROW_UNITS[drift.part],
                    _floats(expected, drift.column),
                    _floats(actual, drift.column),
                )
                break
    if chart is None and any(drift.part == "metrics" for drift in result.drifts):
        chart = _values_chart("backtests", f"{title}: metrics", wanted, got)
    return CaseCheck(
        suite="backtests",
        case=case.name,
        engine=engine,
        drifts=tuple(Drift.from_backtest("backtests", drift) for drift in result.drifts),
        values=values,
        max_abs_diff=largest_abs,
        max_rel_diff=largest_rel,
        chart=chart,
    )


def _row_metrics(row: pl.DataFrame) -> dict[str, float]:
    return {
        column: float(row.get_column(column).cast(pl.Float64)[0])
        for column, kind in _ROW_KINDS.items()
        if kind != "text" and column not in ("seed", "start")
    }


def _check_stress(inputs: GoldenInputs, task: GoldenTask) -> CaseCheck:
    case = task.stress
    if case is None:
        raise ConfigError(f"golden task {task.name!r} has no stress case")
    stored = inputs.stress[case.name]
    computed = compute_stress_run(
        case, inputs.scenarios[task.scenario], task.seed, inputs.bars[case.data_file]
    )
    drifts = compare_stress_run(
        case,
        task.scenario,
        task.seed,
        definition=inputs.stress_definitions[case.name],
        computed=computed,
        stored=stored,
    )
    wanted = _row_metrics(stored.row(task.scenario, task.seed))
    got = _row_metrics(computed)
    names = list(wanted)
    values, largest_abs, largest_rel = _largest(
        [
            (
                np.array([wanted[name] for name in names], dtype=np.float64),
                np.array([got[name] for name in names], dtype=np.float64),
            )
        ]
    )
    engine = str(computed.get_column("engine")[0])
    chart = None
    if any(drift.part == "metrics" and drift.column in wanted for drift in drifts):
        chart = _values_chart("stress", f"stress {task.name} [{engine}]: metrics", wanted, got)
    return CaseCheck(
        suite="stress",
        case=task.name,
        engine=engine,
        drifts=tuple(Drift.from_backtest("stress", drift) for drift in drifts),
        values=values,
        max_abs_diff=largest_abs,
        max_rel_diff=largest_rel,
        chart=chart,
    )


def check_golden_task(inputs: GoldenInputs, task: GoldenTask) -> CaseCheck:
    """Recompute one golden case from ``inputs`` and compare it with its goldens (a task).

    Raises:
        ConfigError: the task is malformed, or a stress event does not fit the bars.
    """
    if task.suite == "indicators":
        return _check_indicators(inputs, task)
    if task.suite == "backtests":
        return _check_backtest(inputs, task)
    return _check_stress(inputs, task)


# ------------------------------------------------------------------------------ the check


def run_golden_checks(
    *,
    suites: Iterable[str] | None = None,
    engines: Iterable[str] | None = None,
    executor: object = None,
    root: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RegressionRun:
    """Check the golden suites, one task per case on ``executor``; return every outcome.

    ``suites`` (default all of :data:`SUITES`) chooses what runs; ``engines``
    (default both) the engines the backtest cases are checked on; ``executor``
    is any :class:`~tradepulse.executor.Executor` (``None``: in this process);
    ``root`` the ``golden/`` folder (default :func:`golden_root`).
    ``progress(done, total)`` is called as tasks finish. Everything is loaded
    and checked before the first task starts (:func:`prepare_golden_checks`,
    then :func:`run_golden_tasks`).

    Raises:
        ConfigError: a suite or engine is unknown, or the executor is invalid.
        DataError: a data or golden file is missing or corrupted.
        TaskFailedError: a task failed on the cluster (from the Ray executor).
    """
    runner = check_executor(executor)
    started = time.perf_counter()
    inputs, tasks = prepare_golden_checks(suites=suites, engines=engines, root=root)
    return run_golden_tasks(
        inputs,
        tasks,
        executor=runner,
        progress=progress,
        load_s=time.perf_counter() - started,
    )


def run_golden_tasks(
    inputs: GoldenInputs,
    tasks: Sequence[GoldenTask],
    *,
    executor: object = None,
    progress: Callable[[int, int], None] | None = None,
    load_s: float = 0.0,
) -> RegressionRun:
    """Run prepared golden tasks on ``executor`` (``inputs`` sent once as ``shared``).

    ``inputs`` and ``tasks`` come from :func:`prepare_golden_checks`; ``load_s``
    is how long preparing took (added to the run's elapsed time).
    ``progress(done, total)`` is called as tasks finish.

    Raises:
        ConfigError: the executor is invalid.
        TaskFailedError: a task failed on the cluster (from the Ray executor).
    """
    runner = check_executor(executor)
    started = time.perf_counter()
    checks: dict[int, CaseCheck] = {}
    stats: dict[int, TaskStats] = {}
    for outcome in runner.imap_unordered(check_golden_task, list(tasks), shared=inputs):
        checks[outcome.index] = outcome.value
        stats[outcome.index] = outcome.stats
        if progress is not None:
            progress(len(checks), len(tasks))
    return RegressionRun(
        suites=inputs.suites,
        checks=tuple(checks[index] for index in range(len(tasks))),
        stats=tuple(stats[index] for index in range(len(tasks))),
        elapsed_s=load_s + time.perf_counter() - started,
        load_s=load_s,
        executor=repr(runner),
    )
