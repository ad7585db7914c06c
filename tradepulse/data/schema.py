"""The bar contract as one pandera schema, and its validation into TradePulse errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.config import ValidationDepth, config_context

from tradepulse.errors import BarContractError, DataError, ValidationProblem

__all__ = [
    "BAR_COLUMNS",
    "BAR_DTYPES",
    "BAR_SCHEMA",
    "PRICE_COLUMNS",
    "REQUIRED_BAR_COLUMNS",
    "SYMBOL_COLUMN",
    "TS_COLUMN",
    "TS_DTYPE",
    "VOLUME_COLUMN",
    "format_cell",
    "raise_problems",
    "validate_bars",
]

TS_COLUMN: Final = "ts"
SYMBOL_COLUMN: Final = "symbol"
VOLUME_COLUMN: Final = "volume"
PRICE_COLUMNS: Final = ("open", "high", "low", "close")
#: Every contract column, in output order (``symbol`` is optional).
BAR_COLUMNS: Final = (TS_COLUMN, SYMBOL_COLUMN, *PRICE_COLUMNS, VOLUME_COLUMN)
#: The columns a bar frame must have.
REQUIRED_BAR_COLUMNS: Final = (TS_COLUMN, *PRICE_COLUMNS, VOLUME_COLUMN)
TS_DTYPE: Final = pl.Datetime("ns", "UTC")
BAR_DTYPES: Final[dict[str, pl.DataType]] = {
    TS_COLUMN: TS_DTYPE,
    SYMBOL_COLUMN: pl.String(),
    **{name: pl.Float64() for name in (*PRICE_COLUMNS, VOLUME_COLUMN)},
}

# Check names; `_rule_for` turns each into a human rule naming the bad value's context.
_NOT_FINITE: Final = "must not be NaN/inf"
_POSITIVE: Final = "must be > 0"
_NON_NEGATIVE: Final = "must be >= 0"
_HIGH_GE_LOW: Final = "high must be >= low"
_OPEN_IN_RANGE: Final = "open must be within [low, high]"
_CLOSE_IN_RANGE: Final = "close must be within [low, high]"
_TS_INCREASING: Final = "ts must be strictly increasing"

_DataFrameCheck = Callable[[PolarsData], pl.LazyFrame]


def _is_finite(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).is_finite())


def _is_positive(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key) > 0.0)


def _is_non_negative(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key) >= 0.0)


def _usable(*names: str) -> pl.Expr:
    # Rows whose inputs are null/NaN/inf/non-positive are reported by column checks;
    # cross-column checks skip them so each bad cell is reported once, clearly.
    return pl.all_horizontal([pl.col(name).is_finite() & (pl.col(name) > 0.0) for name in names])


def _ordering_check(expression: pl.Expr, *names: str) -> _DataFrameCheck:
    def check(data: PolarsData) -> pl.LazyFrame:
        ok = (expression | ~_usable(*names)).fill_null(True)
        return data.lazyframe.select(ok.alias("ok"))

    return check


def _ts_increasing(data: PolarsData) -> pl.LazyFrame:
    step = pl.col(TS_COLUMN).diff()
    if SYMBOL_COLUMN in data.lazyframe.collect_schema().names():
        step = step.over(SYMBOL_COLUMN)
    return data.lazyframe.select((step > pl.duration(nanoseconds=0)).fill_null(True).alias("ok"))


def _price_column() -> pa.Column:
    return pa.Column(
        pl.Float64,
        nullable=False,
        checks=[
            pa.Check(_is_finite, error=_NOT_FINITE),
            pa.Check(_is_positive, error=_POSITIVE),
        ],
    )


# A bar with high < low is reported once, as such, not also for its open and close.
_BETWEEN_LOW_HIGH = {
    name: ((pl.col("low") <= pl.col(name)) & (pl.col(name) <= pl.col("high")))
    | (pl.col("high") < pl.col("low"))
    for name in ("open", "close")
}

#: Cross-column checks, by the name they report; each cell they flag is in the column
#: `_FRAME_CHECK_COLUMN` names, and no two checks (nor any column check) flag the same cell.
_FRAME_CHECKS: Final[dict[str, _DataFrameCheck]] = {
    _HIGH_GE_LOW: _ordering_check(pl.col("high") >= pl.col("low"), "high", "low"),
    _OPEN_IN_RANGE: _ordering_check(_BETWEEN_LOW_HIGH["open"], "open", "low", "high"),
    _CLOSE_IN_RANGE: _ordering_check(_BETWEEN_LOW_HIGH["close"], "close", "low", "high"),
    _TS_INCREASING: _ts_increasing,
}
#: Pandera turns each failing row of a cross-column check into Python objects (slow for
#: millions of rows), so it reports at most this many per check; `validate_bars` counts the
#: rest itself. Listings of up to this many problems are exact and in row order.
_FRAME_CHECK_CAP: Final = 10_000

#: The bar contract (see DESIGN.md): dtypes, positivity, OHLC ordering, increasing ``ts``.
BAR_SCHEMA: Final = pa.DataFrameSchema(
    {
        TS_COLUMN: pa.Column(TS_DTYPE, nullable=False),
        SYMBOL_COLUMN: pa.Column(pl.String, nullable=False, required=False),
        **{name: _price_column() for name in PRICE_COLUMNS},
        VOLUME_COLUMN: pa.Column(
            pl.Float64,
            nullable=False,
            checks=[
                pa.Check(_is_finite, error=_NOT_FINITE),
                pa.Check(_is_non_negative, error=_NON_NEGATIVE),
            ],
        ),
    },
    checks=[
        pa.Check(check, error=name, n_failure_cases=_FRAME_CHECK_CAP)
        for name, check in _FRAME_CHECKS.items()
    ],
    name="bars",
    strict=False,
    ordered=False,
)

_FRAME_CHECK_COLUMN: Final = {
    _HIGH_GE_LOW: "high",
    _OPEN_IN_RANGE: "open",
    _CLOSE_IN_RANGE: "close",
    _TS_INCREASING: TS_COLUMN,
}


def format_cell(value: object) -> str:
    """Format one cell value for an error message (ISO 8601 UTC for timestamps)."""
    if value is None:
        return "null"
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.replace("+00:00", "Z") if text.endswith("+00:00") else text
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    return str(value)


_ISO_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.f"


def _cell(frame: pl.DataFrame, column: str, row: int) -> object:
    return frame.get_column(column)[row]


def _format_frame_cell(frame: pl.DataFrame, column: str, row: int) -> str:
    """Format a cell, keeping nanoseconds of timestamps (Python datetimes stop at micros)."""
    series = frame.get_column(column).slice(row, 1)
    if isinstance(series.dtype, pl.Datetime) and series[0] is not None:
        text = str(series.dt.to_string(_ISO_FORMAT)[0])
        return text + "Z" if series.dtype.time_zone == "UTC" else text
    return format_cell(series[0])


def _rule_for(frame: pl.DataFrame, check: str, column: str, row: int) -> str:
    value = _cell(frame, column, row)
    if check == "not_nullable":
        if isinstance(value, float) and math.isnan(value):
            return _NOT_FINITE
        return "must not be null (missing value)"
    if check in (_POSITIVE, _NON_NEGATIVE):
        return f"{column} {check}"
    if check == _HIGH_GE_LOW:
        return f"{_HIGH_GE_LOW} (low {_format_frame_cell(frame, 'low', row)})"
    if check in (_OPEN_IN_RANGE, _CLOSE_IN_RANGE):
        low = _format_frame_cell(frame, "low", row)
        high = _format_frame_cell(frame, "high", row)
        return f"{column} must be within [low, high] = [{low}, {high}]"
    return check


def _previous_rows(frame: pl.DataFrame) -> pl.Series:
    # Row index of the previous bar of the same symbol (null for a symbol's first bar).
    previous = pl.col("row").shift(1)
    if SYMBOL_COLUMN in frame.columns:
        previous = previous.over(SYMBOL_COLUMN)
    indexed = frame.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    return indexed.select(previous.alias("previous")).get_column("previous")


def _ts_rule(frame: pl.DataFrame, row: int, previous_rows: pl.Series) -> str:
    ts = frame.get_column(TS_COLUMN).to_physical()
    previous_row: int | None = previous_rows[row]
    if previous_row is None:  # pragma: no cover - a first bar never fails the check
        return _TS_INCREASING
    where = ""
    if SYMBOL_COLUMN in frame.columns:
        where = f" for symbol {frame.get_column(SYMBOL_COLUMN)[row]!r}"
    relation = "equals previous" if ts[previous_row] == ts[row] else "previous"
    previous = _format_frame_cell(frame, TS_COLUMN, previous_row)
    return f"{_TS_INCREASING} ({relation} {previous} at row {previous_row}{where})"


def _file_level_problems(failures: pl.DataFrame) -> tuple[list[ValidationProblem], bool]:
    # Returns the problems without a row, and whether they are structural (missing column,
    # wrong dtype): structural problems make every cell check on the frame meaningless.
    structural: list[ValidationProblem] = []
    broken: list[ValidationProblem] = []
    for failure in failures.filter(pl.col("index").is_null()).iter_rows(named=True):
        check = str(failure["check"])
        column = failure["column"]
        if check == "column_in_dataframe":
            structural.append(
                ValidationProblem(None, str(failure["failure_case"]), None, "column is missing")
            )
        elif check.startswith("dtype("):
            expected = BAR_DTYPES.get(str(column))
            found = str(failure["failure_case"])
            structural.append(
                ValidationProblem(None, str(column), found, f"dtype must be {expected}")
            )
        else:
            broken.append(ValidationProblem(None, column, None, f"check {check!r} could not run"))
    return (structural, True) if structural else (broken, False)


def _cell_failures(frame: pl.DataFrame, failures: pl.DataFrame) -> pl.DataFrame:
    order = {name: position for position, name in enumerate(frame.columns)}
    frame_check_column = pl.col("check").replace_strict(
        _FRAME_CHECK_COLUMN, default=None, return_dtype=pl.String
    )
    cells = (
        failures.filter(pl.col("index").is_not_null())
        .with_columns(
            pl.when(pl.col("schema_context") == "DataFrameSchema")
            .then(frame_check_column)
            .otherwise(pl.col("column"))
            .alias("column")
        )
        .filter(pl.col("column").is_in(frame.columns))
        .select(pl.col("index").cast(pl.Int64).alias("row"), "column", "check")
        # Pandera reports the basic checks (null, finite, sign) first: keep a cell's first.
        .unique(subset=["row", "column"], keep="first", maintain_order=True)
    )
    position = pl.col("column").replace_strict(order, default=len(order), return_dtype=pl.Int64)
    return cells.sort(pl.col("row"), position)


def _problems_from_failures(
    frame: pl.DataFrame, failures: pl.DataFrame, *, max_problems: int
) -> tuple[list[ValidationProblem], int]:
    file_level, structural = _file_level_problems(failures)
    if structural:
        return file_level[:max_problems], max(0, len(file_level) - max_problems)
    cells = _cell_failures(frame, failures)
    problems = file_level[:max_problems]
    listed_cells = cells.head(max_problems - len(problems))
    previous_rows: pl.Series | None = None
    for row, column, check in listed_cells.iter_rows():
        if check == _TS_INCREASING:
            if previous_rows is None:
                previous_rows = _previous_rows(frame)
            rule = _ts_rule(frame, row, previous_rows)
        else:
            rule = _rule_for(frame, check, column, row)
        problems.append(
            ValidationProblem(row, column, _format_frame_cell(frame, column, row), rule)
        )
    omitted = len(file_level) + cells.height - len(problems) + _uncounted(frame, failures)
    return problems, omitted


def _uncounted(frame: pl.DataFrame, failures: pl.DataFrame) -> int:
    """Count the cross-column failures beyond the cap pandera reported."""
    reported = failures.filter(pl.col("schema_context") == "DataFrameSchema").get_column("check")
    extra = 0
    for name, count in reported.value_counts().iter_rows():
        check = _FRAME_CHECKS.get(name)
        if check is not None and count >= _FRAME_CHECK_CAP:
            passed = check(PolarsData(frame.lazy())).collect().to_series()
            extra += int((~passed).sum()) - count
    return extra


def raise_problems(
    source: str,
    problems: Sequence[ValidationProblem],
    *,
    max_problems: int = 20,
    omitted: int = 0,
) -> None:
    """Raise a `BarContractError` listing at most ``max_problems`` of ``problems``.

    Do nothing when ``problems`` is empty and ``omitted`` is 0. The error's ``omitted``
    counts the problems not listed (``omitted`` plus any beyond ``max_problems``).

    Raises:
        BarContractError: when there is at least one problem.
        DataError: if ``max_problems`` < 1.
    """
    if max_problems < 1:
        raise DataError(f"max_problems must be >= 1, got {max_problems!r}")
    if problems or omitted:
        listed = list(problems[:max_problems])
        raise BarContractError(source, listed, omitted=omitted + len(problems) - len(listed))


def validate_bars(
    frame: pl.DataFrame, *, source: str = "<frame>", max_problems: int = 20
) -> pl.DataFrame:
    """Check ``frame`` against the bar contract and return it unchanged.

    The contract: ``ts`` Datetime(ns, UTC), optional ``symbol`` String, ``open``/``high``/
    ``low``/``close`` Float64 finite and > 0, ``volume`` Float64 finite and >= 0,
    ``low <= min(open, close) <= max(open, close) <= high``, ``ts`` strictly increasing
    per symbol, no null or NaN. Extra columns are allowed. Every cell is checked (lazy
    validation); each bad cell is reported once with its 0-based row, column and value.

    Raises:
        BarContractError: (a `DataValidationError`) listing at most ``max_problems``
            (at most 10,000) problems, in row order, and counting the rest in ``omitted``.
        DataError: if ``max_problems`` < 1.
    """
    if max_problems < 1:
        raise DataError(f"max_problems must be >= 1, got {max_problems!r}")
    max_problems = min(max_problems, _FRAME_CHECK_CAP)
    try:
        with config_context(
            validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA
        ):
            BAR_SCHEMA.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        problems, omitted = _problems_from_failures(
            frame, error.failure_cases, max_problems=max_problems
        )
        if not problems and not omitted:  # pragma: no cover - pandera reports every failure
            problems = [ValidationProblem(None, None, None, str(error))]
        raise_problems(source, problems, max_problems=max_problems, omitted=omitted)
    return frame
