"""Loading bar files: formats, column and timestamp options, and clear rejections."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.data.loaders import load_bars, write_bars
from tradepulse.data.schema import TS_DTYPE
from tradepulse.data.synth import synthesize_bars
from tradepulse.errors import BarContractError, DataError

WriteFile = Callable[[str, str | bytes], Path]

OHLCV = "ts,open,high,low,close,volume\n"
ROWS = (
    "2020-01-02,10,11,9,10.5,100\n"
    "2020-01-03,10.5,11.5,10,11,200\n"
    "2020-01-06,11,11.2,10.1,10.2,150\n"
)


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


def _problems(path: Path, **options: object) -> BarContractError:
    with pytest.raises(BarContractError) as caught:
        load_bars(path, **options)  # type: ignore[arg-type]
    return caught.value


# ------------------------------------------------------------------ rejections


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"

    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_bars(path)


def test_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a file"):
        load_bars(tmp_path)


def test_empty_file_is_a_clear_error(write_file: WriteFile) -> None:
    path = write_file("empty.csv", "")

    with pytest.raises(DataError, match=r"empty\.csv: file is empty \(0 bytes\)"):
        load_bars(path)


def test_whitespace_only_file_is_empty(write_file: WriteFile) -> None:
    path = write_file("blank.csv", "\n  \n")

    with pytest.raises(DataError, match="file is empty"):
        load_bars(path)


def test_header_only_file_names_its_columns(write_file: WriteFile) -> None:
    path = write_file("header.csv", OHLCV)

    with pytest.raises(DataError, match=r"has a header \('ts', 'open'.*\) but no data rows"):
        load_bars(path)


def test_binary_junk_with_nul_bytes_is_rejected(write_file: WriteFile) -> None:
    path = write_file("junk.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    with pytest.raises(DataError, match=r"binary content \(NUL byte at offset 8\)"):
        load_bars(path)


def test_non_utf8_junk_is_rejected(write_file: WriteFile) -> None:
    path = write_file("junk.csv", b"ts,close\n\xff\xfe\xfa,1\n")

    with pytest.raises(DataError, match=r"not UTF-8 text \(invalid byte 0xff at offset 9\)"):
        load_bars(path)


def test_parquet_extension_without_parquet_content(write_file: WriteFile) -> None:
    path = write_file("fake.parquet", OHLCV + ROWS)

    with pytest.raises(DataError, match="not a Parquet file"):
        load_bars(path)


def test_corrupt_parquet_is_a_clear_error(write_file: WriteFile) -> None:
    path = write_file("broken.parquet", b"PAR1" + b"garbage" * 10)

    with pytest.raises(DataError, match=r"broken\.parquet: cannot read as Parquet"):
        load_bars(path)


def test_ragged_csv_is_a_clear_error(write_file: WriteFile) -> None:
    path = write_file("ragged.csv", "ts,close\n2020-01-02,1,2,3\n")

    with pytest.raises(DataError, match=r"ragged\.csv: cannot parse as CSV"):
        load_bars(path)


def test_missing_timestamp_column_names_what_was_found(write_file: WriteFile) -> None:
    path = write_file("nots.csv", "when,close\nx,1\n")

    with pytest.raises(DataError, match=r"no timestamp column .*found: 'when', 'close'.*ts_col"):
        load_bars(path)


def test_missing_close_column_names_what_was_found(write_file: WriteFile) -> None:
    path = write_file("noclose.csv", "Date,Open,Adj Close\n2020-01-02,1,1\n")

    with pytest.raises(DataError, match=r"no close/price column .*'Date', 'Open', 'Adj Close'"):
        load_bars(path)


def test_partial_ohlc_names_the_missing_columns(write_file: WriteFile) -> None:
    path = write_file("partial.csv", "ts,open,high,close\n2020-01-02,1,1,1\n")

    with pytest.raises(DataError, match="has open, high but no low column"):
        load_bars(path)


def test_unparseable_timestamp_names_row_and_value(write_file: WriteFile) -> None:
    path = write_file("badts.csv", OHLCV + ROWS + "2020-02-30,10,11,9,10.5,100\n")

    error = _problems(path)

    problem = error.problems[0]
    assert (problem.row, problem.column, problem.value) == (3, "ts", "'2020-02-30'")
    assert problem.rule.startswith("cannot parse as a timestamp (expected ISO 8601")
    assert "row 3, column 'ts', value '2020-02-30'" in str(error)


def test_non_iso_date_is_not_guessed(write_file: WriteFile) -> None:
    # 01/02/2020 is 1 Feb or 2 Jan depending on the reader: refuse rather than guess.
    path = write_file("us.csv", "Date,Close\n01/02/2020,1\n")

    error = _problems(path)

    assert (error.problems[0].row, error.problems[0].value) == (0, "'01/02/2020'")


def test_text_in_numeric_column_names_row_column_and_value(write_file: WriteFile) -> None:
    path = write_file("text.csv", OHLCV + ROWS.replace("11.5", "n/a"))

    error = _problems(path)

    problem = error.problems[0]
    assert (problem.row, problem.column, problem.value) == (1, "high", "'n/a'")
    assert problem.rule == "must be a number"
    assert str(error) == f"{path}: row 1, column 'high', value 'n/a': must be a number"


def test_parse_problems_are_capped(write_file: WriteFile) -> None:
    body = "".join(f"2020-01-{day:02d},x\n" for day in range(1, 29))
    path = write_file("many.csv", "ts,close\n" + body)

    with pytest.raises(BarContractError) as caught:
        load_bars(path, max_problems=5)

    assert len(caught.value.problems) == 5
    assert caught.value.omitted == 23


def test_contract_violations_in_a_file_name_the_file(write_file: WriteFile) -> None:
    path = write_file("hl.csv", OHLCV + ROWS.replace("10.5,11.5,10,11", "10.5,9.5,10,11"))

    error = _problems(path)

    assert error.source == str(path)
    problem = error.problems[0]
    assert (problem.row, problem.column, problem.value) == (1, "high", "9.5")
    assert problem.rule.startswith("high must be >= low")


def test_empty_cell_is_reported_as_missing(write_file: WriteFile) -> None:
    path = write_file("gap.csv", OHLCV + ROWS.replace(",200", ","))

    error = _problems(path)

    assert (error.problems[0].row, error.problems[0].column) == (1, "volume")
    assert "must not be null" in error.problems[0].rule


def test_bad_options_are_rejected(write_file: WriteFile) -> None:
    path = write_file("ok.csv", OHLCV + ROWS)

    with pytest.raises(DataError, match="ts_unit must be one of"):
        load_bars(path, ts_unit="minutes")
    with pytest.raises(DataError, match="timezone 'Mars/Olympus' is not a known IANA"):
        load_bars(path, timezone="Mars/Olympus")
    with pytest.raises(DataError, match="max_problems must be >= 1"):
        load_bars(path, max_problems=0)
    with pytest.raises(DataError, match="no bar files given"):
        load_bars([])
    with pytest.raises(DataError, match="price_col names column 'Adj Close', not in the file"):
        load_bars(path, price_col="Adj Close")
    with pytest.raises(DataError, match="maps to 'price', which is not a bar column"):
        load_bars(path, column_map={"close": "price"})


def test_ambiguous_alias_is_rejected(write_file: WriteFile) -> None:
    path = write_file("twice.csv", "ts,Close,close\n2020-01-02,1,1\n")

    with pytest.raises(DataError, match="several columns could be 'close'"):
        load_bars(path)


# ------------------------------------------------------------------ columns


def test_yahoo_style_columns_are_matched_case_insensitively(write_file: WriteFile) -> None:
    path = write_file(
        "spy.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02,10,11,9,10.5,10.4,100\n"
        "2020-01-03,10.5,11.5,10,11,10.9,200\n",
    )

    frame = load_bars(path)

    assert frame.columns == ["ts", "open", "high", "low", "close", "volume"]
    assert frame.dtypes == [TS_DTYPE] + [pl.Float64()] * 5
    assert frame["close"].to_list() == [10.5, 11.0]
    assert frame["ts"].to_list() == [_utc(2020, 1, 2), _utc(2020, 1, 3)]


def test_price_col_reads_adjusted_close(write_file: WriteFile) -> None:
    path = write_file(
        "spy.csv", "Date,Open,High,Low,Close,Adj Close,Vol\n2020-01-02,10,11,9,10.5,10.4,100\n"
    )

    frame = load_bars(path, price_col="adj close")

    assert frame["close"].to_list() == [10.4]
    assert frame["volume"].to_list() == [100.0]


def test_column_map_renames_file_columns(write_file: WriteFile) -> None:
    path = write_file("odd.csv", "When,Px,Qty\n2020-01-02,5,7\n2020-01-03,6,8\n")

    frame = load_bars(path, column_map={"when": "ts", "PX": "close", "Qty": "volume"})

    assert frame["close"].to_list() == [5.0, 6.0]
    assert frame["volume"].to_list() == [7.0, 8.0]


def test_ts_col_picks_the_timestamp_column(write_file: WriteFile) -> None:
    path = write_file("two.csv", "created,Date,close\nx,2020-01-02,5\ny,2020-01-03,6\n")

    frame = load_bars(path, ts_col="Date")

    assert frame.height == 2


def test_close_only_file_gets_flat_bars_and_zero_volume(write_file: WriteFile) -> None:
    path = write_file("close.csv", "timestamp,price\n2020-01-02,5\n2020-01-03,6\n")

    frame = load_bars(path)

    for name in ("open", "high", "low", "close"):
        assert frame[name].to_list() == [5.0, 6.0]
    assert frame["volume"].to_list() == [0.0, 0.0]


def test_semicolon_separated_file_is_read(write_file: WriteFile) -> None:
    path = write_file("semi.csv", "ts;close\n2020-01-02;5\n2020-01-03;6\n")

    assert load_bars(path)["close"].to_list() == [5.0, 6.0]


def test_symbol_option_adds_a_symbol_column(write_file: WriteFile) -> None:
    path = write_file("x.csv", OHLCV + ROWS)

    frame = load_bars(path, symbol="SPY")

    assert frame.columns == ["ts", "symbol", "open", "high", "low", "close", "volume"]
    assert frame["symbol"].unique().to_list() == ["SPY"]


def test_symbol_column_in_the_file_is_kept(write_file: WriteFile) -> None:
    path = write_file(
        "long.csv",
        "ts,ticker,close\n2020-01-02,A,1\n2020-01-02,B,2\n2020-01-03,A,3\n2020-01-03,B,4\n",
    )

    frame = load_bars(path)

    assert frame["symbol"].to_list() == ["A", "B", "A", "B"]


# ------------------------------------------------------------------ timestamps


@pytest.mark.parametrize(
    ("values", "unit"),
    [
        (["1577923200", "1577923260"], "s"),
        (["1577923200000", "1577923260000"], "ms"),
        (["1577923200000000", "1577923260000000"], "us"),
        (["1577923200000000000", "1577923260000000000"], "ns"),
        (["1577923200.0", "1577923260.5"], "s"),
    ],
)
def test_epoch_units_are_inferred(write_file: WriteFile, values: list[str], unit: str) -> None:
    path = write_file(f"epoch_{unit}.csv", "t,c\n" + "".join(f"{v},1\n" for v in values))

    frame = load_bars(path)

    first = frame["ts"][0]
    assert first == _utc(2020, 1, 2)
    assert (frame["ts"][1] - first).total_seconds() in (60.0, 60.5)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_explicit_epoch_unit(write_file: WriteFile, unit: str) -> None:
    factor = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
    path = write_file("e.csv", f"ts,close\n{86400 * factor},1\n")

    frame = load_bars(path, ts_unit=unit)

    assert frame["ts"][0] == _utc(1970, 1, 2)


def test_explicit_epoch_unit_rejects_text(write_file: WriteFile) -> None:
    path = write_file("e.csv", "ts,close\n86400,1\nsoon,2\n")

    error = _problems(path, ts_unit="s")

    assert (error.problems[0].row, error.problems[0].value) == (1, "'soon'")
    assert "epoch number (ts_unit='s')" in error.problems[0].rule


def test_epoch_out_of_range_for_unit(write_file: WriteFile) -> None:
    path = write_file("e.csv", "ts,close\n1577923200000,1\n")

    error = _problems(path, ts_unit="s")

    assert error.problems[0].rule == "epoch value out of range for unit seconds"


def test_inferred_epoch_unit_is_named_in_ts_errors(write_file: WriteFile) -> None:
    path = write_file("e.csv", "ts,close\n1577923260000,1\n1577923200000,1\n")

    error = _problems(path)

    assert "ts read as epoch milliseconds (inferred from magnitude" in error.source
    assert error.problems[0].column == "ts"


def test_parquet_epoch_integers(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    pl.DataFrame({"ts": [1_577_923_200_000], "close": [1]}).write_parquet(path)

    frame = load_bars(path)

    assert frame["ts"][0] == _utc(2020, 1, 2)
    assert frame["close"].dtype == pl.Float64


def test_offsets_are_converted_to_utc(write_file: WriteFile) -> None:
    path = write_file(
        "tz.csv",
        "ts,close\n2020-01-02T09:30:00+01:00\t,1\n2020-01-02 09:30:00.5Z,2\n"
        "2020-01-02T10:30-0000,3\n",
    )

    frame = load_bars(path)

    assert frame["ts"].to_list() == [
        _utc(2020, 1, 2, 8, 30),
        datetime(2020, 1, 2, 9, 30, 0, 500000, tzinfo=UTC),
        _utc(2020, 1, 2, 10, 30),
    ]


def test_naive_times_are_read_in_the_given_timezone(write_file: WriteFile) -> None:
    # New York is UTC-5 in January and UTC-4 in July.
    path = write_file("ny.csv", "Date,Close\n2020-01-02 09:30,1\n2020-07-02 09:30,2\n")

    frame = load_bars(path, timezone="America/New_York")

    assert frame["ts"].to_list() == [_utc(2020, 1, 2, 14, 30), _utc(2020, 7, 2, 13, 30)]


def test_nonexistent_local_time_is_reported(write_file: WriteFile) -> None:
    path = write_file("dst.csv", "ts,close\n2020-03-08 02:30:00,1\n")

    error = _problems(path, timezone="America/New_York")

    assert (error.problems[0].row, error.problems[0].value) == (0, "'2020-03-08 02:30:00'")
    assert "does not exist in time zone America/New_York" in error.problems[0].rule


def test_separate_date_and_time_columns_are_joined(write_file: WriteFile) -> None:
    path = write_file("dt.csv", "Date,Time,Close\n2020-01-02,09:30,1\n2020-01-02,09:31,2\n")

    frame = load_bars(path)

    assert frame["ts"].to_list() == [_utc(2020, 1, 2, 9, 30), _utc(2020, 1, 2, 9, 31)]


def test_compact_dates_are_read_as_dates(write_file: WriteFile) -> None:
    path = write_file("ymd.csv", "Date,Close\n20200102,1\n20200103,2\n")

    frame = load_bars(path)

    assert frame["ts"].to_list() == [_utc(2020, 1, 2), _utc(2020, 1, 3)]


def test_parquet_datetime_and_date_columns(tmp_path: Path) -> None:
    aware = tmp_path / "aware.parquet"
    naive = tmp_path / "naive.parquet"
    dates = tmp_path / "dates.parquet"
    moment = datetime(2020, 1, 2, 9, 30)
    pl.DataFrame({"ts": [moment], "close": [1.0]}).with_columns(
        pl.col("ts").dt.replace_time_zone("Europe/Paris").dt.cast_time_unit("ms")
    ).write_parquet(aware)
    pl.DataFrame({"ts": [moment], "close": [1.0]}).write_parquet(naive)
    pl.DataFrame({"ts": [moment.date()], "close": [1.0]}).write_parquet(dates)

    assert load_bars(aware)["ts"][0] == _utc(2020, 1, 2, 8, 30)
    assert load_bars(naive, timezone="Asia/Tokyo")["ts"][0] == _utc(2020, 1, 2, 0, 30)
    assert load_bars(dates)["ts"][0] == _utc(2020, 1, 2)


def test_parquet_text_in_numeric_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"ts": ["2020-01-02", "2020-01-03"], "close": ["1.5", "oops"]}).write_parquet(path)

    error = _problems(path)

    assert (error.problems[0].row, error.problems[0].column, error.problems[0].value) == (
        1,
        "close",
        "'oops'",
    )


def test_parquet_non_numeric_dtype_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    pl.DataFrame({"ts": ["2020-01-02"], "close": [True]}).write_parquet(path)

    with pytest.raises(DataError, match=r"b\.parquet: column 'close' \(close\) has dtype Boolean"):
        load_bars(path)


def test_empty_parquet_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    pl.DataFrame(
        {"ts": [], "close": []}, schema={"ts": pl.String, "close": pl.Float64}
    ).write_parquet(path)

    with pytest.raises(DataError, match="no rows"):
        load_bars(path)


# ------------------------------------------------------------------ many files


def test_many_files_are_concatenated_with_their_stems(write_file: WriteFile) -> None:
    first = write_file("AAA.csv", OHLCV + ROWS)
    second = write_file("BBB.csv", OHLCV + ROWS)

    frame = load_bars([first, second])

    assert frame.height == 6
    assert frame["symbol"].to_list() == ["AAA"] * 3 + ["BBB"] * 3


def test_many_files_of_one_symbol_must_keep_increasing(write_file: WriteFile) -> None:
    early = write_file("2020a.csv", OHLCV + ROWS)
    again = write_file("2020b.csv", OHLCV + ROWS)

    with pytest.raises(BarContractError) as caught:
        load_bars([early, again], symbol="SPY")

    problem = caught.value.problems[0]
    assert (problem.row, problem.column) == (3, "ts")
    assert "concatenated" in caught.value.source


def test_many_files_error_names_the_bad_file(write_file: WriteFile) -> None:
    good = write_file("good.csv", OHLCV + ROWS)
    bad = write_file("bad.csv", OHLCV + ROWS.replace("150", "-150"))

    with pytest.raises(BarContractError) as caught:
        load_bars([good, bad])

    assert caught.value.source == str(bad)
    assert (caught.value.problems[0].row, caught.value.problems[0].value) == (2, "-150.0")


# ------------------------------------------------------------------ writing


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_then_load_round_trips_exactly(
    tmp_path: Path, bars: pl.DataFrame, suffix: str
) -> None:
    # Arrange: values with long decimal expansions and sub-second timestamps.
    frame = bars.with_columns(
        (pl.col(name) * (1 / 3)).alias(name) for name in ("open", "high", "low", "close")
    ).with_columns(pl.col("ts") + pl.duration(nanoseconds=123_456_789), symbol=pl.lit("X"))
    path = tmp_path / f"bars{suffix}"

    write_bars(frame, path)
    loaded = load_bars(path)

    assert loaded.select(frame.columns).equals(frame)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_bars_is_deterministic(tmp_path: Path, bars: pl.DataFrame, suffix: str) -> None:
    first, second = tmp_path / f"a{suffix}", tmp_path / "sub" / f"b{suffix}"

    write_bars(bars, first)
    write_bars(bars, second)

    assert first.read_bytes() == second.read_bytes()


def test_csv_timestamps_are_iso_utc(tmp_path: Path, bars: pl.DataFrame) -> None:
    path = write_bars(bars.head(1), tmp_path / "one.csv")

    assert path.read_text().splitlines() == [
        "ts,open,high,low,close,volume",
        "2020-01-01T00:00:00Z,10.0,11.0,9.5,10.5,100.0",
    ]


def test_write_bars_rejects_unknown_extension_and_bad_bars(
    tmp_path: Path, bars: pl.DataFrame
) -> None:
    with pytest.raises(DataError, match=r"unknown bar file extension '\.json'"):
        write_bars(bars, tmp_path / "x.json")
    with pytest.raises(BarContractError):
        write_bars(bars.with_columns(volume=pl.lit(-1.0)), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_write_bars_reports_unwritable_path(tmp_path: Path, bars: pl.DataFrame) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(DataError, match="cannot write bars"):
        write_bars(bars, blocker / "x.csv")


# ------------------------------------------------------------------ real data


@pytest.mark.parametrize("name", ["sp500_daily.csv", "nasdaq_daily.csv"])
def test_shipped_real_data_honours_the_contract(sample_dir: Path, name: str) -> None:
    metadata = json.loads((sample_dir / "metadata.json").read_text())["files"][name]

    frame = load_bars(sample_dir / name)

    assert frame.height == metadata["rows"]
    assert frame["ts"][0] == datetime.fromisoformat(metadata["first_date"]).replace(tzinfo=UTC)
    assert frame["ts"][-1] == datetime.fromisoformat(metadata["last_date"]).replace(tzinfo=UTC)


# ------------------------------------------------------------------ formats


def test_format_is_sniffed_for_unknown_extensions(tmp_path: Path, bars: pl.DataFrame) -> None:
    parquet_bytes, csv_text = tmp_path / "p.dat", tmp_path / "c.dat"
    bars.write_parquet(parquet_bytes)
    bars.write_csv(csv_text)

    assert load_bars(parquet_bytes).equals(bars)
    assert load_bars(csv_text).equals(bars)


def test_multibyte_character_cut_by_the_sniffing_window(write_file: WriteFile) -> None:
    # Arrange: a 2-byte "é" straddles byte 65,536, where the binary sniffing stops.
    filler = "ts,close,note\n"
    row = "2020-01-02,1,"
    padding = "x" * (65_535 - len(filler) - len(row))
    path = write_file("wide.csv", filler + row + padding + "é\n")

    frame = load_bars(path)

    assert frame.height == 1


def test_conflicting_column_options_are_rejected(write_file: WriteFile) -> None:
    path = write_file("two.csv", "a,b,close\n2020-01-02,2020-01-02,1\n")

    with pytest.raises(DataError, match="'ts' is given twice"):
        load_bars(path, column_map={"a": "ts"}, ts_col="b")


def test_non_temporal_timestamp_dtype_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    pl.DataFrame({"ts": [True], "close": [1.0]}).write_parquet(path)

    with pytest.raises(DataError, match="timestamp column 'ts' has dtype Boolean"):
        load_bars(path)


def test_invalid_compact_date_is_reported(write_file: WriteFile) -> None:
    path = write_file("ymd.csv", "Date,Close\n20200102,1\n20200231,2\n")

    error = _problems(path)

    problem = error.problems[0]
    assert (problem.row, problem.column, problem.value) == (1, "ts", "'20200231'")
    assert problem.rule == "cannot parse as a YYYYMMDD date"


def test_compact_dates_can_be_forced_to_epoch_seconds(write_file: WriteFile) -> None:
    path = write_file("ymd.csv", "Date,Close\n20200102,1\n")

    frame = load_bars(path, ts_unit="s")

    assert frame["ts"][0] == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=20200102)


@settings(deadline=None, max_examples=15)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    count=st.integers(min_value=1, max_value=500),
    suffix=st.sampled_from([".csv", ".parquet"]),
    freq=st.sampled_from(["1ms", "1s", "1min", "1d"]),
)
def test_synthetic_bars_round_trip_through_files(
    tmp_path_factory: pytest.TempPathFactory, seed: int, count: int, suffix: str, freq: str
) -> None:
    frame = synthesize_bars(bars=count, seed=seed, freq=freq, symbol="SYN")
    path = tmp_path_factory.mktemp("round") / f"bars{suffix}"

    write_bars(frame, path)

    assert load_bars(path).equals(frame)


def test_crlf_and_blank_lines_are_not_rows(write_file: WriteFile) -> None:
    path = write_file("crlf.csv", "Date,Close\r\n\r\n2020-01-02,1.5\r\n   \r\n2020-01-03,x\r\n\r\n")

    error = _problems(path)

    assert (error.problems[0].row, error.problems[0].value) == (1, "'x'")
