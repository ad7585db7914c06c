"""Execution core: the bar-by-bar matching engine, its latency and depth models, risk checks.

Pure (no Ray, FastAPI or Prometheus) and deterministic; shared by the
event-driven backtester and the live paper exchange.
"""

from __future__ import annotations

from tradepulse.execution.latency import FixedLatency, LatencyModel, OrderTiming
from tradepulse.execution.liquidity import (
    ConstantDepth,
    DepthExecution,
    DepthModel,
    SquareRootImpactDepth,
    VolumeProportionalDepth,
)
from tradepulse.execution.matching import (
    NS_PER_DAY,
    BarLike,
    CommissionModel,
    ExecutionPriceModel,
    MatchingEngine,
    MatchResult,
)
from tradepulse.execution.risk import PreTradeRisk, RiskLimits, submit_checked

__all__ = [
    "NS_PER_DAY",
    "BarLike",
    "CommissionModel",
    "ConstantDepth",
    "DepthExecution",
    "DepthModel",
    "ExecutionPriceModel",
    "FixedLatency",
    "LatencyModel",
    "MatchResult",
    "MatchingEngine",
    "OrderTiming",
    "PreTradeRisk",
    "RiskLimits",
    "SquareRootImpactDepth",
    "VolumeProportionalDepth",
    "submit_checked",
]
