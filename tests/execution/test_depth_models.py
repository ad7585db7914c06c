"""Depth models against independent references: unit-by-unit book walks and quadrature."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from tradepulse.domain import Side
from tradepulse.errors import ConfigError
from tradepulse.execution import (
    ConstantDepth,
    DepthExecution,
    SquareRootImpactDepth,
    VolumeProportionalDepth,
)


def walk_unit_by_unit(
    *,
    sign: int,
    quantity: int,
    reference: float,
    worst: float | None,
    level_size: int,
    spacing_bps: float,
    levels: int,
    consumed: int,
) -> tuple[int, float]:
    """Reference: take whole units one at a time; unit u sits on level u // level_size."""
    prices: list[float] = []
    unit = consumed
    while len(prices) < quantity:
        level = unit // level_size
        price = reference * (1 + sign * level * spacing_bps * 1e-4)
        if level >= levels or (worst is not None and sign * (price - worst) > 0):
            break
        prices.append(price)
        unit += 1
    return len(prices), (sum(prices) / len(prices) if prices else reference)


@settings(deadline=None, max_examples=200)
@given(
    side=st.sampled_from(list(Side)),
    quantity=st.integers(1, 60),
    level_size=st.integers(1, 10),
    spacing_bps=st.sampled_from([0.0, 1.0, 25.0, 100.0]),
    levels=st.integers(1, 6),
    consumed=st.integers(0, 30),
    worst_levels=st.one_of(st.none(), st.integers(0, 7)),
)
def test_constant_depth_matches_a_unit_by_unit_walk(
    side: Side,
    quantity: int,
    level_size: int,
    spacing_bps: float,
    levels: int,
    consumed: int,
    worst_levels: int | None,
) -> None:
    reference = 100.0
    # A worst price halfway between levels avoids ties decided by float rounding.
    worst = None
    if worst_levels is not None:
        worst = reference * (1 + side.sign * (worst_levels + 0.5) * spacing_bps * 1e-4)
    model = ConstantDepth(
        quantity_per_level=float(level_size), level_spacing_bps=spacing_bps, levels=levels
    )

    got = model.execute(
        side=side,
        quantity=float(quantity),
        reference_price=reference,
        worst_price=worst,
        volume=0.0,
        consumed=float(consumed),
    )

    units, average = walk_unit_by_unit(
        sign=side.sign,
        quantity=quantity,
        reference=reference,
        worst=worst,
        level_size=level_size,
        spacing_bps=spacing_bps,
        levels=levels,
        consumed=consumed,
    )
    assert got.quantity == units
    assert math.isclose(got.price, average, rel_tol=1e-12)


def test_volume_proportional_depth_is_constant_depth_sized_by_volume() -> None:
    model = VolumeProportionalDepth(fraction_per_level=0.02, level_spacing_bps=10.0, levels=4)
    same = ConstantDepth(quantity_per_level=0.02 * 500.0, level_spacing_bps=10.0, levels=4)
    arguments = {
        "side": Side.SELL,
        "quantity": 27.0,
        "reference_price": 50.0,
        "worst_price": None,
        "volume": 500.0,
        "consumed": 3.0,
    }

    assert model.execute(**arguments) == same.execute(**arguments)  # type: ignore[arg-type]


def test_volume_proportional_depth_without_volume_is_empty() -> None:
    model = VolumeProportionalDepth(fraction_per_level=0.1)

    got = model.execute(
        side=Side.BUY,
        quantity=5.0,
        reference_price=10.0,
        worst_price=None,
        volume=0.0,
        consumed=0.0,
    )

    assert got == DepthExecution(0.0, 10.0)


@settings(deadline=None, max_examples=100)
@given(
    side=st.sampled_from(list(Side)),
    quantity=st.floats(0.1, 500.0),
    coefficient=st.floats(0.001, 0.5),
    volume=st.floats(10.0, 10_000.0),
    consumed=st.floats(0.0, 200.0),
)
def test_square_root_impact_average_is_the_integral_of_the_marginal_price(
    side: Side, quantity: float, coefficient: float, volume: float, consumed: float
) -> None:
    reference = 100.0
    model = SquareRootImpactDepth(coefficient=coefficient)

    got = model.execute(
        side=side,
        quantity=quantity,
        reference_price=reference,
        worst_price=None,
        volume=volume,
        consumed=consumed,
    )

    def marginal(units: float) -> float:
        return reference * (1 + side.sign * coefficient * math.sqrt(units / volume))

    # A sell stops where the marginal price would reach zero: u = volume / coefficient**2.
    expected = quantity
    if side is Side.SELL:
        expected = min(quantity, max(0.0, volume / coefficient**2 - consumed))
    assert math.isclose(got.quantity, expected, rel_tol=1e-12, abs_tol=1e-9)
    if expected > 0:
        integral, _ = integrate.quad(
            marginal, consumed, consumed + got.quantity, epsabs=0, epsrel=1e-10
        )
        assert math.isclose(got.price, integral / got.quantity, rel_tol=1e-9)
        assert got.price > 0


@pytest.mark.parametrize("side", list(Side))
def test_square_root_impact_stops_where_the_marginal_price_reaches_the_worst(side: Side) -> None:
    reference, coefficient, volume = 100.0, 0.1, 400.0
    worst = reference * (1 + side.sign * 0.01)
    model = SquareRootImpactDepth(coefficient=coefficient)

    got = model.execute(
        side=side,
        quantity=1_000.0,
        reference_price=reference,
        worst_price=worst,
        volume=volume,
        consumed=0.0,
    )

    # Marginal price reaches worst when coefficient * sqrt(u / volume) = 0.01: u = 4.
    assert math.isclose(got.quantity, 4.0, rel_tol=1e-12)
    assert side.sign * (got.price - worst) <= 0


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (SquareRootImpactDepth(coefficient=0.0), DepthExecution(3.0, 10.0)),  # no impact
    ],
)
def test_square_root_degenerate_cases(model: SquareRootImpactDepth, expected: object) -> None:
    got = model.execute(
        side=Side.BUY,
        quantity=3.0,
        reference_price=10.0,
        worst_price=None,
        volume=0.0,
        consumed=0.0,
    )

    assert got == expected


def test_square_root_with_a_vanishing_coefficient_has_no_cap() -> None:
    # (room / coefficient) ** 2 would overflow a float; the cap is then infinite.
    model = SquareRootImpactDepth(coefficient=1e-300)

    got = model.execute(
        side=Side.BUY,
        quantity=3.0,
        reference_price=90.0,
        worst_price=90.01,
        volume=1.0,
        consumed=3.0,
    )

    assert got == DepthExecution(3.0, 90.0)


def test_square_root_without_volume_or_room_fills_nothing() -> None:
    model = SquareRootImpactDepth(coefficient=0.1)
    common = {"side": Side.BUY, "reference_price": 10.0, "consumed": 0.0}

    no_volume = model.execute(quantity=3.0, worst_price=None, volume=0.0, **common)  # type: ignore[arg-type]
    no_room = model.execute(quantity=3.0, worst_price=9.0, volume=100.0, **common)  # type: ignore[arg-type]
    nothing = model.execute(quantity=0.0, worst_price=None, volume=100.0, **common)  # type: ignore[arg-type]

    assert (no_volume.quantity, no_room.quantity, nothing.quantity) == (0.0, 0.0, 0.0)


def test_constant_depth_with_nothing_to_take() -> None:
    model = ConstantDepth(quantity_per_level=2.0, levels=2)

    exhausted = model.execute(
        side=Side.BUY,
        quantity=1.0,
        reference_price=10.0,
        worst_price=None,
        volume=0.0,
        consumed=4.0,
    )

    assert exhausted == DepthExecution(0.0, 10.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantDepth(quantity_per_level=0.0), "quantity_per_level"),
        (lambda: ConstantDepth(quantity_per_level=1.0, levels=0), "levels"),
        (lambda: ConstantDepth(quantity_per_level=1.0, level_spacing_bps=-1.0), "spacing"),
        (lambda: VolumeProportionalDepth(fraction_per_level=math.nan), "fraction_per_level"),
        (lambda: VolumeProportionalDepth(fraction_per_level=0.1, levels=True), "levels"),
        (lambda: SquareRootImpactDepth(coefficient=-0.1), "coefficient"),
        (lambda: SquareRootImpactDepth(coefficient=True), "coefficient"),
    ],
)
def test_depth_models_check_their_parameters(build: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()  # type: ignore[operator]


def test_depth_models_show_their_parameters() -> None:
    assert repr(ConstantDepth(quantity_per_level=5.0)) == (
        "ConstantDepth(quantity_per_level=5.0, level_spacing_bps=1.0, levels=10)"
    )
    assert "coefficient=0.1" in repr(SquareRootImpactDepth(coefficient=0.1))
