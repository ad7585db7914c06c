"""Synthetic OHLCV bars from a regime-switching market, deterministic for a seed."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

import numba
import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.data.resample import duration_ns
from tradepulse.data.schema import PRICE_COLUMNS, SYMBOL_COLUMN, TS_COLUMN, TS_DTYPE, VOLUME_COLUMN
from tradepulse.errors import DataError

__all__ = [
    "REGIMES",
    "REGIME_COLUMN",
    "synthesize_bars",
]

#: Regime names, in the order of the integer labels the kernel uses.
REGIMES: Final = ("trending", "mean_reverting", "high_volatility")
REGIME_COLUMN: Final = "regime"

# Model parameters, per 1-minute bar unless stated (scaled to other bar lengths below).
#: Probability of staying in each regime from one bar to the next (mean stays of
#: 500, 400 and 120 bars).
_STAY_PROBABILITY: Final = np.array([0.998, 0.9975, 0.99166])
#: Where a regime goes when it is left: row = from, column = to (diagonal unused).
_SWITCH_TO: Final = np.array(
    [
        [0.0, 0.7, 0.3],
        [0.6, 0.0, 0.4],
        [0.5, 0.5, 0.0],
    ]
)
#: Log-return drift magnitude per 1-minute bar (sign drawn per trending episode).
_DRIFT_PER_MINUTE: Final = np.array([2.5e-5, 0.0, 0.0])
#: Log-return volatility per 1-minute bar (scales with sqrt(bar length)).
_VOLATILITY_PER_MINUTE: Final = np.array([4.5e-4, 3.5e-4, 1.3e-3])
#: Fraction of the gap to the episode's anchor closed per bar (Ornstein-Uhlenbeck pull).
_REVERSION_PER_BAR: Final = np.array([0.0, 0.03, 0.0])
#: Pull of the log price back towards the starting price, per minute (a half-life of
#: about half a year, so long runs, even of coarse bars, stay within float range).
_ANCHOR_PULL_PER_MINUTE: Final = math.log(2.0) / 262_800.0
#: Jump probability per bar and jump size (standard deviation of the log jump).
_JUMP_PROBABILITY: Final = np.array([3e-4, 3e-4, 3e-3])
_JUMP_SIZE: Final = np.array([4e-3, 4e-3, 1.2e-2])
#: Open-to-previous-close gap, high/low wick scale, as multiples of the bar volatility.
_GAP_SCALE: Final = 0.1
_WICK_SCALE: Final = 0.6
#: Volume: median shares per 1-minute bar, log-level per regime, sensitivity of log
#: volume to |return| / volatility (capped, so jumps do not explode volume), and
#: log-volume noise.
_VOLUME_PER_MINUTE: Final = 1_000.0
_VOLUME_REGIME_LEVEL: Final = np.array([0.15, -0.2, 0.6])
_VOLUME_RETURN_BETA: Final = 0.35
_VOLUME_RETURN_CAP: Final = 8.0
_VOLUME_NOISE: Final = 0.4
_NS_PER_MINUTE: Final = 60_000_000_000


@numba.njit(cache=True)
def _simulate_kernel(  # type: ignore[no-untyped-def]  # numba kernel; typed wrapper below
    regime_draw,
    return_noise,
    jump_draw,
    jump_noise,
    sign_draw,
    initial_regime,
    anchor_pull,
    stay,
    switch_cumulative,
    drift,
    volatility,
    reversion,
    jump_probability,
    jump_size,
):
    count = return_noise.shape[0]
    log_close = np.empty(count)
    regimes = np.empty(count, dtype=np.int8)
    regime = initial_regime
    level = 0.0
    anchor = 0.0
    direction = 1.0
    for index in range(count):
        draw = regime_draw[index]
        if index == 0 or draw >= stay[regime]:
            if index > 0:
                # Reuse the draw: where in (stay, 1) it fell picks the next regime.
                where = (draw - stay[regime]) / (1.0 - stay[regime])
                target = 0
                while target < 2 and where >= switch_cumulative[regime, target]:
                    target += 1
                regime = target
            anchor = level
            direction = 1.0 if sign_draw[index] < 0.5 else -1.0
        step = drift[regime] * direction + volatility[regime] * return_noise[index]
        step -= reversion[regime] * (level - anchor) + anchor_pull * level
        if jump_draw[index] < jump_probability[regime]:
            step += jump_size[regime] * jump_noise[index]
        level += step
        log_close[index] = level
        regimes[index] = regime
    return log_close, regimes


def _simulate(
    rng: np.random.Generator, count: int, *, minutes_per_bar: float
) -> tuple[NDArray[np.float64], NDArray[np.int8], NDArray[np.float64]]:
    """Return log closes (relative to the start), regime labels and per-bar volatility."""
    time_scale = math.sqrt(minutes_per_bar)
    drift = _DRIFT_PER_MINUTE * time_scale  # keeps the drift-to-noise ratio per bar
    volatility = _VOLATILITY_PER_MINUTE * time_scale
    jump_probability = np.minimum(_JUMP_PROBABILITY * minutes_per_bar, 0.05)
    off_diagonal = _SWITCH_TO / _SWITCH_TO.sum(axis=1, keepdims=True)
    switch_cumulative = np.cumsum(off_diagonal, axis=1)
    stationary = _stationary_distribution()
    regime_draw = rng.random(count)
    initial_regime = int(np.searchsorted(np.cumsum(stationary), regime_draw[0], side="right"))
    log_close, regimes = _simulate_kernel(
        regime_draw,
        rng.standard_normal(count),
        rng.random(count),
        rng.standard_normal(count),
        rng.random(count),
        min(initial_regime, len(REGIMES) - 1),
        min(_ANCHOR_PULL_PER_MINUTE * minutes_per_bar, 0.5),
        _STAY_PROBABILITY,
        switch_cumulative,
        drift,
        volatility,
        _REVERSION_PER_BAR,
        jump_probability,
        _JUMP_SIZE,
    )
    return (
        np.asarray(log_close, dtype=np.float64),
        np.asarray(regimes, dtype=np.int8),
        volatility[regimes],
    )


def _stationary_distribution() -> NDArray[np.float64]:
    leave = 1.0 - _STAY_PROBABILITY
    transition = (_SWITCH_TO / _SWITCH_TO.sum(axis=1, keepdims=True)) * leave[:, None]
    transition[np.diag_indices(len(REGIMES))] = _STAY_PROBABILITY
    values, vectors = np.linalg.eig(transition.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    result: NDArray[np.float64] = stationary / stationary.sum()
    return result


def _parse_start(start: str) -> int:
    try:
        moment = datetime.fromisoformat(start.strip())
    except (ValueError, AttributeError):
        raise DataError(f"start must be an ISO 8601 timestamp; got {start!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)) * 1_000


def synthesize_bars(
    *,
    bars: int,
    seed: int,
    freq: str = "1min",
    start: str = "2024-01-02T00:00:00Z",
    start_price: float = 100.0,
    symbol: str | None = None,
    with_regime: bool = False,
) -> pl.DataFrame:
    """Generate ``bars`` OHLCV bars from a regime-switching market, deterministic in ``seed``.

    A Markov chain moves between three regimes (`REGIMES`): *trending* (a drift whose sign
    is drawn per episode), *mean-reverting* (an Ornstein-Uhlenbeck pull towards the log
    price at which the episode began) and *high-volatility* (about 3x the volatility and
    10x the jump rate). Log closes follow the regime's dynamics plus rare Gaussian jumps;
    each open is the previous close times a small gap; high and low extend beyond
    max/min(open, close) by half-normal wicks, so ``low <= min(open, close)`` and
    ``max(open, close) <= high`` hold exactly. Volume is log-normal, higher in volatile
    regimes and rising with |return| / volatility, rounded to whole units.

    Parameters are set for 1-minute bars (about 0.035-0.13% volatility per bar); for other
    ``freq`` the volatility and drift scale with sqrt(bar length in minutes), volume with
    the bar length; regime stays are counted in bars. ``ts`` starts at ``start`` (ISO 8601;
    naive means UTC) and steps by ``freq`` (a fixed duration such as ``"1s"``, ``"1min"``,
    ``"1h"``, ``"1d"``). The first open is ``start_price``. Random numbers come from
    ``numpy.random.Generator(PCG64(seed))``: the same arguments give identical frames,
    bit for bit.

    Return columns ``ts, [symbol], open, high, low, close, volume`` (plus ``regime``, an
    Enum of `REGIMES`, when ``with_regime``).

    Raises:
        DataError: ``bars`` < 1, ``seed`` < 0, ``start_price`` not finite and > 0, or a bad
            ``freq``/``start``.
    """
    if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
        raise DataError(f"bars must be an integer >= 1; got {bars!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be an integer >= 0; got {seed!r}")
    if not (isinstance(start_price, int | float) and math.isfinite(start_price)) or (
        start_price <= 0
    ):
        raise DataError(f"start_price must be a finite number > 0; got {start_price!r}")
    step_ns = duration_ns(freq, name="freq")
    start_ns = _parse_start(start)
    last_ns = start_ns + (bars - 1) * step_ns
    if start_ns < -(2**63) or last_ns >= 2**63:
        raise DataError(
            f"{bars} bars of {freq} from {start!r} leave the nanosecond timestamp range "
            "(years 1677-2262)"
        )

    rng = np.random.Generator(np.random.PCG64(seed))
    minutes_per_bar = step_ns / _NS_PER_MINUTE
    log_close, regimes, volatility = _simulate(rng, bars, minutes_per_bar=minutes_per_bar)

    log_start = math.log(float(start_price))
    close = np.exp(log_start + log_close)
    previous_close = np.empty(bars)
    previous_close[0] = float(start_price)
    previous_close[1:] = close[:-1]
    gap = _GAP_SCALE * volatility * rng.standard_normal(bars)
    gap[0] = 0.0
    open_ = previous_close * np.exp(gap)
    upper_wick = np.exp(_WICK_SCALE * volatility * np.abs(rng.standard_normal(bars)))
    lower_wick = np.exp(-_WICK_SCALE * volatility * np.abs(rng.standard_normal(bars)))
    high = np.maximum(open_, close) * upper_wick
    low = np.minimum(open_, close) * lower_wick

    abs_move = np.abs(np.log(close / open_)) / volatility
    log_volume = (
        math.log(_VOLUME_PER_MINUTE * minutes_per_bar)
        + _VOLUME_REGIME_LEVEL[regimes]
        + _VOLUME_RETURN_BETA * np.minimum(abs_move, _VOLUME_RETURN_CAP)
        + _VOLUME_NOISE * rng.standard_normal(bars)
    )
    volume = np.rint(np.exp(log_volume))

    ts = pl.Series(
        TS_COLUMN, np.arange(bars, dtype=np.int64) * step_ns + start_ns, dtype=pl.Int64
    ).cast(TS_DTYPE)
    columns: list[pl.Series] = [ts]
    if symbol is not None:
        columns.append(pl.repeat(symbol, bars, dtype=pl.String, eager=True).alias(SYMBOL_COLUMN))
    columns.extend(
        pl.Series(name, values, dtype=pl.Float64)
        for name, values in zip(PRICE_COLUMNS, (open_, high, low, close), strict=True)
    )
    columns.append(pl.Series(VOLUME_COLUMN, volume, dtype=pl.Float64))
    if with_regime:
        names = pl.Series(REGIME_COLUMN, REGIMES, dtype=pl.Enum(REGIMES))
        columns.append(names.gather(regimes.astype(np.int64)))
    return pl.DataFrame(columns)
