"""The strategy API: typed parameters, the event and vectorised forms, plugin discovery.

See :mod:`tradepulse.strategy.api` for the conventions every host and strategy
follows. Built-in strategies live in :mod:`tradepulse.strategy.builtins` and are
found through the same ``tradepulse.plugins`` entry points as third-party ones
(:func:`load_strategy`, :func:`discover_strategies`).
"""

from __future__ import annotations

from tradepulse.strategy.api import (
    STRATEGY_API_VERSION,
    Bar,
    OrderId,
    OrderTypeName,
    Strategy,
    StrategyContext,
    StrategyError,
    TimeInForceName,
    validate_signals,
)
from tradepulse.strategy.params import (
    Param,
    ParameterError,
    Params,
    from_mapping,
    param,
    param_specs,
    parse_assignments,
)
from tradepulse.strategy.plugins import (
    ENTRY_POINT_GROUP,
    DiscoveredStrategy,
    IncompatiblePluginError,
    PluginError,
    PluginScan,
    UnknownStrategyError,
    check_api_version,
    describe_strategy,
    discover_strategies,
    load_plugin,
    load_strategy,
    scan_plugins,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "STRATEGY_API_VERSION",
    "Bar",
    "DiscoveredStrategy",
    "IncompatiblePluginError",
    "OrderId",
    "OrderTypeName",
    "Param",
    "ParameterError",
    "Params",
    "PluginError",
    "PluginScan",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "TimeInForceName",
    "UnknownStrategyError",
    "check_api_version",
    "describe_strategy",
    "discover_strategies",
    "from_mapping",
    "load_plugin",
    "load_strategy",
    "param",
    "param_specs",
    "parse_assignments",
    "scan_plugins",
    "validate_signals",
]
