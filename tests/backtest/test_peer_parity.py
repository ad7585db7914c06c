"""``sma_cross`` gives the trades and final equity of backtesting.py and vectorbt (1e-9).

The comparison itself (peer set-ups, trade matching) is ``benchmarks/compare_peers.py``;
this runs a subset of its table on the shipped real data and on synthetic 1-minute
bars. The peers come with the dev tools (the ``peers`` extra); without them the
test is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

pytest.importorskip(
    "backtesting", reason="backtesting.py not installed (pip install -e '.[peers]')"
)
pytest.importorskip("vectorbt", reason="vectorbt not installed (pip install -e '.[peers]')")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_peers.py"


@pytest.fixture(scope="module")
def peers() -> ModuleType:
    """The comparison script, imported as a module."""
    spec = importlib.util.spec_from_file_location("compare_peers", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(peers: ModuleType) -> dict[str, pl.DataFrame]:
    sets: dict[str, pl.DataFrame] = peers.data_sets(synthetic_bars=4_000)
    return sets


CASES = [
    ("sp500_daily", 10, 30, "long"),
    ("sp500_daily", 10, 30, "long_short"),
    ("nasdaq_daily", 50, 200, "long_short"),
    ("synthetic_1min_4k", 10, 30, "long_short"),
    ("synthetic_1min_4k", 20, 50, "long"),
]


@pytest.mark.parametrize("engine", ["vector", "event"])
@pytest.mark.parametrize("library", ["backtesting.py", "vectorbt"])
@pytest.mark.parametrize(("name", "fast", "slow", "direction"), CASES)
def test_sma_cross_agrees_with_the_peer(
    peers: ModuleType,
    data: dict[str, pl.DataFrame],
    library: str,
    name: str,
    fast: int,
    slow: int,
    direction: str,
    engine: str,
) -> None:
    row = peers.compare(name, data[name], fast, slow, direction, library, engine)

    assert row.their_trades == row.our_trades > 0
    assert row.trades_match, "trade lists differ (bars, size, prices or P&L beyond 1e-9)"
    assert row.equity_difference <= 1e-9
    assert row.curve_difference <= 1e-9


def test_trade_matching_notices_a_difference(peers: ModuleType) -> None:
    trade = peers.TradeRow(1, 5, 10.0, 100.0, 110.0, 99.0)
    shifted = peers.TradeRow(1, 6, 10.0, 100.0, 110.0, 99.0)
    resized = peers.TradeRow(1, 5, 10.0 * (1 + 1e-8), 100.0, 110.0, 99.0)

    assert peers.trades_agree([trade], [trade])
    assert not peers.trades_agree([trade], [shifted])
    assert not peers.trades_agree([trade], [resized])
    assert not peers.trades_agree([trade], [])
