"""Throughput of the market-geometry indicators (Kuramoto, entropy, Hurst, phase rules).

Run: ``.venv/bin/python benchmarks/bench_geometry.py``. Prints bars per second of each
indicator at window 200 over 1,000,000 synthetic one-minute bars (a geometric random
walk with 0.1% per-bar volatility, fixed seed): best of several runs after a JIT
warm-up. Target: >= 1,000,000 bars/s each on the 2-core reference machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba
import numpy as np
from numpy.typing import NDArray

from tradepulse.indicators.entropy import entropy_change, shannon_entropy
from tradepulse.indicators.hurst import hurst_exponent
from tradepulse.indicators.kuramoto import kuramoto_cross, kuramoto_order
from tradepulse.indicators.phase import composite_score, detect_phase

BARS = 1_000_000
WINDOW = 200
ASSETS = 4
REPEATS = 5
SEED = 20240601


def _prices(bars: int, assets: int, seed: int) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    prices: NDArray[np.float64] = 100.0 * np.exp(
        np.cumsum(rng.normal(0.0, 1e-3, (bars, assets)), axis=0)
    )
    return prices


def _best_seconds(run: Callable[[], object]) -> float:
    run()  # JIT warm-up (and disk-cache load)
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Time every indicator and print one line of figures per indicator."""
    closes = _prices(BARS, ASSETS, SEED)
    close = np.ascontiguousarray(closes[:, 0])
    order = kuramoto_order(close, WINDOW)
    change = entropy_change(close, WINDOW)
    hurst = hurst_exponent(close, WINDOW)  # stands in for the curvature input below

    cases: list[tuple[str, Callable[[], object]]] = [
        ("kuramoto_order", lambda: kuramoto_order(close, WINDOW)),
        (f"kuramoto_cross ({ASSETS} assets)", lambda: kuramoto_cross(closes, WINDOW)),
        ("shannon_entropy", lambda: shannon_entropy(close, WINDOW)),
        ("entropy_change", lambda: entropy_change(close, WINDOW)),
        ("hurst_exponent", lambda: hurst_exponent(close, WINDOW)),
        ("detect_phase", lambda: detect_phase(order, change, hurst - 0.5)),
        ("composite_score", lambda: composite_score(order, change, hurst - 0.5)),
    ]
    print(
        f"market geometry: {BARS:,} bars, window {WINDOW}, "
        f"{numba.get_num_threads()} numba threads, best of {REPEATS}"
    )
    for name, run in cases:
        seconds = _best_seconds(run)
        print(f"  {name:<28} {seconds * 1e3:9.1f} ms  {BARS / seconds:15,.0f} bars/s")


if __name__ == "__main__":
    main()
