"""The ledger context and the float-to-decimal edge policy."""

from __future__ import annotations

import decimal
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.domain import LEDGER_CONTEXT, Instrument
from tradepulse.domain.arithmetic import is_multiple_of, round_to_increment, to_decimal
from tradepulse.errors import ConfigError

INCREMENTS = [
    Decimal("1e-12"),
    Decimal("0.01"),
    Decimal("0.25"),
    Decimal(1),
    Decimal(5),
    Decimal(100),
]


def test_a_float_becomes_the_decimal_it_prints_as() -> None:
    assert to_decimal(0.1, name="x") == Decimal("0.1")
    assert to_decimal(0.1 + 0.2, name="x") == Decimal("0.30000000000000004")
    assert to_decimal(3, name="x") == Decimal(3)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="price must be finite"):
        to_decimal(value, name="price")


@settings(deadline=None, max_examples=300)
@given(
    value=st.decimals(min_value=-(10**6), max_value=10**6, places=14, allow_nan=False),
    increment=st.sampled_from(INCREMENTS),
    rounding=st.sampled_from([ROUND_DOWN, ROUND_HALF_EVEN]),
)
def test_round_to_increment_agrees_with_exact_rational_rounding(
    value: Decimal, increment: Decimal, rounding: str
) -> None:
    # Reference: exact rationals. Toward zero truncates; half-even rounds ties to even.
    steps = Fraction(value) / Fraction(increment)
    # int() truncates toward zero; round() takes Fractions half to even.
    expected_steps = int(steps) if rounding == ROUND_DOWN else round(steps)

    got = round_to_increment(value, increment, rounding=rounding)

    assert Fraction(got) == expected_steps * Fraction(increment)
    assert is_multiple_of(got, increment)


def test_equal_increments_round_alike_and_large_lots_print_plainly() -> None:
    value = Decimal("12345.678")

    assert round_to_increment(value, Decimal("0.01"), rounding=ROUND_DOWN) == Decimal("12345.67")
    assert str(round_to_increment(value, Decimal("0.010"), rounding=ROUND_DOWN)) == "12345.67"
    assert str(round_to_increment(value, Decimal("1E+2"), rounding=ROUND_DOWN)) == "12300"
    assert str(round_to_increment(value, Decimal(100), rounding=ROUND_DOWN)) == "12300"


@pytest.mark.parametrize("increment", [Decimal(0), Decimal(-1), Decimal("Infinity")])
def test_round_to_increment_needs_a_positive_increment(increment: Decimal) -> None:
    with pytest.raises(ValueError, match="increment must be a positive finite Decimal"):
        round_to_increment(Decimal(1), increment, rounding=ROUND_DOWN)


def test_the_ledger_context_raises_instead_of_rounding() -> None:
    big, other = Decimal("1" * 60), Decimal("1" * 59 + "3")

    with pytest.raises(decimal.Inexact):
        LEDGER_CONTEXT.divide(Decimal(1), Decimal(3))
    with pytest.raises(decimal.Inexact):
        LEDGER_CONTEXT.multiply(big, other)  # 120 significant digits > 96
    assert LEDGER_CONTEXT.multiply(Decimal("0.1"), Decimal("0.2")) == Decimal("0.02")


def test_instrument_quantisation_policy() -> None:
    instrument = Instrument(
        symbol="X",
        price_increment=Decimal("0.01"),
        quantity_increment=Decimal("0.01"),
        cash_increment=Decimal("0.01"),
    )

    assert instrument.price_from_float(100.005) == Decimal("100.00")  # tie to even
    assert instrument.price_from_float(100.015) == Decimal("100.02")
    assert instrument.quantity_from_float(2.999) == Decimal("2.99")  # toward zero
    assert instrument.quantity_from_float(-2.999) == Decimal("-2.99")
    assert instrument.cash_from_float(0.30111) == Decimal("0.30")
    assert instrument.quantity_from_float(0.3) == Decimal("0.30")  # not 0.29 (binary 0.2999...)


def test_instrument_with_a_quarter_tick() -> None:
    instrument = Instrument(symbol="ES", price_increment=Decimal("0.25"))

    assert instrument.price_from_float(10.13) == Decimal("10.25")
    assert instrument.price_from_float(10.12) == Decimal("10.00")
    assert instrument.is_valid_price(Decimal("10.75"))
    assert not instrument.is_valid_price(Decimal("10.1"))
    assert not instrument.is_valid_price(Decimal(0))
    assert instrument.is_valid_quantity(Decimal("1e-12"))
    assert not instrument.is_valid_quantity(Decimal("-1"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": ""}, "symbol"),
        ({"symbol": "X", "price_increment": Decimal(0)}, "price_increment"),
        ({"symbol": "X", "quantity_increment": 0.01}, "quantity_increment"),
        ({"symbol": "X", "cash_increment": Decimal("NaN")}, "cash_increment"),
    ],
)
def test_instrument_is_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Instrument(**kwargs)  # type: ignore[arg-type]
