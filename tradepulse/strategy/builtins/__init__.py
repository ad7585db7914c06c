"""The built-in strategies, registered as ``tradepulse.plugins`` entry points like any plugin."""

from __future__ import annotations

from tradepulse.strategy.builtins.bollinger_breakout import (
    BollingerBreakout,
    BollingerBreakoutParams,
)
from tradepulse.strategy.builtins.geometry_phase import GeometryPhase, GeometryPhaseParams
from tradepulse.strategy.builtins.rsi_reversion import RsiReversion, RsiReversionParams
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams

__all__ = [
    "BollingerBreakout",
    "BollingerBreakoutParams",
    "GeometryPhase",
    "GeometryPhaseParams",
    "RsiReversion",
    "RsiReversionParams",
    "SmaCross",
    "SmaCrossParams",
]
