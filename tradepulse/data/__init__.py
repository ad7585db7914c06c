"""Market data: the bar contract, loaders, synthetic markets and resampling."""

from __future__ import annotations

from tradepulse.data.loaders import COLUMN_ALIASES, load_bars, write_bars
from tradepulse.data.resample import duration_ns, parse_every, resample_bars
from tradepulse.data.schema import (
    BAR_COLUMNS,
    BAR_SCHEMA,
    PRICE_COLUMNS,
    REQUIRED_BAR_COLUMNS,
    SYMBOL_COLUMN,
    TS_COLUMN,
    TS_DTYPE,
    VOLUME_COLUMN,
    validate_bars,
)
from tradepulse.data.synth import REGIMES, synthesize_bars

__all__ = [
    "BAR_COLUMNS",
    "BAR_SCHEMA",
    "COLUMN_ALIASES",
    "PRICE_COLUMNS",
    "REGIMES",
    "REQUIRED_BAR_COLUMNS",
    "SYMBOL_COLUMN",
    "TS_COLUMN",
    "TS_DTYPE",
    "VOLUME_COLUMN",
    "duration_ns",
    "load_bars",
    "parse_every",
    "resample_bars",
    "synthesize_bars",
    "validate_bars",
    "write_bars",
]
