"""An instrument: its symbol and the increments its prices, quantities and cash move in."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradepulse.domain.arithmetic import (
    CASH_ROUNDING,
    DEFAULT_CASH_INCREMENT,
    DEFAULT_PRICE_INCREMENT,
    DEFAULT_QUANTITY_INCREMENT,
    PRICE_ROUNDING,
    QUANTITY_ROUNDING,
    is_multiple_of,
    round_to_increment,
    to_decimal,
)
from tradepulse.errors import ConfigError

__all__ = ["Instrument"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    """A tradable instrument and the grid its numbers live on.

    ``price_increment`` is the tick size (quote currency per unit),
    ``quantity_increment`` the lot size (units), ``cash_increment`` the smallest
    cash amount (quote currency; commissions are rounded to it). The ``*_from_float``
    methods are the only way floats enter the ledger; see
    :mod:`tradepulse.domain.arithmetic` for the policy.

    Raises:
        ConfigError: ``symbol`` is empty or an increment is not a positive finite Decimal.
    """

    symbol: str
    price_increment: Decimal = DEFAULT_PRICE_INCREMENT
    quantity_increment: Decimal = DEFAULT_QUANTITY_INCREMENT
    cash_increment: Decimal = DEFAULT_CASH_INCREMENT

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ConfigError(f"symbol must be a non-empty string, got {self.symbol!r}")
        for name in ("price_increment", "quantity_increment", "cash_increment"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ConfigError(f"{name} must be a positive finite Decimal, got {value!r}")

    def price_from_float(self, value: float) -> Decimal:
        """Return the float price ``value`` on the tick grid (nearest tick, ties to even).

        Raises:
            ValueError: ``value`` is NaN or infinite.
        """
        return round_to_increment(
            to_decimal(value, name="price"), self.price_increment, rounding=PRICE_ROUNDING
        )

    def quantity_from_float(self, value: float) -> Decimal:
        """Return the float quantity ``value`` on the lot grid, rounded toward zero.

        Raises:
            ValueError: ``value`` is NaN or infinite.
        """
        return round_to_increment(
            to_decimal(value, name="quantity"), self.quantity_increment, rounding=QUANTITY_ROUNDING
        )

    def cash_from_float(self, value: float) -> Decimal:
        """Return the float cash amount ``value`` rounded to ``cash_increment`` (ties to even).

        Raises:
            ValueError: ``value`` is NaN or infinite.
        """
        return round_to_increment(
            to_decimal(value, name="cash amount"), self.cash_increment, rounding=CASH_ROUNDING
        )

    def is_valid_price(self, price: Decimal) -> bool:
        """Return whether ``price`` is positive and a multiple of the tick size."""
        return price > 0 and is_multiple_of(price, self.price_increment)

    def is_valid_quantity(self, quantity: Decimal) -> bool:
        """Return whether ``quantity`` is positive and a multiple of the lot size."""
        return quantity > 0 and is_multiple_of(quantity, self.quantity_increment)
