"""Backtest engines (pure core, no Ray): vectorised and event-driven, one result type.

``run_backtest(bars, "sma_cross", {"fast": 10})`` runs a strategy by name on either
engine (``engine="vector"`` or ``"event"``); ``run_event`` drives a strategy's
``handle_tick`` on the matching engine.

``run_vectorised(bars, targets, ...)`` turns per-bar target positions into fills,
equity and metrics with a compiled kernel. Conventions: ``docs/backtesting.md``.
``load_friction_config(path)`` reads a market-friction YAML (``backtest/configs/``)
into a `FrictionConfig` whose ``engine_arguments()`` feed ``run_vectorised``.
``walk_forward(bars, strategy, train_bars=..., test_bars=...)`` re-optimises a
strategy on rolling or anchored train windows and stitches the out-of-sample
runs (``docs/walkforward.md``).
"""

from __future__ import annotations

from tradepulse.backtest.config import FrictionConfig, load_friction_config
from tradepulse.backtest.event import ORDER_COLUMNS, EventContext, run_event
from tradepulse.backtest.runner import (
    ENGINES,
    Engine,
    resolve_params,
    resolve_strategy,
    run_backtest,
)
from tradepulse.backtest.vector import (
    DEFAULT_CASH,
    FILL_COLUMNS,
    FILL_SIDE,
    TRADE_COLUMNS,
    TRADE_SIDE,
    BacktestResult,
    VectorisedRun,
    prepare_vectorised,
    run_vectorised,
)
from tradepulse.backtest.walkforward import (
    FOLD_COLUMNS,
    MAX_DEFAULT_COMBINATIONS,
    OBJECTIVES,
    MapFunction,
    WalkForwardResult,
    WalkForwardWindow,
    walk_forward,
    walk_forward_windows,
)

__all__ = [
    "DEFAULT_CASH",
    "ENGINES",
    "FILL_COLUMNS",
    "FILL_SIDE",
    "FOLD_COLUMNS",
    "MAX_DEFAULT_COMBINATIONS",
    "OBJECTIVES",
    "ORDER_COLUMNS",
    "TRADE_COLUMNS",
    "TRADE_SIDE",
    "BacktestResult",
    "Engine",
    "EventContext",
    "FrictionConfig",
    "MapFunction",
    "VectorisedRun",
    "WalkForwardResult",
    "WalkForwardWindow",
    "load_friction_config",
    "prepare_vectorised",
    "resolve_params",
    "resolve_strategy",
    "run_backtest",
    "run_event",
    "run_vectorised",
    "walk_forward",
    "walk_forward_windows",
]
