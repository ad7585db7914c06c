"""Sweep grids: inclusive exact ranges, typing against the strategy, constraints, random draws."""

from __future__ import annotations

import itertools
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradepulse.errors import ConfigError
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams
from tradepulse.strategy.params import ParameterError
from tradepulse.sweep import (
    MAX_GRID_POINTS,
    SweepGrid,
    grid_range,
    parse_grid_range,
    parse_value_list,
    resolve_grid,
)


def test_integer_ranges_include_stop_and_stay_integers() -> None:
    values = grid_range(5, 20, 5)

    assert values == [5, 10, 15, 20]
    assert all(type(value) is int for value in values)
    assert grid_range(5, 22, 5) == [5, 10, 15, 20]  # stop not on a step: not reached
    assert grid_range("3", "3", "1") == [3]


def test_float_ranges_have_no_drift() -> None:
    # Accumulating 0.1 gives 0.30000000000000004 and 0.7999999999999999.
    assert grid_range("0.1", "0.3", "0.1") == [0.1, 0.2, 0.3]
    tenths = grid_range(0.1, 1.0, 0.1)

    assert tenths == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert grid_range(1, 2, 0.5) == [1.0, 1.5, 2.0]
    assert all(type(value) is float for value in grid_range(1, 2, 0.5))


@given(
    start=st.integers(-500, 500),
    length=st.integers(0, 40),
    step=st.integers(1, 25),
    places=st.integers(0, 3),
)
def test_decimal_ranges_are_the_nearest_floats(
    start: int, length: int, step: int, places: int
) -> None:
    scale = 10**places
    stop = start + length * step
    text = [str(Decimal(value) / scale) for value in (start, stop, step)]

    values = grid_range(*text)

    # Independent: each value is the float nearest to (start + i * step) / 10**places.
    expected = [(start + index * step) / scale for index in range(length + 1)]
    if places == 0:
        assert values == list(range(start, stop + 1, step))
    else:
        assert values == expected


@pytest.mark.parametrize(
    ("start", "stop", "step", "message"),
    [
        (1, 5, 0, "step must be > 0"),
        (1, 5, -1, "step must be > 0"),
        (6, 5, 1, "start must be <= stop"),
        ("nan", 5, 1, "start must be finite"),
        (1, "inf", 1, "stop must be finite"),
        ("x", 5, 1, "start must be a number"),
        (True, 5, 1, "start must be a number"),
        (0, 10**9, 1, "more than"),
    ],
)
def test_bad_ranges_are_refused(start: object, stop: object, step: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        grid_range(start, stop, step)  # type: ignore[arg-type]


def test_grid_option_syntax() -> None:
    assert parse_grid_range("fast=5:20:5") == ("fast", [5, 10, 15, 20])
    assert parse_grid_range(" rate = 0.1:0.2:0.1 ") == ("rate", [0.1, 0.2])
    assert parse_value_list("direction=long, long_short") == ("direction", ["long", "long_short"])
    for bad in ("fast", "fast=", "=1:2:1", "fast=1:2", "fast=1:2:3:4"):
        with pytest.raises(ConfigError, match="--grid must look like name=start:stop:step"):
            parse_grid_range(bad)
    with pytest.raises(ConfigError, match=r"--grid 'fast=1:x:1': stop must be a number"):
        parse_grid_range("fast=1:x:1")
    with pytest.raises(ConfigError, match="empty value"):
        parse_value_list("slow=20,,30")
    with pytest.raises(ConfigError, match="--values must look like name=a,b,c"):
        parse_value_list("slow")


def test_grid_values_are_typed_checked_and_deduplicated() -> None:
    grid = resolve_grid(SmaCross(), {"slow": ["30", 20, 30], "fast": [5]}, {"direction": "long"})

    # Declaration order (fast before slow), typed, duplicates dropped in order.
    assert grid.names == ("fast", "slow")
    assert grid.values == ((5,), (30, 20))
    assert grid.fixed == (("direction", "long"),)
    assert grid.describe() == {
        "grid": {"fast": [5], "slow": [30, 20]},
        "fixed": {"direction": "long"},
    }


@pytest.mark.parametrize(
    ("grid", "fixed", "error", "message"),
    [
        (
            {"fst": [5]},
            None,
            ConfigError,
            r"unknown parameter 'fst' \(known parameters: fast, slow",
        ),
        ({"fast": [0]}, None, ConfigError, r"grid\['fast'\]: parameter 'fast' must be >= 1"),
        ({"fast": [5.5]}, None, ConfigError, "must be an integer"),
        ({"fast": []}, None, ConfigError, "has no values"),
        ({"fast": "5"}, None, ConfigError, "must be a sequence"),
        ({"fast": [5]}, {"fast": 6}, ConfigError, "both swept and fixed"),
        ({"fast": [5]}, {"nope": 1}, ParameterError, "'nope' is unknown"),
        ([("fast", [5])], None, ConfigError, "grid must be a mapping"),
    ],
)
def test_bad_grids_name_the_parameter(
    grid: object, fixed: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        resolve_grid(SmaCross(), grid, fixed)  # type: ignore[arg-type]


def test_combo_ids_follow_the_product_order() -> None:
    grid = resolve_grid(
        SmaCross(), {"fast": [5, 10], "slow": [20, 30, 40], "direction": ["long", "long_short"]}
    )
    expected = list(itertools.product([5, 10], [20, 30, 40], ["long", "long_short"]))

    assert grid.points == len(expected) == 12
    for combo, (fast, slow, direction) in enumerate(expected):
        assert grid.values_at(combo) == {"fast": fast, "slow": slow, "direction": direction}
        params = grid.params_at(combo)
        assert (params.fast, params.slow, params.direction) == (fast, slow, direction)
    axes = grid.axis_indices(np.arange(12, dtype=np.int64))
    assert axes[7].tolist() == [1, 0, 1]  # fast=10, slow=20, long_short


def test_constraint_violations_are_skipped_and_counted() -> None:
    fast = list(range(5, 101, 5))
    slow = list(range(20, 301, 10))
    grid = resolve_grid(SmaCross(), {"fast": fast, "slow": slow})

    valid, skipped = grid.valid_combos()

    # Independent count: pairs with fast < slow (the 499 combinations).
    pairs = [(f, s) for f in fast for s in slow if f < s]
    assert len(pairs) == 499
    assert valid.shape[0] == 499
    assert skipped == len(fast) * len(slow) - 499 == 81
    assert [(grid.values_at(c)["fast"], grid.values_at(c)["slow"]) for c in valid] == pairs


def test_random_draws_are_distinct_deterministic_grid_points() -> None:
    grid = resolve_grid(SmaCross(), {"fast": range(1, 41), "slow": range(2, 62)})

    valid, skipped = grid.valid_combos(random=300, seed=7)
    again, _ = grid.valid_combos(random=300, seed=7)
    other, _ = grid.valid_combos(random=300, seed=8)

    assert valid.shape[0] + skipped == 300
    assert np.array_equal(valid, again)
    assert not np.array_equal(valid, other)
    assert len(set(valid.tolist())) == valid.shape[0]
    assert np.all(np.diff(valid) > 0)
    for combo in valid.tolist():
        values = grid.values_at(combo)
        assert values["fast"] < values["slow"]
    # Drawing at least every point is the whole grid.
    every, _ = grid.valid_combos(random=10**6, seed=0)
    assert np.array_equal(every, grid.valid_combos()[0])


@pytest.mark.parametrize(
    ("random", "seed", "message"),
    [(0, 0, "random must be an integer >= 1"), (5, -1, "seed must be an integer >= 0")],
)
def test_bad_random_draws_are_refused(random: int, seed: int, message: str) -> None:
    grid = resolve_grid(SmaCross(), {"fast": [5], "slow": [20]})

    with pytest.raises(ConfigError, match=message):
        grid.valid_combos(random=random, seed=seed)


def test_too_large_grids_must_be_sampled() -> None:
    # 4,000 x 4,000 points: never enumerated, only sampled.
    huge = SweepGrid(
        params_type=SmaCrossParams,
        names=("fast", "slow"),
        values=(tuple(range(1, 4001)), tuple(range(2, 4002))),
        fixed=(),
    )
    assert huge.points == 16_000_000 > MAX_GRID_POINTS

    with pytest.raises(ConfigError, match=r"16,000,000 points .* --random N"):
        huge.valid_combos()
    drawn, skipped = huge.valid_combos(random=50, seed=1)
    assert drawn.shape[0] + skipped == 50
    assert skipped > 0  # most points break a bound or fast < slow


def test_default_grid_uses_declared_ranges() -> None:
    grid = resolve_grid(SmaCross(), None, {"fast": 10, "slow": 30})

    assert grid.names == ("direction",)
    assert grid.values == (("long", "long_short"),)


def test_batch_order_keeps_neighbours_together() -> None:
    grid = resolve_grid(SmaCross(), {"fast": range(5, 101, 5), "slow": range(20, 301, 10)})
    valid, _ = grid.valid_combos()

    ordered = grid.batch_order(valid)

    assert sorted(ordered.tolist()) == valid.tolist()

    def distinct_windows(combos: np.ndarray) -> float:
        counts = []
        for start in range(0, combos.shape[0], 32):
            chunk = [grid.values_at(c) for c in combos[start : start + 32].tolist()]
            counts.append(len({v["fast"] for v in chunk} | {v["slow"] for v in chunk}))
        return float(np.mean(counts))

    # Grid order spans ~29 slow windows per 32 combos; Z-order tiles need far fewer.
    assert distinct_windows(ordered) < 0.6 * distinct_windows(valid)
    single = resolve_grid(SmaCross(), {"fast": [5, 10, 15]}, {"slow": 30})
    assert single.batch_order(np.array([2, 0, 1])).tolist() == [0, 1, 2]
