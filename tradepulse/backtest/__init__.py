"""Backtest engines (pure core, no Ray): the vectorised engine and its result types.

``run_vectorised(bars, targets, ...)`` turns per-bar target positions into fills,
equity and metrics with a compiled kernel. Conventions: ``docs/backtesting.md``.
"""

from __future__ import annotations

from tradepulse.backtest.vector import (
    DEFAULT_CASH,
    FILL_COLUMNS,
    FILL_SIDE,
    TRADE_COLUMNS,
    TRADE_SIDE,
    BacktestResult,
    run_vectorised,
)

__all__ = [
    "DEFAULT_CASH",
    "FILL_COLUMNS",
    "FILL_SIDE",
    "TRADE_COLUMNS",
    "TRADE_SIDE",
    "BacktestResult",
    "run_vectorised",
]
