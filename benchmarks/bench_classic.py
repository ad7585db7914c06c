"""Time TradePulse's classic indicators against TA-Lib on 1,000,000 synthetic bars.

Run: ``.venv/bin/python benchmarks/bench_classic.py``. Prints, per indicator, the best
of 7 runs (after a JIT warm-up) for our function and TA-Lib's, their ratio, and
whether the outputs are bit-identical; then the first-call compile time in a fresh
process with numba's on-disk cache cold and warm.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import talib
from numpy.typing import NDArray
from talib._ta_lib import MA_Type

from tradepulse.indicators.classic import atr, bollinger_bands, ema, macd, rsi, sma

BARS = 1_000_000
REPEATS = 7
SEED = 20240601
VOLATILITY_PER_BAR = 0.001  # ~0.1% per 1-minute bar

_FIRST_CALL = """
import time
import numpy as np
t0 = time.perf_counter()
from tradepulse.indicators import classic
t1 = time.perf_counter()
x = np.linspace(1.0, 2.0, 100)
classic.sma(x, 20); classic.ema(x, 20); classic.rsi(x, 14)
classic.atr(x * 1.01, x * 0.99, x, period=14)
classic.bollinger_bands(x, period=20); classic.macd(x)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def synthetic_bars(n: int = BARS) -> dict[str, NDArray[np.float64]]:
    """Return a geometric random walk of ``n`` OHLC bars (fixed seed)."""
    rng = np.random.default_rng(SEED)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, VOLATILITY_PER_BAR, n)))
    spread = np.abs(rng.normal(0.0, VOLATILITY_PER_BAR, n)) * close
    high = close + spread
    low = close - np.abs(rng.normal(0.0, VOLATILITY_PER_BAR, n)) * close
    return {"high": high, "low": low, "close": close}


def best_ms(function: Callable[[], Any]) -> float:
    """Return the best wall time of ``REPEATS`` calls, in milliseconds."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def _outputs(result: Any) -> list[NDArray[np.float64]]:
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, tuple):
        return list(result)
    return [getattr(result, name) for name in result.__slots__]


def first_call_seconds(cache_dir: str) -> tuple[float, float]:
    """Return (import, first calls) seconds in a fresh process using ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    completed = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    imported, called = completed.stdout.split()
    return float(imported), float(called)


def main() -> None:
    """Print the timing table and the compile times."""
    bars = synthetic_bars()
    high, low, close = bars["high"], bars["low"], bars["close"]
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("SMA(20)", lambda: sma(close, 20), lambda: talib.SMA(close, 20)),
        ("EMA(20)", lambda: ema(close, 20), lambda: talib.EMA(close, 20)),
        ("RSI(14)", lambda: rsi(close, 14), lambda: talib.RSI(close, 14)),
        (
            "ATR(14)",
            lambda: atr(high, low, close, period=14),
            lambda: talib.ATR(high, low, close, 14),
        ),
        (
            "BBANDS(20, 2)",
            lambda: bollinger_bands(close, period=20, num_std=2.0),
            lambda: talib.BBANDS(close, 20, 2.0, 2.0, MA_Type.SMA),
        ),
        (
            "MACD(12, 26, 9)",
            lambda: macd(close, fast=12, slow=26, signal=9),
            lambda: talib.MACD(close, 12, 26, 9),
        ),
    ]
    print(f"{BARS:,} bars, best of {REPEATS} after warm-up (numba {_numba_version()})")
    print(f"{'indicator':<16} {'ours ms':>9} {'talib ms':>9} {'ratio':>6}  bit-identical")
    for name, ours, theirs in cases:
        identical = all(
            np.array_equal(a, b, equal_nan=True)
            for a, b in zip(_outputs(ours()), _outputs(theirs()), strict=True)
        )
        ours_ms = best_ms(ours)
        theirs_ms = best_ms(theirs)
        ratio = ours_ms / theirs_ms
        print(f"{name:<16} {ours_ms:>9.2f} {theirs_ms:>9.2f} {ratio:>6.2f}  {identical}")

    with tempfile.TemporaryDirectory() as cache_dir:
        cold = first_call_seconds(cache_dir)
        warm = first_call_seconds(cache_dir)
    print("first call of all six in a fresh process (import s, compile+run s):")
    print(f"  numba cache cold: import {cold[0]:.2f} s, first calls {cold[1]:.2f} s")
    print(f"  numba cache warm: import {warm[0]:.2f} s, first calls {warm[1]:.2f} s")


def _numba_version() -> str:
    import numba

    return str(numba.__version__)


if __name__ == "__main__":
    main()
