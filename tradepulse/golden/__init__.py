"""Golden regression files: expected outputs with provenance, compared with tolerances.

``golden/indicators/`` pins every indicator, ``golden/backtests/`` every
built-in strategy's backtest and ``golden/stress/`` a strategy under every
shipped stress scenario, all on the shipped data. :func:`run_golden_checks`
checks them, one executor task per case (``docs/golden.md``).
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
    compute_case,
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
from tradepulse.golden.regression import (
    SUITES,
    CaseCheck,
    Drift,
    DriftChart,
    GoldenInputs,
    GoldenTask,
    RegressionRun,
    Suite,
    check_golden_task,
    prepare_golden_checks,
    run_golden_checks,
    run_golden_tasks,
)
from tradepulse.golden.stress import (
    StoredStressCase,
    StressGoldenCase,
    compare_stress_run,
    compute_stress_run,
    golden_stress_cases,
    load_stored_stress_case,
    update_stress_goldens,
)

__all__ = [
    "SUITES",
    "BacktestCase",
    "BacktestDrift",
    "CaseCheck",
    "CaseResult",
    "ComputedCase",
    "Drift",
    "DriftChart",
    "GoldenDrift",
    "GoldenInputs",
    "GoldenTask",
    "RegressionRun",
    "StoredCase",
    "StoredStressCase",
    "StressGoldenCase",
    "Suite",
    "check_backtest_goldens",
    "check_case",
    "check_golden_task",
    "check_indicator_goldens",
    "compare",
    "compare_stress_run",
    "compute_case",
    "compute_stress_run",
    "golden_backtest_cases",
    "golden_root",
    "golden_stress_cases",
    "load_stored_case",
    "load_stored_stress_case",
    "prepare_golden_checks",
    "run_case",
    "run_golden_checks",
    "run_golden_tasks",
    "update_backtest_goldens",
    "update_indicator_goldens",
    "update_stress_goldens",
]
