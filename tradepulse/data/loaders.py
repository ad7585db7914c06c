"""Read and write bar files (CSV, Parquet) into frames that honour the bar contract."""

from __future__ import annotations

import contextlib
import os
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from tradepulse.data.schema import (
    BAR_COLUMNS,
    PRICE_COLUMNS,
    SYMBOL_COLUMN,
    TS_COLUMN,
    TS_DTYPE,
    VOLUME_COLUMN,
    raise_problems,
    validate_bars,
)
from tradepulse.errors import BarContractError, DataError, ValidationProblem

__all__ = [
    "COLUMN_ALIASES",
    "TS_UNITS",
    "load_bars",
    "write_bars",
]

TS_UNITS: Final[tuple[str, ...]] = ("auto", "s", "ms", "us", "ns")

#: Accepted spellings of each contract column, matched ignoring case, spaces and punctuation,
#: in order of preference. ``Adj Close`` is not an alias of ``close``: ask for it with
#: ``price_col``.
COLUMN_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    TS_COLUMN: ("ts", "timestamp", "datetime", "date", "time", "dt", "t"),
    SYMBOL_COLUMN: ("symbol", "ticker", "sym"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "last", "price"),
    VOLUME_COLUMN: ("volume", "vol", "v"),
}

_PARQUET_SUFFIXES: Final = frozenset({".parquet", ".pq", ".parq"})
_CSV_SUFFIXES: Final = frozenset({".csv", ".txt", ".tsv"})
_PARQUET_MAGIC: Final = b"PAR1"
_SNIFF_BYTES: Final = 65536
_NS_PER_UNIT: Final[dict[str, int]] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNIT_NAMES: Final[dict[str, str]] = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}
_INT64_MAX: Final = 2**63 - 1
_CSV_TS_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.fZ"

_NUMBER_RE: Final = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_YYYYMMDD_RE: Final = r"^(1[89]|2[012])\d{2}(0[1-9]|1[012])(0[1-9]|[12]\d|3[01])$"
_DATE_RE: Final = r"^\d{4}-\d{2}-\d{2}$"
_DATETIME_RE: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_UTC_RE: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$"
_AWARE_RE: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?[+-]\d{2}:?\d{2}$"
_ISO_HINT: Final = (
    "expected ISO 8601 such as 2024-01-02, 2024-01-02T09:30:00 or 2024-01-02T09:30:00Z, "
    "or epoch numbers"
)


@dataclass
class _Parsed:
    """A column converted to its contract dtype, with the rows that could not be."""

    series: pl.Series
    problems: list[ValidationProblem] = field(default_factory=list)
    omitted: int = 0
    note: str | None = None


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.strip().lower())


def _display(path: Path) -> str:
    return str(path)


# --------------------------------------------------------------------------- reading


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise DataError(f"{path}: cannot read file: {error.strerror or error}") from None


def _is_parquet(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        if not head.startswith(_PARQUET_MAGIC):
            raise DataError(f"{path}: not a Parquet file (no 'PAR1' magic bytes at the start)")
        return True
    if suffix in _CSV_SUFFIXES:
        return False
    return head.startswith(_PARQUET_MAGIC)


def _check_text(path: Path, head: bytes) -> str:
    """Reject binary content and return the first line of the text."""
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path}: binary content (NUL byte at offset {nul}), not a CSV text file")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        # A multi-byte character cut by the sniffing window is fine; anything else is not.
        if len(head) < _SNIFF_BYTES or error.start < len(head) - 3:
            raise DataError(
                f"{path}: not UTF-8 text (invalid byte 0x{head[error.start]:02x} at offset "
                f"{error.start}); expected a CSV text file"
            ) from None
        text = head[: error.start].decode("utf-8-sig")
    if not text.strip():
        raise DataError(f"{path}: file is empty (only whitespace)")
    return text.lstrip("\r\n").splitlines()[0]


def _separator(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _read_csv(path: Path, head: bytes) -> pl.DataFrame:
    header = _check_text(path, head)
    try:
        frame = pl.read_csv(
            path,
            infer_schema=False,
            separator=_separator(header),
            encoding="utf8",
            glob=False,
        )
    except pl.exceptions.NoDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot parse as CSV: {_first_line(error)}") from None
    frame = frame.rename({name: name.strip() for name in frame.columns})
    # Blank lines (e.g. a trailing "\r\n") are not data rows; rows are counted without them.
    blank = pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == ""))
    frame = frame.filter(~blank)
    if frame.height == 0:
        found = ", ".join(repr(name) for name in frame.columns)
        raise DataError(f"{path}: has a header ({found}) but no data rows")
    return frame


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as Parquet: {_first_line(error)}") from None
    if frame.height == 0:
        found = ", ".join(repr(name) for name in frame.columns)
        raise DataError(f"{path}: Parquet file has columns ({found}) but no rows")
    return frame


def _read_table(path: Path) -> pl.DataFrame:
    _check_file(path)
    head = _read_head(path)
    if _is_parquet(path, head):
        return _read_parquet(path)
    return _read_csv(path, head)


# --------------------------------------------------------------------------- columns


def _resolve_columns(
    path: Path,
    columns: Sequence[str],
    *,
    ts_col: str | None,
    price_col: str | None,
    symbol_col: str | None,
    column_map: Mapping[str, str] | None,
) -> dict[str, str]:
    """Map each contract column to the file's column that holds it."""
    found = ", ".join(repr(name) for name in columns)
    by_key: dict[str, list[str]] = {}
    for name in columns:
        by_key.setdefault(_normalise(name), []).append(name)

    def lookup(name: str, *, option: str) -> str:
        matches = by_key.get(_normalise(name), [])
        if not matches:
            raise DataError(
                f"{path}: {option} names column {name!r}, not in the file (found: {found})"
            )
        if len(matches) > 1:
            raise DataError(f"{path}: {option} {name!r} matches several columns: {matches}")
        return matches[0]

    chosen: dict[str, str] = {}
    explicit: list[tuple[str, str, str]] = []
    for source, target in (column_map or {}).items():
        explicit.append((target, source, f"column_map[{source!r}]"))
    for target, given, option in (
        (TS_COLUMN, ts_col, "ts_col"),
        ("close", price_col, "price_col"),
        (SYMBOL_COLUMN, symbol_col, "symbol_col"),
    ):
        if given is not None:
            explicit.append((target, given, option))
    for target, source, option in explicit:
        if target not in BAR_COLUMNS:
            allowed = ", ".join(BAR_COLUMNS)
            raise DataError(f"{option} maps to {target!r}, which is not a bar column ({allowed})")
        column = lookup(source, option=option)
        if target in chosen and chosen[target] != column:
            raise DataError(
                f"{path}: {target!r} is given twice ({chosen[target]!r} and {column!r}) by "
                "the column options"
            )
        chosen[target] = column

    used = set(chosen.values())
    for target, aliases in COLUMN_ALIASES.items():
        if target in chosen:
            continue
        for alias in aliases:
            matches = [name for name in by_key.get(alias, []) if name not in used]
            if len(matches) > 1:
                raise DataError(f"{path}: several columns could be {target!r}: {matches}")
            if matches:
                chosen[target] = matches[0]
                used.add(matches[0])
                break

    if TS_COLUMN not in chosen:
        looked = ", ".join(COLUMN_ALIASES[TS_COLUMN])
        raise DataError(
            f"{path}: no timestamp column (looked for {looked}; found: {found}); pass ts_col"
        )
    if "close" not in chosen:
        looked = ", ".join(COLUMN_ALIASES["close"])
        raise DataError(
            f"{path}: no close/price column (looked for {looked}; found: {found}); pass "
            "price_col (e.g. 'Adj Close')"
        )
    present = [name for name in ("open", "high", "low") if name in chosen]
    if present and len(present) < 3:
        missing = [name for name in ("open", "high", "low") if name not in chosen]
        raise DataError(
            f"{path}: has {', '.join(present)} but no {', '.join(missing)} column (found: "
            f"{found}); give all of open/high/low, or none for a close-only file"
        )
    return chosen


# --------------------------------------------------------------------------- values


def _problem_rows(
    original: pl.Series, bad: pl.Series, column: str, rule: str, *, max_problems: int
) -> tuple[list[ValidationProblem], int]:
    indices = bad.arg_true()
    problems = [
        ValidationProblem(int(row), column, _show(original[int(row)]), rule)
        for row in indices.head(max_problems)
    ]
    return problems, len(indices) - len(problems)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _parse_numbers(series: pl.Series, column: str, *, max_problems: int) -> _Parsed:
    dtype = series.dtype
    if dtype == pl.String:
        stripped = series.str.strip_chars()
        parsed = stripped.cast(pl.Float64, strict=False)
        bad = stripped.is_not_null() & (stripped != "") & parsed.is_null()
        problems, omitted = _problem_rows(
            series, bad, column, "must be a number", max_problems=max_problems
        )
        return _Parsed(parsed, problems, omitted)
    if dtype.is_numeric():
        return _Parsed(series.cast(pl.Float64))
    raise DataError(f"column {series.name!r} ({column}) has dtype {dtype}, expected numbers")


def _timezone(name: str | None) -> str:
    if name is None:
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DataError(f"timezone {name!r} is not a known IANA time zone name") from None
    return name


def _localise(naive: pl.Series, timezone: str) -> pl.Series:
    return (
        naive.cast(pl.Datetime("ns"))
        .dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def _epoch_unit(values: pl.Series) -> str:
    largest = values.abs().max()
    magnitude = float(largest) if isinstance(largest, int | float) else 0.0
    if magnitude < 1e11:
        return "s"
    if magnitude < 1e14:
        return "ms"
    if magnitude < 1e17:
        return "us"
    return "ns"


def _parse_epoch(
    original: pl.Series, numbers: pl.Series, ts_unit: str, *, max_problems: int
) -> _Parsed:
    unit = _epoch_unit(numbers) if ts_unit == "auto" else ts_unit
    note = None
    if ts_unit == "auto":
        note = (
            f"ts read as epoch {_UNIT_NAMES[unit]} (inferred from magnitude; pass ts_unit "
            "to override)"
        )
    factor = _NS_PER_UNIT[unit]
    limit = _INT64_MAX / factor
    in_range = numbers.abs() < limit
    if numbers.dtype.is_integer():
        ns = pl.select(
            pl.when(in_range).then(numbers.cast(pl.Int64) * factor).otherwise(None)
        ).to_series()
    else:
        ns = pl.select(
            pl.when(in_range & numbers.is_finite())
            .then((numbers.cast(pl.Float64) * factor).round(0).cast(pl.Int64, strict=False))
            .otherwise(None)
        ).to_series()
    bad = numbers.is_not_null() & ns.is_null()
    rule = f"epoch value out of range for unit {_UNIT_NAMES[unit]}"
    problems, omitted = _problem_rows(original, bad, TS_COLUMN, rule, max_problems=max_problems)
    return _Parsed(ns.cast(TS_DTYPE), problems, omitted, note)


def _parse_format(
    text: pl.Series, mask: pl.Series, pattern: str, *, time_zone: str | None = None
) -> pl.Series:
    # Parsing is the costly step: skip formats no row uses.
    if not bool(mask.any()):
        return pl.Series(text.name, [None] * text.len(), dtype=pl.Datetime("ns", time_zone))
    return text.str.to_datetime(pattern, time_unit="ns", time_zone=time_zone, strict=False)


def _parse_iso(strings: pl.Series, timezone: str, *, max_problems: int) -> _Parsed:
    text = strings.str.strip_chars()
    if bool(text.str.contains(_UTC_RE).all()):
        # Fast path: the form `write_bars` writes.
        result = text.str.to_datetime(_CSV_TS_FORMAT, time_unit="ns", time_zone="UTC", strict=False)
        if result.null_count() == 0:
            return _Parsed(result.cast(TS_DTYPE))
    # Canonical form: "T" separator, seconds present, "Z" spelled as an offset.
    text = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    text = text.str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})([^:\d]|$)", "${1}:00${2}")
    text = text.str.replace(r"(?i)(\d)\s*(Z|UTC)$", "${1}+00:00")
    naive_date = text.str.contains(_DATE_RE)
    naive_time = text.str.contains(_DATETIME_RE)
    aware = text.str.contains(_AWARE_RE)
    parsed_date = _parse_format(text, naive_date, "%Y-%m-%d")
    parsed_naive = _parse_format(text, naive_time, "%Y-%m-%dT%H:%M:%S%.f")
    parsed_aware = _parse_format(text, aware, "%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC")
    naive = pl.select(
        pl.when(naive_date).then(parsed_date).when(naive_time).then(parsed_naive)
    ).to_series()
    local = _localise(naive, timezone)
    result = pl.select(pl.when(aware).then(parsed_aware).otherwise(local)).to_series()
    unparsed = text.is_not_null() & (text != "") & result.is_null()
    gap = unparsed & naive.is_not_null()
    problems, omitted = _problem_rows(
        strings,
        unparsed & ~gap,
        TS_COLUMN,
        f"cannot parse as a timestamp ({_ISO_HINT})",
        max_problems=max_problems,
    )
    gap_problems, gap_omitted = _problem_rows(
        strings,
        gap,
        TS_COLUMN,
        f"local time does not exist in time zone {timezone} (DST gap)",
        max_problems=max_problems,
    )
    return _Parsed(result.cast(TS_DTYPE), problems + gap_problems, omitted + gap_omitted)


def _parse_ts(series: pl.Series, *, ts_unit: str, timezone: str, max_problems: int) -> _Parsed:
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return _Parsed(_localise(series, timezone).cast(TS_DTYPE))
        return _Parsed(series.dt.convert_time_zone("UTC").cast(TS_DTYPE))
    if dtype == pl.Date:
        return _Parsed(_localise(series.cast(pl.Datetime("ns")), timezone).cast(TS_DTYPE))
    if dtype.is_numeric():
        return _parse_epoch(series, series, ts_unit, max_problems=max_problems)
    if dtype != pl.String:
        raise DataError(f"timestamp column {series.name!r} has dtype {dtype}")
    text = series.str.strip_chars()
    present = text.filter(text.is_not_null() & (text != ""))
    numeric = present.str.contains(_NUMBER_RE)
    if ts_unit == "auto" and present.len() > 0 and bool(numeric.all()):
        if bool(present.str.contains(_YYYYMMDD_RE).all()):
            # Eight digits shaped like YYYYMMDD everywhere: compact dates, not epoch seconds
            # of 1970 (pass ts_unit="s" to force the latter).
            dates = text.str.to_date("%Y%m%d", strict=False)
            bad = text.is_not_null() & (text != "") & dates.is_null()
            rule = "cannot parse as a YYYYMMDD date"
            problems, omitted = _problem_rows(
                series, bad, TS_COLUMN, rule, max_problems=max_problems
            )
            local = _localise(dates.cast(pl.Datetime("ns")), timezone).cast(TS_DTYPE)
            return _Parsed(local, problems, omitted)
        return _parse_epoch(series, _numbers(text), "auto", max_problems=max_problems)
    if ts_unit != "auto":
        numbers = _numbers(text)
        bad = text.is_not_null() & (text != "") & numbers.is_null()
        rule = f"cannot parse as an epoch number (ts_unit={ts_unit!r})"
        problems, omitted = _problem_rows(series, bad, TS_COLUMN, rule, max_problems=max_problems)
        parsed = _parse_epoch(series, numbers, ts_unit, max_problems=max_problems)
        parsed.problems = problems + parsed.problems
        parsed.omitted += omitted
        return parsed
    return _parse_iso(series, timezone, max_problems=max_problems)


def _numbers(text: pl.Series) -> pl.Series:
    as_int = text.cast(pl.Int64, strict=False)
    valid = text.is_not_null() & (text != "")
    if bool((as_int.is_not_null() | ~valid).all()):
        return as_int
    return text.cast(pl.Float64, strict=False)


# --------------------------------------------------------------------------- assembling


def _to_bars(
    path: Path,
    raw: pl.DataFrame,
    *,
    ts_col: str | None,
    price_col: str | None,
    symbol: str | None,
    symbol_col: str | None,
    column_map: Mapping[str, str] | None,
    ts_unit: str,
    timezone: str,
    force_symbol: bool,
    max_problems: int,
) -> pl.DataFrame:
    chosen = _resolve_columns(
        path,
        raw.columns,
        ts_col=ts_col,
        price_col=price_col,
        symbol_col=symbol_col,
        column_map=column_map,
    )
    source = _display(path)
    ts_source = raw.get_column(chosen[TS_COLUMN])
    time_name = next(
        (
            name
            for name in raw.columns
            if _normalise(name) == "time" and raw.get_column(name).dtype == pl.String
        ),
        None,
    )
    if (
        time_name is not None
        and time_name not in chosen.values()
        and ts_source.dtype == pl.String
        and _normalise(chosen[TS_COLUMN]) == "date"
    ):
        # Separate "Date" and "Time" columns: join them into one timestamp.
        ts_source = pl.select(
            pl.concat_str(
                [ts_source.str.strip_chars(), raw.get_column(time_name).str.strip_chars()],
                separator=" ",
            )
        ).to_series()

    ts = _parse_ts(ts_source, ts_unit=ts_unit, timezone=timezone, max_problems=max_problems)
    columns: dict[str, pl.Series] = {TS_COLUMN: ts.series}
    problems = list(ts.problems)
    omitted = ts.omitted
    for name in (*PRICE_COLUMNS, VOLUME_COLUMN):
        if name not in chosen:
            continue
        try:
            parsed = _parse_numbers(raw.get_column(chosen[name]), name, max_problems=max_problems)
        except DataError as error:
            raise DataError(f"{path}: {error}") from None
        columns[name] = parsed.series
        problems.extend(parsed.problems)
        omitted += parsed.omitted
    if problems or omitted:
        problems.sort(
            key=lambda problem: (problem.row or 0, BAR_COLUMNS.index(problem.column or "ts"))
        )
        raise_problems(
            _with_note(source, ts.note), problems, max_problems=max_problems, omitted=omitted
        )

    close = columns["close"]
    for name in ("open", "high", "low"):
        columns.setdefault(name, close.alias(name))
    columns.setdefault(VOLUME_COLUMN, pl.Series(VOLUME_COLUMN, [0.0] * raw.height))
    if SYMBOL_COLUMN in chosen:
        columns[SYMBOL_COLUMN] = raw.get_column(chosen[SYMBOL_COLUMN]).cast(pl.String)
    elif symbol is not None or force_symbol:
        name = symbol if symbol is not None else path.stem
        columns[SYMBOL_COLUMN] = pl.Series(SYMBOL_COLUMN, [name] * raw.height, dtype=pl.String)
    frame = pl.DataFrame([columns[name].alias(name) for name in BAR_COLUMNS if name in columns])
    try:
        return validate_bars(frame, source=source, max_problems=max_problems)
    except BarContractError as error:
        if ts.note is not None and any(p.column == TS_COLUMN for p in error.problems):
            raise BarContractError(
                _with_note(source, ts.note), error.problems, omitted=error.omitted
            ) from None
        raise


def _with_note(source: str, note: str | None) -> str:
    return source if note is None else f"{source} [{note}]"


def _as_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    result = [Path(path) for path in paths]
    if not result:
        raise DataError("no bar files given (paths is empty)")
    return result


def load_bars(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    ts_col: str | None = None,
    price_col: str | None = None,
    symbol: str | None = None,
    symbol_col: str | None = None,
    column_map: Mapping[str, str] | None = None,
    ts_unit: str = "auto",
    timezone: str | None = None,
    max_problems: int = 20,
) -> pl.DataFrame:
    """Load bars from CSV or Parquet files and check them against the bar contract.

    Columns are matched ignoring case, spaces and punctuation, through `COLUMN_ALIASES`
    (``Date``/``Datetime``/``Time``/``timestamp`` -> ``ts``, ``Vol`` -> ``volume``, ...).
    ``column_map`` maps file column names to contract names; ``ts_col``, ``price_col``
    (e.g. ``"Adj Close"``, read as ``close``) and ``symbol_col`` name single columns.

    Timestamps may be ISO 8601 strings (``2024-01-02``, ``2024-01-02 09:30:00``,
    ``2024-01-02T09:30:00.5+01:00``, ``...Z``), dates, datetimes, or epoch numbers in
    ``ts_unit`` (``"s"``, ``"ms"``, ``"us"``, ``"ns"``; ``"auto"`` infers the unit from the
    largest magnitude and names the inferred unit in errors). Zone-aware values are
    converted to UTC; naive values are read in ``timezone`` (an IANA name, default UTC;
    ambiguous local times take the earlier instant). Epoch numbers are UTC.

    A close-only file gets ``open = high = low = close``; a missing volume becomes 0.0.
    Several files are concatenated in the order given, each with a ``symbol``: its own
    symbol column if it has one, else ``symbol`` if given, else the file's stem. A single
    file gets a ``symbol`` column only from its own column or ``symbol``. Rows keep the
    file order (they are never sorted: out-of-order data is reported, not repaired).
    Problems name 0-based data rows of each file (header and blank lines not counted).

    Return columns ``ts, [symbol], open, high, low, close, volume`` in contract dtypes.

    Raises:
        DataError: the file is missing, empty, header-only, binary, not parseable, lacks a
            required column (the message lists the columns found), or an option is bad.
        BarContractError: (a `DataValidationError`) values that cannot be parsed (row,
            column and text) or violate the contract, at most ``max_problems`` listed.
    """
    if ts_unit not in TS_UNITS:
        raise DataError(f"ts_unit must be one of {', '.join(TS_UNITS)}; got {ts_unit!r}")
    if max_problems < 1:
        raise DataError(f"max_problems must be >= 1, got {max_problems!r}")
    zone = _timezone(timezone)
    files = _as_paths(paths)
    many = len(files) > 1
    frames = [
        _to_bars(
            path,
            _read_table(path),
            ts_col=ts_col,
            price_col=price_col,
            symbol=symbol,
            symbol_col=symbol_col,
            column_map=column_map,
            ts_unit=ts_unit,
            timezone=zone,
            force_symbol=many,
            max_problems=max_problems,
        )
        for path in files
    ]
    if not many:
        return frames[0]
    combined = pl.concat(frames, how="vertical")
    seen: set[str] = set()
    shared = False
    for frame in frames:
        symbols = set(frame.get_column(SYMBOL_COLUMN).unique().to_list())
        shared = shared or bool(symbols & seen)
        seen |= symbols
    if shared:
        # The same symbol spans several files: its bars must still increase across them.
        names = ", ".join(_display(path) for path in files)
        validate_bars(
            combined,
            source=f"{names} (concatenated; rows counted across the files in order)",
            max_problems=max_problems,
        )
    return combined


# --------------------------------------------------------------------------- writing


def write_bars(frame: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` as CSV (``.csv``) or Parquet (``.parquet``/``.pq``).

    The frame is checked against the bar contract first. The bytes depend only on the
    frame's contents (same frame, same file): CSV timestamps are ISO 8601 UTC with a
    ``Z`` and floats use the shortest round-trip form; Parquet uses zstd and no
    time-dependent metadata. The file is written atomically (temporary file, then
    rename); parent folders are created. Return the path written.

    Raises:
        BarContractError: the frame violates the bar contract.
        DataError: the extension is neither CSV nor Parquet, or the file cannot be written.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in _PARQUET_SUFFIXES and suffix != ".csv":
        raise DataError(f"{target}: unknown bar file extension {suffix!r} (use .csv or .parquet)")
    validate_bars(frame, source=f"frame to write to {target}")
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            frame.write_csv(temporary, datetime_format=_CSV_TS_FORMAT)
        else:
            frame.write_parquet(temporary, compression="zstd", statistics=True)
        temporary.replace(target)
    except (OSError, pl.exceptions.PolarsError) as error:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise DataError(f"{target}: cannot write bars: {_first_line(error)}") from None
    return target
