"""Sizing a move to a target position: the fills both backtest engines make.

A target is a signed fraction of equity (+1 all-in long, -1 all-in short, 0
flat). Moving to it takes at most two fills at the same reference price (the
fill bar's open): the first closes a position on the other side (or any position
when the target is 0); the second opens or adjusts a position on the target's
side so that, after the fill, ``|units| * m = |target| * equity``, where ``m`` is
the reference price moved against the trade by half the spread and the fixed
slippage, and equity has paid the fill's commission and impact. From flat with a
notional commission rate ``fee`` and no other friction that is exactly
``units = |target| * cash / (price * (1 + |target| * fee))``, so an all-in
target buys ``cash / (price * (1 + fee))`` units. Sizing ``"whole"`` floors the
resulting position to whole units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from tradepulse.costs import _kernels
from tradepulse.costs.commission import CommissionTerms
from tradepulse.costs.slippage import SlippageTerms
from tradepulse.errors import ConfigError

__all__ = ["SIZINGS", "Sizing", "TargetFills", "check_sizing", "plan_target_fills"]

#: How a position's units are sized: any real number, or floored to whole units.
Sizing = Literal["fractional", "whole"]
#: The accepted `Sizing` values.
SIZINGS: Final[tuple[Sizing, ...]] = ("fractional", "whole")


@dataclass(frozen=True, slots=True)
class TargetFills:
    """Signed quantities, in units, of the fills that move a position to a target.

    ``closing`` closes a position on the other side (0 when there is none);
    ``opening`` opens or adjusts the position on the target's side (0 when nothing
    is to trade). Positive buys, negative sells.
    """

    closing: float
    opening: float


def check_sizing(sizing: str) -> bool:
    """Return ``True`` for ``"whole"``, ``False`` for ``"fractional"``.

    Raises:
        ConfigError: ``sizing`` is neither.
    """
    if sizing not in SIZINGS:
        raise ConfigError(f"sizing must be one of {', '.join(SIZINGS)}; got {sizing!r}")
    return sizing == "whole"


def plan_target_fills(
    *,
    position: float,
    cash: float,
    price: float,
    volume: float,
    target: float,
    commission: CommissionTerms,
    slippage: SlippageTerms,
    sizing: Sizing = "fractional",
) -> TargetFills:
    """Return the fills that move ``position`` (units) to ``target`` (fraction of equity).

    ``cash`` and ``price`` are in quote currency (``price`` is the reference price
    of the fill, the fill bar's open), ``volume`` the fill bar's volume in units.
    The second fill is sized with the cash the first leaves (see the module
    docstring); both engines use exactly this arithmetic.

    Raises:
        ConfigError: ``price`` is not finite and > 0, ``volume`` is negative or not
            finite, ``target`` is not finite in [-1, 1], ``cash`` or ``position`` is
            not finite, or ``sizing`` is unknown.
    """
    whole = check_sizing(sizing)
    checks = {
        "position": (position, False),
        "cash": (cash, False),
        "price": (price, True),
        "volume": (volume, False),
        "target": (target, False),
    }
    for name, (value, positive) in checks.items():
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be finite; got {value!r}")
        if positive and number <= 0.0:
            raise ConfigError(f"{name} must be > 0; got {value!r}")
    if float(volume) < 0.0:
        raise ConfigError(f"volume must be >= 0; got {volume!r}")
    if not -1.0 <= float(target) <= 1.0:
        raise ConfigError(f"target must be in [-1, 1]; got {target!r}")
    closing, opening = _kernels.target_legs(
        float(position),
        float(cash),
        float(price),
        float(volume),
        float(target),
        commission.rate,
        commission.per_unit,
        commission.per_fill,
        slippage.half_spread,
        slippage.slippage,
        slippage.impact,
        whole,
    )
    return TargetFills(closing=float(closing), opening=float(opening))
