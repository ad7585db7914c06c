"""Public exports resolve and are unique (their order is enforced by ruff RUF022)."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "tradepulse",
    "tradepulse.backtest",
    "tradepulse.cluster",
    "tradepulse.cluster.tune",
    "tradepulse.costs",
    "tradepulse.data",
    "tradepulse.domain",
    "tradepulse.execution",
    "tradepulse.golden",
    "tradepulse.indicators",
    "tradepulse.reports",
    "tradepulse.strategy",
    "tradepulse.stress",
    "tradepulse.sweep",
    "tradepulse.strategy.builtins",
    "tradepulse.live",
    "tradepulse.serve",
    "tradepulse.serve.settings",
    "tradepulse.serve.deployment",
    "tradepulse.serve.runtime",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)

    exported = list(module.__all__)

    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is in __all__ but missing"
