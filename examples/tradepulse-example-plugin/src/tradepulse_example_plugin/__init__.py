"""An example TradePulse strategy plugin: time-series momentum (``momentum``)."""

from __future__ import annotations

from tradepulse_example_plugin.momentum import Momentum, MomentumParams

__all__ = ["Momentum", "MomentumParams"]
