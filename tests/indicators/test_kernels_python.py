"""The compiled Kuramoto, entropy and Hurst kernels against their own Python source.

Each kernel's ``py_func`` (the Python function numba compiled, with ``numba.prange``
running as ``range``) is the specification: on the same small inputs, including
degenerate windows, the compiled kernels must give the same values bit for bit (no
fast-math, no reordered sums). Running the Python source also lets coverage see
inside the kernels.

A kernel's ``py_func`` calls its callees through module globals, so every compiled
kernel of a module is replaced by its ``py_func`` before the interpreted run, and the
compiled run always comes first (nothing is compiled while the globals are patched).
The modules' blocking constants (bars per parallel task, windows per group) change
only speed, never values, so interpreted runs with small blocks must match too; they
also take the paths of the later blocks, which a few hundred bars never reach.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from _helpers import random_walk
from numpy.typing import NDArray

from tradepulse.indicators import entropy, hurst, kuramoto
from tradepulse.indicators.entropy import entropy_change, shannon_entropy
from tradepulse.indicators.hurst import hurst_exponent
from tradepulse.indicators.kuramoto import kuramoto_cross, kuramoto_order

Outputs = list[NDArray[np.float64]]

#: Blocking constants of each module for the interpreted runs with small blocks.
SMALL_BLOCKS: dict[types.ModuleType, dict[str, int]] = {
    kuramoto: {"_BLOCK": 7, "_GROUP": 3},
    entropy: {"_BLOCK": 7},
    hurst: {"_BLOCK": 7},
}
#: Interpreted runs: with the constants the kernels were compiled with, or small blocks.
blocking = pytest.mark.parametrize(
    "small_blocks", [False, True], ids=["as-compiled", "small-blocks"]
)


def compiled_kernel_names(module: types.ModuleType) -> list[str]:
    """Names of the module's globals that are numba dispatchers."""
    return sorted(name for name, value in vars(module).items() if hasattr(value, "py_func"))


@contextmanager
def interpreted(
    monkeypatch: pytest.MonkeyPatch, module: types.ModuleType, constants: dict[str, int]
) -> Iterator[None]:
    """Run ``module``'s kernels as Python, with ``constants`` replacing its globals."""
    names = compiled_kernel_names(module)
    with monkeypatch.context() as patch:
        for name in names:
            patch.setattr(module, name, getattr(module, name).py_func)
        for name, value in constants.items():
            assert hasattr(module, name), name  # guard against a renamed constant
            patch.setattr(module, name, value)
        assert not compiled_kernel_names(module)
        yield


def assert_bit_identical(compiled: Outputs, interpreted: Outputs) -> None:
    assert len(interpreted) == len(compiled)
    for fast, slow in zip(compiled, interpreted, strict=True):
        np.testing.assert_array_equal(slow, fast, strict=True)


def assert_matches_python_source(
    monkeypatch: pytest.MonkeyPatch,
    module: types.ModuleType,
    exercise: Callable[[], Outputs],
    *,
    small_blocks: bool,
) -> None:
    constants = SMALL_BLOCKS[module] if small_blocks else {}
    compiled = exercise()
    with interpreted(monkeypatch, module, constants):
        slow = exercise()
    assert_bit_identical(compiled, slow)


def test_every_kernel_is_found() -> None:
    # The interpreted runs replace exactly these; a kernel missed here would run
    # compiled in both runs and the comparison would prove nothing about it.
    assert compiled_kernel_names(kuramoto) == [
        "_cross_block",
        "_cross_kernel",
        "_order_block",
        "_order_kernel",
        "_window_sums",
    ]
    assert compiled_kernel_names(entropy) == ["_entropy_block", "_entropy_kernel"]
    assert compiled_kernel_names(hurst) == ["_hurst_block", "_hurst_kernel", "_moments"]


# ------------------------------------------------------------------------- price series


def walk_with_flat_stretch(n: int, seed: int, flat: slice) -> NDArray[np.float64]:
    """A random walk (1% per bar) whose prices in ``flat`` repeat the stretch's first."""
    close = random_walk(n, seed, vol=1e-2)
    close[flat] = close[flat.start]
    return close


def doubling(n: int) -> NDArray[np.float64]:
    """Prices 1, 2, 4, ...: an exact geometric trend, every return exactly log 2."""
    return np.ldexp(1.0, np.arange(n))


def powers_of_two(n: int, seed: int) -> NDArray[np.float64]:
    """Prices 2**m, m a walk of steps in -2..2: a few exact returns, many on bin edges."""
    steps = np.random.default_rng(seed).integers(-2, 3, n)
    return np.ldexp(1.0, np.cumsum(steps) + 20)


def alternating(n: int) -> NDArray[np.float64]:
    """Prices 100, 101, 100, ...: every increment over an even lag is exactly 0."""
    return np.where(np.arange(n) % 2 == 0, 100.0, 101.0)


# ------------------------------------------------------------------------------ Kuramoto


def last_residual_vanishes(n: int, seed: int, end: int) -> NDArray[np.float64]:
    """Two assets; asset 0's 4-bar window ending at ``end`` has last residual ~0 only.

    Log prices ``(0, -2d, 2d, 2d)`` are ``d * (1, -2, 1, 0)`` plus a line, so the
    detrended window's last sample is zero up to rounding while the others are not:
    the cross kernel must scan the whole window before calling it non-degenerate.
    """
    closes = random_walk(n, seed, vol=1e-2, assets=2)
    closes[end - 3 : end + 1, 0] = closes[end - 3, 0] * np.exp([0.0, -0.02, 0.02, 0.02])
    return closes


def exercise_kuramoto() -> Outputs:
    walk = random_walk(300, seed=1, vol=1e-2)
    closes = random_walk(200, seed=2, vol=1e-2, assets=3)
    closes[60:110, 1] = closes[60, 1]  # one asset flat: degenerate bars
    closes[150:, 2] = closes[150, 2] * doubling(50)  # one asset on an exact trend
    return [
        kuramoto_order(walk, 8),
        kuramoto_order(walk, 33),
        kuramoto_order(walk[:120], 40),
        kuramoto_order(walk[:3], 3),
        kuramoto_order(walk[:25], 25),
        kuramoto_order(walk_with_flat_stretch(150, seed=3, flat=slice(50, 90)), 16),
        kuramoto_order(np.full(50, 42.0), 12),  # every sample of the analytic signal is 0
        kuramoto_order(100.0 * 1.001 ** np.arange(80), 20),
        kuramoto_order(np.exp(np.linspace(0.0, 3.0, 80)), 17),
        kuramoto_order(doubling(60), 10),
        kuramoto_cross(closes, 8),
        kuramoto_cross(closes, 21),
        kuramoto_cross(last_residual_vanishes(40, seed=4, end=20), 4),
        kuramoto_cross(np.full((30, 2), 7.0), 5),
    ]


@contextmanager
def numpy_error_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the interpreted Kuramoto kernels divide by zero as the compiled ones do.

    They are compiled with ``error_model="numpy"``: ``1.0 / sqrt(0.0)`` is ``inf``
    (its product with 0 is NaN, which the kernel then discards) where Python raises
    ``ZeroDivisionError``. ``numpy.sqrt`` rounds exactly as ``math.sqrt`` but returns a
    numpy float, whose division follows IEEE 754; the warnings that numpy would raise
    for it are silenced as numba's are.
    """
    with monkeypatch.context() as patch, np.errstate(divide="ignore", invalid="ignore"):
        patch.setattr(kuramoto, "math", types.SimpleNamespace(sqrt=np.sqrt))
        yield


def test_numpy_error_model_divides_by_zero_as_ieee() -> None:
    with pytest.raises(ZeroDivisionError):
        _ = 1.0 / math.sqrt(0.0)
    with np.errstate(divide="ignore"):
        assert 1.0 / np.sqrt(0.0) == math.inf
    assert np.sqrt(np.float64(2.0)) == math.sqrt(2.0)


@blocking
def test_kuramoto_kernels_match_their_python_source(
    small_blocks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with numpy_error_model(monkeypatch):
        assert_matches_python_source(
            monkeypatch, kuramoto, exercise_kuramoto, small_blocks=small_blocks
        )


# ------------------------------------------------------------------------------- entropy


def exercise_entropy() -> Outputs:
    walk = random_walk(300, seed=5, vol=1e-2)
    return [
        shannon_entropy(walk, 8),
        shannon_entropy(walk, 40, bins=7),
        shannon_entropy(walk[:60], 2, bins=2),
        shannon_entropy(walk[:41], 40),
        entropy_change(walk, 16),
        shannon_entropy(walk_with_flat_stretch(120, seed=6, flat=slice(40, 70)), 12),
        shannon_entropy(np.full(60, 3.0), 10),  # every return 0
        shannon_entropy(doubling(60), 12),  # every return log 2
        shannon_entropy(powers_of_two(200, seed=7), 20, bins=4),
        shannon_entropy(powers_of_two(200, seed=8), 16, bins=5),
        shannon_entropy(powers_of_two(120, seed=9), 8, bins=2),
    ]


@blocking
def test_entropy_kernels_match_their_python_source(
    small_blocks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_matches_python_source(monkeypatch, entropy, exercise_entropy, small_blocks=small_blocks)


def entropy_table(window: int) -> NDArray[np.float64]:
    """``-(c / window) * log(c / window)`` for ``c = 0 .. window``, as the kernel builds it."""
    table = np.zeros(window + 1)
    for c in range(1, window + 1):
        p = c / window
        table[c] = -p * math.log(p)
    return table


def returns_on_and_beside_edges(
    bins: int, low: float, high: float, seed: int
) -> NDArray[np.float64]:
    """Returns drawn from numpy's bin edges over ``[low, high]`` and their neighbours.

    Each window holds ``low`` and ``high``, so its edges are exactly those edges; the
    float just below an edge is where the kernel's bin estimate can land one too high.
    """
    edges = np.linspace(low, high, bins + 1)
    candidates = np.concatenate(
        [edges, np.nextafter(edges[1:], -np.inf), np.nextafter(edges[:-1], np.inf)]
    )
    rng = np.random.default_rng(seed)
    returns = rng.choice(candidates, 200)
    returns[::5] = low
    returns[2::5] = high
    return returns


@pytest.mark.parametrize(
    ("bins", "low", "high"),
    [(4, -0.03, 0.05), (7, -1e-3, 2e-3), (9, -0.1, 0.1), (2, 0.0, 1.0), (13, 1e-5, 3.7e-5)],
)
def test_entropy_block_settles_edge_returns_as_its_python_source(
    bins: int, low: float, high: float
) -> None:
    window = 10
    returns = returns_on_and_beside_edges(bins, low, high, seed=bins)
    table = entropy_table(window)
    fast = np.empty(returns.shape[0] - window + 1)
    slow = np.empty_like(fast)

    entropy._entropy_block(returns, window, bins, table, fast)
    entropy._entropy_block.py_func(returns, window, bins, table, slow)  # type: ignore[attr-defined]

    np.testing.assert_array_equal(slow, fast, strict=True)
    assert (fast > 0.0).all()


# --------------------------------------------------------------------------------- Hurst


def exercise_hurst() -> Outputs:
    walk = random_walk(300, seed=10, vol=1e-2)
    noisy_flips = alternating(120) * np.exp(np.random.default_rng(11).normal(0.0, 1e-5, 120))
    return [
        hurst_exponent(walk, 8),  # lags 1, 2
        hurst_exponent(walk, 40),  # lags 1, 2, 4
        hurst_exponent(walk[:150], 33, max_lag=16),
        hurst_exponent(walk[:40], 40, max_lag=20),
        hurst_exponent(walk_with_flat_stretch(150, seed=12, flat=slice(50, 90)), 12),
        hurst_exponent(np.full(50, 5.0), 16),  # sigma is 0 at every lag
        hurst_exponent(alternating(60), 12),  # sigma(2) is 0, sigma(1) is not
        hurst_exponent(noisy_flips, 16),  # slope below 0: clipped
        hurst_exponent(doubling(60), 16, max_lag=8),  # equal increments at every lag
        hurst_exponent(100.0 * 1.001 ** np.arange(60), 9),
    ]


@blocking
def test_hurst_kernels_match_their_python_source(
    small_blocks: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_matches_python_source(monkeypatch, hurst, exercise_hurst, small_blocks=small_blocks)
