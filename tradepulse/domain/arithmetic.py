"""Exact ledger arithmetic: one decimal context that refuses to round, and the edge policy.

Cash and quantities are :class:`decimal.Decimal`. Inside the ledger they are
only added, subtracted and multiplied under :data:`LEDGER_CONTEXT`, which has
96 significant digits and *traps* :class:`decimal.Inexact`: an operation whose
exact result would need rounding raises instead of silently losing a digit, so
"exact" is enforced, not hoped for.

Floats enter the ledger only at the edge, through :func:`to_decimal` and
:func:`round_to_increment` (wrapped by :class:`~tradepulse.domain.Instrument`'s
``price_from_float`` / ``quantity_from_float`` / ``cash_from_float``). The
quantisation policy:

1. a float becomes the decimal it prints as (``repr``: the shortest decimal that
   round-trips), so ``0.1`` is ``Decimal("0.1")``, not the 55-digit binary value;
2. that decimal is rounded to the instrument's increment: prices and cash
   amounts (commissions) to the nearest increment, ties to even
   (:data:`PRICE_ROUNDING`, :data:`CASH_ROUNDING`); quantities toward zero
   (:data:`QUANTITY_ROUNDING`), so a sized order never exceeds what was asked
   for or what the cash allows.

The default increments (:data:`DEFAULT_PRICE_INCREMENT` and friends, 1e-12)
suit research: quantisation then moves a price of 0.01 or more by less than
5e-11 relative, well inside the 1e-9 parity the float engines are held to. A
live venue's instrument should state its real tick and lot sizes.
"""

from __future__ import annotations

import functools
import math
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Final

__all__ = [
    "CASH_ROUNDING",
    "DEFAULT_CASH_INCREMENT",
    "DEFAULT_PRICE_INCREMENT",
    "DEFAULT_QUANTITY_INCREMENT",
    "LEDGER_CONTEXT",
    "PRICE_ROUNDING",
    "QUANTITY_ROUNDING",
    "ZERO",
    "is_multiple_of",
    "round_to_increment",
    "to_decimal",
]

#: Ledger context: 96 significant digits, and any rounding raises ``decimal.Inexact``.
LEDGER_CONTEXT: Final = Context(
    prec=96,
    rounding=ROUND_HALF_EVEN,
    traps=[Inexact, InvalidOperation, DivisionByZero, Overflow],
)
#: Edge context: the same precision, but rounding (to an increment) is allowed.
_EDGE_CONTEXT: Final = Context(
    prec=96, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)

ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)
#: Default tick size, in quote currency per unit.
DEFAULT_PRICE_INCREMENT: Final = Decimal("1e-12")
#: Default lot size, in units of the instrument.
DEFAULT_QUANTITY_INCREMENT: Final = Decimal("1e-12")
#: Default smallest cash amount (commissions are rounded to it), in quote currency.
DEFAULT_CASH_INCREMENT: Final = Decimal("1e-12")
#: Rounding of prices converted from floats: nearest tick, ties to even.
PRICE_ROUNDING: Final = ROUND_HALF_EVEN
#: Rounding of quantities converted from floats: toward zero (never more than asked).
QUANTITY_ROUNDING: Final = ROUND_DOWN
#: Rounding of cash amounts (commissions) converted from floats: nearest, ties to even.
CASH_ROUNDING: Final = ROUND_HALF_EVEN


def to_decimal(value: float, *, name: str) -> Decimal:
    """Return the decimal that the float ``value`` prints as (its shortest round-trip repr).

    Raises:
        ValueError: ``value`` is NaN or infinite (the message names ``name``).
    """
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return Decimal(repr(float(value)))


@functools.lru_cache(maxsize=64)
def _quantum(increment: Decimal) -> Decimal | None:
    """Return ``increment`` as ``1E-k`` if it is 1, 0.1, 0.01, ...; else None.

    Equal decimals (``0.01`` and ``0.010``) share a cache entry, so the answer
    depends only on the value: the normalised form decides.

    Raises:
        ValueError: ``increment`` is not a positive finite decimal.
    """
    if not increment.is_finite() or increment <= 0:
        raise ValueError(f"increment must be a positive finite Decimal, got {increment}")
    normal = increment.normalize(context=_EDGE_CONTEXT)
    exponent = normal.as_tuple().exponent
    if normal.as_tuple().digits == (1,) and isinstance(exponent, int) and exponent <= 0:
        return normal
    return None


def round_to_increment(value: Decimal, increment: Decimal, *, rounding: str) -> Decimal:
    """Return ``value`` rounded to a multiple of ``increment`` with ``rounding``.

    ``rounding`` is a :mod:`decimal` rounding mode (``ROUND_DOWN``,
    ``ROUND_HALF_EVEN``, ...). Increments 1, 0.1, 0.01, ... use
    :meth:`decimal.Decimal.quantize`; others (``0.25``, ``5``, ``100``) divide
    and multiply exactly.

    Raises:
        ValueError: ``increment`` is not a positive finite decimal.
    """
    quantum = _quantum(increment)
    if quantum is not None:
        exponent = value.as_tuple().exponent
        quantum_exponent = quantum.as_tuple().exponent
        if (
            isinstance(exponent, int)
            and isinstance(quantum_exponent, int)
            and exponent >= quantum_exponent
        ):
            return value  # already on the grid: keep its (shorter) coefficient
        return value.quantize(quantum, rounding=rounding, context=_EDGE_CONTEXT)
    steps = _EDGE_CONTEXT.divide(value, increment).quantize(
        Decimal(1), rounding=rounding, context=_EDGE_CONTEXT
    )
    product = LEDGER_CONTEXT.multiply(steps, increment)
    exponent = product.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        product = product.quantize(_ONE, context=LEDGER_CONTEXT)  # 1.23E+4 -> 12300, exact
    return product


def is_multiple_of(value: Decimal, increment: Decimal) -> bool:
    """Return whether ``value`` is an exact multiple of the positive ``increment``."""
    quantum = _quantum(increment)
    if quantum is not None and value.is_finite():
        # 1E-k: a decimal written with at most k places is a multiple (no division:
        # ``remainder`` at 96 digits costs tens of microseconds).
        exponent = value.as_tuple().exponent
        quantum_exponent = quantum.as_tuple().exponent
        if (
            isinstance(exponent, int)
            and isinstance(quantum_exponent, int)
            and exponent >= quantum_exponent
        ):
            return True
    return _EDGE_CONTEXT.remainder(value, increment).is_zero()
