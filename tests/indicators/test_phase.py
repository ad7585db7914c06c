"""Tests of the phase rules, their thresholds and the composite score."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.errors import IndicatorError
from tradepulse.indicators.phase import (
    DEFAULT_THRESHOLDS,
    Phase,
    PhaseThresholds,
    composite_score,
    detect_phase,
    phase_names,
)

NAN = float("nan")


def _scalar_rules(r: float, dh: float, kappa: float) -> Phase:
    """The rules written out one bar at a time, as the original's ``phase_flags``."""
    if math.isnan(r) or math.isnan(dh) or math.isnan(kappa):
        return Phase.UNKNOWN
    if r < 0.4 and dh > 0:
        return Phase.PROTO
    if 0.4 <= r <= 0.7 and dh <= 0:
        return Phase.PRECOGNITIVE
    if r >= 0.75 and dh < 0 and kappa < 0:
        return Phase.EMERGENT
    if r <= 0.7 and dh > 0:
        return Phase.POST_EMERGENT
    return Phase.NEUTRAL


def _one(r: float, dh: float, kappa: float, **kwargs: Any) -> Phase:
    return Phase(int(detect_phase([r], [dh], [kappa], **kwargs)[0]))


# --------------------------------------------------------------------------- branches


@pytest.mark.parametrize(
    ("r", "dh", "kappa", "phase"),
    [
        # proto: R < 0.4 and dH > 0
        (0.1, 0.2, 0.5, Phase.PROTO),
        (0.399, 1e-12, -1.0, Phase.PROTO),
        (0.0, 5.0, NAN, Phase.UNKNOWN),
        # precognitive: 0.4 <= R <= 0.7 and dH <= 0 (both ends included)
        (0.4, 0.0, 1.0, Phase.PRECOGNITIVE),
        (0.7, 0.0, -1.0, Phase.PRECOGNITIVE),
        (0.55, -0.3, 0.0, Phase.PRECOGNITIVE),
        # emergent: R >= 0.75 and dH < 0 and curvature < 0
        (0.75, -1e-9, -1e-9, Phase.EMERGENT),
        (1.0, -0.5, -0.2, Phase.EMERGENT),
        (0.75, 0.0, -0.2, Phase.NEUTRAL),  # dH must be < 0
        (0.75, -0.1, 0.0, Phase.NEUTRAL),  # curvature must be < 0
        (0.749, -0.1, -0.2, Phase.NEUTRAL),  # between the precognitive and emergent bands
        # post-emergent: R <= 0.7 and dH > 0 (R < 0.4 is already proto)
        (0.4, 0.1, 0.0, Phase.POST_EMERGENT),
        (0.7, 1e-12, 0.0, Phase.POST_EMERGENT),
        (0.7000001, 0.1, 0.0, Phase.NEUTRAL),
        # neutral: everything else
        (0.3, 0.0, 0.0, Phase.NEUTRAL),
        (0.3, -0.1, -0.1, Phase.NEUTRAL),
        (0.9, 0.2, -0.5, Phase.NEUTRAL),
        (0.72, -0.1, -0.1, Phase.NEUTRAL),
    ],
)
def test_each_rule_and_its_boundaries(r: float, dh: float, kappa: float, phase: Phase) -> None:
    assert _one(r, dh, kappa) is phase


@pytest.mark.parametrize(
    ("r", "dh", "kappa"), [(NAN, 0.1, 0.1), (0.5, NAN, 0.1), (0.5, -0.1, NAN), (NAN, NAN, NAN)]
)
def test_any_nan_input_is_unknown(r: float, dh: float, kappa: float) -> None:
    assert _one(r, dh, kappa) is Phase.UNKNOWN


def test_codes_are_int8_and_aligned_with_inputs() -> None:
    r = np.array([NAN, 0.1, 0.5, 0.9, 0.6, 0.72])
    dh = np.array([0.1, 0.1, -0.1, -0.1, 0.1, 0.1])
    kappa = np.array([-0.1, -0.1, -0.1, -0.1, -0.1, -0.1])

    codes = detect_phase(r, dh, kappa)

    assert codes.dtype == np.int8
    assert codes.tolist() == [
        Phase.UNKNOWN,
        Phase.PROTO,
        Phase.PRECOGNITIVE,
        Phase.EMERGENT,
        Phase.POST_EMERGENT,
        Phase.NEUTRAL,
    ]


@settings(deadline=None, max_examples=200)
@given(
    values=st.lists(
        st.tuples(
            st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.4, 0.7, 0.75, NAN])),
            st.one_of(st.floats(-1.0, 1.0), st.sampled_from([0.0, -0.0, NAN])),
            st.one_of(st.floats(-1.0, 1.0), st.sampled_from([0.0, NAN])),
        ),
        max_size=20,
    )
)
def test_vectorised_rules_equal_scalar_rules(values: list[tuple[float, float, float]]) -> None:
    r, dh, kappa = np.array(values, dtype=np.float64).reshape(-1, 3).T

    codes = detect_phase(r, dh, kappa)

    assert codes.tolist() == [_scalar_rules(*v) for v in values]


# --------------------------------------------------------------------------- thresholds


def test_default_thresholds_are_the_originals() -> None:
    th = PhaseThresholds()

    assert th == DEFAULT_THRESHOLDS
    assert th.proto_r_max == 0.4
    assert th.entropy_change_min == 0.0
    assert th.neutral_band == (0.4, 0.7)
    assert th.emergent_r_min == 0.75
    assert th.emergent_entropy_change_max == 0.0
    assert th.emergent_curvature_max == 0.0


def test_thresholds_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PhaseThresholds().proto_r_max = 0.5  # type: ignore[misc]


def test_custom_thresholds_move_the_boundaries() -> None:
    th = PhaseThresholds(
        proto_r_max=0.2,
        entropy_change_min=0.05,
        neutral_band=(0.2, 0.5),
        emergent_r_min=0.6,
        emergent_entropy_change_max=-0.1,
        emergent_curvature_max=-0.1,
    )

    assert _one(0.3, 0.1, 0.0) is Phase.PROTO
    assert _one(0.3, 0.1, 0.0, thresholds=th) is Phase.POST_EMERGENT
    assert _one(0.1, 0.04, 0.0, thresholds=th) is Phase.NEUTRAL
    assert _one(0.1, 0.06, 0.0, thresholds=th) is Phase.PROTO
    assert _one(0.5, 0.05, 0.0, thresholds=th) is Phase.PRECOGNITIVE
    assert _one(0.6, -0.2, -0.2, thresholds=th) is Phase.EMERGENT
    assert _one(0.6, -0.05, -0.2, thresholds=th) is Phase.NEUTRAL


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proto_r_max": 1.5}, r"proto_r_max must lie in \[0, 1\], got 1.5"),
        ({"emergent_r_min": -0.1}, r"emergent_r_min must lie in \[0, 1\]"),
        ({"neutral_band": (0.7, 0.4)}, "neutral_band must have low <= high"),
        ({"neutral_band": (0.4, 1.2)}, r"neutral_band\[1\] must lie in \[0, 1\]"),
        ({"neutral_band": (0.4,)}, "neutral_band must be a"),
        ({"neutral_band": [0.4, 0.7]}, "neutral_band must be a"),
        ({"entropy_change_min": NAN}, "entropy_change_min must be a finite number"),
        ({"emergent_curvature_max": "0"}, "emergent_curvature_max must be a finite number"),
        ({"emergent_entropy_change_max": True}, "must be a finite number"),
    ],
)
def test_invalid_thresholds_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        PhaseThresholds(**kwargs)


# --------------------------------------------------------------------------- inputs


def test_inputs_of_different_lengths_are_rejected() -> None:
    with pytest.raises(IndicatorError, match="equal lengths, got 2, 1 and 2"):
        detect_phase([0.1, 0.2], [0.1], [0.1, 0.2])
    with pytest.raises(IndicatorError, match="equal lengths"):
        composite_score([0.1], [0.1], [0.1, 0.2])


def test_non_numeric_or_2d_inputs_are_rejected() -> None:
    with pytest.raises(IndicatorError, match="delta_entropy must be an array of real numbers"):
        detect_phase([0.1], ["x"], [0.1])
    with pytest.raises(IndicatorError, match="curvature must be 1-D"):
        detect_phase([0.1], [0.1], [[0.1]])


def test_thresholds_must_be_phase_thresholds() -> None:
    with pytest.raises(IndicatorError, match="thresholds must be a PhaseThresholds"):
        detect_phase([0.1], [0.1], [0.1], thresholds={"proto_r_max": 0.4})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- names


def test_phase_names_are_lowercase_with_none_for_unknown() -> None:
    codes = np.array([int(p) for p in Phase], dtype=np.int8)

    names = phase_names(codes)

    assert names == [None if p is Phase.UNKNOWN else p.name.lower() for p in Phase]
    assert names[1:] == ["proto", "precognitive", "emergent", "post_emergent", "neutral"]


def test_phase_names_reject_unknown_codes() -> None:
    with pytest.raises(IndicatorError, match="codes must be Phase values, got 9"):
        phase_names(np.array([0, 9], dtype=np.int8))
    with pytest.raises(IndicatorError, match="codes must be integers"):
        phase_names(np.array([0.5]))


# --------------------------------------------------------------------------- score


def test_composite_score_weights() -> None:
    # 0.4 * 0.5 - 0.3 * 0.1 - 0.3 * (-0.2) = 0.2 - 0.03 + 0.06 = 0.23
    # 0.4 * 1.0 - 0.3 * (-1.0) - 0.3 * (-1.0) = 1.0
    result = composite_score([0.5, 1.0, 0.0], [0.1, -1.0, 0.0], [-0.2, -1.0, 0.0])

    np.testing.assert_allclose(result, [0.23, 1.0, 0.0], rtol=0, atol=1e-15)


def test_composite_score_propagates_nan() -> None:
    result = composite_score([NAN, 0.5, 0.5, 0.5], [0.1, NAN, 0.1, 0.1], [0.1, 0.1, NAN, 0.1])

    assert np.isnan(result[:3]).all()
    assert np.isfinite(result[3])
