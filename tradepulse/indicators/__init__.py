"""Indicators: classic (TA-Lib compatible) and TradePulse market geometry.

Every function takes float64 arrays and returns arrays of the same length with
NaN during warm-up; every value at bar t uses only bars <= t.
"""

from __future__ import annotations

from tradepulse.indicators.classic import (
    MACD,
    BollingerBands,
    atr,
    bollinger_bands,
    ema,
    macd,
    rsi,
    sma,
)
from tradepulse.indicators.entropy import entropy_change, shannon_entropy
from tradepulse.indicators.frame import (
    IndicatorConfig,
    compute_indicators,
    indicator_columns,
    latest_values,
)
from tradepulse.indicators.hurst import hurst_exponent
from tradepulse.indicators.kuramoto import kuramoto_cross, kuramoto_order
from tradepulse.indicators.phase import (
    Phase,
    PhaseThresholds,
    composite_score,
    detect_phase,
    phase_names,
)
from tradepulse.indicators.ricci import ricci_curvature

__all__ = [
    "MACD",
    "BollingerBands",
    "IndicatorConfig",
    "Phase",
    "PhaseThresholds",
    "atr",
    "bollinger_bands",
    "composite_score",
    "compute_indicators",
    "detect_phase",
    "ema",
    "entropy_change",
    "hurst_exponent",
    "indicator_columns",
    "kuramoto_cross",
    "kuramoto_order",
    "latest_values",
    "macd",
    "phase_names",
    "ricci_curvature",
    "rsi",
    "shannon_entropy",
    "sma",
]
