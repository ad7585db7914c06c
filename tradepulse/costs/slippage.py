"""Execution-price models: half the quoted spread, fixed slippage, square-root impact.

A market order with reference price ``p`` (the fill bar's open) on side ``s``
(+1 buy, -1 sell) executes at::

    p * (1 + s * (spread_bps / 2 + slippage_bps + impact_bps * sqrt(participation)) / 10_000)

where ``participation = min(|quantity| / volume, 1)`` is the fill's share of the
fill bar's volume (1 when the bar has no volume): costs always move the price
against the order. Each model is a small frozen dataclass, checked when it is
constructed, whose ``repr`` shows its parameters; every model reduces to
:class:`SlippageTerms` (fractions of price), the form the compiled kernels use,
and several models are summed with :func:`combine_slippage`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from tradepulse.costs import _kernels
from tradepulse.errors import ConfigError

__all__ = [
    "BPS",
    "DEFAULT_IMPACT_BPS",
    "DEFAULT_SLIPPAGE_BPS",
    "DEFAULT_SPREAD_BPS",
    "MAX_ADVERSE_FRACTION",
    "FixedSlippage",
    "SlippageModel",
    "SlippageTerms",
    "SpreadSlippage",
    "SquareRootImpact",
    "combine_slippage",
]

#: One basis point as a fraction of price.
BPS: Final = 1e-4
#: Default quoted bid-ask spread, in basis points of price (a market order pays half).
DEFAULT_SPREAD_BPS: Final = 2.0
#: Default fixed adverse slippage per fill, in basis points of price.
DEFAULT_SLIPPAGE_BPS: Final = 1.0
#: Default square-root impact at full participation (the whole bar's volume), in bps.
DEFAULT_IMPACT_BPS: Final = 100.0
#: Upper bound (exclusive) of the summed adverse fraction at full participation: a
#: sell must execute at a positive price.
MAX_ADVERSE_FRACTION: Final = 1.0


def _check_bps(owner: str, field: str, value: float) -> float:
    """Return ``value`` as a float after checking it is finite and in [0, 10,000)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}.{field} must be a number of basis points; got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0.0 or number * BPS >= MAX_ADVERSE_FRACTION:
        raise ConfigError(f"{owner}.{field} must be finite, >= 0 and < 10000 bps; got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class SlippageTerms:
    """Adverse price moves as fractions of price (not bps), summed over models.

    ``half_spread`` and ``slippage`` apply to every fill; ``impact`` is multiplied
    by ``sqrt(min(|quantity| / volume, 1))``.

    Raises:
        ConfigError: a field is negative or not finite, or the three together reach 1
            (a full-participation sell would execute at a price <= 0).
    """

    half_spread: float = 0.0
    slippage: float = 0.0
    impact: float = 0.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in ("half_spread", "slippage", "impact"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name}.{field} must be a number; got {value!r}")
            if not math.isfinite(value) or value < 0.0:
                raise ConfigError(f"{name}.{field} must be finite and >= 0; got {value!r}")
            object.__setattr__(self, field, float(value))
        total = self.half_spread + self.slippage + self.impact
        if total >= MAX_ADVERSE_FRACTION:
            raise ConfigError(f"{name}: half_spread + slippage + impact must be < 1; got {total!r}")

    def execution_price(self, price: float, *, side: int, quantity: float, volume: float) -> float:
        """Return the price, in quote currency, at which a market order executes.

        ``price`` is the reference price (the fill bar's open), ``side`` +1 for a
        buy and -1 for a sell, ``quantity`` the order's size in units (its sign is
        ignored) and ``volume`` the fill bar's volume in units.
        """
        if side not in (1, -1):
            raise ConfigError(f"side must be +1 (buy) or -1 (sell); got {side!r}")
        return float(
            _kernels.execution_price(
                float(price),
                float(side),
                float(quantity),
                float(volume),
                self.half_spread,
                self.slippage,
                self.impact,
            )
        )

    def terms(self) -> SlippageTerms:
        """Return ``self`` (the summed form of every slippage model)."""
        return self


@runtime_checkable
class SlippageModel(Protocol):
    """What an engine needs from an execution-price model: its terms."""

    def terms(self) -> SlippageTerms:
        """Return the model as half-spread, slippage and impact fractions."""
        ...


@dataclass(frozen=True, slots=True)
class SpreadSlippage:
    """Cross half the quoted spread: buy at ``p * (1 + spread/2)``, sell at ``p * (1 - spread/2)``.

    ``spread_bps`` is the full quoted bid-ask spread in basis points of price;
    default `DEFAULT_SPREAD_BPS`.

    Raises:
        ConfigError: ``spread_bps`` is not a finite number in [0, 10,000).
    """

    spread_bps: float = DEFAULT_SPREAD_BPS

    def __post_init__(self) -> None:
        checked = _check_bps(type(self).__name__, "spread_bps", self.spread_bps)
        object.__setattr__(self, "spread_bps", checked)

    def terms(self) -> SlippageTerms:
        """Return half the spread as a fraction of price."""
        return SlippageTerms(half_spread=self.spread_bps * BPS / 2.0)


@dataclass(frozen=True, slots=True)
class FixedSlippage:
    """Move every fill ``slippage_bps`` basis points against the order.

    Default `DEFAULT_SLIPPAGE_BPS`.

    Raises:
        ConfigError: ``slippage_bps`` is not a finite number in [0, 10,000).
    """

    slippage_bps: float = DEFAULT_SLIPPAGE_BPS

    def __post_init__(self) -> None:
        checked = _check_bps(type(self).__name__, "slippage_bps", self.slippage_bps)
        object.__setattr__(self, "slippage_bps", checked)

    def terms(self) -> SlippageTerms:
        """Return the slippage as a fraction of price."""
        return SlippageTerms(slippage=self.slippage_bps * BPS)


@dataclass(frozen=True, slots=True)
class SquareRootImpact:
    """Move a fill ``impact_bps * sqrt(participation)`` basis points against the order.

    ``participation = min(|quantity| / volume, 1)`` is the fill's share of its
    bar's volume (1 on a bar without volume), so ``impact_bps`` is the impact of
    trading the whole bar; default `DEFAULT_IMPACT_BPS`. The vectorised engine
    does not cap fills at the available volume (the event-driven engine does):
    an order larger than its bar pays the full-participation impact.

    Raises:
        ConfigError: ``impact_bps`` is not a finite number in [0, 10,000).
    """

    impact_bps: float = DEFAULT_IMPACT_BPS

    def __post_init__(self) -> None:
        checked = _check_bps(type(self).__name__, "impact_bps", self.impact_bps)
        object.__setattr__(self, "impact_bps", checked)

    def terms(self) -> SlippageTerms:
        """Return the full-participation impact as a fraction of price."""
        return SlippageTerms(impact=self.impact_bps * BPS)


def combine_slippage(slippage: SlippageModel | Iterable[SlippageModel] | None) -> SlippageTerms:
    """Return the summed terms of one model, several models applied together, or ``None``.

    Raises:
        ConfigError: an item is not a slippage model, or the summed adverse fraction
            at full participation reaches 1.
    """
    if slippage is None:
        return SlippageTerms()
    if isinstance(slippage, SlippageModel):
        return slippage.terms()
    if isinstance(slippage, str | bytes) or not isinstance(slippage, Iterable):
        raise ConfigError(f"slippage must be slippage model(s) or None; got {slippage!r}")
    half_spread = fixed = impact = 0.0
    for model in slippage:
        if not isinstance(model, SlippageModel):
            raise ConfigError(f"slippage must hold slippage models; got {model!r}")
        terms = model.terms()
        half_spread += terms.half_spread
        fixed += terms.slippage
        impact += terms.impact
    return SlippageTerms(half_spread=half_spread, slippage=fixed, impact=impact)
