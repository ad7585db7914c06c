"""Each stress transform does exactly what it says, keeps the bar contract, and is seeded."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stress_helpers import assert_contract, bars_from, flat_bars

from tradepulse.data import synthesize_bars, validate_bars
from tradepulse.errors import ConfigError
from tradepulse.stress import (
    TRANSFORMS,
    FlashCrash,
    GapOpen,
    LiquidityDrought,
    RegimeFlip,
    StressTransform,
    TradingHalt,
    VolatilitySpike,
    build_transform,
)


def _column(frame: pl.DataFrame, name: str) -> list[float]:
    return [float(value) for value in frame.get_column(name).to_list()]


# ----------------------------------------------------------------------- flash crash


def test_flash_crash_falls_then_recovers_part_of_the_fall() -> None:
    bars = flat_bars(5)
    # Close factors by hand: 1; 0.81 ** (1/2) = 0.9; 0.81; 1 - 0.19 * 0.5 = 0.905; 0.905.
    crash = FlashCrash(drop=0.19, bars=2, recovery=0.5, recovery_bars=1, at=1)

    out = crash.apply(bars)

    assert _column(out, "close") == pytest.approx([100.0, 90.0, 81.0, 90.5, 90.5], rel=1e-12)
    # A bar opens where the previous close's factor left it.
    assert _column(out, "open") == pytest.approx([100.0, 100.0, 90.0, 81.0, 90.5], rel=1e-12)
    assert _column(out, "high") == pytest.approx(
        [101.0, 101.0, 90.9, 101 * 0.905, 101 * 0.905], rel=1e-12
    )
    assert _column(out, "low") == pytest.approx(
        [99.0, 99 * 0.9, 99 * 0.81, 99 * 0.81, 99 * 0.905], rel=1e-12
    )
    assert out.get_column("volume").to_list() == bars.get_column("volume").to_list()
    assert out.get_column("ts").to_list() == bars.get_column("ts").to_list()


def test_flash_crash_recovery_climbs_in_equal_log_steps() -> None:
    crash = FlashCrash(drop=0.36, bars=1, recovery=0.5, recovery_bars=2, at=1)

    out = crash.apply(flat_bars(5))

    trough, final = 64.0, 100 * (1 - 0.36 * 0.5)  # 0.64, then 0.82
    assert _column(out, "close") == pytest.approx(
        [100.0, trough, math.sqrt(trough * final), final, final], rel=1e-12
    )


def test_flash_crash_without_recovery_stays_down() -> None:
    out = FlashCrash(drop=0.5, bars=1, at=2).apply(flat_bars(4))

    assert _column(out, "close") == pytest.approx([100.0, 100.0, 50.0, 50.0], rel=1e-12)


# -------------------------------------------------------------------------- gap open


def test_gap_open_sets_the_open_against_the_previous_close() -> None:
    bars = bars_from(
        [
            (99.0, 101.0, 98.0, 100.0, 5.0),
            (101.0, 103.0, 100.0, 102.0, 5.0),
            (103.0, 105.0, 102.0, 104.0, 5.0),
            (104.0, 106.0, 101.0, 103.0, 5.0),
        ]
    )
    factor = 0.9 * 102.0 / 103.0  # makes bar 2 open at 0.9 x 102 = 91.8

    out = GapOpen(gap=-0.1, at=2).apply(bars)

    assert _column(out, "open") == pytest.approx([99.0, 101.0, 91.8, 104.0 * factor], rel=1e-12)
    assert _column(out, "close") == pytest.approx(
        [100.0, 102.0, 104.0 * factor, 103.0 * factor], rel=1e-12
    )
    assert _column(out, "high")[2:] == pytest.approx([105.0 * factor, 106.0 * factor])
    assert _column(out, "low")[2:] == pytest.approx([102.0 * factor, 101.0 * factor])
    assert out.head(2).equals(bars.head(2))


# ---------------------------------------------------------------------- trading halt


def test_trading_halt_removes_the_bars() -> None:
    bars = bars_from([(100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 10.0 + i) for i in range(6)])

    out = TradingHalt(bars=2, at=2).apply(bars)

    expected = pl.concat([bars.slice(0, 2), bars.slice(4, 2)])
    assert out.equals(expected)


def test_trading_halt_reopens_with_a_gap() -> None:
    bars = bars_from([(100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 10.0) for i in range(5)])
    # Bars 1 and 2 go; bar 3 (open 103) reopens at 0.95 x bar 0's close (101).
    factor = 0.95 * 101.0 / 103.0

    out = TradingHalt(bars=2, at=1, reopen_gap=-0.05).apply(bars)

    assert out.height == 3
    assert _column(out, "open") == pytest.approx([100.0, 95.95, 104.0 * factor], rel=1e-12)
    assert _column(out, "close") == pytest.approx([101.0, 104.0 * factor, 105.0 * factor])
    assert out.get_column("ts").to_list() == [bars["ts"][0], bars["ts"][3], bars["ts"][4]]


# ----------------------------------------------------------------- liquidity drought


def test_liquidity_drought_cuts_only_the_volume_of_the_window() -> None:
    bars = bars_from([(100.0, 101.0, 99.0, 100.0, volume) for volume in (10, 20, 30, 40)])

    out = LiquidityDrought(factor=0.25, bars=2, at=1).apply(bars)

    assert _column(out, "volume") == [10.0, 5.0, 7.5, 40.0]
    assert out.drop("volume").equals(bars.drop("volume"))


def test_liquidity_drought_can_dry_up_completely() -> None:
    out = LiquidityDrought(factor=0.0, bars=3, at=0).apply(flat_bars(4))

    assert _column(out, "volume") == [0.0, 0.0, 0.0, 10.0]


# ------------------------------------------------------------------ volatility spike


def test_volatility_spike_doubles_deviations_from_the_local_log_line() -> None:
    bars = bars_from(
        [
            (100.0, 101.0, 99.0, 100.0, 1.0),
            (100.0, 133.0, 99.0, 132.0, 1.0),
            (130.0, 145.0, 129.0, 144.0, 1.0),
            (144.0, 150.0, 140.0, 146.0, 1.0),
        ]
    )
    # Window bars 1-2 between closes 100 and 144: the log line is at sqrt(100 * 144)
    # = 120 on bar 1 and at 144 on bar 2; factor 2 squares each price's ratio to it.
    out = VolatilitySpike(factor=2.0, bars=2, at=1).apply(bars)

    assert _column(out, "close") == pytest.approx([100.0, 132.0**2 / 120, 144.0, 146.0])
    assert _column(out, "open") == pytest.approx([100.0, 100.0**2 / 120, 130.0**2 / 144, 144.0])
    assert _column(out, "high") == pytest.approx([101.0, 133.0**2 / 120, 145.0**2 / 144, 150.0])
    assert _column(out, "low") == pytest.approx([99.0, 99.0**2 / 120, 129.0**2 / 144, 140.0])
    # The window ends on its original close, exactly; later bars are untouched.
    assert out["close"][2] == 144.0
    assert out.row(3) == bars.row(3)


def test_volatility_spike_scales_close_to_close_returns_around_the_drift() -> None:
    bars = synthesize_bars(bars=200, seed=3, freq="1d")
    first, length, factor = 50, 40, 3.0
    log_close = np.log(bars["close"].to_numpy())
    returns = np.diff(log_close[first - 1 : first + length])
    drift = returns.mean()

    out = VolatilitySpike(factor=factor, bars=length, at=first).apply(bars)

    new = np.diff(np.log(out["close"].to_numpy())[first - 1 : first + length])
    np.testing.assert_allclose(new, drift + factor * (returns - drift), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------- regime flip


def _ten_percent_growth() -> pl.DataFrame:
    return bars_from([(c * 0.99, c * 1.02, c * 0.98, c, 1.0) for c in (100.0, 110.0, 121.0, 133.1)])


def test_regime_flip_reverses_the_drift() -> None:
    # mu = log(1.1) per bar from bar 1 on; reversed, the closes fall 10% a bar instead.
    out = RegimeFlip(at=1).apply(_ten_percent_growth())

    assert _column(out, "close") == pytest.approx(
        [100.0, 100 / 1.1, 100 / 1.1**2, 100 / 1.1**3], rel=1e-12
    )
    assert _column(out, "open") == pytest.approx(
        [99.0, 0.99 * 100 / 1.1, 0.99 * 100 / 1.1**2, 0.99 * 100 / 1.1**3], rel=1e-12
    )


@pytest.mark.parametrize(
    ("transform", "growth"),
    [
        (RegimeFlip(drift_factor=0.0, at=1), 1.0),
        (RegimeFlip(drift_factor=2.0, at=1), 1.21),
        (RegimeFlip(drift_per_bar=math.log(1.2), at=1), 1.2),
    ],
)
def test_regime_flip_sets_the_new_drift(transform: RegimeFlip, growth: float) -> None:
    out = transform.apply(_ten_percent_growth())

    assert _column(out, "close") == pytest.approx([100.0 * growth**t for t in range(4)])


def test_regime_flip_keeps_the_noise_around_the_drift() -> None:
    bars = synthesize_bars(bars=300, seed=5, freq="1d")
    log_close = np.log(bars["close"].to_numpy())
    first = 100
    returns = np.diff(log_close[first - 1 :])

    out = RegimeFlip(at=first).apply(bars)

    new = np.diff(np.log(out["close"].to_numpy())[first - 1 :])
    np.testing.assert_allclose(new, returns - 2 * returns.mean(), rtol=1e-9, atol=1e-12)
    assert out.head(first).equals(bars.head(first))


# ----------------------------------------------------- seeds, contract and validation

ALL = [
    FlashCrash(drop=0.3, bars=3, recovery=0.4, recovery_bars=5),
    GapOpen(gap=0.08),
    TradingHalt(bars=4, reopen_gap=-0.05),
    LiquidityDrought(factor=0.1, bars=10),
    VolatilitySpike(factor=4.0, bars=15),
    RegimeFlip(drift_factor=-2.0),
]


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    return synthesize_bars(bars=500, seed=11, freq="1h", symbol="SYN")


@pytest.mark.parametrize("transform", ALL, ids=lambda t: t.kind)
def test_random_start_follows_the_documented_draw(
    transform: StressTransform, market: pl.DataFrame
) -> None:
    low, high = transform.span(market.height)

    starts = [transform.start(market.height, seed=seed) for seed in range(5)]

    expected = [
        int(np.random.default_rng(seed).integers(low, high, endpoint=True)) for seed in range(5)
    ]
    assert starts == expected
    assert len(set(starts)) > 1


@pytest.mark.parametrize("transform", ALL, ids=lambda t: t.kind)
def test_same_seed_same_frame_other_seed_other_frame(
    transform: StressTransform, market: pl.DataFrame
) -> None:
    first = transform.apply(market, seed=1)

    assert first.equals(transform.apply(market, seed=1))
    assert not first.equals(transform.apply(market, seed=2))
    assert not first.equals(market)
    assert transform.randomised


@pytest.mark.parametrize("transform", ALL, ids=lambda t: t.kind)
def test_transforms_keep_the_contract_and_extra_columns(
    transform: StressTransform, market: pl.DataFrame
) -> None:
    extra = market.with_columns(pl.int_range(pl.len()).alias("row"))

    out = transform.apply(extra, seed=4)

    validate_bars(out.drop("row"), source="stressed")
    assert_contract(out)
    assert out.columns == extra.columns
    assert out.schema == extra.schema
    # The input frame is never changed.
    assert extra.drop("row").equals(market)


def test_a_fixed_start_ignores_the_seed(market: pl.DataFrame) -> None:
    crash = FlashCrash(drop=0.2, at=100)

    assert not crash.randomised
    assert crash.apply(market, seed=0).equals(crash.apply(market, seed=9))


_bars_rows = st.lists(
    st.tuples(
        st.floats(-0.05, 0.05),  # log return of the close
        st.floats(-0.02, 0.02),  # open vs previous close
        st.floats(0.0, 0.03),  # wick above
        st.floats(0.0, 0.03),  # wick below
        st.floats(0.0, 1e6),  # volume
    ),
    min_size=30,
    max_size=60,
)


def _random_bars(rows: list[tuple[float, float, float, float, float]]) -> pl.DataFrame:
    close = 100.0 * np.exp(np.cumsum([row[0] for row in rows]))
    previous = np.concatenate(([100.0], close[:-1]))
    open_ = previous * np.exp([row[1] for row in rows])
    high = np.maximum(open_, close) * (1 + np.array([row[2] for row in rows]))
    low = np.minimum(open_, close) * (1 - np.array([row[3] for row in rows]))
    return bars_from(list(zip(open_, high, low, close, [row[4] for row in rows], strict=True)))


@settings(max_examples=60)
@given(
    rows=_bars_rows,
    seed=st.integers(0, 2**32),
    index=st.integers(0, len(ALL) - 1),
    factor=st.floats(0.05, 6.0),
)
def test_property_contract_holds_for_random_bars(
    rows: list[tuple[float, float, float, float, float]], seed: int, index: int, factor: float
) -> None:
    bars = _random_bars(rows)
    assert_contract(bars)
    transform = ALL[index]
    if isinstance(transform, VolatilitySpike):
        transform = VolatilitySpike(factor=factor, bars=10)

    out = transform.apply(bars, seed=seed)

    assert_contract(out)
    assert out.equals(transform.apply(bars, seed=seed))


@pytest.mark.parametrize(
    ("kind", "parameters", "message"),
    [
        ("flash_crash", {"drop": 1.0}, "key 'drop' must be a finite number in (0, 1)"),
        ("flash_crash", {"drop": 0.2, "bars": 0}, "key 'bars' must be an integer >= 1"),
        ("flash_crash", {"drop": 0.2, "bars": 2.0}, "key 'bars' must be an integer"),
        ("flash_crash", {"drop": 0.2, "recovery": 1.5}, "key 'recovery'"),
        ("flash_crash", {"drop": "big"}, "key 'drop' must be a number; got 'big'"),
        ("flash_crash", {"drop": True}, "key 'drop' must be a number"),
        ("flash_crash", {"drop": 0.2, "at": -1}, "key 'at' must be an integer >= 0"),
        ("flash_crash", {}, "missing key(s) drop for flash_crash"),
        ("flash_crash", {"drop": 0.2, "depth": 3}, "unknown key 'depth' for flash_crash"),
        ("gap_open", {"gap": -1.0}, "key 'gap'"),
        ("gap_open", {"gap": math.inf}, "key 'gap'"),
        ("trading_halt", {"bars": 2, "reopen_gap": -2.0}, "key 'reopen_gap'"),
        ("liquidity_drought", {"factor": 1.0, "bars": 2}, "key 'factor'"),
        ("liquidity_drought", {"factor": 0.5}, "missing key(s) bars"),
        ("volatility_spike", {"factor": 0.0, "bars": 5}, "key 'factor'"),
        ("regime_flip", {"drift_factor": 2.0, "drift_per_bar": 0.01}, "exclude each other"),
        ("regime_flip", {"drift_per_bar": math.nan}, "key 'drift_per_bar'"),
        ("meteor_strike", {}, "key 'kind' must be one of flash_crash, gap_open"),
    ],
)
def test_bad_parameters_name_the_key(kind: str, parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_transform(kind, parameters)

    assert message in str(caught.value)


def test_every_kind_is_registered() -> None:
    assert set(TRANSFORMS) == {
        "flash_crash",
        "gap_open",
        "trading_halt",
        "liquidity_drought",
        "volatility_spike",
        "regime_flip",
    }


def test_an_event_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(ConfigError, match="flash_crash needs at least 8 bars; the data has 5"):
        FlashCrash(drop=0.2, bars=3, recovery_bars=4).apply(flat_bars(5))
    with pytest.raises(ConfigError, match=r"key 'at' must be in \[1, 4\] for 5 bars; got 0"):
        GapOpen(gap=0.1, at=0).apply(flat_bars(5))
    with pytest.raises(ConfigError, match=r"key 'seed' must be an integer >= 0"):
        GapOpen(gap=0.1).apply(flat_bars(5), seed=-1)


def test_bad_frames_are_refused() -> None:
    crash = FlashCrash(drop=0.2, at=1)
    two_symbols = pl.concat(
        [
            bars_from([(1.0, 1.0, 1.0, 1.0, 1.0)] * 3, symbol="A"),
            bars_from([(1.0, 1.0, 1.0, 1.0, 1.0)] * 3, symbol="B"),
        ]
    )

    with pytest.raises(ConfigError, match="polars DataFrame"):
        crash.apply({"close": [1.0]})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="lack the column"):
        crash.apply(flat_bars(3).drop("volume"))
    with pytest.raises(ConfigError, match="several symbols"):
        crash.apply(two_symbols)


def test_prices_that_overflow_are_refused() -> None:
    flip = RegimeFlip(drift_per_bar=400.0, at=1)

    with pytest.raises(ConfigError, match="regime_flip: the transformed open prices"):
        flip.apply(flat_bars(5))
