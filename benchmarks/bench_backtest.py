"""Time the vectorised ``sma_cross`` backtest on 1,000,000 synthetic 1-minute bars.

Run: ``.venv/bin/python benchmarks/bench_backtest.py``. The bars come from
``tradepulse.data.synthesize_bars`` (fixed seed). For each case it prints the best
of ``REPEATS`` runs after a JIT warm-up of: the strategy's signals
(``SmaCross.signals``: two SMAs and the cross rule), the engine
(``run_vectorised``: checks, kernel, metrics, trade and fill tables) and both
together, with the number of trades; then the first-call time of the engine in a
fresh process with numba's on-disk cache cold (compiling) and warm (loading).
When vectorbt is installed, its ``Portfolio.from_signals`` on the same signals is
timed for reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from tradepulse.backtest import run_vectorised
from tradepulse.costs import NotionalCommission, SpreadSlippage, SquareRootImpact
from tradepulse.data import synthesize_bars
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams

BARS = 1_000_000
REPEATS = 25
SEED = 20240601
BUDGET_MS = 20.0

_FIRST_CALL = """
import time
t0 = time.perf_counter()
import numpy as np
from tradepulse.backtest import run_vectorised
from tradepulse.data import synthesize_bars
t1 = time.perf_counter()
bars = synthesize_bars(bars=200, seed=1)
targets = np.where(np.arange(200) % 20 < 10, 1.0, -1.0)
t2 = time.perf_counter()
run_vectorised(bars, targets, commission=0.001)
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t3 - t2:.3f}")
"""

Direction = Literal["long", "long_short"]


def best_ms(function: Callable[[], Any]) -> float:
    """Return the best wall time of ``REPEATS`` calls, in milliseconds."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def first_call_seconds(cache_dir: str) -> tuple[float, float]:
    """Return (import, first backtest) seconds in a fresh process using ``cache_dir``."""
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


def vectorbt_ms(bars: pl.DataFrame, targets: np.ndarray[Any, Any]) -> float | None:
    """Best time of vectorbt's ``from_signals`` on the same fills, or None without it."""
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    import warnings

    close = bars.get_column("close").to_pandas()
    price = bars.get_column("open").to_pandas()
    # Our target changes as vectorbt signals, shifted to the fill bar.
    previous = np.concatenate(([0.0], targets[:-1]))
    entries = np.concatenate(([False], (targets > 0) & (previous <= 0)))[:-1]
    shorts = np.concatenate(([False], (targets < 0) & (previous >= 0)))[:-1]

    def run() -> None:
        vbt.Portfolio.from_signals(
            close,
            entries=entries,
            short_entries=shorts,
            price=price,
            size=np.inf,
            fees=0.001,
            init_cash=10_000.0,
        ).final_value()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()
        return best_ms(run)


def main() -> None:
    """Print the timing table and the compile times."""
    bars = synthesize_bars(bars=BARS, seed=SEED)
    cases: list[tuple[int, int, Direction, dict[str, Any]]] = [
        (10, 30, "long", {"commission": 0.001}),
        (10, 30, "long_short", {"commission": 0.001}),
        (50, 200, "long_short", {"commission": 0.001}),
        (
            10,
            30,
            "long_short",
            {
                "commission": NotionalCommission(0.001),
                "slippage": [SpreadSlippage(2.0), SquareRootImpact(100.0)],
                "sizing": "whole",
            },
        ),
    ]
    strategy = SmaCross()
    print(
        f"{BARS:,} synthetic 1-minute bars, best of {REPEATS} after warm-up "
        f"(budget {BUDGET_MS:g} ms for signals + engine)"
    )
    header = (
        f"{'fast':>4} {'slow':>4} {'direction':<10} {'costs':<22} {'trades':>7} "
        f"{'signals ms':>10} {'engine ms':>9} {'total ms':>8}"
    )
    print(header)
    for fast, slow, direction, options in cases:
        params = SmaCrossParams(fast=fast, slow=slow, direction=direction)
        targets = strategy.signals(bars, params)
        result = run_vectorised(bars, targets, **options)  # warm-up (JIT)
        signals_ms = best_ms(lambda p=params: strategy.signals(bars, p))
        engine_ms = best_ms(lambda t=targets, o=options: run_vectorised(bars, t, **o))
        total_ms = best_ms(
            lambda p=params, o=options: run_vectorised(bars, strategy.signals(bars, p), **o)
        )
        costs = "0.1% commission" if len(options) == 1 else "0.1% + spread + impact"
        print(
            f"{fast:>4} {slow:>4} {direction:<10} {costs:<22} {result.metrics.trades:>7} "
            f"{signals_ms:>10.2f} {engine_ms:>9.2f} {total_ms:>8.2f}"
        )
    targets = strategy.signals(bars, SmaCrossParams(fast=10, slow=30, direction="long_short"))
    peer = vectorbt_ms(bars, targets)
    if peer is not None:
        print(f"vectorbt from_signals, same fills (10/30 long_short): {peer:.2f} ms")

    with tempfile.TemporaryDirectory() as cache_dir:
        cold = first_call_seconds(cache_dir)
        warm = first_call_seconds(cache_dir)
    print("first backtest in a fresh process (import s, first run_vectorised s):")
    print(f"  numba cache cold (compiles): import {cold[0]:.2f} s, first run {cold[1]:.2f} s")
    print(f"  numba cache warm (loads):    import {warm[0]:.2f} s, first run {warm[1]:.2f} s")


if __name__ == "__main__":
    main()
