"""The bar contract: each violation is reported once, naming its row, column and value."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import polars as pl
import pytest

from tradepulse.data.schema import (
    BAR_COLUMNS,
    PRICE_COLUMNS,
    REQUIRED_BAR_COLUMNS,
    TS_DTYPE,
    format_cell,
    raise_problems,
    validate_bars,
)
from tradepulse.errors import (
    BarContractError,
    DataError,
    DataValidationError,
    ValidationProblem,
)


def _set(frame: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    values = frame.get_column(column).to_list()
    values[row] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


def _only_problem(frame: pl.DataFrame) -> ValidationProblem:
    with pytest.raises(BarContractError) as caught:
        validate_bars(frame, source="test.csv")
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.omitted == 0
    return caught.value.problems[0]


def test_valid_bars_pass_unchanged(bars: pl.DataFrame) -> None:
    result = validate_bars(bars)

    assert result.equals(bars)


def test_constants_describe_the_contract() -> None:
    assert BAR_COLUMNS == ("ts", "symbol", "open", "high", "low", "close", "volume")
    assert REQUIRED_BAR_COLUMNS == ("ts", "open", "high", "low", "close", "volume")
    assert PRICE_COLUMNS == ("open", "high", "low", "close")
    assert TS_DTYPE.time_unit == "ns"
    assert TS_DTYPE.time_zone == "UTC"


def test_extra_columns_are_allowed(bars: pl.DataFrame) -> None:
    validate_bars(bars.with_columns(note=pl.lit("x")))


@pytest.mark.parametrize("column", ["open", "high", "low", "close", "volume"])
def test_nan_is_reported(bars: pl.DataFrame, column: str) -> None:
    problem = _only_problem(_set(bars, column, 2, math.nan))

    assert (problem.row, problem.column, problem.value) == (2, column, "nan")
    assert problem.rule == "must not be NaN/inf"


@pytest.mark.parametrize(("column", "value"), [("high", math.inf), ("volume", -math.inf)])
def test_inf_is_reported(bars: pl.DataFrame, column: str, value: float) -> None:
    problem = _only_problem(_set(bars, column, 4, value))

    assert (problem.row, problem.column, problem.value) == (4, column, repr(value))
    assert problem.rule == "must not be NaN/inf"


def test_null_is_reported(bars: pl.DataFrame) -> None:
    problem = _only_problem(_set(bars, "close", 1, None))

    assert (problem.row, problem.column, problem.value) == (1, "close", "null")
    assert "must not be null" in problem.rule


@pytest.mark.parametrize("value", [0.0, -3.0])
def test_non_positive_price_is_reported(bars: pl.DataFrame, value: float) -> None:
    # Arrange: a low that is still <= open/close, so only positivity is broken.
    frame = _set(bars, "low", 3, value)

    problem = _only_problem(frame)

    assert (problem.row, problem.column, problem.value) == (3, "low", repr(value))
    assert problem.rule == "low must be > 0"


def test_negative_volume_is_reported(bars: pl.DataFrame) -> None:
    problem = _only_problem(_set(bars, "volume", 5, -1.0))

    assert (problem.row, problem.column, problem.value) == (5, "volume", "-1.0")
    assert problem.rule == "volume must be >= 0"


def test_zero_volume_is_allowed(bars: pl.DataFrame) -> None:
    validate_bars(_set(bars, "volume", 0, 0.0))


def test_high_below_low_is_reported_once(bars: pl.DataFrame) -> None:
    # Arrange: high 9.0 < low 9.5 also puts open/close outside [low, high]; one report.
    frame = _set(bars, "high", 0, 9.0)

    problem = _only_problem(frame)

    assert (problem.row, problem.column, problem.value) == (0, "high", "9.0")
    assert problem.rule == "high must be >= low (low 9.5)"


@pytest.mark.parametrize(("column", "value"), [("open", 11.7), ("open", 10.5), ("close", 9.0)])
def test_open_or_close_outside_low_high_is_reported(
    bars: pl.DataFrame, column: str, value: float
) -> None:
    # Row 2 spans [10.6, 11.6]: 11.7 is above high, 10.5 and 9.0 below low.
    problem = _only_problem(_set(bars, column, 2, value))

    assert (problem.row, problem.column, problem.value) == (2, column, repr(value))
    assert problem.rule == f"{column} must be within [low, high] = [10.6, 11.6]"


def test_duplicate_ts_is_reported(bars: pl.DataFrame) -> None:
    frame = _set(bars, "ts", 3, bars["ts"][2])

    problem = _only_problem(frame)

    assert (problem.row, problem.column, problem.value) == (3, "ts", "2020-01-03T00:00:00Z")
    assert problem.rule == (
        "ts must be strictly increasing (equals previous 2020-01-03T00:00:00Z at row 2)"
    )


def test_decreasing_ts_is_reported(bars: pl.DataFrame) -> None:
    frame = _set(bars, "ts", 4, bars["ts"][0])

    with pytest.raises(BarContractError) as caught:
        validate_bars(frame)

    first = caught.value.problems[0]
    assert (first.row, first.column, first.value) == (4, "ts", "2020-01-01T00:00:00Z")
    assert first.rule == "ts must be strictly increasing (previous 2020-01-04T00:00:00Z at row 3)"


def test_nanosecond_timestamps_are_shown_exactly(bars: pl.DataFrame) -> None:
    ts = pl.Series("ts", [0, 1, 1, 2, 3, 4]).cast(TS_DTYPE)

    problem = _only_problem(bars.with_columns(ts))

    assert problem.value == "1970-01-01T00:00:00.000000001Z"
    assert "equals previous 1970-01-01T00:00:00.000000001Z at row 1" in problem.rule


def test_ts_increases_per_symbol_not_globally(bars: pl.DataFrame) -> None:
    # Arrange: two symbols interleaved; each symbol's ts increases.
    long = pl.concat([bars.with_columns(symbol=pl.lit("A")), bars.with_columns(symbol=pl.lit("B"))])
    interleaved = long.sort("ts", maintain_order=True)

    validate_bars(interleaved)


def test_ts_decrease_within_a_symbol_names_the_symbol(bars: pl.DataFrame) -> None:
    long = pl.concat([bars.with_columns(symbol=pl.lit("A")), bars.with_columns(symbol=pl.lit("B"))])
    broken = _set(long, "ts", 8, bars["ts"][0])

    problem = _only_problem(broken)

    assert (problem.row, problem.column) == (8, "ts")
    assert problem.rule.endswith("(previous 2020-01-02T00:00:00Z at row 7 for symbol 'B')")


def test_null_symbol_is_reported(bars: pl.DataFrame) -> None:
    frame = bars.with_columns(symbol=pl.Series(["A", "A", None, "A", "A", "A"], dtype=pl.String))

    problem = _only_problem(frame)

    assert (problem.row, problem.column, problem.value) == (2, "symbol", "null")


def test_wrong_dtypes_and_missing_columns_are_file_level(bars: pl.DataFrame) -> None:
    frame = bars.with_columns(
        pl.col("high").cast(pl.Float32), pl.col("ts").dt.replace_time_zone(None)
    ).drop("volume")

    with pytest.raises(BarContractError) as caught:
        validate_bars(frame, source="f.parquet")

    found = {(p.row, p.column, p.value) for p in caught.value.problems}
    assert (None, "volume", None) in found
    assert (None, "high", "Float32") in found
    assert any(column == "ts" and row is None for row, column, _ in found)
    rules = {p.column: p.rule for p in caught.value.problems}
    assert rules["volume"] == "column is missing"
    assert rules["high"] == "dtype must be Float64"


def test_text_price_column_reports_dtype_not_broken_checks(bars: pl.DataFrame) -> None:
    frame = bars.with_columns(pl.col("close").cast(pl.String))

    with pytest.raises(BarContractError) as caught:
        validate_bars(frame)

    assert [(p.column, p.value, p.rule) for p in caught.value.problems] == [
        ("close", "String", "dtype must be Float64")
    ]


def test_every_problem_is_found_in_row_order(bars: pl.DataFrame) -> None:
    frame = _set(_set(_set(bars, "volume", 4, -2.0), "open", 1, math.nan), "close", 1, -1.0)

    with pytest.raises(BarContractError) as caught:
        validate_bars(frame)

    located = [(p.row, p.column) for p in caught.value.problems]
    assert located == [(1, "open"), (1, "close"), (4, "volume")]


def test_problems_are_capped_and_the_rest_counted(bars: pl.DataFrame) -> None:
    # Arrange: 30 rows, each with a negative volume.
    big = pl.concat([bars] * 5).with_columns(
        pl.Series("ts", range(30)).cast(TS_DTYPE), pl.lit(-1.0).alias("volume")
    )

    with pytest.raises(BarContractError) as caught:
        validate_bars(big, source="big.csv", max_problems=7)

    error = caught.value
    assert isinstance(error, DataValidationError)
    assert [p.row for p in error.problems] == list(range(7))
    assert (error.omitted, error.total) == (23, 30)
    assert str(error).startswith("big.csv: row 0, column 'volume', value -1.0: volume must be")
    assert str(error).endswith("(and 29 more)")


def test_max_problems_must_be_positive(bars: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="max_problems must be >= 1, got 0"):
        validate_bars(bars, max_problems=0)


def test_raise_problems_lists_and_counts() -> None:
    problems = [ValidationProblem(row, "close", "x", "must be a number") for row in range(5)]

    with pytest.raises(BarContractError) as caught:
        raise_problems("f.csv", problems, max_problems=2, omitted=3)

    assert len(caught.value.problems) == 2
    assert caught.value.omitted == 6


def test_raise_problems_without_problems_returns() -> None:
    raise_problems("f.csv", [])


def test_format_cell_renders_values() -> None:
    assert format_cell(None) == "null"
    assert format_cell(9.5) == "9.5"
    assert format_cell("abc") == "'abc'"
    assert format_cell(3) == "3"
    assert format_cell(datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2020-01-02T03:04:05Z"
    assert format_cell(datetime(2020, 1, 2)) == "2020-01-02T00:00:00"


def test_cross_column_failures_beyond_the_reporting_cap_are_counted() -> None:
    # Arrange: 12,345 bars with high < low (more than pandera is asked to report) and
    # 3 negative volumes.
    count = 12_345
    frame = pl.DataFrame(
        {
            "ts": pl.Series(range(count)).cast(TS_DTYPE),
            "open": [10.0] * count,
            "high": [9.0] * count,
            "low": [9.5] * count,
            "close": [10.0] * count,
            "volume": [-1.0] * 3 + [1.0] * (count - 3),
        }
    )

    with pytest.raises(BarContractError) as caught:
        validate_bars(frame, max_problems=4)

    error = caught.value
    assert error.total == count + 3
    assert [(p.row, p.column) for p in error.problems] == [
        (0, "high"),
        (0, "volume"),
        (1, "high"),
        (1, "volume"),
    ]
