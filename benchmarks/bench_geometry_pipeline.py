"""All four geometry indicators plus phases over 1M synthetic 1-minute bars.

The bars come from ``synthesize_bars`` (regime switching, jumps), which is
harder for Ricci than a Gaussian walk: jumps create cycles in the level graph.

Budget (issue #2): <= 10 s in total on the 2-core reference machine. Prints
each stage's time and the total for the Ricci strides given on the command
line (default: the stride the docs recommend for 1-minute data, and 1).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from tradepulse.data import synthesize_bars
from tradepulse.indicators import (
    detect_phase,
    entropy_change,
    hurst_exponent,
    kuramoto_order,
    ricci_curvature,
    shannon_entropy,
)
from tradepulse.indicators.phase import composite_score

BARS = 1_000_000
WINDOW = 200


def synthetic_close(bars: int, seed: int = 42) -> np.ndarray:
    """Closes of ``tradepulse data synth``: regime-switching 1-minute bars with jumps."""
    frame = synthesize_bars(bars=bars, seed=seed, freq="1min")
    return frame.get_column("close").to_numpy()


def run(close: np.ndarray, stride: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    order = kuramoto_order(close, WINDOW)
    t1 = time.perf_counter()
    shannon_entropy(close, WINDOW)
    change = entropy_change(close, WINDOW)
    t2 = time.perf_counter()
    hurst_exponent(close, WINDOW)
    t3 = time.perf_counter()
    curvature = ricci_curvature(close, WINDOW, stride=stride)
    t4 = time.perf_counter()
    detect_phase(order, change, curvature)
    composite_score(order, change, curvature)
    t5 = time.perf_counter()
    timings.update(
        kuramoto=t1 - t0, entropy_and_delta=t2 - t1, hurst=t3 - t2, ricci=t4 - t3, phase=t5 - t4
    )
    timings["total"] = t5 - t0
    return timings


def main() -> None:
    strides = [int(s) for s in sys.argv[1:]] or [10, 1]
    close = synthetic_close(BARS)
    run(close[:5000], 1)  # JIT warm-up
    print(f"{BARS:,} bars, window {WINDOW}")
    for stride in strides:
        t = run(close, stride)
        parts = "  ".join(f"{k}={v:.2f}s" for k, v in t.items())
        print(f"ricci stride {stride:>3}: {parts}")


if __name__ == "__main__":
    main()
