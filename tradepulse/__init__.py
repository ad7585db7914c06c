"""TradePulse: quantitative trading research and execution on Ray."""

from __future__ import annotations

from tradepulse.errors import (
    ConfigError,
    DataError,
    DataValidationError,
    IndicatorError,
    TradePulseError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DataValidationError",
    "IndicatorError",
    "TradePulseError",
    "__version__",
]
