"""Walk-forward: fold geometry, parameter choice, stitching, no look-ahead, executors.

Expected values come from hand-derived fold indices, from brute-force loops over
``run_backtest`` / ``run_vectorised`` (one train window and one combination at a
time, signals computed on the prefix of bars only), and from numpy arithmetic
on the stitched equity.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse.backtest import (
    FOLD_COLUMNS,
    MAX_DEFAULT_COMBINATIONS,
    OBJECTIVES,
    FrictionConfig,
    WalkForwardResult,
    WalkForwardWindow,
    run_vectorised,
    walk_forward,
    walk_forward_windows,
)
from tradepulse.backtest.runner import run_backtest
from tradepulse.costs import CommissionTerms
from tradepulse.data import load_bars, synthesize_bars
from tradepulse.errors import ConfigError
from tradepulse.metrics import Metrics
from tradepulse.strategy import (
    Bar,
    ParameterError,
    Params,
    Strategy,
    StrategyContext,
    StrategyError,
    load_strategy,
    param,
)
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams

T = TypeVar("T")
R = TypeVar("R")

GRID: dict[str, list[Any]] = {"fast": [5, 10, 20], "slow": [20, 50, 100]}
COMMISSION = 0.001


@pytest.fixture(scope="module")
def sp500(sample_dir: Path) -> pl.DataFrame:
    return load_bars(sample_dir / "sp500_daily.csv")


# ------------------------------------------------------------------------------ test strategies


@dataclass(frozen=True, slots=True)
class ToggleParams(Params):
    """``active``: always long or always flat; ``unused`` changes nothing."""

    active: bool = param(True)
    unused: int = param(1, low=1, high=3)


class Toggle(Strategy[ToggleParams]):
    name = "toggle"
    api_version = "1.0"
    params_type = ToggleParams

    def handle_tick(self, ctx: StrategyContext[ToggleParams], bar: Bar) -> None:
        """Never called here."""

    def signals(self, bars: pl.DataFrame, params: ToggleParams) -> NDArray[np.float64]:
        return np.full(bars.height, 1.0 if params.active else 0.0)


@dataclass(frozen=True, slots=True)
class NoParams(Params):
    """No parameters."""


class Peeking(Strategy[NoParams]):
    """Long whenever the close is above the mean of *all* closes: looks ahead."""

    name = "peeking"
    api_version = "1.0"
    params_type = NoParams

    def handle_tick(self, ctx: StrategyContext[NoParams], bar: Bar) -> None:
        """Never called here."""

    def signals(self, bars: pl.DataFrame, params: NoParams) -> NDArray[np.float64]:
        close = bars.get_column("close").to_numpy()
        return (close > close.mean()).astype(np.float64)


@dataclass(frozen=True, slots=True)
class LevelParams(Params):
    """A float parameter without a sweep step."""

    level: float = param(0.5, low=0.0, high=1.0)


class Level(Strategy[LevelParams]):
    name = "level"
    api_version = "1.0"
    params_type = LevelParams

    def handle_tick(self, ctx: StrategyContext[LevelParams], bar: Bar) -> None:
        """Never called here."""

    def signals(self, bars: pl.DataFrame, params: LevelParams) -> NDArray[np.float64]:
        return np.full(bars.height, params.level)


class EventOnly(Strategy[NoParams]):
    name = "event_only"
    api_version = "1.0"
    params_type = NoParams

    def handle_tick(self, ctx: StrategyContext[NoParams], bar: Bar) -> None:
        """Do nothing."""


# ------------------------------------------------------------------------------ folds


def test_rolling_windows_by_hand() -> None:
    # 11 bars, train 4, test 3: tests start at 4, 7, 10; the last holds one bar.
    windows = walk_forward_windows(11, train_bars=4, test_bars=3)

    assert windows == (
        WalkForwardWindow(fold=0, train_start=0, train_end=4, test_start=4, test_end=7),
        WalkForwardWindow(fold=1, train_start=3, train_end=7, test_start=7, test_end=10),
        WalkForwardWindow(fold=2, train_start=6, train_end=10, test_start=10, test_end=11),
    )


def test_anchored_windows_by_hand() -> None:
    windows = walk_forward_windows(11, train_bars=4, test_bars=3, anchored=True)

    assert windows == (
        WalkForwardWindow(fold=0, train_start=0, train_end=4, test_start=4, test_end=7),
        WalkForwardWindow(fold=1, train_start=0, train_end=7, test_start=7, test_end=10),
        WalkForwardWindow(fold=2, train_start=0, train_end=10, test_start=10, test_end=11),
    )


def test_exactly_one_fold_and_no_empty_last_window() -> None:
    assert walk_forward_windows(7, train_bars=4, test_bars=3) == (
        WalkForwardWindow(fold=0, train_start=0, train_end=4, test_start=4, test_end=7),
    )
    # 10 bars: tests at 4 and 7, both full; no third window of 0 bars.
    assert [w.test_end for w in walk_forward_windows(10, train_bars=4, test_bars=3)] == [7, 10]


@given(
    bar_count=st.integers(4, 400),
    train=st.integers(2, 60),
    test=st.integers(2, 60),
    anchored=st.booleans(),
)
def test_windows_tile_the_test_span(bar_count: int, train: int, test: int, anchored: bool) -> None:
    if bar_count < train + test:
        with pytest.raises(ConfigError, match=f"{train + test} bars for one fold"):
            walk_forward_windows(bar_count, train_bars=train, test_bars=test, anchored=anchored)
        return

    windows = walk_forward_windows(bar_count, train_bars=train, test_bars=test, anchored=anchored)

    assert len(windows) == -(-(bar_count - train) // test)  # ceil
    assert windows[0].test_start == train
    assert windows[-1].test_end == bar_count
    for index, window in enumerate(windows):
        assert window.fold == index
        assert window.train_end == window.test_start
        assert window.train_start == (0 if anchored else window.test_start - train)
        length = window.test_end - window.test_start
        assert length == test if index < len(windows) - 1 else 1 <= length <= test
        if index:
            assert window.test_start == windows[index - 1].test_end


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"train_bars": 1, "test_bars": 3}, "train_bars must be >= 2 bars; got 1"),
        ({"train_bars": 4, "test_bars": 0}, "test_bars must be >= 2 bars; got 0"),
        ({"train_bars": 4.0, "test_bars": 3}, "train_bars must be an integer"),
        ({"train_bars": 4, "test_bars": True}, "test_bars must be an integer"),
        ({"train_bars": 6, "test_bars": 5}, r"6 \+ 5 = 11 bars for one fold; got 10 bars"),
    ],
)
def test_window_arguments_are_checked(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        walk_forward_windows(10, **arguments)


# ------------------------------------------------------------------------------ choice


def _best(
    scores: Iterable[tuple[dict[str, Any], float]], objective: str
) -> tuple[dict[str, Any] | None, float]:
    """First candidate with the best score (smallest drawdown); NaN never wins."""
    best: dict[str, Any] | None = None
    best_value = math.nan
    for params, value in scores:
        if math.isnan(value):
            continue
        better = value < best_value if objective == "max_drawdown" else value > best_value
        if best is None or better:
            best, best_value = params, value
    return best, best_value


def _combinations() -> list[dict[str, Any]]:
    return [
        {"fast": fast, "slow": slow}
        for fast in GRID["fast"]
        for slow in GRID["slow"]
        if fast < slow
    ]


@pytest.mark.parametrize("objective", ["sharpe", "max_drawdown", "total_return"])
def test_anchored_choice_matches_brute_force_run_backtest(
    sp500: pl.DataFrame, objective: str
) -> None:
    result = walk_forward(
        sp500,
        "sma_cross",
        train_bars=1000,
        test_bars=500,
        anchored=True,
        grid=GRID,
        objective=objective,
        commission=COMMISSION,
    )

    # 5031 bars: tests start at 1000, 1500, ..., 5000 (the last holds 31 bars).
    assert [w.test_start for w in result.windows] == list(range(1000, 5001, 500))
    assert result.windows[-1].test_end == 5031
    assert result.skipped == 1  # fast=20, slow=20
    assert result.combinations == 8
    for fold, window in enumerate(result.windows):
        train = sp500.slice(0, window.train_end)
        scored = [
            (
                params,
                float(
                    getattr(
                        run_backtest(train, "sma_cross", params, commission=COMMISSION).metrics,
                        objective,
                    )
                ),
            )
            for params in _combinations()
        ]
        expected, value = _best(scored, objective)
        chosen = result.params[fold]
        assert isinstance(chosen, SmaCrossParams)
        assert {"fast": chosen.fast, "slow": chosen.slow} == expected, f"fold {fold}"
        assert result.train_objectives[fold] == value


def test_rolling_choice_matches_brute_force_on_prefixes(sp500: pl.DataFrame) -> None:
    result = walk_forward(
        sp500, SmaCross, train_bars=750, test_bars=750, grid=GRID, commission=COMMISSION
    )

    assert [(w.train_start, w.train_end) for w in result.windows] == [
        (0, 750),
        (750, 1500),
        (1500, 2250),
        (2250, 3000),
        (3000, 3750),
        (3750, 4500),
    ]
    strategy = SmaCross()
    for fold, window in enumerate(result.windows):
        scored = []
        for params in _combinations():
            typed = SmaCrossParams(**params)
            # Indicators see the history before the train window, never bars after it.
            targets = strategy.signals(sp500.slice(0, window.train_end), typed)
            run = run_vectorised(
                sp500.slice(window.train_start, window.train_end - window.train_start),
                targets[window.train_start :],
                commission=COMMISSION,
            )
            scored.append((params, run.metrics.sharpe))
        expected, value = _best(scored, "sharpe")
        chosen = result.params[fold]
        assert isinstance(chosen, SmaCrossParams)
        assert {"fast": chosen.fast, "slow": chosen.slow} == expected, f"fold {fold}"
        assert result.train_objectives[fold] == value
        column = [
            result.scores[row, fold] for row in range(result.combinations)
        ]  # grid order: fast outer, slow inner
        assert column == [score for _, score in scored]


def test_nan_never_wins_and_drawdown_is_minimised(sp500: pl.DataFrame) -> None:
    # Flat has no return variation (Sharpe NaN) and no drawdown (0).
    grid = {"active": [False, True]}

    by_sharpe = walk_forward(sp500, Toggle, train_bars=1500, test_bars=1500, grid=grid)
    by_drawdown = walk_forward(
        sp500, Toggle, train_bars=1500, test_bars=1500, grid=grid, objective="max_drawdown"
    )

    assert all(p == ToggleParams(active=True) for p in by_sharpe.params)
    assert np.isnan(by_sharpe.scores[0]).all()
    assert all(p == ToggleParams(active=False) for p in by_drawdown.params)
    assert by_drawdown.train_objectives == (0.0,) * len(by_drawdown.windows)


def test_ties_go_to_the_first_in_grid_order(sp500: pl.DataFrame) -> None:
    result = walk_forward(
        sp500, Toggle, train_bars=2000, test_bars=1000, grid={"unused": [3, 1, 2]}
    )

    assert np.ptp(result.scores, axis=0).max() == 0.0  # every candidate ties
    assert {p.unused for p in result.params if isinstance(p, ToggleParams)} == {3}


def test_a_fold_without_a_finite_objective_stays_flat(sp500: pl.DataFrame) -> None:
    result = walk_forward(
        sp500, Toggle, train_bars=2000, test_bars=1000, params={"active": False}, grid={}
    )

    assert result.params == (None,) * len(result.windows)
    assert all(math.isnan(value) for value in result.train_objectives)
    assert result.folds.get_column("active").null_count() == len(result.windows)
    assert not result.targets.any()
    assert (result.oos.equity == 10_000.0).all()
    assert result.oos.metrics.trades == 0


def test_default_grid_sweeps_every_free_parameter(sp500: pl.DataFrame) -> None:
    result = walk_forward(sp500, Toggle, train_bars=2500, test_bars=2500)

    assert result.grid == {"active": (False, True), "unused": (1, 2, 3)}
    assert result.combinations == 6
    assert result.evaluations == 6 * 2  # tests start at 2500 and 5000
    fixed = walk_forward(sp500, Toggle, train_bars=2500, test_bars=2500, params={"unused": "2"})
    assert fixed.grid == {"active": (False, True)}
    assert all(p is not None and p.unused == 2 for p in fixed.params)


# ------------------------------------------------------------------------------ stitching


@pytest.fixture(scope="module")
def rolling(sp500: pl.DataFrame) -> WalkForwardResult:
    return walk_forward(
        sp500,
        "sma_cross",
        train_bars=500,
        test_bars=400,
        grid={**GRID, "direction": ["long", "long_short"]},
        commission=COMMISSION,
    )


def test_stitched_equity_is_one_run_of_the_stitched_targets(
    sp500: pl.DataFrame, rolling: WalkForwardResult
) -> None:
    strategy = SmaCross()
    first = rolling.windows[0].test_start
    pieces = []
    for window, params in zip(rolling.windows, rolling.params, strict=True):
        assert params is not None
        targets = strategy.signals(sp500.slice(0, window.test_end), params)
        pieces.append(targets[window.test_start :])
    stitched = np.concatenate(pieces)

    expected = run_vectorised(sp500.slice(first), stitched, commission=COMMISSION)

    assert len(set(rolling.params)) > 1  # the choice changes between folds
    assert np.array_equal(rolling.targets, stitched)
    assert np.array_equal(rolling.oos.equity, expected.equity)
    assert rolling.oos.metrics == expected.metrics
    assert rolling.oos.trades.equals(expected.trades)


def test_fold_rows_describe_each_test_slice(
    sp500: pl.DataFrame, rolling: WalkForwardResult
) -> None:
    folds = rolling.folds
    equity = rolling.oos.equity
    first = rolling.windows[0].test_start
    ts = sp500.get_column("ts")
    entries = rolling.oos.trades.get_column("entry_bar").to_numpy() + first

    assert folds.columns == [*FOLD_COLUMNS[:5], "fast", "slow", "direction", *FOLD_COLUMNS[5:]]
    assert folds.height == len(rolling.windows)
    for row, window in zip(folds.iter_rows(named=True), rolling.windows, strict=True):
        assert row["train_start"] == ts[window.train_start]
        assert row["train_end"] == ts[window.train_end - 1]
        assert row["test_start"] == ts[window.test_start]
        assert row["test_end"] == ts[window.test_end - 1]
        params = rolling.params[window.fold]
        assert isinstance(params, SmaCrossParams)
        assert (row["fast"], row["slow"], row["direction"]) == (
            params.fast,
            params.slow,
            params.direction,
        )
        start, end = window.test_start - first, window.test_end - first
        before = 10_000.0 if start == 0 else equity[start - 1]
        piece = np.concatenate(([before], equity[start:end]))
        returns = piece[1:] / piece[:-1] - 1.0
        deviation = returns.std(ddof=1)
        sharpe = returns.mean() / deviation * math.sqrt(252.0) if deviation > 0 else math.nan
        drawdown = np.max(1.0 - piece / np.maximum.accumulate(piece))
        assert row["oos_return"] == pytest.approx(piece[-1] / before - 1.0, rel=1e-12)
        assert row["oos_sharpe"] == pytest.approx(sharpe, rel=1e-9, nan_ok=True)
        assert row["oos_max_drawdown"] == pytest.approx(drawdown, rel=1e-12, abs=1e-15)
        in_window = (entries >= window.test_start) & (entries < window.test_end)
        assert row["oos_trades"] == int(in_window.sum())
    assert folds.get_column("oos_trades").sum() == rolling.oos.metrics.trades
    compounded = np.prod(1.0 + folds.get_column("oos_return").to_numpy())
    assert compounded * 10_000.0 == pytest.approx(rolling.oos.metrics.final_equity, rel=1e-12)


# ------------------------------------------------------------------------------ look-ahead


def test_bars_after_a_train_window_never_change_its_choice(sp500: pl.DataFrame) -> None:
    arguments: dict[str, Any] = {
        "train_bars": 600,
        "test_bars": 400,
        "grid": GRID,
        "commission": COMMISSION,
    }
    original = walk_forward(sp500, "sma_cross", **arguments)
    cut = original.windows[3].train_end
    # Rescale every price after the cut by a rising factor (OHLC order kept).
    factor = np.ones(sp500.height)
    factor[cut:] = np.linspace(0.5, 3.0, sp500.height - cut)
    changed = sp500.with_columns(
        [pl.col(name) * pl.Series(factor) for name in ("open", "high", "low", "close")]
    )

    altered = walk_forward(changed, "sma_cross", **arguments)

    assert altered.params[:4] == original.params[:4]
    assert altered.train_objectives[:4] == original.train_objectives[:4]
    assert np.array_equal(altered.scores[:, :4], original.scores[:, :4])
    assert not np.array_equal(altered.scores[:, 4:], original.scores[:, 4:], equal_nan=True)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sma_cross", {"fast": 10, "slow": 30, "direction": "long_short"}),
        ("rsi_reversion", {}),
        ("bollinger_breakout", {"direction": "long_short"}),
        ("geometry_phase", {"window": 50}),
    ],
)
def test_signals_of_a_prefix_are_the_first_full_signals(
    name: str, params: dict[str, Any], sp500: pl.DataFrame
) -> None:
    # Why slicing full-run signals per window is exact for the built-ins.
    bars = synthesize_bars(bars=600, seed=3, freq="1d") if name == "geometry_phase" else sp500
    strategy = load_strategy(name)()
    typed = strategy.params_type.from_mapping(params)
    full = strategy.signals(bars, typed)

    assert np.abs(full).sum() > 0  # it trades, so the comparison means something
    for length in (1, 37, 251, bars.height // 2, bars.height - 1):
        prefix = strategy.signals(bars.slice(0, length), typed)
        assert np.array_equal(prefix, full[:length]), length


def test_signals_that_look_ahead_are_refused(sp500: pl.DataFrame) -> None:
    with pytest.raises(StrategyError, match="signals\\(\\) is not causal"):
        walk_forward(sp500, Peeking, train_bars=1000, test_bars=1000)

    unchecked = walk_forward(sp500, Peeking, train_bars=1000, test_bars=1000, check_causality=False)
    assert unchecked.combinations == 1


# ------------------------------------------------------------------------------ executors


def _shipping_map(calls: list[int]) -> Callable[[Callable[[T], R], Iterable[T]], list[R]]:
    """A fake remote executor: function, items and results all cross a pickle boundary."""

    def remote_map(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
        batch = list(items)
        calls.append(len(batch))
        shipped = pickle.loads(pickle.dumps(function))
        return [
            pickle.loads(pickle.dumps(shipped(pickle.loads(pickle.dumps(item))))) for item in batch
        ]

    return remote_map


def test_map_fn_evaluates_every_candidate(sp500: pl.DataFrame) -> None:
    arguments: dict[str, Any] = {"train_bars": 1000, "test_bars": 1000, "grid": GRID}
    local = walk_forward(sp500, "sma_cross", **arguments)
    calls: list[int] = []

    remote = walk_forward(sp500, "sma_cross", map_fn=_shipping_map(calls), **arguments)
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = walk_forward(sp500, "sma_cross", map_fn=pool.map, **arguments)

    assert calls == [8]
    for other in (remote, threaded):
        assert np.array_equal(other.scores, local.scores)
        assert other.params == local.params
        assert np.array_equal(other.oos.equity, local.oos.equity)


@pytest.mark.parametrize(
    ("map_fn", "message"),
    [
        (lambda function, items: [], "returned 0 results for 8 candidates"),
        (lambda function, items: [0.5 for _ in items], "expected 5 objective values"),
        (lambda function, items: [("x",) * 5 for _ in items], "non-numeric"),
        (lambda function, items: [function(i) for i in [*items, *items]], "more than 8"),
    ],
)
def test_malformed_executor_results_are_refused(
    sp500: pl.DataFrame, map_fn: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        walk_forward(sp500, "sma_cross", train_bars=1000, test_bars=1000, grid=GRID, map_fn=map_fn)


def test_progress_reports_train_backtests(sp500: pl.DataFrame) -> None:
    seen: list[tuple[int, int]] = []

    result = walk_forward(
        sp500,
        "sma_cross",
        train_bars=1000,
        test_bars=1000,
        grid=GRID,
        progress=lambda done, total: seen.append((done, total)),
    )

    folds = len(result.windows)
    assert seen == [(folds * (index + 1), folds * 8) for index in range(8)]
    assert result.evaluations == folds * 8


# ------------------------------------------------------------------------------ frictions


def test_config_frictions_and_keyword_overrides(sp500: pl.DataFrame) -> None:
    config = FrictionConfig(name="test", commission=CommissionTerms(rate=COMMISSION))
    arguments: dict[str, Any] = {"train_bars": 1000, "test_bars": 1000, "grid": GRID}

    from_config = walk_forward(sp500, "sma_cross", config=config, **arguments)
    from_keyword = walk_forward(sp500, "sma_cross", commission=COMMISSION, **arguments)
    overridden = walk_forward(sp500, "sma_cross", config=config, commission=0.0, **arguments)
    frictionless = walk_forward(sp500, "sma_cross", **arguments)

    assert np.array_equal(from_config.scores, from_keyword.scores)
    assert np.array_equal(from_config.oos.equity, from_keyword.oos.equity)
    assert np.array_equal(overridden.oos.equity, frictionless.oos.equity)
    assert from_config.oos.metrics.final_equity != frictionless.oos.metrics.final_equity


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"objective": "profit"}, ConfigError, "objective must be one of .*got 'profit'"),
        ({"objective": "bars"}, ConfigError, "objective must be one of"),
        ({"grid": {"speed": [1]}}, ConfigError, "unknown parameter 'speed'.*fast, slow"),
        ({"grid": {"fast": []}}, ConfigError, r"grid\['fast'\] has no values"),
        ({"grid": {"fast": "10"}}, ConfigError, r"grid\['fast'\] must be a sequence"),
        ({"grid": {"fast": [0, 5]}}, ConfigError, r"grid\['fast'\]: parameter 'fast' must be >= 1"),
        ({"grid": {"direction": ["up"]}}, ConfigError, "must be one of 'long', 'long_short'"),
        (
            {"grid": {"fast": [5]}, "params": {"fast": 3}},
            ConfigError,
            "'fast' is both in the grid and fixed",
        ),
        ({"params": {"speed": 3}}, ParameterError, "parameter 'speed' is unknown"),
        (
            {"grid": {"fast": [50, 60], "slow": [20, 30]}},
            ConfigError,
            r"no combination .* strategy 'sma_cross' \(4 tried; first refused: parameter 'fast' "
            r"must be < slow \(20\), got 50\)",
        ),
        ({}, ConfigError, "default grid of strategy 'sma_cross' has 999,000 combinations"),
        ({"train_bars": 5000}, ConfigError, "5000 \\+ 1000 = 6000 bars for one fold; got 5031"),
    ],
)
def test_bad_arguments_name_the_problem(
    sp500: pl.DataFrame, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    call: dict[str, Any] = {"train_bars": 1000, "test_bars": 1000, **arguments}
    with pytest.raises(error, match=message):
        walk_forward(sp500, "sma_cross", **call)


def test_default_grid_error_tells_how_to_pass_one(sp500: pl.DataFrame) -> None:
    with pytest.raises(ConfigError) as caught:
        walk_forward(sp500, "sma_cross", train_bars=1000, test_bars=1000)

    text = str(caught.value)
    assert f"more than {MAX_DEFAULT_COMBINATIONS:,}" in text
    assert "fast: 500 x slow: 999 x direction: 2" in text
    assert "--grid" in text
    assert "grid=" in text


def test_strategy_without_signals_and_bad_bars(sp500: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="'event_only' has no vectorised signals"):
        walk_forward(sp500, EventOnly, train_bars=1000, test_bars=1000)
    with pytest.raises(ConfigError, match="bars must be a polars DataFrame"):
        walk_forward({"close": [1.0]}, "sma_cross", train_bars=2, test_bars=2)  # type: ignore[arg-type]
    two = pl.concat(
        [
            sp500.head(50).with_columns(symbol=pl.lit("A")),
            sp500.head(50).with_columns(symbol=pl.lit("B")),
        ]
    )
    with pytest.raises(ConfigError, match="one symbol"):
        walk_forward(two, "sma_cross", train_bars=20, test_bars=20)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"grid": [("fast", [5])]}, "grid must be a mapping"),
        ({"grid": GRID, "params": ["direction"]}, "params must be a mapping"),
        ({"grid": GRID, "config": {"commission": 0.1}}, "config must be a FrictionConfig"),
        ({"grid": GRID, "sizing": "half"}, "sizing"),
        ({"grid": GRID, "cash": 0.0}, "cash must be finite and > 0"),
    ],
)
def test_arguments_of_the_wrong_type(
    sp500: pl.DataFrame, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        walk_forward(sp500, "sma_cross", train_bars=1000, test_bars=1000, **arguments)


def test_a_parameter_without_a_step_needs_a_grid(sp500: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match=r"'level' has no step to sweep .*pass grid="):
        walk_forward(sp500, Level, train_bars=1000, test_bars=1000)

    result = walk_forward(sp500, Level, train_bars=1000, test_bars=1000, grid={"level": ["0.5"]})
    assert result.grid == {"level": (0.5,)}


def test_bars_without_needed_columns(sp500: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="'ts' column"):
        walk_forward(sp500.drop("ts"), "sma_cross", train_bars=1000, test_bars=1000, grid=GRID)
    # Checked before any candidate is sent to the executor.
    with pytest.raises(ConfigError, match="'volume' column"):
        walk_forward(
            sp500.drop("volume"),
            "sma_cross",
            train_bars=1000,
            test_bars=1000,
            grid=GRID,
            map_fn=lambda function, items: pytest.fail("executor reached"),
        )


def test_sizing_and_latency_reach_every_run(sp500: pl.DataFrame) -> None:
    config = FrictionConfig(name="test", sizing="fractional", latency_bars=0)
    result = walk_forward(
        sp500,
        "sma_cross",
        train_bars=1000,
        test_bars=1000,
        grid=GRID,
        config=config,
        sizing="whole",
        latency_bars=2,
        commission=COMMISSION,
    )

    expected = run_vectorised(
        sp500.slice(1000),
        result.targets,
        sizing="whole",
        latency_bars=2,
        commission=COMMISSION,
    )
    assert np.array_equal(result.oos.equity, expected.equity)
    first = result.windows[0]
    candidate = result.candidates[0]
    assert isinstance(candidate, SmaCrossParams)
    train = run_vectorised(
        sp500.slice(0, first.train_end),
        SmaCross().signals(sp500.slice(0, first.train_end), candidate),
        sizing="whole",
        latency_bars=2,
        commission=COMMISSION,
    )
    assert result.scores[0, 0] == train.metrics.sharpe


def test_objectives_are_metrics_fields() -> None:
    fields = list(Metrics.__dataclass_fields__)

    assert set(OBJECTIVES) == set(fields) - {"periods_per_year", "bars"}


def test_result_is_deterministic(sp500: pl.DataFrame, rolling: WalkForwardResult) -> None:
    again = walk_forward(
        sp500,
        "sma_cross",
        train_bars=500,
        test_bars=400,
        grid={**GRID, "direction": ["long", "long_short"]},
        commission=COMMISSION,
    )

    assert again.folds.equals(rolling.folds)
    assert np.array_equal(again.oos.equity, rolling.oos.equity)
    assert np.array_equal(again.scores, rolling.scores, equal_nan=True)
