"""Execution core: the matching engine, its latency and depth models, risk checks, the OMS.

Pure (no Ray, FastAPI or Prometheus) and deterministic; shared by the
event-driven backtester and the live paper exchange. The execution service
(:class:`ExecutionService`: order management, throttles, kill switch, paper
exchange) journals every change to an append-only SQLite :class:`Journal`.
"""

from __future__ import annotations

from tradepulse.execution.journal import Journal, JournalEntry, JournalError, JournalEvent
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
from tradepulse.execution.service import ExecutionService
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import (
    AccountView,
    FillView,
    InvalidBarError,
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
    OrderView,
    PositionView,
    Reason,
    SubmitOutcome,
)
from tradepulse.execution.throttle import RateLimit, Throttle, TokenBucket

__all__ = [
    "NS_PER_DAY",
    "AccountView",
    "BarLike",
    "CommissionModel",
    "ConstantDepth",
    "DepthExecution",
    "DepthModel",
    "ExecutionPriceModel",
    "ExecutionService",
    "FillView",
    "FixedLatency",
    "InvalidBarError",
    "Journal",
    "JournalEntry",
    "JournalError",
    "JournalEvent",
    "LatencyModel",
    "MatchResult",
    "MatchingEngine",
    "OrderConflictError",
    "OrderNotFoundError",
    "OrderRequest",
    "OrderTiming",
    "OrderView",
    "PositionView",
    "PreTradeRisk",
    "RateLimit",
    "Reason",
    "RiskLimits",
    "ServiceConfig",
    "SquareRootImpactDepth",
    "SubmitOutcome",
    "Throttle",
    "TokenBucket",
    "VolumeProportionalDepth",
    "submit_checked",
]
