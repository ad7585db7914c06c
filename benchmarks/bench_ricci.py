"""Ollivier-Ricci curvature over 1M synthetic 1-minute bars: bars/s per stride.

Budget (geometry pipeline): all four geometry indicators plus phases over 1M bars in
<= 10 s; the other three take about 2 s, which leaves about 7 s for Ricci. Series:
geometric random walks with 0.1 % and 0.05 % per-bar volatility (seed fixed), window
200, delta 0.005, alpha 0.5. Also printed: how many windows reached the transport
solver (graphs with short cycles, from multi-level jumps), a fat-tailed variant
(Student-t returns, where such jumps are common) and the cost of solving every edge
with ``ot.emd2`` (``solver="emd"``), i.e. what the exact closed form saves.

Run: ``.venv/bin/python benchmarks/bench_ricci.py``
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.typing import NDArray

from tradepulse.indicators.ricci import _NEEDS_SOLVER, _scan, ricci_curvature

BARS = 1_000_000
WINDOW = 200
DELTA = 0.005
ALPHA = 0.5
STRIDES = (1, 5, 10, 20, 50, 100)
VOLATILITIES = (0.001, 0.0005)
RUNS = 3
RICCI_BUDGET_SECONDS = 7.0
SEED = 42


def geometric_walk(bars: int, volatility: float, seed: int = SEED) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, bars)))


def fat_tailed_walk(bars: int, volatility: float, seed: int = SEED) -> NDArray[np.float64]:
    """Student-t (3 d.o.f.) returns with the given standard deviation: multi-level jumps."""
    rng = np.random.default_rng(seed)
    returns = rng.standard_t(3, bars) * (volatility / math.sqrt(3.0))
    return 100.0 * np.exp(np.cumsum(returns))


def best_of(runs: int, action: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def solver_windows(close: NDArray[np.float64], stride: int) -> tuple[int, int]:
    """Return (computed windows, windows sent to ot.emd2) -- a diagnostic of the kernel."""
    out = np.full(close.shape[0], np.nan)
    status = np.zeros(close.shape[0], dtype=np.int8)
    _scan(close, np.log(close), WINDOW, math.log1p(DELTA), ALPHA, stride, False, out, status)
    computed = (close.shape[0] - WINDOW) // stride + 1
    return computed, int(np.count_nonzero(status == _NEEDS_SOLVER))


def report_series(
    label: str, close: NDArray[np.float64], runs: int, fits: dict[str, list[int]]
) -> None:
    for stride in STRIDES:
        seconds = best_of(runs, partial(ricci_curvature, close, WINDOW, stride=stride))
        computed, solved = solver_windows(close, stride)
        if seconds <= RICCI_BUDGET_SECONDS:
            fits.setdefault(label, []).append(stride)
        print(
            f"{label:>18} {stride:>6} {seconds:>8.3f} {close.shape[0] / seconds:>12,.0f}"
            f" {computed:>9,} {solved:>8,}"
        )


def main() -> None:
    ricci_curvature(geometric_walk(5_000, 0.001), WINDOW)  # JIT warm-up
    ricci_curvature(fat_tailed_walk(1_000, 0.002), WINDOW, solver="emd")
    print(f"{BARS:,} bars, window {WINDOW}, delta {DELTA}, alpha {ALPHA}")
    print(
        f"{'series':>18} {'stride':>6} {'seconds':>8} {'bars/s':>12} {'windows':>9} {'solver':>8}"
    )
    fits: dict[str, list[int]] = {}
    for volatility in VOLATILITIES:
        label = f"normal {volatility:.2%}"
        report_series(label, geometric_walk(BARS, volatility), RUNS, fits)
    # Fat tails (not part of the budget figure): one run each, stride 1 takes a while.
    report_series("student-t 0.10%", fat_tailed_walk(BARS, 0.001), 1, fits)
    print(f"(best of {RUNS} runs for the normal walks; 'solver': windows sent to ot.emd2)")
    for label, strides in fits.items():
        print(f"smallest stride within {RICCI_BUDGET_SECONDS:.0f} s, {label}: {min(strides)}")

    for label, sample in (
        ("normal 0.10%", geometric_walk(20_000, 0.001)),
        ("student-t 0.20%", fat_tailed_walk(4_000, 0.002)),
    ):
        computed, solved = solver_windows(sample, 1)
        auto = best_of(1, partial(ricci_curvature, sample, WINDOW))
        forced = best_of(1, partial(ricci_curvature, sample, WINDOW, solver="emd"))
        print(
            f"{label}, {sample.shape[0]:,} bars, stride 1: {solved:,} of {computed:,} windows"
            f" need the solver; auto {auto:.3f} s, ot.emd2 on every edge {forced:.2f} s"
            f" ({computed / forced:,.0f} windows/s)"
        )


if __name__ == "__main__":
    main()
