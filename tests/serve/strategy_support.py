"""Support of the live-strategy tests: a parameterless Params, test plugins, bar bodies, Serve.

:func:`installed_plugins` registers test strategies as plugins (entry points
``module:Class`` of the module each class is defined in); :func:`serve_app`
runs the live application on the session's Ray cluster (ray is imported when
it is entered, never when this module is).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from tradepulse.live import iter_bars
from tradepulse.strategy import Params, Strategy
from tradepulse.strategy import plugins as plugins_module
from tradepulse.strategy.plugins import ENTRY_POINT_GROUP

if TYPE_CHECKING:
    from tradepulse.serve.settings import AppArgs

__all__ = [
    "BarOnlyStrategy",
    "NoParameters",
    "bar_bodies",
    "free_port",
    "installed_plugins",
    "serve_app",
]


@dataclass(frozen=True, slots=True)
class NoParameters(Params):
    """No parameters."""


class BarOnlyStrategy(Strategy[NoParameters]):
    """A test strategy of no parameters and no indicators: it reads the bar and its index only.

    Subclasses set ``name`` and implement ``handle_tick``.
    """

    api_version = "1.0"
    params_type = NoParameters


def installed_plugins(
    monkeypatch: pytest.MonkeyPatch, *strategy_classes: type[Strategy[Any]]
) -> None:
    """Add ``strategy_classes`` to the installed strategy plugins for the test."""
    installed = plugins_module._entry_points()
    ours = [
        EntryPoint(name=cls.name, value=f"{cls.__module__}:{cls.__name__}", group=ENTRY_POINT_GROUP)
        for cls in strategy_classes
    ]
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: [*installed, *ours])


def bar_bodies(frame: pl.DataFrame, symbol: str = "SPX") -> list[dict[str, Any]]:
    """Return the ``POST /market/bars`` bodies of ``frame``'s bars for ``symbol``."""
    return [
        {
            "symbol": symbol,
            "ts": b.ts,
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
        }
        for b in iter_bars(frame)
    ]


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_app(args: AppArgs, *, name: str) -> Iterator[str]:
    """Run the live application built from ``args`` on Serve as ``name``; yield its /api/v1 URL."""
    from ray import serve

    from tradepulse.serve.deployment import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(args), name=name, route_prefix="/")
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        serve.delete(name)
        serve.shutdown()  # type: ignore[no-untyped-call]
