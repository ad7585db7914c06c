"""Fixtures for the market-data tests: a small valid bar frame and a file writer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tradepulse.data.schema import TS_DTYPE

_WriteFile = Callable[[str, str | bytes], Path]


@pytest.fixture
def bars() -> pl.DataFrame:
    """Return 6 valid daily bars (2020-01-01 onwards) that honour the bar contract."""
    start = datetime(2020, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": pl.Series([start + timedelta(days=day) for day in range(6)]).cast(TS_DTYPE),
            "open": [10.0, 10.5, 11.0, 10.8, 10.2, 10.4],
            "high": [11.0, 11.5, 11.6, 11.0, 10.9, 10.9],
            "low": [9.5, 10.1, 10.6, 10.0, 9.9, 10.1],
            "close": [10.5, 11.0, 10.8, 10.2, 10.4, 10.6],
            "volume": [100.0, 120.0, 90.0, 0.0, 110.0, 105.0],
        }
    )


@pytest.fixture
def write_file(tmp_path: Path) -> _WriteFile:
    """Return a function writing text or bytes to ``tmp_path / name``."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write
