"""Golden indicator files computed on the shipped real data (``golden/indicators/``).

Each sample file gets ``<stem>.csv`` with every indicator column of
:func:`tradepulse.indicators.frame.compute_indicators` at default parameters,
and ``metadata.json`` records the inputs' sha256, the parameters and the
library versions that produced them. Floats are written with 17 significant
digits so the CSV round-trips exactly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.data.loaders import load_bars
from tradepulse.data.samples import SAMPLE_FILES, sample_data_dir
from tradepulse.errors import DataError
from tradepulse.indicators.frame import IndicatorConfig, compute_indicators, indicator_columns

__all__ = [
    "ABSOLUTE_TOLERANCE",
    "RELATIVE_TOLERANCE",
    "GoldenDrift",
    "check_indicator_goldens",
    "compare_indicator_frames",
    "compute_indicator_golden",
    "golden_root",
    "indicator_golden_path",
    "read_indicator_golden",
    "update_indicator_goldens",
]

#: Relative tolerance of the comparison: the kernels are deterministic, so any
#: drift beyond floating-point noise from a different BLAS/FFT build is a change.
RELATIVE_TOLERANCE = 1e-9
#: Absolute tolerance, for values at or near zero only (in the column's own unit).
ABSOLUTE_TOLERANCE = 1e-12
_TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class GoldenDrift:
    """A golden column that no longer matches.

    ``first_row`` is the first row (bar) that differs, ``mismatches`` how many
    do; ``max_abs_diff`` and ``max_rel_diff`` are the largest differences over
    the differing rows of a float column (``None`` for labels and missing values).
    """

    file: str
    column: str
    mismatches: int
    first_row: int
    expected: str
    actual: str
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None

    def __str__(self) -> str:
        return (
            f"{self.file}: column {self.column!r} differs in {self.mismatches} rows "
            f"(first at row {self.first_row}: expected {self.expected}, got {self.actual})"
        )


def golden_root() -> Path:
    """Return the ``golden/`` folder of the clone (beside ``golden/data``)."""
    return sample_data_dir().parent


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compute(symbol: str, path: Path) -> pl.DataFrame:
    bars = load_bars(path, symbol=symbol)
    return compute_indicators(bars.drop("symbol"), IndicatorConfig())


def compute_indicator_golden(bars: pl.DataFrame) -> pl.DataFrame:
    """Return the golden indicator frame of ``bars`` (one instrument) as it is stored.

    Every indicator at default parameters, ``ts`` as ISO-8601 UTC text (the
    form :func:`read_indicator_golden` returns). A ``symbol`` column is ignored.
    """
    if "symbol" in bars.columns:
        bars = bars.drop("symbol")
    return compute_indicators(bars, IndicatorConfig()).with_columns(
        pl.col("ts").dt.strftime(_TS_FORMAT)
    )


def indicator_golden_path(data_file: str, root: Path | None = None) -> Path:
    """Return the golden indicator file of shipped data file ``data_file`` under ``root``."""
    return (root or golden_root()) / "indicators" / f"{Path(data_file).stem}.csv"


def read_indicator_golden(path: Path) -> pl.DataFrame:
    """Read a golden indicator file.

    Raises:
        DataError: the file is missing or unreadable (the message says how to
            regenerate it).
    """
    if not path.is_file():
        raise DataError(f"golden file {path} is missing; run `make golden-update`")
    try:
        return pl.read_csv(path, try_parse_dates=False, infer_schema_length=None)
    except pl.exceptions.PolarsError as error:
        raise DataError(
            f"golden file {path} is corrupted (unreadable CSV: {error}); run `make golden-update`"
        ) from None


def update_indicator_goldens(root: Path | None = None) -> list[Path]:
    """Recompute and write every golden indicator file; return the paths written."""
    root = root or golden_root()
    data_dir = root / "data"
    out_dir = root / "indicators"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    files: dict[str, object] = {}
    for symbol, name in SAMPLE_FILES.items():
        source = data_dir / name
        frame = _compute(symbol, source)
        target = out_dir / f"{Path(name).stem}.csv"
        frame.write_csv(target, float_precision=None, datetime_format=_TS_FORMAT)
        written.append(target)
        files[target.name] = {
            "symbol": symbol,
            "source": f"golden/data/{name}",
            "source_sha256": _sha256(source),
            "sha256": _sha256(target),
            "rows": frame.height,
        }
    versions = {
        package: importlib.metadata.version(package)
        for package in ("tradepulse", "numpy", "polars", "numba", "pot", "scipy")
    }
    metadata = {
        "description": "Every indicator at default parameters on the shipped daily data.",
        "generated_by": "make golden-update (tradepulse golden update)",
        "parameters": asdict(IndicatorConfig()),
        "columns": indicator_columns(),
        "comparison": {"rtol": RELATIVE_TOLERANCE, "atol": ABSOLUTE_TOLERANCE, "phase": "exact"},
        "library_versions": versions,
        "files": files,
    }
    meta_path = out_dir / "metadata.json"
    meta_path.write_text(json.dumps(metadata, indent=2) + "\n")
    written.append(meta_path)
    return written


def _largest(
    expected: NDArray[np.float64], actual: NDArray[np.float64]
) -> tuple[float | None, float | None]:
    """Return the largest absolute and relative differences over the finite pairs."""
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(actual - expected)
        rel = diff / np.abs(expected)
    finite_diff = diff[np.isfinite(diff)]
    finite_rel = rel[np.isfinite(rel)]
    return (
        float(finite_diff.max()) if finite_diff.size else None,
        float(finite_rel.max()) if finite_rel.size else None,
    )


def compare_indicator_frames(
    file: str, expected: pl.DataFrame, actual: pl.DataFrame
) -> list[GoldenDrift]:
    """Compare a golden indicator frame with a recomputed one; return the drifted columns.

    Floats match within `RELATIVE_TOLERANCE` (plus `ABSOLUTE_TOLERANCE` near
    zero) and NaN must stay NaN; every other column (``ts``, ``phase``) matches
    exactly as text.
    """
    return _compare(file, expected, actual)


def _compare(file: str, expected: pl.DataFrame, actual: pl.DataFrame) -> list[GoldenDrift]:
    drifts: list[GoldenDrift] = []
    if expected.height != actual.height:
        drifts.append(GoldenDrift(file, "<rows>", 1, 0, str(expected.height), str(actual.height)))
        return drifts
    for column in expected.columns:
        if column not in actual.columns:
            drifts.append(GoldenDrift(file, column, expected.height, 0, "column", "missing"))
            continue
        exp = expected.get_column(column)
        act = actual.get_column(column)
        if exp.dtype.is_float() or act.dtype.is_float():
            e = exp.cast(pl.Float64).to_numpy()
            a = act.cast(pl.Float64).to_numpy()
            same_null = np.isnan(e) == np.isnan(a)
            close = np.isclose(
                a, e, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE, equal_nan=True
            )
            bad = np.flatnonzero(~(same_null & close))
            largest = _largest(e[bad], a[bad])
        else:
            e_list = exp.cast(pl.Utf8).to_list()
            a_list = act.cast(pl.Utf8).to_list()
            bad = np.flatnonzero([x != y for x, y in zip(e_list, a_list, strict=True)])
            largest = (None, None)
        if bad.size:
            row = int(bad[0])
            drifts.append(
                GoldenDrift(
                    file, column, int(bad.size), row, str(exp[row]), str(act[row]), *largest
                )
            )
    return drifts


def check_indicator_goldens(root: Path | None = None) -> list[GoldenDrift]:
    """Recompute every golden indicator file and return the drifts (empty: all match)."""
    root = root or golden_root()
    drifts: list[GoldenDrift] = []
    for symbol, name in SAMPLE_FILES.items():
        target = indicator_golden_path(name, root)
        expected = read_indicator_golden(target)
        actual = compute_indicator_golden(load_bars(root / "data" / name, symbol=symbol))
        drifts.extend(_compare(target.name, expected, actual))
    return drifts
