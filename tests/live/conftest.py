"""Fixtures of the live-runner tests: the event engine's test strategies, the real bars."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from tradepulse.data import load_bars

# The event engine's test strategies (tests/backtest/_strategies.py) drive the
# runner too: put their folder on the path, as pytest does for the backtest tests.
_BACKTEST_TESTS = str(Path(__file__).resolve().parents[1] / "backtest")
if _BACKTEST_TESTS not in sys.path:
    sys.path.insert(0, _BACKTEST_TESTS)


@pytest.fixture(scope="session")
def sp500(sample_dir: Path) -> pl.DataFrame:
    """Return the shipped S&P 500 daily bars (5,031 bars)."""
    return load_bars(sample_dir / "sp500_daily.csv")
