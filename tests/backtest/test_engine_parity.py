"""Parity: the vectorised and event-driven engines give the same trades, equity and metrics.

Every installed strategy with both forms (``signals()`` and ``handle_tick``),
found through :func:`tradepulse.strategy.discover_strategies` so a new built-in
is covered without touching this file, runs on both engines on the shipped real
data and on synthetic bars under several friction sets. The event engine books
exact decimals on a 1e-12 grid and the vectorised one floats, so the runs agree
to 1e-9 relative, not bit for bit. Random target sequences (fractional targets,
reversals, partial adjustments) check the sizing arithmetic of both engines
against each other.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _strategies import CASH, NoParams, TargetFollower
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.backtest import BacktestResult, run_vectorised
from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import run_backtest
from tradepulse.costs import (
    FixedCommission,
    FixedSlippage,
    NotionalCommission,
    PerUnitCommission,
    SpreadSlippage,
    SquareRootImpact,
)
from tradepulse.data import load_bars, synthesize_bars
from tradepulse.strategy import discover_strategies, param_specs

REL = 1e-9
BUILT_INS = {"sma_cross", "rsi_reversion", "bollinger_breakout", "geometry_phase"}
#: Strategies whose indicators take about a second on the real data: fewer cases.
SLOW = {"geometry_phase"}
#: Parameters that keep a slow strategy quick on the synthetic bars (its warm-up window).
QUICK_PARAMS: Mapping[str, Mapping[str, object]] = {"geometry_phase": {"window": 50}}

FRICTIONS: Mapping[str, Mapping[str, object]] = {
    "none": {},
    "commission_whole": {"commission": 0.001, "sizing": "whole"},
    "models_latency1": {
        "commission": [
            NotionalCommission(rate=0.0005),
            PerUnitCommission(per_unit=0.01),
            FixedCommission(per_fill=1.0),
        ],
        "slippage": [SpreadSlippage(spread_bps=2.0), FixedSlippage(slippage_bps=1.0)],
        "latency_bars": 1,
    },
    "impact_latency3": {
        "commission": NotionalCommission(rate=0.001),
        "slippage": [SquareRootImpact(impact_bps=50.0), SpreadSlippage(spread_bps=1.0)],
        "latency_bars": 3,
    },
    "impact_whole_latency3": {
        "commission": [NotionalCommission(rate=0.0002), FixedCommission(per_fill=2.0)],
        "slippage": [SquareRootImpact(impact_bps=200.0), FixedSlippage(slippage_bps=2.0)],
        "sizing": "whole",
        "latency_bars": 3,
    },
}
DATASETS = ("sp500_daily", "nasdaq_daily", "synthetic")


@functools.cache
def dataset(name: str) -> pl.DataFrame:
    """The shipped real bars, or 2,000 synthetic daily bars."""
    if name == "synthetic":
        return synthesize_bars(bars=2_000, seed=11, freq="1d")
    return load_bars(Path(__file__).resolve().parents[2] / "golden" / "data" / f"{name}.csv")


def with_both_forms() -> list[str]:
    """Every installed strategy that has a vectorised form, sorted."""
    return sorted(name for name, cls in discover_strategies().items() if cls().has_signals)


def param_variants(name: str) -> list[dict[str, object]]:
    """Defaults, plus ``direction=long_short`` where the strategy offers it."""
    variants: list[dict[str, object]] = [{}]
    spec = param_specs(discover_strategies()[name].params_type).get("direction")
    if spec is not None and "long_short" in (spec.choices or ()):
        variants.append({"direction": "long_short"})
    return variants


def cases() -> list[object]:
    """(strategy, params, dataset, friction) for every strategy; fewer for the slow ones."""
    result = []
    for name in with_both_forms():
        for params in param_variants(name):
            label = ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            if name in SLOW:
                chosen = [
                    ("sp500_daily", "none"),
                    ("nasdaq_daily", "impact_latency3"),
                    *(("synthetic", friction) for friction in FRICTIONS),
                ]
            else:
                chosen = [(data, friction) for data in DATASETS for friction in FRICTIONS]
            for data, friction in chosen:
                result.append(
                    pytest.param(
                        name, params, data, friction, id=f"{name}[{label}]-{data}-{friction}"
                    )
                )
    return result


def assert_same_run(vector: BacktestResult, event: BacktestResult) -> None:
    """Trades, fills, equity and metrics agree (exact for counts, bars and sides)."""
    np.testing.assert_array_equal(event.ts, vector.ts)
    np.testing.assert_allclose(event.equity, vector.equity, rtol=REL, atol=0.0)

    trades_v, trades_e = vector.trades, event.trades
    assert trades_e.height == trades_v.height
    for column in ("entry_bar", "exit_bar", "entry_ts", "exit_ts", "side", "is_open"):
        assert trades_e.get_column(column).to_list() == trades_v.get_column(column).to_list(), (
            column
        )
    for column in ("quantity", "entry_price", "exit_price"):
        np.testing.assert_allclose(
            trades_e.get_column(column), trades_v.get_column(column), rtol=REL, err_msg=column
        )
    # P&L and commission may be ~0: compare them on the scale of the trade's notional.
    scale = (trades_v.get_column("quantity") * trades_v.get_column("entry_price")).to_numpy()
    for column in ("pnl", "commission"):
        gap = np.abs(
            trades_e.get_column(column).to_numpy() - trades_v.get_column(column).to_numpy()
        )
        assert (gap <= REL * scale).all(), (column, gap.max())

    fills_v, fills_e = vector.fills, event.fills
    assert (
        fills_e.select("bar", "side", "trade").rows()
        == fills_v.select("bar", "side", "trade").rows()
    )
    for column in ("quantity", "price"):
        np.testing.assert_allclose(
            fills_e.get_column(column), fills_v.get_column(column), rtol=REL, err_msg=column
        )
    # Cash after an all-in fill is ~0: compare it on the scale of the account's value.
    positions_v = fills_v.get_column("position").to_numpy()
    positions_e = fills_e.get_column("position").to_numpy()
    cash_v = fills_v.get_column("cash").to_numpy()
    value = np.abs(cash_v) + np.abs(positions_v * fills_v.get_column("price").to_numpy())
    gap = np.abs(fills_e.get_column("cash").to_numpy() - cash_v)
    assert (gap <= REL * value).all(), ("cash", gap.max())
    np.testing.assert_allclose(positions_e, positions_v, rtol=REL, atol=0.0)
    np.testing.assert_array_equal(positions_e == 0.0, positions_v == 0.0)
    np.testing.assert_array_equal(event.position != 0.0, vector.position != 0.0)

    for key, expected in vector.metrics.to_dict().items():
        got = event.metrics.to_dict()[key]
        if isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(got), key
        else:
            assert math.isclose(got, expected, rel_tol=REL, abs_tol=1e-12), (key, got, expected)


def test_every_built_in_has_both_forms_and_is_covered() -> None:
    assert set(with_both_forms()) >= BUILT_INS


@pytest.mark.parametrize(("name", "params", "data", "friction"), cases())
def test_both_engines_agree_on_every_strategy(
    name: str, params: dict[str, object], data: str, friction: str
) -> None:
    bars = dataset(data)
    if data == "synthetic":
        params = {**QUICK_PARAMS.get(name, {}), **params}
    options = dict(FRICTIONS[friction])
    vector = run_backtest(bars, name, params, engine="vector", **options)  # type: ignore[arg-type]
    event = run_backtest(bars, name, params, engine="event", **options)  # type: ignore[arg-type]
    assert vector.metrics.trades > 0, "a parity case without trades proves nothing"
    assert event.orders is not None
    assert_same_run(vector, event)


# ------------------------------------------------------------------ random targets


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    targets=st.lists(
        st.sampled_from([-1.0, -0.6, -0.25, 0.0, 0.3, 0.5, 0.8, 1.0]), min_size=3, max_size=80
    ),
    friction=st.sampled_from(sorted(FRICTIONS)),
)
def test_both_engines_agree_on_random_targets(
    seed: int, targets: list[float], friction: str
) -> None:
    # Fractional targets exercise every sizing path: grow, shrink, reverse, flatten.
    bars = synthesize_bars(bars=len(targets), seed=seed, freq="1h")
    wanted = np.asarray(targets)
    options = dict(FRICTIONS[friction])
    vector = run_vectorised(bars, wanted, cash=CASH, **options)  # type: ignore[arg-type]
    event = run_event(bars, TargetFollower(wanted), NoParams(), cash=CASH, **options)  # type: ignore[arg-type]
    assert_same_run(vector, event)


FAST_CASES = [
    ("sma_cross", {"direction": "long_short"}),
    ("rsi_reversion", {}),
    ("bollinger_breakout", {}),
]


@pytest.mark.parametrize(("name", "params"), FAST_CASES)
@pytest.mark.parametrize("friction", sorted(FRICTIONS))
def test_direct_fills_equal_the_matching_engine(
    name: str, params: Mapping[str, object], friction: str
) -> None:
    """The target fast path gives exactly what sending every leg to the venue gives."""
    bars = load_bars(Path(__file__).parents[2] / "golden" / "data" / "sp500_daily.csv")
    strategy = discover_strategies()[name]()
    typed = strategy.params_type.from_mapping(params)
    kwargs = dict(FRICTIONS[friction])
    direct = run_event(bars, strategy, typed, fast_fills=True, **kwargs)  # type: ignore[arg-type]
    venue = run_event(bars, strategy, typed, fast_fills=False, **kwargs)  # type: ignore[arg-type]
    assert direct.metrics.trades > 0
    np.testing.assert_array_equal(direct.equity, venue.equity)
    assert direct.fills.equals(venue.fills)
    assert direct.trades.equals(venue.trades)
    assert direct.orders is not None
    assert venue.orders is not None
    assert direct.orders.equals(venue.orders)
