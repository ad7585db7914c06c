"""Commission models: a fraction of traded notional, a fee per unit, a fee per fill.

Each model is a small frozen dataclass, checked when it is constructed, whose
``repr`` shows its parameters. Every model reduces to :class:`CommissionTerms`
(``rate``, ``per_unit``, ``per_fill``), the linear form the engines' compiled
kernels use; several models charged together are summed with
:func:`combine_commissions`. The engines own the loop: a model only prices a fill.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from tradepulse.costs import _kernels
from tradepulse.errors import ConfigError

__all__ = [
    "DEFAULT_COMMISSION_PER_FILL",
    "DEFAULT_COMMISSION_PER_UNIT",
    "DEFAULT_COMMISSION_RATE",
    "MAX_COMMISSION_RATE",
    "CommissionModel",
    "CommissionTerms",
    "FixedCommission",
    "NotionalCommission",
    "PerUnitCommission",
    "combine_commissions",
]

#: Default commission as a fraction of traded notional (0.001 = 10 bps).
DEFAULT_COMMISSION_RATE: Final = 0.001
#: Default commission per unit traded, in quote currency per unit.
DEFAULT_COMMISSION_PER_UNIT: Final = 0.005
#: Default commission per fill, in quote currency.
DEFAULT_COMMISSION_PER_FILL: Final = 1.0
#: Largest accepted notional rate (exclusive): a fee of 100% of notional or more is a typo.
MAX_COMMISSION_RATE: Final = 1.0


def _check_fee(owner: str, field: str, value: float, *, upper: float = math.inf) -> float:
    """Return ``value`` as a float after checking 0 <= value < upper (finite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{owner}.{field} must be a number; got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0.0 or number >= upper:
        bound = f" and < {upper:g}" if math.isfinite(upper) else ""
        raise ConfigError(f"{owner}.{field} must be finite, >= 0{bound}; got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class CommissionTerms:
    """A linear commission: ``rate * |q| * price + per_unit * |q| + per_fill`` per fill.

    ``rate`` is a fraction of traded notional, ``per_unit`` in quote currency per
    unit, ``per_fill`` in quote currency per fill (charged only when ``q != 0``).

    Raises:
        ConfigError: a field is not a finite number >= 0, or ``rate >= 1``.
    """

    rate: float = 0.0
    per_unit: float = 0.0
    per_fill: float = 0.0

    def __post_init__(self) -> None:
        name = type(self).__name__
        object.__setattr__(
            self, "rate", _check_fee(name, "rate", self.rate, upper=MAX_COMMISSION_RATE)
        )
        object.__setattr__(self, "per_unit", _check_fee(name, "per_unit", self.per_unit))
        object.__setattr__(self, "per_fill", _check_fee(name, "per_fill", self.per_fill))

    def commission(self, *, quantity: float, price: float) -> float:
        """Return the commission, in quote currency, of a fill of ``quantity`` at ``price``."""
        return float(
            _kernels.commission(
                float(quantity), float(price), self.rate, self.per_unit, self.per_fill
            )
        )

    def terms(self) -> CommissionTerms:
        """Return ``self`` (the linear form of every commission model)."""
        return self


@runtime_checkable
class CommissionModel(Protocol):
    """What an engine needs from a commission model: its linear terms."""

    def commission(self, *, quantity: float, price: float) -> float:
        """Return the commission, in quote currency, of a fill of ``quantity`` at ``price``."""
        ...

    def terms(self) -> CommissionTerms:
        """Return the model as rate, per-unit and per-fill terms."""
        ...


@dataclass(frozen=True, slots=True)
class NotionalCommission:
    """Charge ``rate`` times the traded notional ``|quantity| * price`` on every fill.

    ``rate`` is a fraction (0.001 = 10 bps); default `DEFAULT_COMMISSION_RATE`.

    Raises:
        ConfigError: ``rate`` is not a finite number in [0, 1).
    """

    rate: float = DEFAULT_COMMISSION_RATE

    def __post_init__(self) -> None:
        checked = _check_fee(type(self).__name__, "rate", self.rate, upper=MAX_COMMISSION_RATE)
        object.__setattr__(self, "rate", checked)

    def commission(self, *, quantity: float, price: float) -> float:
        """Return ``rate * |quantity| * price``, in quote currency."""
        return abs(quantity) * price * self.rate

    def terms(self) -> CommissionTerms:
        """Return ``CommissionTerms(rate=rate)``."""
        return CommissionTerms(rate=self.rate)


@dataclass(frozen=True, slots=True)
class PerUnitCommission:
    """Charge ``per_unit`` (quote currency per unit) times ``|quantity|`` on every fill.

    Default `DEFAULT_COMMISSION_PER_UNIT`.

    Raises:
        ConfigError: ``per_unit`` is not a finite number >= 0.
    """

    per_unit: float = DEFAULT_COMMISSION_PER_UNIT

    def __post_init__(self) -> None:
        checked = _check_fee(type(self).__name__, "per_unit", self.per_unit)
        object.__setattr__(self, "per_unit", checked)

    def commission(self, *, quantity: float, price: float) -> float:
        """Return ``per_unit * |quantity|``, in quote currency (``price`` is unused)."""
        return abs(quantity) * self.per_unit

    def terms(self) -> CommissionTerms:
        """Return ``CommissionTerms(per_unit=per_unit)``."""
        return CommissionTerms(per_unit=self.per_unit)


@dataclass(frozen=True, slots=True)
class FixedCommission:
    """Charge ``per_fill`` (quote currency) on every fill, whatever its size.

    Default `DEFAULT_COMMISSION_PER_FILL`.

    Raises:
        ConfigError: ``per_fill`` is not a finite number >= 0.
    """

    per_fill: float = DEFAULT_COMMISSION_PER_FILL

    def __post_init__(self) -> None:
        checked = _check_fee(type(self).__name__, "per_fill", self.per_fill)
        object.__setattr__(self, "per_fill", checked)

    def commission(self, *, quantity: float, price: float) -> float:
        """Return ``per_fill`` for a non-zero ``quantity``, else 0 (quote currency)."""
        return self.per_fill if quantity != 0.0 else 0.0

    def terms(self) -> CommissionTerms:
        """Return ``CommissionTerms(per_fill=per_fill)``."""
        return CommissionTerms(per_fill=self.per_fill)


def combine_commissions(
    commission: float | CommissionModel | Iterable[CommissionModel] | None,
) -> CommissionTerms:
    """Return the summed linear terms of ``commission``.

    ``commission`` is a fraction of notional (a number, as in ``--commission
    0.001``), one model, several models charged together, or ``None`` (no
    commission).

    Raises:
        ConfigError: a number is not in [0, 1), an item is not a commission model,
            or the summed rate reaches 1.
    """
    if commission is None:
        return CommissionTerms()
    if isinstance(commission, bool):
        raise ConfigError(f"commission must be a number or commission model(s); got {commission!r}")
    if isinstance(commission, int | float):
        return CommissionTerms(rate=_check_fee("commission", "rate", commission, upper=1.0))
    if isinstance(commission, CommissionModel):
        models: list[object] = [commission]
    elif isinstance(commission, str | bytes) or not isinstance(commission, Iterable):
        raise ConfigError(f"commission must be a number or commission model(s); got {commission!r}")
    else:
        models = list(commission)
    rate = per_unit = per_fill = 0.0
    for model in models:
        if not isinstance(model, CommissionModel):
            raise ConfigError(f"commission must hold commission models; got {model!r}")
        terms = model.terms()
        rate += terms.rate
        per_unit += terms.per_unit
        per_fill += terms.per_fill
    return CommissionTerms(rate=rate, per_unit=per_unit, per_fill=per_fill)
