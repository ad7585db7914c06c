"""Synthetic bars: determinism, the bar contract, and the regime model's own parameters."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.data import synth
from tradepulse.data.loaders import write_bars
from tradepulse.data.schema import validate_bars
from tradepulse.data.synth import REGIMES, synthesize_bars
from tradepulse.errors import DataError

FREQS = {
    "1s": timedelta(seconds=1),
    "1min": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    """Return 300,000 one-minute bars with their regime labels (seed 11)."""
    return synthesize_bars(bars=300_000, seed=11, with_regime=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_seed_gives_byte_identical_files(tmp_path: Path, suffix: str) -> None:
    first = write_bars(synthesize_bars(bars=5_000, seed=7, symbol="SYN"), tmp_path / f"a{suffix}")
    second = write_bars(synthesize_bars(bars=5_000, seed=7, symbol="SYN"), tmp_path / f"b{suffix}")

    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_different_seeds_give_different_files(tmp_path: Path, suffix: str) -> None:
    first = write_bars(synthesize_bars(bars=5_000, seed=7), tmp_path / f"a{suffix}")
    second = write_bars(synthesize_bars(bars=5_000, seed=8), tmp_path / f"b{suffix}")

    assert first.read_bytes() != second.read_bytes()


@settings(deadline=None, max_examples=40)
@given(
    seed=st.integers(min_value=0, max_value=2**63),
    count=st.integers(min_value=1, max_value=3_000),
    freq=st.sampled_from(sorted(FREQS)),
    start_price=st.floats(min_value=0.01, max_value=1e6),
    symbol=st.none() | st.just("SYN"),
)
def test_output_honours_the_bar_contract(
    seed: int, count: int, freq: str, start_price: float, symbol: str | None
) -> None:
    frame = synthesize_bars(
        bars=count, seed=seed, freq=freq, start_price=start_price, symbol=symbol
    )

    validate_bars(frame)
    assert frame.height == count
    assert frame["open"][0] == start_price
    steps = frame["ts"].diff().drop_nulls().unique().to_list()
    assert steps in ([], [FREQS[freq]])
    assert frame["ts"][0] == datetime(2024, 1, 2, tzinfo=UTC)
    assert ("symbol" in frame.columns) == (symbol is not None)


def test_long_coarse_runs_stay_finite() -> None:
    # A week per bar for ~190 years: the anchor pull keeps prices within float range.
    frame = synthesize_bars(bars=10_000, seed=3, freq="1w", start="1900-01-01")

    validate_bars(frame)


def test_start_accepts_offsets_and_naive_times() -> None:
    aware = synthesize_bars(bars=2, seed=1, start="2024-01-02T09:30:00+01:00")
    naive = synthesize_bars(bars=2, seed=1, start="2024-01-02 08:30:00")

    assert aware["ts"][0] == naive["ts"][0] == datetime(2024, 1, 2, 8, 30, tzinfo=UTC)


def test_regime_labels_are_the_named_regimes(market: pl.DataFrame) -> None:
    assert market["regime"].dtype == pl.Enum(list(REGIMES))
    assert set(market["regime"].unique().to_list()) == set(REGIMES)
    validate_bars(market)


def test_regime_episode_lengths_match_the_stay_probabilities(market: pl.DataFrame) -> None:
    runs = market.select(pl.col("regime").rle()).unnest("regime")

    mean_length = dict(runs.group_by("value").agg(pl.col("len").mean()).iter_rows())

    for index, name in enumerate(REGIMES):
        expected = 1.0 / (1.0 - synth._STAY_PROBABILITY[index])
        assert mean_length[name] == pytest.approx(expected, rel=0.2), name


def test_regime_volatility_matches_the_model(market: pl.DataFrame) -> None:
    # Robust sigma (median |r| / 0.6745) ignores the rare jumps.
    returns = market.with_columns(r=pl.col("close").log().diff()).drop_nulls("r")

    sigma = dict(
        returns.group_by("regime")
        .agg((pl.col("r").abs().median() / 0.6744897501960817).alias("sigma"))
        .iter_rows()
    )

    for index, name in enumerate(REGIMES):
        assert sigma[name] == pytest.approx(synth._VOLATILITY_PER_MINUTE[index], rel=0.05), name


def test_volume_rises_with_absolute_return_and_volatile_regimes(market: pl.DataFrame) -> None:
    moves = np.abs(np.log(market["close"].to_numpy() / market["open"].to_numpy()))
    log_volume = np.log(np.maximum(market["volume"].to_numpy(), 1.0))

    correlation = np.corrcoef(moves, log_volume)[0, 1]
    by_regime = dict(market.group_by("regime").agg(pl.col("volume").median()).iter_rows())

    assert correlation > 0.2
    assert by_regime["high_volatility"] > by_regime["trending"] > by_regime["mean_reverting"]


def test_high_and_low_bracket_open_and_close(market: pl.DataFrame) -> None:
    wider = market.filter(
        (pl.col("high") > pl.max_horizontal("open", "close"))
        & (pl.col("low") < pl.min_horizontal("open", "close"))
    )

    assert wider.height > 0.99 * market.height


def test_volume_scales_with_bar_length() -> None:
    minute = synthesize_bars(bars=20_000, seed=5, freq="1min")
    hour = synthesize_bars(bars=20_000, seed=5, freq="1h")

    ratio = hour["volume"].median() / minute["volume"].median()  # type: ignore[operator]

    assert ratio == pytest.approx(60.0, rel=0.1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bars": 0, "seed": 1}, "bars must be an integer >= 1; got 0"),
        ({"bars": 2.5, "seed": 1}, "bars must be an integer >= 1; got 2.5"),
        ({"bars": 5, "seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"bars": 5, "seed": 1, "start_price": 0.0}, "start_price must be a finite number > 0"),
        ({"bars": 5, "seed": 1, "start_price": math.nan}, "start_price must be a finite"),
        ({"bars": 5, "seed": 1, "freq": "1mo"}, "freq must be a fixed duration"),
        ({"bars": 5, "seed": 1, "freq": "often"}, "freq must be a duration"),
        ({"bars": 5, "seed": 1, "start": "yesterday"}, "start must be an ISO 8601 timestamp"),
        ({"bars": 10**6, "seed": 1, "freq": "1d", "start": "2200-01-01"}, "timestamp range"),
    ],
)
def test_bad_arguments_are_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(DataError, match=message):
        synthesize_bars(**options)  # type: ignore[arg-type]


def test_compiled_kernel_matches_its_python_source() -> None:
    # Arrange: the same draws through the numba kernel and its pure-Python original.
    rng = np.random.default_rng(2024)
    count = 5_000
    switch_cumulative = np.cumsum(synth._SWITCH_TO / synth._SWITCH_TO.sum(axis=1)[:, None], axis=1)
    arguments = (
        rng.random(count),
        rng.standard_normal(count),
        rng.random(count),
        rng.standard_normal(count),
        rng.random(count),
        1,
        1e-3,
        synth._STAY_PROBABILITY,
        switch_cumulative,
        synth._DRIFT_PER_MINUTE,
        synth._VOLATILITY_PER_MINUTE,
        synth._REVERSION_PER_BAR,
        synth._JUMP_PROBABILITY * 10,
        synth._JUMP_SIZE,
    )

    compiled = synth._simulate_kernel(*arguments)
    interpreted = synth._simulate_kernel.py_func(*arguments)  # type: ignore[no-untyped-call]

    np.testing.assert_array_equal(compiled[0], interpreted[0])
    np.testing.assert_array_equal(compiled[1], interpreted[1])
    assert len(set(compiled[1].tolist())) == 3
