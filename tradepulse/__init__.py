"""TradePulse: quantitative trading research and execution on Ray."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    "sweep",
]

if TYPE_CHECKING:
    import polars as pl


def sweep(bars: pl.DataFrame, strategy: Any, grid: Any = None, **options: Any) -> pl.DataFrame:
    """Run a parameter sweep and return one row per combination (`tradepulse.sweep.sweep`).

    Loads the sweep machinery on first use, so ``import tradepulse`` stays light.

    Raises:
        ConfigError: see :func:`tradepulse.sweep.run_sweep`.
    """
    from tradepulse.sweep.run import sweep as run

    return run(bars, strategy, grid, **options)
