"""Ollivier-Ricci curvature over 1M synthetic 1-minute bars: bars/s per stride.

Budget (geometry pipeline): all four geometry indicators plus phases over 1M bars in
<= 10 s; the other three take about 2 s, which leaves about 7 s for Ricci. Series:
geometric random walks with 0.1 % and 0.05 % per-bar volatility (seed fixed), window
200, delta 0.005, alpha 0.5, and a fat-tailed variant (Student-t returns, whose
multi-level jumps give graphs with short cycles). Printed per run: how many windows
have an edge beyond the tree closed form ("cyclic") and how many local transport
problems went to POT's network simplex ("simplex"; the others were solved by the
exact integer-dual enumeration or found in the cache). Also printed: the real daily
series of golden/data (5,031 bars each, where almost every window is cyclic) and the
cost of solving every edge's whole problem with the network simplex
(``solver="emd"``), i.e. what the exact shortcuts save.

Run: ``.venv/bin/python benchmarks/bench_ricci.py``
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.indicators import _transport
from tradepulse.indicators._transport import _emd2_simplex
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
DAILY = Path(__file__).resolve().parents[1] / "golden" / "data"


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


def cyclic_windows(close: NDArray[np.float64], stride: int) -> tuple[int, int]:
    """Return (computed windows, windows with an edge beyond the tree closed form)."""
    out = np.full(close.shape[0], np.nan)
    status = np.zeros(close.shape[0], dtype=np.int8)
    _scan(close, np.log(close), WINDOW, math.log1p(DELTA), ALPHA, stride, False, out, status)
    computed = max((close.shape[0] - WINDOW) // stride + 1, 0)
    return computed, int(np.count_nonzero(status == _NEEDS_SOLVER))


def simplex_calls(action: Callable[[], object]) -> int:
    """Run ``action`` once (untimed) and count the network simplex solves it makes."""
    solve = _transport._network_simplex
    calls = 0

    def counted(*args: Any) -> tuple[float, int]:
        nonlocal calls
        calls += 1
        return solve(*args)

    _transport._network_simplex = counted
    try:
        action()
    finally:
        _transport._network_simplex = solve
    return calls


def report(
    label: str, close: NDArray[np.float64], stride: int, runs: int, fits: dict[str, list[int]]
) -> None:
    action = partial(ricci_curvature, close, WINDOW, stride=stride)
    seconds = best_of(runs, action)
    computed, cyclic = cyclic_windows(close, stride)
    if seconds <= RICCI_BUDGET_SECONDS:
        fits.setdefault(label, []).append(stride)
    print(
        f"{label:>18} {stride:>6} {seconds:>8.3f} {close.shape[0] / seconds:>12,.0f}"
        f" {computed:>9,} {cyclic:>8,} {simplex_calls(action):>8,}"
    )


def main() -> None:
    ricci_curvature(geometric_walk(5_000, 0.001), WINDOW)  # JIT warm-up
    ricci_curvature(fat_tailed_walk(1_000, 0.002), WINDOW, solver="emd")
    route = "ot.emd2 (fallback)" if _transport._network_simplex is _emd2_simplex else "POT emd_c"
    print(f"{BARS:,} bars, window {WINDOW}, delta {DELTA}, alpha {ALPHA}; simplex: {route}")
    header = f"{'series':>18} {'stride':>6} {'seconds':>8} {'bars/s':>12} {'windows':>9}"
    print(f"{header} {'cyclic':>8} {'simplex':>8}")
    fits: dict[str, list[int]] = {}
    for volatility in VOLATILITIES:
        close = geometric_walk(BARS, volatility)
        for stride in STRIDES:
            report(f"normal {volatility:.2%}", close, stride, RUNS, fits)
    fat = fat_tailed_walk(BARS, 0.001)
    for stride in STRIDES:
        report("student-t 0.10%", fat, stride, RUNS, fits)
    for name in ("sp500", "nasdaq"):
        daily = pl.read_csv(DAILY / f"{name}_daily.csv")["close"].to_numpy()
        report(f"{name} daily", daily, 1, RUNS, fits)
    print(f"(best of {RUNS} runs)")
    for label, strides in fits.items():
        print(f"smallest stride within {RICCI_BUDGET_SECONDS:.0f} s, {label}: {min(strides)}")

    for label, sample in (
        ("normal 0.10%", geometric_walk(20_000, 0.001)),
        ("student-t 0.20%", fat_tailed_walk(4_000, 0.002)),
    ):
        computed, cyclic = cyclic_windows(sample, 1)
        auto = best_of(1, partial(ricci_curvature, sample, WINDOW))
        forced = best_of(1, partial(ricci_curvature, sample, WINDOW, solver="emd"))
        print(
            f"{label}, {sample.shape[0]:,} bars, stride 1: {cyclic:,} of {computed:,} windows"
            f" cyclic; auto {auto:.3f} s, network simplex on every edge {forced:.2f} s"
            f" ({computed / forced:,.0f} windows/s)"
        )


if __name__ == "__main__":
    main()
