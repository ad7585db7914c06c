"""Cost models and target sizing: checked construction, the pricing formulas, sizing identities.

Expected values are the formulas of ``docs/backtesting.md`` evaluated by hand in
plain Python; the sizing tests check the defining identity ``|units| * m =
|target| * equity'`` on the state after the fills rather than a number.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.costs import (
    DEFAULT_COMMISSION_PER_FILL,
    DEFAULT_COMMISSION_PER_UNIT,
    DEFAULT_COMMISSION_RATE,
    DEFAULT_IMPACT_BPS,
    DEFAULT_SLIPPAGE_BPS,
    DEFAULT_SPREAD_BPS,
    CommissionTerms,
    FixedCommission,
    FixedSlippage,
    NotionalCommission,
    PerUnitCommission,
    SlippageTerms,
    SpreadSlippage,
    SquareRootImpact,
    TargetFills,
    _kernels,
    combine_commissions,
    combine_slippage,
    plan_target_fills,
)
from tradepulse.errors import ConfigError

# ---------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (NotionalCommission, "rate"),
        (PerUnitCommission, "per_unit"),
        (FixedCommission, "per_fill"),
        (SpreadSlippage, "spread_bps"),
        (FixedSlippage, "slippage_bps"),
        (SquareRootImpact, "impact_bps"),
    ],
)
@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf, "1", True, None])
def test_a_bad_parameter_is_named_with_its_value(model: type, field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"{model.__name__}\.{field} must be .*got {value!r}"):
        model(**{field: value})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: NotionalCommission(rate=1.0), r"rate must be finite, >= 0 and < 1; got 1\.0"),
        (lambda: SpreadSlippage(spread_bps=10_000), r"spread_bps .* < 10000 bps; got 10000"),
        (lambda: CommissionTerms(per_unit=-1.0), r"CommissionTerms\.per_unit"),
        (lambda: SlippageTerms(impact=-0.1), r"SlippageTerms\.impact must be finite and >= 0"),
        (lambda: SlippageTerms(impact="x"), r"SlippageTerms\.impact must be a number"),  # type: ignore[arg-type]
        (
            lambda: SlippageTerms(half_spread=0.5, slippage=0.3, impact=0.2),
            r"half_spread \+ slippage \+ impact must be < 1",
        ),
    ],
)
def test_out_of_range_values_are_refused(build: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()  # type: ignore[operator]


def test_defaults_and_repr_show_the_parameters() -> None:
    assert repr(NotionalCommission()) == f"NotionalCommission(rate={DEFAULT_COMMISSION_RATE})"
    assert repr(PerUnitCommission()) == f"PerUnitCommission(per_unit={DEFAULT_COMMISSION_PER_UNIT})"
    assert repr(FixedCommission()) == f"FixedCommission(per_fill={DEFAULT_COMMISSION_PER_FILL})"
    assert repr(SpreadSlippage()) == f"SpreadSlippage(spread_bps={DEFAULT_SPREAD_BPS})"
    assert repr(FixedSlippage()) == f"FixedSlippage(slippage_bps={DEFAULT_SLIPPAGE_BPS})"
    assert repr(SquareRootImpact()) == f"SquareRootImpact(impact_bps={DEFAULT_IMPACT_BPS})"
    assert repr(NotionalCommission(rate=2e-4)) == "NotionalCommission(rate=0.0002)"


def test_models_are_frozen_and_integers_become_floats() -> None:
    model = FixedCommission(per_fill=2)

    assert isinstance(model.per_fill, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.per_fill = 3.0  # type: ignore[misc]


# ------------------------------------------------------------------------ commission


def test_commission_models_price_a_fill() -> None:
    assert NotionalCommission(0.001).commission(quantity=-50.0, price=20.0) == pytest.approx(1.0)
    assert PerUnitCommission(0.01).commission(quantity=-50.0, price=20.0) == pytest.approx(0.5)
    assert FixedCommission(2.0).commission(quantity=3.0, price=20.0) == 2.0
    assert FixedCommission(2.0).commission(quantity=0.0, price=20.0) == 0.0


def test_commission_terms_sum_the_models() -> None:
    models = [NotionalCommission(0.001), PerUnitCommission(0.01), FixedCommission(2.0)]

    terms = combine_commissions(models)

    assert terms == CommissionTerms(rate=0.001, per_unit=0.01, per_fill=2.0)
    expected = sum(m.commission(quantity=-50.0, price=20.0) for m in models)
    assert terms.commission(quantity=-50.0, price=20.0) == pytest.approx(expected, rel=1e-15)
    assert terms.commission(quantity=0.0, price=20.0) == 0.0
    assert terms.terms() is terms


@pytest.mark.parametrize(
    ("commission", "expected"),
    [
        (None, CommissionTerms()),
        (0.002, CommissionTerms(rate=0.002)),
        (0, CommissionTerms()),
        (NotionalCommission(0.003), CommissionTerms(rate=0.003)),
        ((FixedCommission(1.0), FixedCommission(0.5)), CommissionTerms(per_fill=1.5)),
    ],
)
def test_combine_commissions_accepts_every_form(
    commission: object, expected: CommissionTerms
) -> None:
    assert combine_commissions(commission) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("commission", "message"),
    [
        (True, r"commission must be a number or commission model\(s\); got True"),
        ("0.1", r"got '0\.1'"),
        (object(), r"commission must be a number or commission model"),
        ([NotionalCommission(), 0.1], r"commission must hold commission models; got 0\.1"),
        (1.5, r"commission\.rate must be finite, >= 0 and < 1; got 1\.5"),
    ],
)
def test_combine_commissions_refuses_other_things(commission: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        combine_commissions(commission)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- slippage


def test_execution_price_moves_against_the_order() -> None:
    terms = combine_slippage([SpreadSlippage(4.0), FixedSlippage(1.0), SquareRootImpact(100.0)])

    buy = terms.execution_price(50.0, side=1, quantity=250.0, volume=1_000.0)
    sell = terms.execution_price(50.0, side=-1, quantity=-250.0, volume=1_000.0)

    adverse = 2e-4 + 1e-4 + 1e-2 * math.sqrt(0.25)
    assert buy == pytest.approx(50.0 * (1 + adverse), rel=1e-15)
    assert sell == pytest.approx(50.0 * (1 - adverse), rel=1e-15)


@pytest.mark.parametrize(("quantity", "volume"), [(2_000.0, 1_000.0), (5.0, 0.0)])
def test_participation_is_capped_at_the_whole_bar(quantity: float, volume: float) -> None:
    terms = SquareRootImpact(100.0).terms()

    price = terms.execution_price(10.0, side=1, quantity=quantity, volume=volume)

    assert price == pytest.approx(10.0 * 1.01, rel=1e-15)


def test_no_friction_keeps_the_price_exactly() -> None:
    assert SlippageTerms().execution_price(123.456, side=-1, quantity=7.0, volume=0.0) == 123.456


def test_execution_price_needs_a_side() -> None:
    with pytest.raises(ConfigError, match="side must be"):
        SlippageTerms().execution_price(1.0, side=0, quantity=1.0, volume=1.0)


@pytest.mark.parametrize(
    ("slippage", "expected"),
    [
        (None, SlippageTerms()),
        (SpreadSlippage(10.0), SlippageTerms(half_spread=5e-4)),
        ([FixedSlippage(1.0), FixedSlippage(2.0)], SlippageTerms(slippage=3e-4)),
    ],
)
def test_combine_slippage_accepts_every_form(slippage: object, expected: SlippageTerms) -> None:
    combined = combine_slippage(slippage)  # type: ignore[arg-type]

    assert combined.half_spread == pytest.approx(expected.half_spread, rel=1e-15)
    assert combined.slippage == pytest.approx(expected.slippage, rel=1e-15)
    assert combined.impact == expected.impact
    assert combined.terms() is combined


@pytest.mark.parametrize(
    ("slippage", "message"),
    [
        (2.0, r"slippage must be slippage model\(s\) or None; got 2\.0"),
        ("spread", r"got 'spread'"),
        ([SpreadSlippage(), "x"], r"slippage must hold slippage models; got 'x'"),
        ([SquareRootImpact(6_000.0), SquareRootImpact(5_000.0)], r"must be < 1"),
    ],
)
def test_combine_slippage_refuses_other_things(slippage: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        combine_slippage(slippage)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- sizing

NO_SLIPPAGE = SlippageTerms()


def test_all_in_from_flat_is_cash_over_price_times_one_plus_fee() -> None:
    plan = plan_target_fills(
        position=0.0,
        cash=10_000.0,
        price=102.0,
        volume=1_000.0,
        target=1.0,
        commission=CommissionTerms(rate=0.001),
        slippage=NO_SLIPPAGE,
    )

    assert plan == TargetFills(closing=0.0, opening=10_000.0 / (102.0 * (1 + 0.001)))


def test_whole_sizing_floors_the_position() -> None:
    plan = plan_target_fills(
        position=0.0,
        cash=10_000.0,
        price=102.0,
        volume=1_000.0,
        target=-1.0,
        commission=CommissionTerms(rate=0.001),
        slippage=NO_SLIPPAGE,
        sizing="whole",
    )

    assert plan.opening == -math.floor(10_000.0 / (102.0 * 1.001)) == -97.0


def test_a_reversal_closes_first_and_sizes_on_the_cash_left() -> None:
    fee = 0.002
    plan = plan_target_fills(
        position=50.0,
        cash=100.0,
        price=200.0,
        volume=0.0,
        target=-1.0,
        commission=CommissionTerms(rate=fee),
        slippage=NO_SLIPPAGE,
    )

    cash_after_close = 100.0 + 50.0 * 200.0 - 50.0 * 200.0 * fee
    assert plan.closing == -50.0
    assert plan.opening == pytest.approx(-cash_after_close / (200.0 * (1 + fee)), rel=1e-15)


def test_a_flat_target_only_closes() -> None:
    plan = plan_target_fills(
        position=-3.0,
        cash=1_000.0,
        price=10.0,
        volume=5.0,
        target=0.0,
        commission=CommissionTerms(),
        slippage=NO_SLIPPAGE,
    )

    assert plan == TargetFills(closing=3.0, opening=0.0)


def test_nothing_to_trade_when_the_position_is_on_target() -> None:
    plan = plan_target_fills(
        position=50.0,
        cash=5_000.0,
        price=100.0,
        volume=1.0,
        target=0.5,
        commission=CommissionTerms(),
        slippage=NO_SLIPPAGE,
    )

    assert plan == TargetFills(closing=0.0, opening=0.0)


def test_no_equity_left_means_no_new_position() -> None:
    plan = plan_target_fills(
        position=0.0,
        cash=0.5,
        price=100.0,
        volume=1.0,
        target=1.0,
        commission=CommissionTerms(per_fill=1.0),
        slippage=NO_SLIPPAGE,
    )

    assert plan.opening == 0.0


def test_costs_that_eat_the_whole_reduction_sell_everything() -> None:
    # Per-unit fees above the price: any reduction costs more than it frees.
    plan = plan_target_fills(
        position=10.0,
        cash=0.0,
        price=1.0,
        volume=100.0,
        target=0.5,
        commission=CommissionTerms(per_unit=3.0),
        slippage=NO_SLIPPAGE,
    )

    assert plan.opening == -10.0


def after_fills(
    plan: TargetFills,
    *,
    position: float,
    cash: float,
    price: float,
    volume: float,
    commission: CommissionTerms,
    slippage: SlippageTerms,
) -> tuple[float, float]:
    """Apply the planned fills as docs/backtesting.md describes; return position, cash."""
    for quantity in (plan.closing, plan.opening):
        if quantity == 0.0:
            continue
        side = 1 if quantity > 0 else -1
        fill = slippage.execution_price(price, side=side, quantity=quantity, volume=volume)
        cash -= quantity * fill + commission.commission(quantity=quantity, price=fill)
        position += quantity
    return position, cash


@settings(deadline=None, max_examples=60)
@given(
    position=st.floats(-200.0, 200.0),
    cash=st.floats(0.0, 50_000.0),
    price=st.floats(1.0, 500.0),
    volume=st.floats(0.0, 10_000.0),
    target=st.floats(-1.0, 1.0).filter(lambda t: abs(t) > 1e-3),
    rate=st.floats(0.0, 0.01),
    per_unit=st.floats(0.0, 0.05),
    per_fill=st.floats(0.0, 2.0),
    half_spread=st.floats(0.0, 1e-3),
    impact=st.sampled_from([0.0, 1e-3, 5e-2]),
)
def test_after_the_fills_the_position_is_the_target_share_of_equity(
    position: float,
    cash: float,
    price: float,
    volume: float,
    target: float,
    rate: float,
    per_unit: float,
    per_fill: float,
    half_spread: float,
    impact: float,
) -> None:
    # Arrange: a solvent starting point.
    if cash + position * price < 10.0 * price:
        cash += 10.0 * price - position * price
    commission = CommissionTerms(rate=rate, per_unit=per_unit, per_fill=per_fill)
    slippage = SlippageTerms(half_spread=half_spread, impact=impact)

    # Act
    plan = plan_target_fills(
        position=position,
        cash=cash,
        price=price,
        volume=volume,
        target=target,
        commission=commission,
        slippage=slippage,
    )

    # Assert: |units| * m == |target| * equity', valued at the adjusted price m.
    state = {"price": price, "volume": volume, "commission": commission, "slippage": slippage}
    held, left = after_fills(plan, position=position, cash=cash, **state)  # type: ignore[arg-type]
    assert held == 0.0 or (held > 0.0) == (target > 0.0)
    if plan.opening == 0.0:
        return  # nothing to adjust (already on target, or no equity left)
    trade_side = 1.0 if plan.opening > 0 else -1.0
    mark = price * (1.0 + trade_side * half_spread)
    value = abs(held) * mark
    equity = left + held * mark
    tolerance = 1e-9 if impact == 0.0 else 1e-6
    assert value == pytest.approx(abs(target) * equity, rel=tolerance, abs=1e-9 * price)
    if impact > 0.0 and abs(held) > abs(position):
        assert value <= abs(target) * equity * (1 + 1e-12)  # never overshoots


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"price": 0.0}, r"price must be > 0; got 0\.0"),
        ({"price": math.nan}, r"price must be finite; got nan"),
        ({"cash": math.inf}, r"cash must be finite; got inf"),
        ({"volume": -1.0}, r"volume must be >= 0; got -1\.0"),
        ({"target": 1.5}, r"target must be in \[-1, 1\]; got 1\.5"),
        ({"sizing": "lots"}, r"sizing must be one of fractional, whole; got 'lots'"),
    ],
)
def test_plan_target_fills_names_bad_inputs(change: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "position": 0.0,
        "cash": 100.0,
        "price": 10.0,
        "volume": 10.0,
        "target": 1.0,
        "commission": CommissionTerms(),
        "slippage": NO_SLIPPAGE,
        **change,
    }
    with pytest.raises(ConfigError, match=message):
        plan_target_fills(**arguments)  # type: ignore[arg-type]


# ---------------------------------------------------------------- kernels as Python


@contextmanager
def interpreted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as patch:
        for name, value in list(vars(_kernels).items()):
            if hasattr(value, "py_func"):
                patch.setattr(_kernels, name, value.py_func)
        yield


CASES = [
    {"position": 0.0, "cash": 1e4, "target": 1.0, "sizing": "fractional"},
    {"position": 30.0, "cash": 7e3, "target": -0.7, "sizing": "whole"},
    {"position": 80.0, "cash": 1e3, "target": 0.2, "sizing": "fractional"},
    {"position": -40.0, "cash": 9e3, "target": -0.9, "sizing": "whole"},
    {"position": 10.0, "cash": 0.0, "target": 0.5, "sizing": "whole"},
    {"position": 50.0, "cash": 5_000.0, "target": 0.5, "sizing": "fractional"},  # on target
    {"position": 0.0, "cash": 0.5, "target": 1.0, "sizing": "fractional"},  # no equity
    {"position": 10.0, "cash": 50.0, "target": 1.0, "sizing": "whole"},  # floors to 10
]


@pytest.mark.parametrize("impact", [0.0, 0.02])
def test_sizing_kernels_match_their_python_source(
    monkeypatch: pytest.MonkeyPatch, impact: float
) -> None:
    commission = CommissionTerms(rate=0.001, per_unit=0.01, per_fill=1.0)
    slippage = SlippageTerms(half_spread=2e-4, slippage=1e-4, impact=impact)

    def run() -> list[object]:
        return [
            plan_target_fills(
                price=100.0,
                volume=250.0,
                commission=commission,
                slippage=slippage,
                **case,  # type: ignore[arg-type]
            )
            for case in CASES
        ] + [
            slippage.execution_price(100.0, side=-1, quantity=30.0, volume=250.0),
            commission.commission(quantity=-3.0, price=100.0),
        ]

    compiled = run()
    with interpreted(monkeypatch):
        python = run()

    assert python == compiled
    assert any(isinstance(p, TargetFills) and p.closing != 0.0 for p in compiled)
