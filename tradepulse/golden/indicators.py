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

from tradepulse.data.loaders import load_bars
from tradepulse.data.samples import SAMPLE_FILES, sample_data_dir
from tradepulse.errors import DataError
from tradepulse.indicators.frame import IndicatorConfig, compute_indicators, indicator_columns

__all__ = [
    "RELATIVE_TOLERANCE",
    "GoldenDrift",
    "check_indicator_goldens",
    "golden_root",
    "update_indicator_goldens",
]

#: Relative tolerance of the comparison: the kernels are deterministic, so any
#: drift beyond floating-point noise from a different BLAS/FFT build is a change.
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class GoldenDrift:
    """A golden column that no longer matches."""

    file: str
    column: str
    mismatches: int
    first_row: int
    expected: str
    actual: str

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
        frame.write_csv(target, float_precision=None, datetime_format="%Y-%m-%dT%H:%M:%SZ")
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
        else:
            e_list = exp.cast(pl.Utf8).to_list()
            a_list = act.cast(pl.Utf8).to_list()
            bad = np.flatnonzero([x != y for x, y in zip(e_list, a_list, strict=True)])
        if bad.size:
            row = int(bad[0])
            drifts.append(
                GoldenDrift(file, column, int(bad.size), row, str(exp[row]), str(act[row]))
            )
    return drifts


def check_indicator_goldens(root: Path | None = None) -> list[GoldenDrift]:
    """Recompute every golden indicator file and return the drifts (empty: all match)."""
    root = root or golden_root()
    drifts: list[GoldenDrift] = []
    for symbol, name in SAMPLE_FILES.items():
        target = root / "indicators" / f"{Path(name).stem}.csv"
        if not target.is_file():
            raise DataError(f"golden file {target} is missing; run `make golden-update`")
        expected = pl.read_csv(target, try_parse_dates=False, infer_schema_length=None)
        actual = _compute(symbol, root / "data" / name).with_columns(
            pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        drifts.extend(_compare(target.name, expected, actual))
    return drifts
