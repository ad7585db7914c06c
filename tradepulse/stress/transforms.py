"""Stress scenarios as pure data transforms of one instrument's bars.

Each transform is a frozen dataclass whose parameters are checked when it is
built; :meth:`StressTransform.apply` returns a new bar frame and never changes
its input. Prices are scaled by positive factors (and ``high`` / ``low`` by the
larger / smaller factor of their bar), so a frame that keeps the bar contract
(``0 < low <= open, close <= high``, ``volume >= 0``, strictly increasing
``ts``) still keeps it; extra columns pass through unchanged.

Every transform acts on a window that starts at bar ``at`` (0-based). With
``at=None`` the start is drawn from the seed: ``numpy.random.default_rng(seed)
.integers(low, high, endpoint=True)`` over the starts where the whole event
fits (:meth:`StressTransform.span`), so one seed gives one position, bit for
bit, and seeds spread the event over the data. Fractions are plain ratios
(``0.2`` = 20%). The transforms:

- :class:`FlashCrash`: the close falls by ``drop`` over ``bars`` bars (equal log
  steps), then recovers ``recovery`` of the fall over ``recovery_bars`` bars;
  every later price stays scaled by ``1 - drop * (1 - recovery)``.
- :class:`GapOpen`: bar ``at`` opens at ``(1 + gap)`` times the previous close;
  it and every later bar are scaled by the same factor.
- :class:`TradingHalt`: ``bars`` bars are removed (no prices, no fills; orders
  wait for the next bar); optionally the reopening bar gaps by ``reopen_gap``.
- :class:`LiquidityDrought`: volume is multiplied by ``factor`` for ``bars`` bars.
- :class:`VolatilitySpike`: for ``bars`` bars every log price's deviation from
  the straight log line between the close before the window and the window's
  last close is multiplied by ``factor``; the window ends on the original close.
- :class:`RegimeFlip`: from bar ``at`` on, the mean log return per bar ``mu``
  (measured from the close before ``at`` to the last close) becomes
  ``drift_factor * mu`` (or ``drift_per_bar``); the noise around it is kept.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import ClassVar, Final

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.errors import ConfigError

__all__ = [
    "TRANSFORMS",
    "FlashCrash",
    "GapOpen",
    "LiquidityDrought",
    "RegimeFlip",
    "StressTransform",
    "TradingHalt",
    "VolatilitySpike",
    "build_transform",
]

_PRICES: Final = ("open", "high", "low", "close")
_REQUIRED: Final = ("ts", *_PRICES, "volume")

Arrays = dict[str, NDArray[np.float64]]


def _integer(key: str, value: object, *, low: int) -> int:
    """Return ``value`` after checking it is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"key {key!r} must be an integer >= {low}; got {value!r}")
    return int(value)


def _real(
    key: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is finite and in the given range."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise ConfigError(f"key {key!r} must be a number; got {value!r}")
    number = float(value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise ConfigError(
            f"key {key!r} must be a finite number in {left}{low:g}, {high:g}{right}; got {value!r}"
        )
    return number


def _optional_start(value: object) -> int | None:
    return None if value is None else _integer("at", value, low=0)


def _arrays(bars: pl.DataFrame) -> Arrays:
    """Return the price and volume columns of one instrument's ``bars`` as float64 arrays.

    Raises:
        ConfigError: ``bars`` is not a polars DataFrame, lacks a column, or holds
            several symbols.
    """
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    missing = [name for name in _REQUIRED if name not in bars.columns]
    if missing:
        raise ConfigError(f"bars lack the column(s) {', '.join(missing)}")
    if "symbol" in bars.columns and bars.get_column("symbol").n_unique() > 1:
        raise ConfigError("bars hold several symbols; stress scenarios transform one instrument")
    return {
        name: bars.get_column(name).cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
        for name in (*_PRICES, "volume")
    }


def _frame(bars: pl.DataFrame, arrays: Arrays, *, kind: str) -> pl.DataFrame:
    """Return ``bars`` with the columns of ``arrays``, after checking the prices."""
    for name in _PRICES:
        values = arrays[name]
        if not bool(np.all(np.isfinite(values) & (values > 0.0))):
            raise ConfigError(
                f"{kind}: the transformed {name} prices are not all finite and > 0 "
                "(the parameters are too extreme for these bars)"
            )
    return bars.with_columns(
        pl.Series(name, values, dtype=pl.Float64) for name, values in arrays.items()
    )


def _scale(
    arrays: Arrays, open_factor: NDArray[np.float64], close_factor: NDArray[np.float64]
) -> None:
    """Scale each bar's open by ``open_factor`` and close by ``close_factor`` in place.

    ``high`` takes the larger and ``low`` the smaller of the bar's two factors,
    so ``low <= open, close <= high`` still holds (float multiplication by a
    positive factor is monotone).
    """
    arrays["open"] = arrays["open"] * open_factor
    arrays["close"] = arrays["close"] * close_factor
    arrays["high"] = arrays["high"] * np.maximum(open_factor, close_factor)
    arrays["low"] = arrays["low"] * np.minimum(open_factor, close_factor)


class StressTransform:
    """Base of the scenario transforms: a window of bars starting at ``at`` (or at random)."""

    __slots__ = ()

    #: The transform's name in a scenario file (``transform.kind``).
    kind: ClassVar[str]
    at: int | None

    @property
    def randomised(self) -> bool:
        """Return whether the start is drawn from the seed (``at`` is ``None``)."""
        return self.at is None

    def span(self, count: int) -> tuple[int, int]:
        """Return the first and last start (inclusive) at which the event fits ``count`` bars."""
        raise NotImplementedError  # pragma: no cover - every transform overrides it

    def start(self, count: int, *, seed: int = 0) -> int:
        """Return the window's first bar on ``count`` bars: ``at``, or drawn from ``seed``.

        Raises:
            ConfigError: the event does not fit ``count`` bars, ``at`` lies outside
                :meth:`span`, or ``seed`` is not an integer >= 0.
        """
        seed = _integer("seed", seed, low=0)
        low, high = self.span(count)
        if high < low:
            raise ConfigError(
                f"{self.kind} needs at least {count - high + low} bars; the data has {count}"
            )
        if self.at is None:
            return int(np.random.default_rng(seed).integers(low, high, endpoint=True))
        if not low <= self.at <= high:
            raise ConfigError(
                f"{self.kind}: key 'at' must be in [{low}, {high}] for {count} bars; got {self.at}"
            )
        return self.at

    def apply(self, bars: pl.DataFrame, *, seed: int = 0) -> pl.DataFrame:
        """Return the stressed copy of one instrument's ``bars`` (``seed``: see :meth:`start`).

        Raises:
            ConfigError: ``bars`` are not one instrument's bar frame, the event does
                not fit them, or the result would hold a non-finite or non-positive price.
        """
        arrays = _arrays(bars)
        first = self.start(bars.height, seed=seed)
        # Extreme parameters may overflow to inf or underflow to 0: `_frame` refuses those.
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            return self._transform(bars, arrays, first)

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        raise NotImplementedError  # pragma: no cover - every transform overrides it


@dataclass(frozen=True, slots=True, kw_only=True)
class FlashCrash(StressTransform):
    """The close falls by ``drop`` within ``bars`` bars, then recovers part of the fall.

    From bar ``at`` on, the close of the ``j``-th crash bar (``j = 1 .. bars``) is
    scaled by ``(1 - drop) ** (j / bars)``; over the next ``recovery_bars`` bars the
    factor climbs in equal log steps to ``1 - drop * (1 - recovery)`` (``recovery``
    is the fraction of the fall regained), where every later price stays. A bar's
    open keeps the previous close's factor, so the crash happens inside bars.

    Raises:
        ConfigError: ``drop`` not in (0, 1), ``bars`` or ``recovery_bars`` < 1,
            ``recovery`` not in [0, 1], or ``at`` not an integer >= 0 or ``None``.
    """

    kind: ClassVar[str] = "flash_crash"
    drop: float
    bars: int = 1
    recovery: float = 0.0
    recovery_bars: int = 1
    at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "drop", _real("drop", self.drop, low=0.0, high=1.0, low_open=True, high_open=True)
        )
        object.__setattr__(self, "bars", _integer("bars", self.bars, low=1))
        object.__setattr__(self, "recovery", _real("recovery", self.recovery, low=0.0, high=1.0))
        object.__setattr__(
            self, "recovery_bars", _integer("recovery_bars", self.recovery_bars, low=1)
        )
        object.__setattr__(self, "at", _optional_start(self.at))

    def span(self, count: int) -> tuple[int, int]:
        """Return ``(1, count - bars - recovery_bars)``."""
        return 1, count - self.bars - self.recovery_bars

    def close_factors(self, count: int, first: int) -> NDArray[np.float64]:
        """Return the factor of every bar's close for a crash starting at bar ``first``."""
        trough = math.log1p(-self.drop)
        final = math.log1p(-self.drop * (1.0 - self.recovery))
        log_factor = np.zeros(count, dtype=np.float64)
        crash = np.arange(1, self.bars + 1, dtype=np.float64) / self.bars
        log_factor[first : first + self.bars] = crash * trough
        climb = np.arange(1, self.recovery_bars + 1, dtype=np.float64) / self.recovery_bars
        end = first + self.bars
        log_factor[end : end + self.recovery_bars] = (1.0 - climb) * trough + climb * final
        log_factor[end + self.recovery_bars :] = final
        return np.exp(log_factor)

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        close_factor = self.close_factors(bars.height, first)
        open_factor = np.concatenate(([1.0], close_factor[:-1]))
        _scale(arrays, open_factor, close_factor)
        return _frame(bars, arrays, kind=self.kind)


def _gap_factors(arrays: Arrays, first: int, gap: float) -> NDArray[np.float64]:
    """Return per-bar factors that make bar ``first`` open at ``(1 + gap)`` x the prior close."""
    factor = np.ones(arrays["open"].shape[0], dtype=np.float64)
    factor[first:] = (1.0 + gap) * arrays["close"][first - 1] / arrays["open"][first]
    return factor


@dataclass(frozen=True, slots=True, kw_only=True)
class GapOpen(StressTransform):
    """Bar ``at`` opens ``gap`` away from the previous close; later prices move with it.

    Every price of bar ``at`` and of the bars after it is multiplied by
    ``(1 + gap) * close[at - 1] / open[at]``, so the new open is ``(1 + gap)``
    times the previous close and the bars' own moves are kept.

    Raises:
        ConfigError: ``gap`` not a finite number > -1, or ``at`` not an integer
            >= 0 or ``None``.
    """

    kind: ClassVar[str] = "gap_open"
    gap: float
    at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "gap", _real("gap", self.gap, low=-1.0, low_open=True))
        object.__setattr__(self, "at", _optional_start(self.at))

    def span(self, count: int) -> tuple[int, int]:
        """Return ``(1, count - 1)``."""
        return 1, count - 1

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        factor = _gap_factors(arrays, first, self.gap)
        _scale(arrays, factor, factor)
        return _frame(bars, arrays, kind=self.kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingHalt(StressTransform):
    """No bars for ``bars`` bars from bar ``at`` on: they are removed.

    Nothing trades while the market is halted: an order decided before the halt
    fills at the first bar after it (the event engine keeps it queued). With
    ``reopen_gap`` the reopening bar opens ``reopen_gap`` away from the last close
    before the halt, as :class:`GapOpen` does; ``None`` keeps the prices.

    Raises:
        ConfigError: ``bars`` < 1, ``reopen_gap`` not ``None`` or a finite number
            > -1, or ``at`` not an integer >= 0 or ``None``.
    """

    kind: ClassVar[str] = "trading_halt"
    bars: int
    reopen_gap: float | None = None
    at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bars", _integer("bars", self.bars, low=1))
        if self.reopen_gap is not None:
            gap = _real("reopen_gap", self.reopen_gap, low=-1.0, low_open=True)
            object.__setattr__(self, "reopen_gap", gap)
        object.__setattr__(self, "at", _optional_start(self.at))

    def span(self, count: int) -> tuple[int, int]:
        """Return ``(1, count - bars - 1)``: at least one bar before and after the halt."""
        return 1, count - self.bars - 1

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        keep = np.ones(bars.height, dtype=np.bool_)
        keep[first : first + self.bars] = False
        frame = bars.filter(pl.Series(keep))
        if self.reopen_gap is None:
            return frame
        kept = {name: values[keep] for name, values in arrays.items()}
        factor = _gap_factors(kept, first, self.reopen_gap)
        _scale(kept, factor, factor)
        return _frame(frame, kept, kind=self.kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidityDrought(StressTransform):
    """Volume is multiplied by ``factor`` (in [0, 1)) for ``bars`` bars from ``at`` on.

    Prices are unchanged; what the drought costs depends on the engine: the
    event engine's participation cap and depth models let a bar fill at most a
    share of its (now smaller) volume, and the square-root impact cost model
    charges more for the larger share of volume a fill takes.

    Raises:
        ConfigError: ``factor`` not in [0, 1), ``bars`` < 1, or ``at`` not an
            integer >= 0 or ``None``.
    """

    kind: ClassVar[str] = "liquidity_drought"
    factor: float
    bars: int
    at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "factor", _real("factor", self.factor, low=0.0, high=1.0, high_open=True)
        )
        object.__setattr__(self, "bars", _integer("bars", self.bars, low=1))
        object.__setattr__(self, "at", _optional_start(self.at))

    def span(self, count: int) -> tuple[int, int]:
        """Return ``(0, count - bars)``."""
        return 0, count - self.bars

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        volume = arrays["volume"]
        volume[first : first + self.bars] *= self.factor
        return bars.with_columns(pl.Series("volume", volume, dtype=pl.Float64))


@dataclass(frozen=True, slots=True, kw_only=True)
class VolatilitySpike(StressTransform):
    """Moves around the local price path are ``factor`` times larger for ``bars`` bars.

    For the window ``at .. at + bars - 1`` the local path is the straight line in
    log price from the close before the window (``a``) to the window's last close
    (``b``): ``path[t] = (1 - w) * a + w * b`` with ``w = (t - at + 1) / bars``.
    Each price ``p`` of bar ``t`` (open, high, low, close) becomes
    ``exp(path[t] + factor * (log p - path[t]))``: close-to-close log returns
    become ``drift + factor * (r - drift)`` with ``drift = (b - a) / bars``,
    intrabar ranges and gaps widen by ``factor`` in log terms, and the window ends
    on its original close, so later bars are unchanged.

    Raises:
        ConfigError: ``factor`` not a finite number > 0, ``bars`` < 1, or ``at``
            not an integer >= 0 or ``None``.
    """

    kind: ClassVar[str] = "volatility_spike"
    factor: float
    bars: int
    at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "factor", _real("factor", self.factor, low=0.0, low_open=True))
        object.__setattr__(self, "bars", _integer("bars", self.bars, low=1))
        object.__setattr__(self, "at", _optional_start(self.at))

    def span(self, count: int) -> tuple[int, int]:
        """Return ``(1, count - bars)``."""
        return 1, count - self.bars

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        last = first + self.bars - 1
        window = slice(first, last + 1)
        before = math.log(float(arrays["close"][first - 1]))
        after = math.log(float(arrays["close"][last]))
        weight = np.arange(1, self.bars + 1, dtype=np.float64) / self.bars
        path = (1.0 - weight) * before + weight * after
        for name in _PRICES:
            values = arrays[name][window]
            deviation = np.log(values) - path
            arrays[name][window] = values * np.exp((self.factor - 1.0) * deviation)
        # Guard against rounding: the map is increasing, so this only fixes ulps.
        arrays["high"] = np.maximum.reduce([arrays["high"], arrays["open"], arrays["close"]])
        arrays["low"] = np.minimum.reduce([arrays["low"], arrays["open"], arrays["close"]])
        return _frame(bars, arrays, kind=self.kind)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegimeFlip(StressTransform):
    """From bar ``at`` on the drift of the returns changes; the noise around it stays.

    ``mu = (log close[-1] - log close[at - 1]) / (count - at)`` is the mean log
    return per bar from the flip on. The new drift is ``drift_factor * mu``
    (default ``-1``: reversed, so the market ends as far below the flip's close as
    it ended above it) or, when given, ``drift_per_bar`` (a log return per bar).
    Every price of bar ``t >= at`` is multiplied by ``exp((t - at + 1) * (new - mu))``.

    Raises:
        ConfigError: ``drift_factor`` or ``drift_per_bar`` not finite, both given
            (a ``drift_factor`` other than -1 with ``drift_per_bar``), or ``at`` not
            an integer >= 0 or ``None``.
    """

    kind: ClassVar[str] = "regime_flip"
    drift_factor: float = -1.0
    drift_per_bar: float | None = None
    at: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "drift_factor", _real("drift_factor", self.drift_factor))
        if self.drift_per_bar is not None:
            if self.drift_factor != -1.0:
                raise ConfigError(
                    "keys 'drift_factor' and 'drift_per_bar' exclude each other; "
                    f"got drift_factor={self.drift_factor!r}, drift_per_bar={self.drift_per_bar!r}"
                )
            object.__setattr__(self, "drift_per_bar", _real("drift_per_bar", self.drift_per_bar))
        object.__setattr__(self, "at", _optional_start(self.at))

    def span(self, count: int) -> tuple[int, int]:
        """Return ``(1, count - 1)``."""
        return 1, count - 1

    def _transform(self, bars: pl.DataFrame, arrays: Arrays, first: int) -> pl.DataFrame:
        close = arrays["close"]
        count = close.shape[0]
        mean = (math.log(float(close[-1])) - math.log(float(close[first - 1]))) / (count - first)
        drift = self.drift_factor * mean if self.drift_per_bar is None else self.drift_per_bar
        factor = np.ones(count, dtype=np.float64)
        steps = np.arange(1, count - first + 1, dtype=np.float64)
        factor[first:] = np.exp(steps * (drift - mean))
        _scale(arrays, factor, factor)
        return _frame(bars, arrays, kind=self.kind)


#: The transforms by ``kind``, as scenario files name them.
TRANSFORMS: Final[dict[str, type[StressTransform]]] = {
    kind.kind: kind
    for kind in (FlashCrash, GapOpen, TradingHalt, LiquidityDrought, VolatilitySpike, RegimeFlip)
}


def build_transform(kind: str, parameters: dict[str, object]) -> StressTransform:
    """Return the transform ``kind`` built from ``parameters`` (checked).

    Raises:
        ConfigError: ``kind`` is unknown (the message lists the kinds), a parameter
            is unknown or missing, or a value is invalid (the message names the key).
    """
    transform_type = TRANSFORMS.get(kind)
    if transform_type is None:
        raise ConfigError(f"key 'kind' must be one of {', '.join(TRANSFORMS)}; got {kind!r}")
    known = [spec.name for spec in fields(transform_type)]  # type: ignore[arg-type]
    for key in parameters:
        if key not in known:
            raise ConfigError(f"unknown key {key!r} for {kind} (known: {', '.join(known)})")
    missing = [
        spec.name
        for spec in fields(transform_type)  # type: ignore[arg-type]
        if spec.name not in parameters
        and spec.default is MISSING
        and spec.default_factory is MISSING
    ]
    if missing:
        raise ConfigError(f"missing key(s) {', '.join(missing)} for {kind}")
    return transform_type(**parameters)
