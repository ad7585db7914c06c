"""Stress scenarios (pure core, no Ray): data transforms, scenario files, the stress matrix.

A scenario transforms one instrument's bars (``flash_crash``, ``gap_open``,
``trading_halt``, ``liquidity_drought``, ``volatility_spike``, ``regime_flip``:
:mod:`tradepulse.stress.transforms`) and sets the thresholds of a promotion gate
(:mod:`tradepulse.stress.config`, files in ``backtest/configs/stress/``).
``run_stress(bars, "sma_cross", scenarios=load_scenarios(["*"]), seeds=5)``
backtests a strategy under every scenario and seed on an executor (local, or
Ray through :mod:`tradepulse.cluster`) and returns a :class:`StressReport` with
the table and the gate's verdict (``docs/stress.md``).
"""

from __future__ import annotations

from tradepulse.stress.config import (
    DEFAULT_DROUGHT_PARTICIPATION,
    DEPTH_MODELS,
    SCENARIO_KEYS,
    SHIPPED_SCENARIOS,
    EngineSettings,
    FrictionOverrides,
    Scenario,
    Thresholds,
    find_scenarios,
    load_scenario,
    load_scenarios,
    scenario_directory,
)
from tradepulse.stress.runner import (
    BASELINE,
    ROW_COLUMNS,
    StressReport,
    StressRow,
    run_scenario,
    run_stress,
    stress_seeds,
)
from tradepulse.stress.transforms import (
    TRANSFORMS,
    FlashCrash,
    GapOpen,
    LiquidityDrought,
    RegimeFlip,
    StressTransform,
    TradingHalt,
    VolatilitySpike,
    build_transform,
)

__all__ = [
    "BASELINE",
    "DEFAULT_DROUGHT_PARTICIPATION",
    "DEPTH_MODELS",
    "ROW_COLUMNS",
    "SCENARIO_KEYS",
    "SHIPPED_SCENARIOS",
    "TRANSFORMS",
    "EngineSettings",
    "FlashCrash",
    "FrictionOverrides",
    "GapOpen",
    "LiquidityDrought",
    "RegimeFlip",
    "Scenario",
    "StressReport",
    "StressRow",
    "StressTransform",
    "Thresholds",
    "TradingHalt",
    "VolatilitySpike",
    "build_transform",
    "find_scenarios",
    "load_scenario",
    "load_scenarios",
    "run_scenario",
    "run_stress",
    "scenario_directory",
    "stress_seeds",
]
