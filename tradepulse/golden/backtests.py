"""Golden backtests of the built-in strategies on the shipped real data (``golden/backtests/``).

Every built-in runs with its default parameters on each shipped sample file,
and ``sma_cross`` long/short also runs with a set of frictions (notional
commission, spread, fixed slippage, square-root impact, whole units, one bar of
latency) so the cost models are pinned too. Each case is a folder
``golden/backtests/<case>/`` holding:

- ``equity.csv``: ``bar, ts, equity`` per bar (equity in quote currency);
- ``trades.csv``: the trade list (columns `tradepulse.backtest.TRADE_COLUMNS`);
- ``metrics.json``: the metrics dictionary (non-finite values as the strings
  ``"NaN"``, ``"Infinity"``, ``"-Infinity"``).

``metadata.json`` records, per case, the strategy, its resolved parameters, the
frictions, the data file and its sha256, the engine that generated the case,
the library versions and the generation time (kept while the case's entry is
unchanged, so regenerating unchanged goldens changes no byte). Floats are
written in their shortest round-trip form (at most 17 significant digits), so
the files hold the computed doubles exactly.

The check is split so it can be fanned out (one task per case and engine):
:func:`golden_backtest_cases` lists the cases, :func:`run_case` recomputes one
on an engine, :func:`load_stored_case` reads its golden files and
:func:`compare` returns a :class:`CaseResult` naming every drifted column with
the first bar (or trade) and the size of the drift. Every engine a strategy
supports is checked against the same golden files: the event-driven engine
must reproduce what the vectorised engine generated.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.runner import (
    ENGINES,
    Engine,
    resolve_params,
    resolve_strategy,
    run_backtest,
)
from tradepulse.backtest.vector import DEFAULT_CASH, TRADE_COLUMNS
from tradepulse.costs.commission import CommissionModel, NotionalCommission
from tradepulse.costs.sizing import Sizing
from tradepulse.costs.slippage import FixedSlippage, SlippageModel, SpreadSlippage, SquareRootImpact
from tradepulse.data.loaders import load_bars
from tradepulse.data.samples import SAMPLE_FILES
from tradepulse.errors import ConfigError, DataError
from tradepulse.golden.indicators import golden_root

__all__ = [
    "BACKTEST_ABSOLUTE_TOLERANCE",
    "BACKTEST_RELATIVE_TOLERANCE",
    "BUILTIN_STRATEGIES",
    "BacktestCase",
    "BacktestDrift",
    "CaseResult",
    "ComputedCase",
    "StoredCase",
    "check_backtest_goldens",
    "check_case",
    "compare",
    "compute_case",
    "golden_backtest_cases",
    "load_stored_case",
    "run_case",
    "update_backtest_goldens",
]

#: Relative tolerance of every float comparison (equity, trade prices and P&L, metrics).
BACKTEST_RELATIVE_TOLERANCE: Final = 1e-9
#: Absolute tolerance, for values at or near zero only (in the column's own unit).
BACKTEST_ABSOLUTE_TOLERANCE: Final = 1e-12
#: The built-in strategies pinned by golden backtests.
BUILTIN_STRATEGIES: Final = ("sma_cross", "rsi_reversion", "bollinger_breakout", "geometry_phase")

_FOLDER: Final = "backtests"
_EQUITY_FILE: Final = "equity.csv"
_TRADES_FILE: Final = "trades.csv"
_METRICS_FILE: Final = "metrics.json"
_METADATA_FILE: Final = "metadata.json"
_TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_VERSIONED_PACKAGES: Final = ("tradepulse", "numpy", "polars", "numba")
_FIX: Final = "regenerate with `tradepulse golden update` (make golden-update) and review the diff"

# How each stored column is compared: "integer" and "text" exactly, "float" with tolerances.
_EQUITY_KINDS: Final[dict[str, str]] = {"bar": "integer", "ts": "text", "equity": "float"}
_TRADE_KINDS: Final[dict[str, str]] = {column: "float" for column in TRADE_COLUMNS} | {
    "entry_bar": "integer",
    "exit_bar": "integer",
    "entry_ts": "text",
    "exit_ts": "text",
    "side": "text",
    "is_open": "text",
}
# Metadata keys that define a case: a stored entry that differs in one is stale.
_DEFINITION_KEYS: Final = ("strategy", "params", "data", "data_sha256", "cash", "frictions")


@dataclass(frozen=True, slots=True)
class BacktestCase:
    """One golden backtest: a strategy, its parameters, a shipped data file, frictions.

    ``params`` holds only the values that differ from the strategy's defaults;
    ``commission`` and ``slippage`` are cost models (empty: none); ``engines``
    lists the engines checked against the golden files, the first of which
    generates them.
    """

    name: str
    strategy: str
    data_file: str
    symbol: str
    params: dict[str, object] = field(default_factory=dict)
    cash: float = DEFAULT_CASH
    commission: tuple[CommissionModel, ...] = ()
    slippage: tuple[SlippageModel, ...] = ()
    sizing: Sizing = "fractional"
    latency_bars: int = 0
    engines: tuple[Engine, ...] = ENGINES

    @property
    def reference_engine(self) -> Engine:
        """Return the engine that generates the golden files."""
        return self.engines[0]

    def frictions(self) -> dict[str, Any]:
        """Return the frictions as plain data (model name and parameters) for metadata."""
        return {
            "commission": [_describe_model(model) for model in self.commission],
            "slippage": [_describe_model(model) for model in self.slippage],
            "sizing": self.sizing,
            "latency_bars": self.latency_bars,
        }


@dataclass(frozen=True, slots=True)
class ComputedCase:
    """A case recomputed on one engine, in the form of its golden files.

    ``definition`` holds the metadata keys that define the case (strategy,
    resolved parameters, data file and its sha256, cash, frictions);
    ``equity`` and ``trades`` have the golden files' columns (timestamps as
    ISO-8601 text); ``metrics`` is the metrics dictionary.
    """

    case: str
    engine: Engine
    definition: dict[str, Any]
    equity: pl.DataFrame
    trades: pl.DataFrame
    metrics: dict[str, float | int]
    elapsed_seconds: float


@dataclass(frozen=True, slots=True)
class StoredCase:
    """A case's golden files as read back (``entry`` is its ``metadata.json`` entry)."""

    case: str
    entry: dict[str, Any]
    equity: pl.DataFrame
    trades: pl.DataFrame
    metrics: dict[str, float | int]


@dataclass(frozen=True, slots=True)
class BacktestDrift:
    """One golden column (or metric, or metadata key) that the recomputation no longer matches.

    ``part`` is ``equity``, ``trades``, ``metrics`` or ``metadata``; ``first_row``
    the first bar (equity) or trade number (trades) that differs (``None`` for
    metrics and metadata); ``mismatches`` how many rows differ; ``expected`` and
    ``actual`` the golden and recomputed values there; ``max_abs_diff`` and
    ``max_rel_diff`` the largest differences over the numeric rows (``None`` for
    text and missing values).
    """

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

    def __str__(self) -> str:
        where = {"equity": "bar", "trades": "trade"}.get(self.part, "row")
        first = "" if self.first_row is None else f"first at {where} {self.first_row}: "
        count = "" if self.first_row is None else f" in {self.mismatches} {where}s"
        size = ""
        if self.max_abs_diff is not None and self.max_rel_diff is not None:
            size = f"; max |diff| {self.max_abs_diff:.3g}, max rel {self.max_rel_diff:.3g}"
        return (
            f"{self.case} [{self.engine}] {self.part} {self.column!r} differs{count} "
            f"({first}expected {self.expected}, got {self.actual}{size})"
        )


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of checking one case on one engine (no drift: it passed)."""

    case: str
    engine: Engine
    drifts: tuple[BacktestDrift, ...]
    elapsed_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Return whether the recomputation matched every golden value."""
        return not self.drifts


def _describe_model(model: object) -> dict[str, Any]:
    values = asdict(model)  # type: ignore[call-overload]  # cost models are dataclasses
    return {"model": type(model).__name__, **values}


def _engines_of(strategy: str) -> tuple[Engine, ...]:
    if resolve_strategy(strategy).has_signals:
        return ENGINES
    return ("event",)


def golden_backtest_cases() -> list[BacktestCase]:
    """Return every golden backtest case, in a fixed order.

    Each built-in strategy at its defaults on each shipped sample file, then
    ``sma_cross`` long/short with frictions (0.1% notional commission, 2 bps
    spread, 1 bp slippage, square-root impact of 100 bps at full participation,
    whole units, one bar of latency) on each file.
    """
    cases: list[BacktestCase] = []
    for symbol, data_file in SAMPLE_FILES.items():
        stem = Path(data_file).stem
        cases.extend(
            BacktestCase(
                name=f"{strategy}-{stem}",
                strategy=strategy,
                data_file=data_file,
                symbol=symbol,
                engines=_engines_of(strategy),
            )
            for strategy in BUILTIN_STRATEGIES
        )
        cases.append(
            BacktestCase(
                name=f"sma_cross_long_short_costs-{stem}",
                strategy="sma_cross",
                data_file=data_file,
                symbol=symbol,
                params={"direction": "long_short"},
                commission=(NotionalCommission(rate=0.001),),
                slippage=(
                    SpreadSlippage(spread_bps=2.0),
                    FixedSlippage(slippage_bps=1.0),
                    SquareRootImpact(impact_bps=100.0),
                ),
                sizing="whole",
                latency_bars=1,
                engines=_engines_of("sma_cross"),
            )
        )
    return cases


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_case(case: BacktestCase, engine: Engine, *, root: Path | None = None) -> ComputedCase:
    """Recompute ``case`` on ``engine`` from the shipped data under ``root`` (``golden/``).

    Raises:
        ConfigError: ``engine`` is not one of the case's engines.
        DataError: the data file is missing or unreadable.
    """
    _check_engine(case, engine)
    source = (root or golden_root()) / "data" / case.data_file
    if not source.is_file():
        raise DataError(f"golden data file {source} is missing; run from a TradePulse clone")
    started = time.perf_counter()
    bars = load_bars(source, symbol=case.symbol)
    computed = compute_case(case, engine, bars, data_sha256=_sha256(source))
    return replace(computed, elapsed_seconds=time.perf_counter() - started)


def _check_engine(case: BacktestCase, engine: Engine) -> None:
    if engine not in case.engines:
        raise ConfigError(
            f"golden case {case.name!r} is checked on {', '.join(case.engines)}; got {engine!r}"
        )


def compute_case(
    case: BacktestCase, engine: Engine, bars: pl.DataFrame, *, data_sha256: str
) -> ComputedCase:
    """Recompute ``case`` on ``engine`` from ``bars`` already loaded (its data file's bars).

    ``data_sha256`` is the sha256 of the file ``bars`` came from (recorded in
    the case's definition). This is what a cluster task runs: the bars travel
    once as the job's shared data, the task reads no file.

    Raises:
        ConfigError: ``engine`` is not one of the case's engines.
    """
    _check_engine(case, engine)
    started = time.perf_counter()
    result = run_backtest(
        bars,
        case.strategy,
        case.params,
        engine=engine,
        cash=case.cash,
        commission=case.commission or None,
        slippage=case.slippage or None,
        sizing=case.sizing,
        latency_bars=case.latency_bars,
    )
    elapsed = time.perf_counter() - started
    ts = pl.Series("ts", result.ts).cast(pl.Datetime("ns", "UTC")).dt.strftime(_TS_FORMAT)
    equity = pl.DataFrame(
        {
            "bar": pl.Series("bar", np.arange(result.ts.shape[0], dtype=np.int64)),
            "ts": ts,
            "equity": pl.Series("equity", np.asarray(result.equity, dtype=np.float64)),
        }
    )
    trades = result.trades.select(TRADE_COLUMNS).with_columns(
        pl.col("entry_ts").dt.strftime(_TS_FORMAT),
        pl.col("exit_ts").dt.strftime(_TS_FORMAT),
        pl.col("side").cast(pl.String),
        pl.col("is_open").cast(pl.String),
    )
    params = resolve_params(resolve_strategy(case.strategy), case.params).to_dict()
    definition = {
        "strategy": case.strategy,
        "params": params,
        "data": f"golden/data/{case.data_file}",
        "data_sha256": data_sha256,
        "cash": case.cash,
        "frictions": case.frictions(),
    }
    return ComputedCase(
        case=case.name,
        engine=engine,
        definition=_plain(definition),
        equity=equity,
        trades=trades,
        metrics=dict(result.metrics.to_dict()),
        elapsed_seconds=elapsed,
    )


def _plain(value: Any) -> Any:
    """Return ``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


# ------------------------------------------------------------------------------ files


def _encode_metric(value: float | int) -> float | int | str:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _decode_metric(path: Path, name: str, value: object) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _corrupted(path, f"metric {name!r} is {value!r}, not a number")
    if isinstance(value, str):
        if value not in ("NaN", "Infinity", "-Infinity"):
            raise _corrupted(path, f"metric {name!r} is {value!r}, not a number")
        return float(value)
    return value


def _corrupted(path: Path, reason: str) -> DataError:
    return DataError(f"golden file {path} is corrupted ({reason}); {_FIX}")


def _missing(path: Path) -> DataError:
    return DataError(f"golden file {path} is missing; {_FIX}")


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _missing(path)
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _corrupted(path, f"not valid JSON: {error}") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("cases"), dict):
        raise _corrupted(path, "no 'cases' object")
    return metadata


def _read_table(path: Path, kinds: Mapping[str, str]) -> pl.DataFrame:
    if not path.is_file():
        raise _missing(path)
    try:
        raw = pl.read_csv(path, infer_schema_length=0)
    except pl.exceptions.PolarsError as error:
        raise _corrupted(path, f"unreadable CSV: {error}") from None
    absent = [column for column in kinds if column not in raw.columns]
    if absent:
        raise _corrupted(path, f"column(s) {', '.join(map(repr, absent))} missing")
    columns = []
    for column, kind in kinds.items():
        dtype = {"integer": pl.Int64, "float": pl.Float64, "text": pl.String}[kind]
        try:
            columns.append(raw.get_column(column).cast(dtype, strict=True))
        except pl.exceptions.PolarsError:
            raise _corrupted(path, f"column {column!r} holds a non-{kind} value") from None
    return pl.DataFrame(columns)


def _read_metrics(path: Path) -> dict[str, float | int]:
    if not path.is_file():
        raise _missing(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _corrupted(path, f"not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise _corrupted(path, "not a JSON object")
    return {str(name): _decode_metric(path, str(name), value) for name, value in raw.items()}


def load_stored_case(case: BacktestCase, *, root: Path | None = None) -> StoredCase:
    """Read ``case``'s golden files and its metadata entry under ``root`` (``golden/``).

    Raises:
        DataError: a golden file is missing or corrupted (the message names the
            file and says how to regenerate it).
    """
    folder = (root or golden_root()) / _FOLDER
    metadata_path = folder / _METADATA_FILE
    entry = _read_metadata(metadata_path)["cases"].get(case.name)
    if not isinstance(entry, dict):
        raise DataError(f"golden file {metadata_path} has no entry for case {case.name!r}; {_FIX}")
    case_dir = folder / case.name
    return StoredCase(
        case=case.name,
        entry=entry,
        equity=_read_table(case_dir / _EQUITY_FILE, _EQUITY_KINDS),
        trades=_read_table(case_dir / _TRADES_FILE, _TRADE_KINDS),
        metrics=_read_metrics(case_dir / _METRICS_FILE),
    )


def _write_case(computed: ComputedCase, case_dir: Path) -> list[Path]:
    case_dir.mkdir(parents=True, exist_ok=True)
    equity_path = case_dir / _EQUITY_FILE
    trades_path = case_dir / _TRADES_FILE
    metrics_path = case_dir / _METRICS_FILE
    computed.equity.write_csv(equity_path, float_precision=None)
    computed.trades.write_csv(trades_path, float_precision=None)
    metrics = {name: _encode_metric(value) for name, value in computed.metrics.items()}
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return [equity_path, trades_path, metrics_path]


def update_backtest_goldens(
    root: Path | None = None, *, cases: Sequence[BacktestCase] | None = None
) -> list[Path]:
    """Recompute and write the golden backtests; return the paths written.

    Each case is generated on its reference engine (vectorised when the
    strategy has a ``signals()`` form). ``cases`` limits the run to some cases
    (default: all); the metadata entries of the other cases are kept. A case
    whose entry is unchanged keeps its generation time, so regenerating
    unchanged goldens rewrites identical bytes.

    A full run (``cases`` not given) also deletes the folders of cases that no
    longer exist. A missing or corrupted ``metadata.json`` is rewritten.

    Raises:
        DataError: a data file is missing or unreadable.
    """
    root = root or golden_root()
    folder = root / _FOLDER
    metadata_path = folder / _METADATA_FILE
    previous = _previous_entries(metadata_path)
    selected = list(cases) if cases is not None else golden_backtest_cases()
    versions = {package: importlib.metadata.version(package) for package in _VERSIONED_PACKAGES}
    now = datetime.now(UTC).strftime(_TS_FORMAT)
    entries: dict[str, Any] = {}
    written: list[Path] = []
    for case in selected:
        computed = run_case(case, case.reference_engine, root=root)
        paths = _write_case(computed, folder / case.name)
        written.extend(paths)
        entry: dict[str, Any] = {
            **computed.definition,
            "engine": computed.engine,
            "checked_engines": list(case.engines),
            "library_versions": versions,
            "files": {path.name: _describe_file(path) for path in paths},
        }
        entry["generated"] = _generated(previous.get(case.name), _plain(entry), now)
        entries[case.name] = entry
    known = [case.name for case in golden_backtest_cases()]
    merged = {name: entries.get(name, previous.get(name)) for name in known}
    merged.update({name: entry for name, entry in entries.items() if name not in merged})
    metadata = {
        "description": (
            "Built-in strategies backtested on the shipped daily data: per-bar equity, "
            "trades and metrics per case."
        ),
        "generated_by": "make golden-update (tradepulse golden update)",
        "comparison": {
            "rtol": BACKTEST_RELATIVE_TOLERANCE,
            "atol": BACKTEST_ABSOLUTE_TOLERANCE,
            "integers_and_text": "exact",
            "engines": "every engine in a case's checked_engines reproduces its files",
        },
        "files": {
            _EQUITY_FILE: "bar, ts, equity: equity (quote currency) at each bar's close",
            _TRADES_FILE: "one row per trade opened: " + ", ".join(TRADE_COLUMNS),
            _METRICS_FILE: "tradepulse.metrics.Metrics as a dictionary (NaN as the string 'NaN')",
        },
        "cases": {name: entry for name, entry in merged.items() if entry is not None},
    }
    folder.mkdir(parents=True, exist_ok=True)
    metadata_path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    written.append(metadata_path)
    if cases is None:
        _remove_stale_cases(folder, set(known))
    return written


def _previous_entries(metadata_path: Path) -> dict[str, Any]:
    """Return the existing metadata's case entries (none when it is missing or corrupted)."""
    try:
        cases: dict[str, Any] = _read_metadata(metadata_path)["cases"]
    except DataError:
        return {}
    return cases


def _remove_stale_cases(folder: Path, known: set[str]) -> None:
    """Delete the folders of cases that no longer exist (only if they hold nothing else)."""
    ours = {_EQUITY_FILE, _TRADES_FILE, _METRICS_FILE}
    for case_dir in sorted(folder.iterdir()):
        if not case_dir.is_dir() or case_dir.name in known:
            continue
        files = list(case_dir.iterdir())
        if all(path.is_file() and path.name in ours for path in files):
            for path in files:
                path.unlink()
            case_dir.rmdir()


def _describe_file(path: Path) -> dict[str, Any]:
    description: dict[str, Any] = {"sha256": _sha256(path)}
    if path.suffix == ".csv":
        description["rows"] = pl.read_csv(path, infer_schema_length=0).height
    return description


def _generated(previous: object, entry: Mapping[str, Any], now: str) -> str:
    """Return the previous generation time when nothing else in the entry changed, else ``now``."""
    if not isinstance(previous, dict):
        return now
    earlier = previous.get("generated")
    rest = {key: value for key, value in previous.items() if key != "generated"}
    return earlier if isinstance(earlier, str) and rest == entry else now


# ------------------------------------------------------------------------------ comparison


@dataclass(frozen=True, slots=True)
class _Where:
    """The case, engine and part (file) a drift belongs to."""

    case: str
    engine: str
    part: str

    def drift(
        self,
        column: str,
        *,
        expected: str,
        actual: str,
        mismatches: int = 1,
        first_row: int | None = None,
        max_abs_diff: float | None = None,
        max_rel_diff: float | None = None,
    ) -> BacktestDrift:
        return BacktestDrift(
            case=self.case,
            engine=self.engine,
            part=self.part,
            column=column,
            mismatches=mismatches,
            first_row=first_row,
            expected=expected,
            actual=actual,
            max_abs_diff=max_abs_diff,
            max_rel_diff=max_rel_diff,
        )


def _float_drift(
    where: _Where, column: str, expected: NDArray[np.float64], actual: NDArray[np.float64]
) -> BacktestDrift | None:
    close = np.isclose(
        actual,
        expected,
        rtol=BACKTEST_RELATIVE_TOLERANCE,
        atol=BACKTEST_ABSOLUTE_TOLERANCE,
        equal_nan=True,
    )
    bad = np.flatnonzero(~close)
    if not bad.size:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(actual[bad] - expected[bad])
        rel = diff / np.abs(expected[bad])
    finite_diff = diff[np.isfinite(diff)]
    finite_rel = rel[np.isfinite(rel)]
    row = int(bad[0])
    return where.drift(
        column,
        expected=repr(float(expected[row])),
        actual=repr(float(actual[row])),
        mismatches=int(bad.size),
        first_row=row,
        max_abs_diff=float(finite_diff.max()) if finite_diff.size else None,
        max_rel_diff=float(finite_rel.max()) if finite_rel.size else None,
    )


def _exact_drift(
    where: _Where, column: str, expected: pl.Series, actual: pl.Series
) -> BacktestDrift | None:
    expected_values = expected.cast(pl.String).to_list()
    actual_values = actual.cast(pl.String).to_list()
    bad = [
        row
        for row, (wanted, got) in enumerate(zip(expected_values, actual_values, strict=True))
        if wanted != got
    ]
    if not bad:
        return None
    row = bad[0]
    return where.drift(
        column,
        expected=str(expected_values[row]),
        actual=str(actual_values[row]),
        mismatches=len(bad),
        first_row=row,
    )


def _compare_table(
    where: _Where, kinds: Mapping[str, str], expected: pl.DataFrame, actual: pl.DataFrame
) -> list[BacktestDrift]:
    drifts: list[BacktestDrift] = []
    if expected.height != actual.height:
        drifts.append(
            where.drift("<rows>", expected=str(expected.height), actual=str(actual.height))
        )
    rows = min(expected.height, actual.height)
    for column, kind in kinds.items():
        if column not in actual.columns:
            drifts.append(where.drift(column, expected="a column", actual="missing"))
            continue
        wanted = expected.get_column(column).head(rows)
        got = actual.get_column(column).head(rows)
        if kind == "float":
            drift = _float_drift(
                where,
                column,
                wanted.cast(pl.Float64).to_numpy(),
                got.cast(pl.Float64).to_numpy(),
            )
        else:
            drift = _exact_drift(where, column, wanted, got)
        if drift is not None:
            drifts.append(drift)
    return drifts


def _compare_metrics(
    where: _Where, expected: Mapping[str, float | int], actual: Mapping[str, float | int]
) -> list[BacktestDrift]:
    drifts: list[BacktestDrift] = []
    for name in [*expected, *(name for name in actual if name not in expected)]:
        if name not in actual or name not in expected:
            drifts.append(
                where.drift(
                    name,
                    expected=repr(expected.get(name, "missing")),
                    actual=repr(actual.get(name, "missing")),
                )
            )
            continue
        wanted, got = expected[name], actual[name]
        if isinstance(wanted, int) and isinstance(got, int):
            if wanted != got:
                drifts.append(
                    where.drift(
                        name,
                        expected=repr(wanted),
                        actual=repr(got),
                        max_abs_diff=float(abs(got - wanted)),
                        max_rel_diff=abs(got - wanted) / abs(wanted) if wanted else math.inf,
                    )
                )
            continue
        drift = _float_drift(
            where, name, np.array([wanted], dtype=np.float64), np.array([got], dtype=np.float64)
        )
        if drift is not None:
            drifts.append(replace(drift, first_row=None))
    return drifts


def _compare_definition(
    where: _Where, expected: Mapping[str, Any], actual: Mapping[str, Any]
) -> list[BacktestDrift]:
    return [
        where.drift(
            key,
            expected=json.dumps(expected.get(key), sort_keys=True),
            actual=json.dumps(actual.get(key), sort_keys=True),
        )
        for key in _DEFINITION_KEYS
        if expected.get(key) != actual.get(key)
    ]


def compare(case: BacktestCase, computed: ComputedCase, stored: StoredCase) -> CaseResult:
    """Compare a recomputed case with its golden files; return every drift found.

    Floats match within `BACKTEST_RELATIVE_TOLERANCE` (plus
    `BACKTEST_ABSOLUTE_TOLERANCE` near zero; NaN matches NaN); integers, text
    and booleans match exactly; the case definition (strategy, resolved
    parameters, data file and its sha256, cash, frictions) must equal the one
    recorded in ``metadata.json``.
    """
    engine = computed.engine
    drifts = [
        *_compare_definition(
            _Where(case.name, engine, "metadata"), stored.entry, computed.definition
        ),
        *_compare_table(
            _Where(case.name, engine, "equity"), _EQUITY_KINDS, stored.equity, computed.equity
        ),
        *_compare_table(
            _Where(case.name, engine, "trades"), _TRADE_KINDS, stored.trades, computed.trades
        ),
        *_compare_metrics(_Where(case.name, engine, "metrics"), stored.metrics, computed.metrics),
    ]
    return CaseResult(
        case=case.name,
        engine=engine,
        drifts=tuple(drifts),
        elapsed_seconds=computed.elapsed_seconds,
    )


def check_case(case: BacktestCase, engine: Engine, *, root: Path | None = None) -> CaseResult:
    """Recompute ``case`` on ``engine`` and compare it with its golden files.

    Raises:
        DataError: a golden or data file is missing or corrupted.
        ConfigError: ``engine`` is not one of the case's engines.
    """
    stored = load_stored_case(case, root=root)
    return compare(case, run_case(case, engine, root=root), stored)


def check_backtest_goldens(
    root: Path | None = None, *, engines: Iterable[Engine] | None = None
) -> list[CaseResult]:
    """Check every golden backtest on every engine its strategy supports (or on ``engines``).

    Raises:
        DataError: a golden or data file is missing or corrupted.
        ConfigError: an engine name is unknown.
    """
    wanted = tuple(engines) if engines is not None else ENGINES
    unknown = [engine for engine in wanted if engine not in ENGINES]
    if unknown:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}; got {unknown[0]!r}")
    return [
        check_case(case, engine, root=root)
        for case in golden_backtest_cases()
        for engine in case.engines
        if engine in wanted
    ]
