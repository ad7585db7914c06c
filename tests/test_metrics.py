"""Metrics against their textbook formulas evaluated with numpy, and the annualisation rule."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse import metrics
from tradepulse.data import load_bars
from tradepulse.errors import ConfigError
from tradepulse.metrics import (
    Metrics,
    cagr,
    calmar,
    compute_metrics,
    exposure,
    final_equity,
    max_drawdown,
    periods_per_year,
    sharpe,
    sortino,
    total_return,
    turnover,
    win_rate,
)

CASH = 10_000.0


def equity_walk(n: int, seed: int, vol: float = 0.01) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return CASH * np.exp(np.cumsum(rng.normal(2e-4, vol, n)))


def reference_returns(equity: NDArray[np.float64]) -> NDArray[np.float64]:
    previous = np.concatenate(([CASH], equity[:-1]))
    return equity / previous - 1.0


def stamps(n: int, step: timedelta) -> NDArray[np.int64]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    first = int(start.timestamp()) * 1_000_000_000
    return first + np.arange(n, dtype=np.int64) * int(step.total_seconds() * 1e9)


# ---------------------------------------------------------------------- annualisation


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (timedelta(minutes=1), 252 * 390),
        (timedelta(minutes=5), 252 * 78),
        (timedelta(hours=1), 252 * 6.5),
        (timedelta(days=1), 252),
        (timedelta(days=2), 126),
        (timedelta(weeks=1), 365.25 / 7),
        (timedelta(days=30), 365.25 / 30),
    ],
)
def test_periods_per_year_follows_the_median_spacing(step: timedelta, expected: float) -> None:
    assert periods_per_year(stamps(50, step)) == pytest.approx(expected, rel=1e-12)


def test_real_daily_bars_give_252(sample_dir: object) -> None:
    bars = load_bars(f"{sample_dir}/sp500_daily.csv")

    assert periods_per_year(bars.get_column("ts").to_numpy()) == 252.0


def test_long_runs_sample_the_spacings() -> None:
    # One million minutes with a few long gaps still reads as 1-minute bars.
    ts = stamps(1_000_000, timedelta(minutes=1))
    ts[500_000:] += 3 * 86_400 * 1_000_000_000

    assert periods_per_year(ts) == pytest.approx(98_280.0)
    assert periods_per_year(ts.view("datetime64[ns]")) == pytest.approx(98_280.0)


def test_fewer_than_two_bars_give_252() -> None:
    assert periods_per_year(stamps(1, timedelta(minutes=1))) == 252.0


def test_non_increasing_timestamps_are_refused() -> None:
    with pytest.raises(ConfigError, match="ts must be increasing"):
        periods_per_year(np.zeros(5, dtype=np.int64))
    with pytest.raises(ConfigError, match="ts must be 1-D"):
        periods_per_year(np.zeros((2, 2), dtype=np.int64))


# ------------------------------------------------------------------- return metrics


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 400), vol=st.floats(1e-4, 0.05))
def test_ratios_match_numpy_formulas(seed: int, n: int, vol: float) -> None:
    equity = equity_walk(n, seed, vol)
    returns = reference_returns(equity)
    periods = 252.0

    assert sharpe(equity, CASH, periods_per_year=periods) == pytest.approx(
        returns.mean() / returns.std(ddof=1) * math.sqrt(periods), rel=1e-9
    )
    downside = math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))
    expected_sortino = returns.mean() / downside * math.sqrt(periods) if downside else math.nan
    assert sortino(equity, CASH, periods_per_year=periods) == pytest.approx(
        expected_sortino, rel=1e-9, nan_ok=True
    )


@settings(deadline=None, max_examples=60)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), vol=st.floats(1e-4, 0.2))
def test_max_drawdown_is_exactly_the_running_peak_formula(seed: int, n: int, vol: float) -> None:
    equity = equity_walk(n, seed, vol)

    peak = np.maximum.accumulate(np.concatenate(([CASH], equity)))[1:]

    assert max_drawdown(equity, CASH) == max(0.0, float(np.max(1.0 - equity / peak)))


def test_growth_metrics_match_closed_forms() -> None:
    equity = np.array([10_100.0, 9_900.0, 10_500.0, 12_100.0])

    assert final_equity(equity) == 12_100.0
    assert total_return(equity, CASH) == pytest.approx(0.21)
    assert cagr(equity, CASH, periods_per_year=252.0) == pytest.approx(1.21 ** (252 / 4) - 1)
    assert cagr(equity, CASH, periods_per_year=2.0) == pytest.approx(1.21**0.5 - 1)
    drawdown = 1.0 - 9_900.0 / 10_100.0
    assert max_drawdown(equity, CASH) == pytest.approx(drawdown)
    assert calmar(equity, CASH, periods_per_year=2.0) == pytest.approx((1.21**0.5 - 1) / drawdown)


def test_total_loss_gives_a_cagr_of_minus_one() -> None:
    assert cagr([5_000.0, -10.0], CASH, periods_per_year=252.0) == -1.0


def test_undefined_ratios_are_nan() -> None:
    flat = np.full(10, CASH)
    rising = CASH * 1.01 ** np.arange(1, 11)

    assert math.isnan(sharpe(flat, CASH, periods_per_year=252.0))
    assert math.isnan(sharpe([CASH], CASH, periods_per_year=252.0))
    assert math.isnan(sortino(rising, CASH, periods_per_year=252.0))
    assert math.isnan(calmar(rising, CASH, periods_per_year=252.0))
    assert max_drawdown(rising, CASH) == 0.0
    # Constant returns do not vary: exactly zero deviation, not rounding noise.
    assert math.isnan(sharpe(CASH * 2.0 ** np.arange(1, 40), CASH, periods_per_year=252.0))


# ----------------------------------------------------------------- trading activity


def test_ruin_gives_non_finite_ratios_not_an_exception() -> None:
    equity = np.array([5_000.0, 0.0, 0.0])

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sharpe(equity, CASH, periods_per_year=252.0)

    assert not math.isfinite(ratio)
    assert max_drawdown(equity, CASH) == 1.0
    assert cagr(equity, CASH, periods_per_year=252.0) == -1.0


def test_trading_activity_metrics() -> None:
    assert win_rate([10.0, -5.0, 0.0, 3.0]) == 0.5
    assert math.isnan(win_rate([]))
    assert turnover([100.0, -300.0], [100.0, 300.0]) == pytest.approx(2.0)
    assert exposure([0.0, 1.5, -2.0, 0.0]) == 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: final_equity([]), r"equity must be a non-empty 1-D series"),
        (lambda: total_return([1.0, math.nan], CASH), r"equity\[1\] = nan"),
        (lambda: total_return([1.0], 0.0), r"initial_cash must be finite and > 0; got 0\.0"),
        (lambda: cagr([1.0], CASH, periods_per_year=-1.0), r"periods_per_year .* got -1\.0"),
        (lambda: win_rate([1.0, math.inf]), r"trade_pnl must be a 1-D series of finite"),
        (lambda: turnover([math.nan], [1.0]), r"traded_notional must be finite"),
        (lambda: exposure([]), r"position must be a non-empty 1-D series"),
    ],
)
def test_bad_inputs_are_named(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]


def test_an_overflowing_sum_of_finite_equity_is_accepted() -> None:
    # The cheap all-finite check (a finite sum) falls back to an element check.
    assert final_equity([1e308, 1e308]) == 1e308


# -------------------------------------------------------------------------- together


def test_compute_metrics_agrees_with_the_single_metrics() -> None:
    equity = equity_walk(300, seed=4)
    ts = stamps(300, timedelta(minutes=1))
    periods = 252 * 390.0

    result = compute_metrics(
        equity,
        initial_cash=CASH,
        ts=ts,
        trade_pnl=[5.0, -2.0, 1.0],
        traded_notional=[1e4, -1e4, 5e3],
        exposure=0.4,
    )

    assert isinstance(result, Metrics)
    assert result.periods_per_year == pytest.approx(periods)
    assert result.final_equity == equity[-1]
    assert result.total_return == total_return(equity, CASH)
    assert result.cagr == cagr(equity, CASH, periods_per_year=periods)
    assert result.sharpe == sharpe(equity, CASH, periods_per_year=periods)
    assert result.sortino == sortino(equity, CASH, periods_per_year=periods)
    assert result.max_drawdown == max_drawdown(equity, CASH)
    assert result.calmar == calmar(equity, CASH, periods_per_year=periods)
    assert result.trades == 3
    assert result.win_rate == pytest.approx(2 / 3)
    assert result.turnover == pytest.approx(2.5e4 / equity.mean())
    assert result.exposure == 0.4
    assert result.bars == 300
    assert list(result.to_dict()) == [
        "final_equity",
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "trades",
        "win_rate",
        "turnover",
        "exposure",
        "periods_per_year",
        "bars",
    ]


def test_compute_metrics_takes_an_explicit_annualisation() -> None:
    equity = equity_walk(50, seed=1)

    result = compute_metrics(
        equity,
        initial_cash=CASH,
        ts=stamps(50, timedelta(minutes=1)),
        trade_pnl=[],
        traded_notional=[],
        exposure=0.0,
        periods_per_year=365 * 1440,
    )

    assert result.periods_per_year == 365 * 1440
    assert math.isnan(result.win_rate)
    assert result.turnover == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ts": np.arange(3)}, r"ts must have the shape of equity"),
        ({"exposure": 1.5}, r"exposure must be a fraction in \[0, 1\]; got 1\.5"),
        ({"traded_notional": [math.inf]}, r"traded_notional must be finite"),
    ],
)
def test_compute_metrics_names_bad_inputs(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "initial_cash": CASH,
        "ts": stamps(5, timedelta(days=1)),
        "trade_pnl": [],
        "traded_notional": [],
        "exposure": 0.0,
        **change,
    }
    with pytest.raises(ConfigError, match=message):
        compute_metrics(np.full(5, CASH), **arguments)  # type: ignore[arg-type]


def test_metrics_are_frozen() -> None:
    result = compute_metrics(
        [CASH],
        initial_cash=CASH,
        ts=stamps(1, timedelta(days=1)),
        trade_pnl=[],
        traded_notional=[],
        exposure=0.0,
    )

    with pytest.raises(AttributeError):
        result.sharpe = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------- kernels as Python


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 9, 250])
def test_kernels_match_their_python_source(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    equity = equity_walk(n, seed=n, vol=0.05)

    compiled = metrics._equity_statistics(equity, CASH)
    with monkeypatch.context() as patch:
        for name in ("_equity_statistics", "_return_sums", "_drawdown"):
            patch.setattr(metrics, name, getattr(metrics, name).py_func)
        python = metrics._equity_statistics(equity, CASH)

    np.testing.assert_array_equal(np.array(python), np.array(compiled))
