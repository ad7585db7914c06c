"""Price generators and property checks shared by the rolling-indicator tests.

Each ``assert_*`` check takes the indicator as ``indicator(close, window)`` and a
``(seed, window, extra bars beyond the warm-up, volatility)`` spec drawn from
:func:`walk_specs`, builds the random walk and asserts one property of the values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

#: A rolling indicator: prices and window length in, one value per bar out.
Indicator = Callable[[NDArray[np.float64], int], NDArray[np.float64]]
#: ``(seed, window, extra bars beyond the warm-up, per-bar volatility)``.
WalkSpec = tuple[int, int, int, float]


def random_walk(
    n: int, seed: int, vol: float = 1e-3, assets: int | None = None
) -> NDArray[np.float64]:
    """Return ``n`` prices (``(n, assets)`` if ``assets``) of a geometric random walk from 100."""
    rng = np.random.default_rng(seed)
    shape = n if assets is None else (n, assets)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, shape), axis=0))


def walk_specs(*, max_window: int, max_extra: int) -> st.SearchStrategy[WalkSpec]:
    """Return a strategy of :data:`WalkSpec` with windows from 8 to ``max_window``."""
    return st.tuples(
        st.integers(0, 2**32 - 1),  # seed
        st.integers(8, max_window),  # window
        st.integers(0, max_extra),  # bars beyond the warm-up
        st.floats(1e-4, 5e-2),  # per-bar volatility
    )


def assert_prefix_stable(indicator: Indicator, spec: WalkSpec, data: st.DataObject) -> None:
    """Assert that the values of a prefix are those of the full series, bit for bit."""
    seed, window, extra, vol = spec
    close = random_walk(window + extra, seed, vol)
    cut = data.draw(st.integers(0, close.shape[0]))

    full = indicator(close, window)

    np.testing.assert_array_equal(indicator(close[:cut], window), full[:cut])


def assert_causal(indicator: Indicator, spec: WalkSpec, data: st.DataObject) -> None:
    """Assert that rescaling every bar after a drawn bar ``t`` changes no value up to ``t``."""
    seed, window, extra, vol = spec
    close = random_walk(window + extra, seed, vol)
    t = data.draw(st.integers(0, close.shape[0] - 1))
    changed = close.copy()
    changed[t + 1 :] *= np.random.default_rng(seed + 1).uniform(0.5, 2.0, close.shape[0] - t - 1)

    np.testing.assert_array_equal(
        indicator(changed, window)[: t + 1], indicator(close, window)[: t + 1]
    )


def assert_scale_free(indicator: Indicator, spec: WalkSpec, power: int, factor: float) -> None:
    """Assert that scaling by ``2**power`` changes nothing and by ``factor`` next to nothing."""
    seed, window, extra, vol = spec
    close = random_walk(window + extra, seed, vol)

    base = indicator(close, window)

    np.testing.assert_array_equal(indicator(close * 2.0**power, window), base)
    np.testing.assert_allclose(indicator(close * factor, window), base, rtol=0, atol=1e-9)


def assert_in_unit_interval(values: NDArray[np.float64]) -> None:
    """Assert that every value is finite and lies in ``[0, 1]``."""
    assert np.isfinite(values).all()
    assert ((values >= 0.0) & (values <= 1.0)).all()
