"""Golden stress results: a strategy under every shipped scenario and seed (``golden/stress/``).

A :class:`StressGoldenCase` is one strategy with its parameters on one shipped
data file, run under every shipped stress scenario (the package's copies of
``backtest/configs/stress/*.yaml``) with each of its seeds, exactly as
``tradepulse stress`` runs a cell (:func:`tradepulse.stress.runner.run_stress_task`).
Each case is one file ``golden/stress/<case>.csv`` with one row per scenario
and seed: the scenario, its kind, the seed, the event's first bar and its
timestamp, the engine, every metric of the run (the columns of
:class:`tradepulse.metrics.Metrics`) and the promotion gate's verdict
(``passed``, ``reason``).

``metadata.json`` records, per case, the strategy and its resolved parameters,
the cash, the data file and its sha256, the seeds, every scenario's file, its
sha256 and its loaded definition (transform, thresholds, engine settings,
frictions), the library versions, each file's sha256 and row count, and the
generation time (kept while the entry is unchanged, so regenerating unchanged
goldens changes no byte).

A check compares one run (scenario and seed) per task: :func:`compute_stress_run`
recomputes it from bars already loaded and :func:`compare_stress_run` returns
its drifts (as :class:`~tradepulse.golden.BacktestDrift` records of part
``metrics`` or ``metadata``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import polars as pl

from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.backtest.vector import DEFAULT_CASH
from tradepulse.data.loaders import load_bars
from tradepulse.data.samples import SAMPLE_FILES
from tradepulse.errors import DataError
from tradepulse.golden.backtests import (
    BACKTEST_ABSOLUTE_TOLERANCE,
    BACKTEST_RELATIVE_TOLERANCE,
    BacktestDrift,
    _compare_table,
    _generated,
    _plain,
    _read_table,
    _Where,
)
from tradepulse.golden.indicators import golden_root
from tradepulse.metrics import Metrics
from tradepulse.stress.config import SHIPPED_SCENARIOS, Scenario, load_scenario
from tradepulse.stress.runner import StressJob, run_stress_task

__all__ = [
    "STRESS_ABSOLUTE_TOLERANCE",
    "STRESS_COLUMNS",
    "STRESS_RELATIVE_TOLERANCE",
    "STRESS_SEEDS",
    "StoredStressCase",
    "StressGoldenCase",
    "compare_stress_run",
    "compute_stress_run",
    "golden_stress_cases",
    "load_golden_scenarios",
    "load_stored_stress_case",
    "stress_definition",
    "update_stress_goldens",
]

#: Relative tolerance of every float in a stress row (the metrics).
STRESS_RELATIVE_TOLERANCE: Final = BACKTEST_RELATIVE_TOLERANCE
#: Absolute tolerance, for values at or near zero only.
STRESS_ABSOLUTE_TOLERANCE: Final = BACKTEST_ABSOLUTE_TOLERANCE
#: The seeds every golden stress case runs with.
STRESS_SEEDS: Final = (0, 1)

_FOLDER: Final = "stress"
_METADATA_FILE: Final = "metadata.json"
_TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_VERSIONED_PACKAGES: Final = ("tradepulse", "numpy", "polars", "numba")
_FIX: Final = "regenerate with `tradepulse golden update` (make golden-update) and review the diff"
# Metadata keys that define a case: a stored entry that differs in one is stale.
_DEFINITION_KEYS: Final = ("strategy", "params", "data", "data_sha256", "cash", "seeds")
_METRIC_KINDS: Final[dict[str, str]] = {
    spec.name: "integer" if spec.type in ("int", int) else "float" for spec in fields(Metrics)
}
# How each stored column is compared: "integer" and "text" exactly, "float" with tolerances.
_ROW_KINDS: Final[dict[str, str]] = {
    "scenario": "text",
    "kind": "text",
    "seed": "integer",
    "start": "integer",
    "start_ts": "text",
    "engine": "text",
    **_METRIC_KINDS,
    "passed": "text",
    "reason": "text",
}
#: The columns of a golden stress file, in order.
STRESS_COLUMNS: Final = tuple(_ROW_KINDS)


@dataclass(frozen=True, slots=True)
class StressGoldenCase:
    """One golden stress case: a strategy on a shipped data file under scenarios and seeds.

    ``params`` holds only the values that differ from the strategy's defaults;
    ``scenarios`` are names of shipped scenario files (:data:`SHIPPED_SCENARIOS`).
    """

    name: str
    strategy: str
    data_file: str
    symbol: str
    scenarios: tuple[str, ...]
    params: dict[str, object] = field(default_factory=dict)
    seeds: tuple[int, ...] = STRESS_SEEDS
    cash: float = DEFAULT_CASH

    def runs(self) -> list[tuple[str, int]]:
        """Return every ``(scenario, seed)`` run of the case, scenario by scenario."""
        return [(scenario, seed) for scenario in self.scenarios for seed in self.seeds]

    def run_name(self, scenario: str, seed: int) -> str:
        """Return the name of one run: ``<case>/<scenario>/seed<seed>``."""
        return f"{self.name}/{scenario}/seed{seed}"


@dataclass(frozen=True, slots=True)
class StoredStressCase:
    """A case's golden file as read back (``entry`` is its ``metadata.json`` entry)."""

    case: str
    entry: dict[str, Any]
    table: pl.DataFrame

    def row(self, scenario: str, seed: int) -> pl.DataFrame:
        """Return the stored row of one run (a one-row frame).

        Raises:
            DataError: the file has no row, or more than one, for that run.
        """
        found = self.table.filter((pl.col("scenario") == scenario) & (pl.col("seed") == seed))
        if found.height != 1:
            raise DataError(
                f"golden stress case {self.case!r} has {found.height} rows for scenario "
                f"{scenario!r} seed {seed} (expected 1); {_FIX}"
            )
        return found


def _shipped_scenario_names() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in SHIPPED_SCENARIOS.glob("*.yaml")))


def golden_stress_cases() -> list[StressGoldenCase]:
    """Return every golden stress case, in a fixed order.

    ``sma_cross`` at its defaults on the S&P 500 daily file under every shipped
    scenario, with seeds :data:`STRESS_SEEDS` (each scenario's event drawn at
    two places).
    """
    symbol, data_file = next(iter(SAMPLE_FILES.items()))
    return [
        StressGoldenCase(
            name=f"sma_cross-{Path(data_file).stem}",
            strategy="sma_cross",
            data_file=data_file,
            symbol=symbol,
            scenarios=_shipped_scenario_names(),
        )
    ]


def load_golden_scenarios(case: StressGoldenCase) -> dict[str, Scenario]:
    """Load the scenarios of ``case`` from the shipped scenario files, by name.

    Raises:
        ConfigError: a scenario file is missing or invalid.
    """
    return {name: load_scenario(SHIPPED_SCENARIOS / f"{name}.yaml") for name in case.scenarios}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _describe(value: Any) -> Any:
    """Return ``value`` as plain data: a dataclass becomes its type name and fields."""
    if is_dataclass(value) and not isinstance(value, type):
        described: dict[str, Any] = {"model": type(value).__name__}
        for spec in fields(value):
            described[spec.name] = _describe(getattr(value, spec.name))
        return described
    if isinstance(value, dict):
        return {str(key): _describe(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_describe(item) for item in value]
    return value


def _describe_scenario(scenario: Scenario) -> dict[str, Any]:
    source = scenario.source
    return {
        "file": f"tradepulse/stress/configs/{source.name}" if source else None,
        "sha256": _sha256(source) if source else None,
        "kind": scenario.kind,
        "transform": _describe(scenario.transform),
        "thresholds": _describe(scenario.thresholds),
        "engine": _describe(scenario.engine),
        "frictions": _describe(scenario.frictions.given()),
    }


def stress_definition(
    case: StressGoldenCase, scenarios: Mapping[str, Scenario], *, data_sha256: str
) -> dict[str, Any]:
    """Return the metadata keys that define ``case`` (as they read back from JSON).

    ``scenarios`` are the case's loaded scenarios by name; ``data_sha256`` the
    sha256 of its data file.
    """
    params = resolve_params(resolve_strategy(case.strategy), case.params).to_dict()
    definition = {
        "strategy": case.strategy,
        "params": params,
        "data": f"golden/data/{case.data_file}",
        "data_sha256": data_sha256,
        "cash": case.cash,
        "seeds": list(case.seeds),
        "scenarios": {name: _describe_scenario(scenarios[name]) for name in case.scenarios},
    }
    plain: dict[str, Any] = _plain(definition)
    return plain


def compute_stress_run(
    case: StressGoldenCase, scenario: Scenario, seed: int, bars: pl.DataFrame
) -> pl.DataFrame:
    """Run ``case``'s strategy under ``scenario`` with ``seed`` on ``bars``; return its row.

    The row has the columns :data:`STRESS_COLUMNS` (timestamps as ISO-8601
    text, ``passed`` as ``"true"``/``"false"``).

    Raises:
        ConfigError: the scenario's event does not fit the bars.
    """
    instance = resolve_strategy(case.strategy)
    job = StressJob(
        bars=bars,
        strategy=case.strategy,
        params=resolve_params(instance, case.params),
        engine=None,
        config=None,
        cash=case.cash,
        commission=None,
        slippage=None,
        sizing=None,
        latency_bars=None,
        periods_per_year=None,
    )
    outcome = run_stress_task(job, (scenario, seed))
    reasons = scenario.thresholds.failures(outcome.metrics)
    start_ts = outcome.start_ts
    values: dict[str, Any] = {
        "scenario": scenario.name,
        "kind": scenario.kind,
        "seed": seed,
        "start": outcome.start,
        "start_ts": None if start_ts is None else start_ts.strftime(_TS_FORMAT),
        "engine": outcome.engine,
        **outcome.metrics.to_dict(),
        "passed": "false" if reasons else "true",
        "reason": "; ".join(reasons),
    }
    schema = {
        column: {"integer": pl.Int64, "float": pl.Float64, "text": pl.String}[kind]
        for column, kind in _ROW_KINDS.items()
    }
    return pl.DataFrame({column: [values[column]] for column in _ROW_KINDS}, schema=schema)


def _case_file(case_name: str) -> str:
    return f"{case_name}.csv"


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"golden file {path} is missing; {_FIX}")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(
            f"golden file {path} is corrupted (not valid JSON: {error}); {_FIX}"
        ) from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("cases"), dict):
        raise DataError(f"golden file {path} is corrupted (no 'cases' object); {_FIX}")
    return metadata


def load_stored_stress_case(
    case: StressGoldenCase, *, root: Path | None = None
) -> StoredStressCase:
    """Read ``case``'s golden file and its metadata entry under ``root`` (``golden/``).

    Raises:
        DataError: a golden file is missing or corrupted (the message names the
            file and says how to regenerate it).
    """
    folder = (root or golden_root()) / _FOLDER
    metadata_path = folder / _METADATA_FILE
    entry = _read_metadata(metadata_path)["cases"].get(case.name)
    if not isinstance(entry, dict):
        raise DataError(f"golden file {metadata_path} has no entry for case {case.name!r}; {_FIX}")
    path = folder / _case_file(case.name)
    if not path.is_file():
        raise DataError(f"golden file {path} is missing; {_FIX}")
    return StoredStressCase(case=case.name, entry=entry, table=_read_table(path, _ROW_KINDS))


def compare_stress_run(
    case: StressGoldenCase,
    scenario: str,
    seed: int,
    *,
    definition: Mapping[str, Any],
    computed: pl.DataFrame,
    stored: StoredStressCase,
) -> list[BacktestDrift]:
    """Compare one recomputed run with its golden row; return every drift found.

    Floats (the metrics) match within `STRESS_RELATIVE_TOLERANCE` (plus
    `STRESS_ABSOLUTE_TOLERANCE` near zero; NaN matches NaN); integers and text
    (scenario, seed, event start, engine, trades, bars, the gate's verdict)
    match exactly; the case definition (strategy, resolved parameters, data and
    its sha256, cash, seeds, every scenario's file sha256 and definition) must
    equal the one in ``metadata.json``. Drifts are named after the run
    (:meth:`StressGoldenCase.run_name`) and have no row number.

    Raises:
        DataError: the golden file has no row for the run.
    """
    name = case.run_name(scenario, seed)
    engine = str(computed.get_column("engine")[0])
    where = _Where(name, engine, "metadata")
    drifts = [
        where.drift(
            key,
            expected=json.dumps(stored.entry.get(key), sort_keys=True),
            actual=json.dumps(definition.get(key), sort_keys=True),
        )
        for key in _DEFINITION_KEYS
        if stored.entry.get(key) != definition.get(key)
    ]
    # Only this run's scenario: a changed scenario file drifts its own runs, not the others.
    wanted = _scenario_entry(stored.entry, scenario)
    got = _scenario_entry(definition, scenario)
    if wanted != got:
        drifts.append(
            where.drift(
                f"scenarios.{scenario}",
                expected=json.dumps(wanted, sort_keys=True),
                actual=json.dumps(got, sort_keys=True),
            )
        )
    table = _compare_table(
        _Where(name, engine, "metrics"), _ROW_KINDS, stored.row(scenario, seed), computed
    )
    drifts.extend(
        BacktestDrift(
            case=drift.case,
            engine=drift.engine,
            part=drift.part,
            column=drift.column,
            mismatches=drift.mismatches,
            first_row=None,
            expected=drift.expected,
            actual=drift.actual,
            max_abs_diff=drift.max_abs_diff,
            max_rel_diff=drift.max_rel_diff,
        )
        for drift in table
    )
    return drifts


def _scenario_entry(definition: Mapping[str, Any], scenario: str) -> Any:
    scenarios = definition.get("scenarios")
    return scenarios.get(scenario) if isinstance(scenarios, dict) else None


def update_stress_goldens(
    root: Path | None = None, *, cases: Sequence[StressGoldenCase] | None = None
) -> list[Path]:
    """Recompute and write the golden stress files; return the paths written.

    ``cases`` limits the run (default: all); entries of the other cases are
    kept, and a full run deletes the files of cases that no longer exist. A case
    whose entry is unchanged keeps its generation time, so regenerating
    unchanged goldens rewrites identical bytes.

    Raises:
        DataError: a data file is missing or unreadable.
        ConfigError: a scenario file is invalid.
    """
    root = root or golden_root()
    folder = root / _FOLDER
    metadata_path = folder / _METADATA_FILE
    try:
        previous: dict[str, Any] = _read_metadata(metadata_path)["cases"]
    except DataError:
        previous = {}
    selected = list(cases) if cases is not None else golden_stress_cases()
    versions = {package: importlib.metadata.version(package) for package in _VERSIONED_PACKAGES}
    now = datetime.now(UTC).strftime(_TS_FORMAT)
    folder.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    written: list[Path] = []
    for case in selected:
        source = root / "data" / case.data_file
        if not source.is_file():
            raise DataError(f"golden data file {source} is missing; run from a TradePulse clone")
        bars = load_bars(source, symbol=case.symbol)
        scenarios = load_golden_scenarios(case)
        rows = [
            compute_stress_run(case, scenarios[scenario], seed, bars)
            for scenario, seed in case.runs()
        ]
        path = folder / _case_file(case.name)
        pl.concat(rows).write_csv(path, float_precision=None)
        written.append(path)
        entry: dict[str, Any] = {
            **stress_definition(case, scenarios, data_sha256=_sha256(source)),
            "library_versions": versions,
            "files": {path.name: {"sha256": _sha256(path), "rows": len(rows)}},
        }
        entry["generated"] = _generated(previous.get(case.name), _plain(entry), now)
        entries[case.name] = entry
    known = [case.name for case in golden_stress_cases()]
    merged = {name: entries.get(name, previous.get(name)) for name in known}
    merged.update({name: entry for name, entry in entries.items() if name not in merged})
    metadata = {
        "description": (
            "Built-in strategies under every shipped stress scenario and a few seeds: "
            "one row of metrics and the gate's verdict per scenario and seed."
        ),
        "generated_by": "make golden-update (tradepulse golden update)",
        "comparison": {
            "rtol": STRESS_RELATIVE_TOLERANCE,
            "atol": STRESS_ABSOLUTE_TOLERANCE,
            "integers_and_text": "exact",
        },
        "columns": list(STRESS_COLUMNS),
        "cases": {name: entry for name, entry in merged.items() if entry is not None},
    }
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    written.append(metadata_path)
    if cases is None:
        for stale in sorted(folder.glob("*.csv")):
            if stale.stem not in known:
                stale.unlink()
    return written
