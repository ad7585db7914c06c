"""TradePulse: quantitative trading research and execution on Ray."""

from __future__ import annotations

from tradepulse.errors import (
    BarContractError,
    ConfigError,
    DataError,
    DataValidationError,
    IndicatorError,
    OptimalTransportError,
    TradePulseError,
    ValidationProblem,
)

__version__ = "0.1.0"

__all__ = [
    "BarContractError",
    "ConfigError",
    "DataError",
    "DataValidationError",
    "IndicatorError",
    "OptimalTransportError",
    "TradePulseError",
    "ValidationProblem",
    "__version__",
]
