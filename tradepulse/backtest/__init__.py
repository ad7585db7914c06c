"""Backtest engines (pure core, no Ray): the vectorised engine and its result types.

``run_vectorised(bars, targets, ...)`` turns per-bar target positions into fills,
equity and metrics with a compiled kernel. Conventions: ``docs/backtesting.md``.
``load_friction_config(path)`` reads a market-friction YAML (``backtest/configs/``)
into a `FrictionConfig` whose ``engine_arguments()`` feed ``run_vectorised``.
"""

from __future__ import annotations

from tradepulse.backtest.config import FrictionConfig, load_friction_config
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
    "FrictionConfig",
    "load_friction_config",
    "run_vectorised",
]
