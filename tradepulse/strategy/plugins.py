"""Find strategies through the ``tradepulse.plugins`` entry-point group and check them.

Built-ins register exactly as third-party plugins do, in ``pyproject.toml``::

    [project.entry-points."tradepulse.plugins"]
    momentum = "tradepulse_momentum:Momentum"

The entry-point name must equal the strategy's ``name``. A plugin is refused
(with a :class:`PluginError` naming it) when it does not import, is not a
concrete :class:`~tradepulse.strategy.api.Strategy` subclass, declares an
invalid parameter dataclass, or targets an incompatible strategy API: a
different major version, or a newer minor version than this TradePulse's
:data:`~tradepulse.strategy.api.STRATEGY_API_VERSION`.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from tradepulse.errors import ConfigError
from tradepulse.strategy.api import STRATEGY_API_VERSION, Strategy, StrategyError
from tradepulse.strategy.params import Params, param_specs

__all__ = [
    "ENTRY_POINT_GROUP",
    "DiscoveredStrategy",
    "IncompatiblePluginError",
    "PluginError",
    "PluginScan",
    "UnknownStrategyError",
    "check_api_version",
    "describe_strategy",
    "discover_strategies",
    "load_plugin",
    "load_strategy",
    "scan_plugins",
]

#: The entry-point group every strategy (built-in or plugin) registers in.
ENTRY_POINT_GROUP = "tradepulse.plugins"

_VERSION = re.compile(r"^(\d+)\.(\d+)$")


class PluginError(StrategyError):
    """A strategy plugin cannot be used; ``plugin`` is its entry-point name."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(message)


class IncompatiblePluginError(PluginError):
    """A plugin targets a strategy-API version this TradePulse does not implement."""

    def __init__(self, plugin: str, message: str, *, plugin_version: str) -> None:
        self.plugin_version = plugin_version
        super().__init__(plugin, message)


class UnknownStrategyError(ConfigError, StrategyError):
    """No strategy of the requested name is installed; ``known`` lists the installed ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listed = ", ".join(known) if known else "none installed"
        super().__init__(f"unknown strategy {name!r} (known strategies: {listed})")


@dataclass(frozen=True, slots=True)
class DiscoveredStrategy:
    """A strategy class and where it came from (``entry_point`` is ``module:attribute``)."""

    name: str
    strategy: type[Strategy]
    entry_point: str
    distribution: str | None


@dataclass(frozen=True, slots=True)
class PluginScan:
    """Result of :func:`scan_plugins`: the usable strategies and the refused plugins."""

    found: tuple[DiscoveredStrategy, ...]
    errors: tuple[PluginError, ...]


def _entry_points() -> list[EntryPoint]:
    # One seam for tests to substitute fake entry points.
    return list(entry_points(group=ENTRY_POINT_GROUP))


def _origin(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    source = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"entry point {entry_point.name} = {entry_point.value!r}{source}"


def check_api_version(plugin: str, declared: object) -> None:
    """Check that strategy-API version ``declared`` (``"MAJOR.MINOR"``) runs on this TradePulse.

    ``plugin`` names the plugin in the error.

    Raises:
        IncompatiblePluginError: ``declared`` is not a ``"MAJOR.MINOR"`` string,
            its major version differs from ours, or its minor version is newer.
    """
    ours = STRATEGY_API_VERSION
    match = _VERSION.match(declared) if isinstance(declared, str) else None
    if match is None:
        raise IncompatiblePluginError(
            plugin,
            f"plugin {plugin!r} declares strategy API version {declared!r}, expected "
            f"'MAJOR.MINOR' (this TradePulse implements {ours})",
            plugin_version=str(declared),
        )
    major, minor = int(match.group(1)), int(match.group(2))
    our_major, our_minor = (int(part) for part in ours.split("."))
    if major != our_major:
        raise IncompatiblePluginError(
            plugin,
            f"plugin {plugin!r} was written for strategy API {declared}, but this TradePulse "
            f"implements {ours} (major versions differ); install a release of the plugin "
            f"for API {our_major}.x",
            plugin_version=str(declared),
        )
    if minor > our_minor:
        raise IncompatiblePluginError(
            plugin,
            f"plugin {plugin!r} was written for strategy API {declared}, newer than the "
            f"{ours} this TradePulse implements; upgrade TradePulse",
            plugin_version=str(declared),
        )


def load_plugin(entry_point: EntryPoint) -> type[Strategy]:
    """Import ``entry_point`` and return its strategy class after checking it.

    Raises:
        PluginError: the import fails (the message names the entry point and the
            exception, never a traceback), the object is not a concrete
            :class:`Strategy` subclass, its ``name`` differs from the entry-point
            name, or its parameter dataclass is invalid.
        IncompatiblePluginError: its ``api_version`` is incompatible.
    """
    plugin = entry_point.name
    origin = _origin(entry_point)
    try:
        loaded = entry_point.load()
    except Exception as exc:  # any failure importing third-party code is reported, not raised
        raise PluginError(
            plugin, f"plugin {plugin!r} ({origin}) failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Strategy)):
        raise PluginError(
            plugin, f"plugin {plugin!r} ({origin}) is not a tradepulse Strategy subclass"
        )
    if inspect.isabstract(loaded):
        missing = ", ".join(sorted(getattr(loaded, "__abstractmethods__", ())))
        raise PluginError(plugin, f"plugin {plugin!r} ({origin}) does not implement {missing}")
    check_api_version(plugin, getattr(loaded, "api_version", None))
    declared_name = getattr(loaded, "name", None)
    if declared_name != plugin:
        raise PluginError(
            plugin,
            f"plugin {plugin!r} ({origin}) declares name {declared_name!r}; the entry-point "
            "name and Strategy.name must be equal",
        )
    params_type = getattr(loaded, "params_type", None)
    try:
        if not (isinstance(params_type, type) and issubclass(params_type, Params)):
            raise StrategyError(f"params_type must be a Params dataclass, got {params_type!r}")
        param_specs(params_type)
    except StrategyError as exc:
        raise PluginError(plugin, f"plugin {plugin!r} ({origin}): {exc}") from exc
    return loaded


def scan_plugins() -> PluginScan:
    """Load every ``tradepulse.plugins`` entry point; keep the good ones, collect the errors.

    Two entry points of the same name are both refused (which one wins would
    depend on installation order).
    """
    points = _entry_points()
    counts: dict[str, int] = {}
    for point in points:
        counts[point.name] = counts.get(point.name, 0) + 1
    found: list[DiscoveredStrategy] = []
    errors: list[PluginError] = []
    reported: set[str] = set()
    for point in sorted(points, key=lambda p: (p.name, p.value)):
        if counts[point.name] > 1:
            if point.name not in reported:
                reported.add(point.name)
                errors.append(_duplicate_error(point.name, points))
            continue
        try:
            strategy = load_plugin(point)
        except PluginError as exc:
            errors.append(exc)
            continue
        dist = point.dist.name if point.dist is not None else None
        found.append(DiscoveredStrategy(point.name, strategy, point.value, dist))
    return PluginScan(found=tuple(found), errors=tuple(errors))


def _duplicate_error(name: str, points: list[EntryPoint]) -> PluginError:
    origins = "; ".join(_origin(p) for p in points if p.name == name)
    return PluginError(name, f"strategy {name!r} is registered more than once: {origins}")


def discover_strategies() -> dict[str, type[Strategy]]:
    """Return every installed strategy class by name (built-ins and plugins), sorted by name.

    Raises:
        PluginError: a plugin cannot be used (see :func:`load_plugin`); every
            refused plugin is listed in the message.
    """
    scan = scan_plugins()
    if scan.errors:
        first = scan.errors[0]
        if len(scan.errors) == 1:
            raise first
        details = "; ".join(str(error) for error in scan.errors)
        raise PluginError(first.plugin, f"{len(scan.errors)} plugins refused: {details}")
    return {item.name: item.strategy for item in scan.found}


def load_strategy(name: str) -> type[Strategy]:
    """Return the strategy class registered as ``name``; other plugins are not imported.

    Raises:
        UnknownStrategyError: no strategy of that name is installed (the message
            lists the installed ones); also a :class:`ConfigError`.
        PluginError: that plugin cannot be used, or two distributions register it.
    """
    points = _entry_points()
    matching = [point for point in points if point.name == name]
    if not matching:
        raise UnknownStrategyError(name, sorted({point.name for point in points}))
    if len(matching) > 1:
        raise _duplicate_error(name, points)
    return load_plugin(matching[0])


def describe_strategy(strategy: type[Strategy]) -> dict[str, Any]:
    """Return a JSON-ready description: name, summary, API version, forms and parameters."""
    # The class's own docstring only: inspect.getdoc would fall back to Strategy's.
    doc = inspect.cleandoc(strategy.__doc__ or "")
    forms = ["event"]
    if strategy.signals is not Strategy.signals:
        forms.append("vectorised")
    return {
        "name": strategy.name,
        "description": doc.splitlines()[0] if doc else "",
        "api_version": strategy.api_version,
        "forms": forms,
        "parameters": [spec.describe() for spec in param_specs(strategy.params_type).values()],
    }
