"""Golden regression files: expected outputs with provenance, compared with tolerances.

``golden/indicators/`` pins every indicator and ``golden/backtests/`` every
built-in strategy's backtest on the shipped data (``docs/golden.md``).
"""

from __future__ import annotations

from tradepulse.golden.backtests import (
    BacktestCase,
    BacktestDrift,
    CaseResult,
    ComputedCase,
    StoredCase,
    check_backtest_goldens,
    check_case,
    compare,
    golden_backtest_cases,
    load_stored_case,
    run_case,
    update_backtest_goldens,
)
from tradepulse.golden.indicators import (
    GoldenDrift,
    check_indicator_goldens,
    golden_root,
    update_indicator_goldens,
)

__all__ = [
    "BacktestCase",
    "BacktestDrift",
    "CaseResult",
    "ComputedCase",
    "GoldenDrift",
    "StoredCase",
    "check_backtest_goldens",
    "check_case",
    "check_indicator_goldens",
    "compare",
    "golden_backtest_cases",
    "golden_root",
    "load_stored_case",
    "run_case",
    "update_backtest_goldens",
    "update_indicator_goldens",
]
