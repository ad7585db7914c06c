"""Order-book depth models: how much an aggressive order can take on a bar, and at what price.

A bar gives no order book, so a depth model stands in for one. It is asked, for
an order that *takes* liquidity (a market order at the open, a triggered stop,
a limit order marketable at the open), how many units it can execute and at
what average price, walking away from ``reference_price`` (the open or the
trigger price) but never beyond ``worst_price`` (the limit, if any).
``consumed`` is how many units earlier orders already took from the same side
of the book on this bar, so orders on one bar walk one book in arrival order.

Passive fills (a resting limit order that the bar's range touched) do not walk
the book: they fill at the limit price, bounded only by the engine's
volume-participation cap.

Prices are in quote currency per unit, quantities and ``volume`` in units.
Models are checked when they are built; their ``repr`` shows their parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from tradepulse.domain.orders import Side
from tradepulse.errors import ConfigError

__all__ = [
    "BPS",
    "DEFAULT_LEVELS",
    "DEFAULT_LEVEL_SPACING_BPS",
    "ConstantDepth",
    "DepthExecution",
    "DepthModel",
    "SquareRootImpactDepth",
    "VolumeProportionalDepth",
]

#: One basis point as a fraction.
BPS: Final = 1e-4
#: Default number of price levels in a level book.
DEFAULT_LEVELS: Final = 10
#: Default distance between adjacent levels, in basis points of the reference price.
DEFAULT_LEVEL_SPACING_BPS: Final = 1.0


@dataclass(frozen=True, slots=True)
class DepthExecution:
    """``quantity`` units (0 <= quantity <= requested) at average ``price`` per unit."""

    quantity: float
    price: float


@runtime_checkable
class DepthModel(Protocol):
    """How much of an aggressive order a bar can absorb, and at what average price."""

    def execute(
        self,
        *,
        side: Side,
        quantity: float,
        reference_price: float,
        worst_price: float | None,
        volume: float,
        consumed: float,
    ) -> DepthExecution:
        """Return the executable part of ``quantity`` and its average price.

        The returned quantity is at most ``quantity``; every unit's price is no
        worse than ``worst_price`` (higher for a buy, lower for a sell) when given.
        """
        ...


def _check_positive(owner: str, name: str, value: float, *, allow_zero: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{owner}.{name} must be a finite number {bound}, got {value!r}")


def _check_levels(owner: str, levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ConfigError(f"{owner}.levels must be an integer >= 1, got {levels!r}")


def _walk_levels(
    *,
    sign: int,
    quantity: float,
    reference_price: float,
    worst_price: float | None,
    level_size: float,
    spacing: float,
    levels: int,
    consumed: float,
) -> DepthExecution:
    """Walk ``levels`` levels of ``level_size`` units, ``spacing`` apart (fraction of price)."""
    if quantity <= 0 or level_size <= 0:
        return DepthExecution(0.0, reference_price)
    level = int(consumed // level_size)
    left_in_level = level_size * (level + 1) - consumed
    filled = 0.0
    cost = 0.0
    while level < levels:
        price = reference_price * (1.0 + sign * level * spacing)
        if worst_price is not None and sign * (price - worst_price) > 0:
            break
        need = quantity - filled
        if left_in_level >= need:
            # Report exactly ``quantity`` so the engine sees a complete fill.
            return DepthExecution(quantity, (cost + need * price) / quantity)
        filled += left_in_level
        cost += left_in_level * price
        level += 1
        left_in_level = level_size
    if filled <= 0:
        return DepthExecution(0.0, reference_price)
    return DepthExecution(filled, cost / filled)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstantDepth:
    """A book of ``levels`` levels holding ``quantity_per_level`` units each.

    Level ``k`` (from 0) is priced ``reference * (1 ± k * level_spacing_bps * 1e-4)``
    (``+`` for buys). An order takes level 0 first, then walks outward.

    Raises:
        ConfigError: a parameter is not positive (spacing may be 0) or not finite.
    """

    quantity_per_level: float
    level_spacing_bps: float = DEFAULT_LEVEL_SPACING_BPS
    levels: int = DEFAULT_LEVELS

    def __post_init__(self) -> None:
        _check_positive("ConstantDepth", "quantity_per_level", self.quantity_per_level)
        _check_positive(
            "ConstantDepth", "level_spacing_bps", self.level_spacing_bps, allow_zero=True
        )
        _check_levels("ConstantDepth", self.levels)

    def execute(
        self,
        *,
        side: Side,
        quantity: float,
        reference_price: float,
        worst_price: float | None,
        volume: float,
        consumed: float,
    ) -> DepthExecution:
        """Return what walking the constant book from ``consumed`` units on gives."""
        return _walk_levels(
            sign=side.sign,
            quantity=quantity,
            reference_price=reference_price,
            worst_price=worst_price,
            level_size=self.quantity_per_level,
            spacing=self.level_spacing_bps * BPS,
            levels=self.levels,
            consumed=consumed,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeProportionalDepth:
    """Like :class:`ConstantDepth`, with ``fraction_per_level * bar volume`` units per level.

    Raises:
        ConfigError: a parameter is not positive (spacing may be 0) or not finite.
    """

    fraction_per_level: float
    level_spacing_bps: float = DEFAULT_LEVEL_SPACING_BPS
    levels: int = DEFAULT_LEVELS

    def __post_init__(self) -> None:
        _check_positive("VolumeProportionalDepth", "fraction_per_level", self.fraction_per_level)
        _check_positive(
            "VolumeProportionalDepth",
            "level_spacing_bps",
            self.level_spacing_bps,
            allow_zero=True,
        )
        _check_levels("VolumeProportionalDepth", self.levels)

    def execute(
        self,
        *,
        side: Side,
        quantity: float,
        reference_price: float,
        worst_price: float | None,
        volume: float,
        consumed: float,
    ) -> DepthExecution:
        """Return what walking a book sized by the bar's volume gives."""
        return _walk_levels(
            sign=side.sign,
            quantity=quantity,
            reference_price=reference_price,
            worst_price=worst_price,
            level_size=self.fraction_per_level * volume,
            spacing=self.level_spacing_bps * BPS,
            levels=self.levels,
            consumed=consumed,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SquareRootImpactDepth:
    """A continuous book whose marginal price moves with the square root of participation.

    The ``u``-th unit taken on a bar costs ``reference * (1 ± coefficient *
    sqrt(u / volume))`` (``+`` for buys), so taking ``q`` units from an untouched
    book costs on average ``reference * (1 ± (2/3) * coefficient * sqrt(q / volume))``.
    ``coefficient`` is the marginal impact, as a fraction of price, of taking the
    bar's whole volume (roughly the bar's volatility times an order-one
    constant). A worst price caps ``u`` where the marginal price reaches it; a
    sell is always capped where the marginal price would reach zero
    (``u = volume / coefficient**2``). A bar without volume has no depth.

    Raises:
        ConfigError: ``coefficient`` is negative or not finite.
    """

    coefficient: float

    def __post_init__(self) -> None:
        _check_positive("SquareRootImpactDepth", "coefficient", self.coefficient, allow_zero=True)

    def execute(
        self,
        *,
        side: Side,
        quantity: float,
        reference_price: float,
        worst_price: float | None,
        volume: float,
        consumed: float,
    ) -> DepthExecution:
        """Return the units executable before the marginal price passes ``worst_price``."""
        if quantity <= 0:
            return DepthExecution(0.0, reference_price)
        k = self.coefficient
        if k == 0:
            return DepthExecution(quantity, reference_price)
        if volume <= 0:
            return DepthExecution(0.0, reference_price)
        sign = side.sign
        executable = quantity
        # Cap where the marginal price reaches the worst price; a sell's marginal
        # price must also stay above zero.
        worst = worst_price
        if sign < 0:
            worst = 0.0 if worst_price is None else max(worst_price, 0.0)
        if worst is not None:
            room = sign * (worst / reference_price - 1.0)
            ratio = room / k  # may be inf for a tiny coefficient: then no cap
            limit_units = volume * ratio * ratio if room > 0 else 0.0
            executable = min(quantity, max(0.0, limit_units - consumed))
        if executable <= 0:
            return DepthExecution(0.0, reference_price)
        start = max(consumed, 0.0)
        end = start + executable
        average_impact = (
            k
            * (2.0 / 3.0)
            * (end * math.sqrt(end) - start * math.sqrt(start))
            / (executable * math.sqrt(volume))
        )
        return DepthExecution(executable, reference_price * (1.0 + sign * average_impact))
