"""Resample bars to a coarser interval, and parse the interval strings bars use."""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from tradepulse.data.schema import (
    PRICE_COLUMNS,
    SYMBOL_COLUMN,
    TS_COLUMN,
    VOLUME_COLUMN,
    validate_bars,
)
from tradepulse.errors import DataError

__all__ = [
    "FIXED_UNITS_NS",
    "duration_ns",
    "parse_every",
    "resample_bars",
]

#: Nanoseconds per fixed-length unit (``min`` and ``m`` both mean minutes).
FIXED_UNITS_NS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_CALENDAR_UNITS: Final = ("mo", "q", "y")
# Longest spellings first, so "ms" / "mo" / "min" are not read as "m" + junk.
_TOKEN: Final = re.compile(r"(\d+)(min|ns|us|ms|mo|s|m|h|d|w|q|y)")
_EXAMPLES: Final = "e.g. 30s, 1min, 5m, 1h, 1d, 1w, 1mo, 1h30m"


def _tokens(text: str, *, name: str) -> list[tuple[int, str]]:
    cleaned = text.strip().lower() if isinstance(text, str) else ""
    position = 0
    tokens: list[tuple[int, str]] = []
    for match in _TOKEN.finditer(cleaned):
        if match.start() != position:
            break
        unit = "m" if match.group(2) == "min" else match.group(2)
        tokens.append((int(match.group(1)), unit))
        position = match.end()
    if not tokens or position != len(cleaned):
        raise DataError(f"{name} must be a duration ({_EXAMPLES}); got {text!r}")
    if all(count == 0 for count, _ in tokens):
        raise DataError(f"{name} must be a positive duration; got {text!r}")
    return tokens


def parse_every(every: str, *, name: str = "every") -> str:
    """Return ``every`` as a polars duration string (``"5min"`` -> ``"5m"``).

    Accept integers followed by ``ns``, ``us``, ``ms``, ``s``, ``m``/``min``, ``h``, ``d``,
    ``w``, ``mo``, ``q``, ``y``, concatenated (``"1h30m"``).

    Raises:
        DataError: ``every`` is not such a duration, or is zero.
    """
    return "".join(f"{count}{unit}" for count, unit in _tokens(every, name=name))


def duration_ns(freq: str, *, name: str = "freq") -> int:
    """Return the length of the fixed duration ``freq`` (e.g. ``"1min"``) in nanoseconds.

    Raises:
        DataError: ``freq`` is not a duration, is zero, or uses a calendar unit
            (``mo``, ``q``, ``y``), whose length varies.
    """
    total = 0
    for count, unit in _tokens(freq, name=name):
        if unit in _CALENDAR_UNITS:
            raise DataError(
                f"{name} must be a fixed duration (ns, us, ms, s, min, h, d, w); got {freq!r}"
            )
        total += count * FIXED_UNITS_NS[unit]
    return total


def resample_bars(frame: pl.DataFrame, *, every: str) -> pl.DataFrame:
    """Aggregate bars into buckets of length ``every``, per symbol.

    Each bucket ``[start, start + every)`` with at least one bar becomes one bar labelled
    with the bucket start: open = first open, high = max high, low = min low, close = last
    close, volume = sum of volumes. Buckets are aligned to the epoch (weeks start on
    Monday), in UTC. Empty buckets are skipped. Columns other than the bar columns are
    dropped. The output is sorted by symbol, then ``ts``, and honours the bar contract.

    Raises:
        DataError: ``every`` is not a valid duration (see `parse_every`).
        BarContractError: ``frame`` violates the bar contract.
    """
    interval = parse_every(every)
    validate_bars(frame, source="bars to resample")
    by = [SYMBOL_COLUMN] if SYMBOL_COLUMN in frame.columns else []
    ordered = frame.sort([*by, TS_COLUMN]) if by else frame
    resampled = ordered.group_by_dynamic(
        TS_COLUMN,
        every=interval,
        closed="left",
        label="left",
        start_by="window",
        group_by=by or None,
    ).agg(
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col(VOLUME_COLUMN).sum(),
    )
    columns = [TS_COLUMN, *by, *PRICE_COLUMNS, VOLUME_COLUMN]
    result = resampled.select(columns).sort([*by, TS_COLUMN])
    return validate_bars(result, source=f"bars resampled to {every}")
