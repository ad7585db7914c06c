"""The fused ``sma_cross`` target kernel against the shared cross and event helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse.strategy.builtins._common import cross_above, cross_below, follow_events
from tradepulse.strategy.builtins.sma_cross import _cross_targets, _cross_targets_kernel

# Few distinct values so ties (touches) and NaN (warm-up) are frequent.
VALUES = st.sampled_from([np.nan, -1.0, 0.0, 0.5, 1.0, 2.0])
PAIRS = st.lists(st.tuples(VALUES, VALUES), min_size=0, max_size=40)


def reference(
    fast: NDArray[np.float64], slow: NDArray[np.float64], *, long_short: bool
) -> NDArray[np.float64]:
    """The unfused pipeline: per-bar crosses, then the shared state machine."""
    up, down = cross_above(fast, slow), cross_below(fast, slow)
    if long_short:
        return follow_events(long_entry=up, long_exit=down, short_entry=down, short_exit=up)
    return follow_events(long_entry=up, long_exit=down)


def split(pairs: list[tuple[float, float]]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    fast = np.array([p[0] for p in pairs], dtype=np.float64)
    slow = np.array([p[1] for p in pairs], dtype=np.float64)
    return fast, slow


@pytest.mark.parametrize("long_short", [False, True])
@settings(deadline=None, max_examples=80)
@given(pairs=PAIRS)
def test_kernel_and_its_python_form_match_the_unfused_pipeline(
    pairs: list[tuple[float, float]], long_short: bool
) -> None:
    fast, slow = split(pairs)
    expected = reference(fast, slow, long_short=long_short)
    python_out = np.full(fast.shape[0], 7.0)

    compiled = _cross_targets(fast, slow, long_short=long_short)
    _cross_targets_kernel.py_func(fast, slow, long_short, python_out)

    np.testing.assert_array_equal(compiled, expected)
    np.testing.assert_array_equal(python_out, expected)


@pytest.mark.parametrize("long_short", [False, True])
def test_kernel_matches_the_unfused_pipeline_on_a_random_walk(long_short: bool) -> None:
    rng = np.random.default_rng(7)
    fast = np.cumsum(rng.normal(size=5_000))
    slow = np.cumsum(rng.normal(size=5_000))
    fast[:25] = np.nan
    slow[:40] = np.nan

    result = _cross_targets(fast, slow, long_short=long_short)

    np.testing.assert_array_equal(result, reference(fast, slow, long_short=long_short))
    assert np.count_nonzero(np.diff(result)) > 10  # the walks do cross
