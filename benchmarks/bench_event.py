"""Time the event-driven engine on 1,000,000 synthetic 1-minute bars.

Run: ``.venv/bin/python benchmarks/bench_event.py``. The strategy is the built-in
``sma_cross`` in its event form: ``handle_tick`` is plain Python that reads four
indicator values from the context per bar (``fast``, ``slow`` and both one bar
ago) and calls ``order_target_percent`` on a cross. Orders go through the
matching engine (exact decimals, order records, fills), except target legs that
the engine would fill in full at the open, which the host books directly (the
default ``fast_fills``; one more case sends every order through the engine).
Each case prints the best of ``REPEATS`` runs with the number of trades and the
throughput in bars per second; a "busy" case (10/30: a cross every ~50 bars)
and calmer ones show how the per-order cost adds to the per-bar cost. The
vectorised engine on the same parameters checks that both engines agree. When
backtesting.py is installed, its event loop on ``BT_BARS`` bars is timed for
reference (it is far slower, so it gets fewer bars; the rate is per bar).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import polars as pl

from tradepulse.backtest import run_event, run_vectorised
from tradepulse.data import synthesize_bars
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams

BARS = 1_000_000
BT_BARS = 200_000
REPEATS = 3
SEED = 20240601
TARGET_BARS_PER_S = 500_000
CASES = ((10, 30), (20, 60), (50, 200), (200, 800))


def _best(function: Any) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def _backtesting_py(bars: pl.DataFrame) -> float | None:
    """Seconds backtesting.py takes for the same SMA cross on ``bars`` (None if absent)."""
    try:
        import pandas as pd
        from backtesting import Backtest, Strategy
        from backtesting.lib import crossover
    except ImportError:
        return None

    def sma(values: Any, period: int) -> Any:
        return pd.Series(values).rolling(period).mean().to_numpy()

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 30)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    frame = bars.to_pandas().set_index("ts")
    frame = frame.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = Backtest(frame, Cross, cash=1e12, commission=0.001, finalize_trades=True)
        start = time.perf_counter()
        test.run()
        return time.perf_counter() - start


def main() -> None:
    bars = synthesize_bars(bars=BARS, seed=SEED)
    strategy = SmaCross()
    print(
        f"{BARS:,} synthetic 1-minute bars, best of {REPEATS}; target "
        f">= {TARGET_BARS_PER_S:,} bars/s with a plain-Python handle_tick"
    )
    print(
        f"{'fast':>4} {'slow':>5} {'trades':>7} {'orders':>7} {'seconds':>8} {'bars/s':>10}  parity"
    )
    for fast, slow in CASES:
        params = SmaCrossParams(fast=fast, slow=slow)
        seconds, result = _best(lambda p=params: run_event(bars, strategy, p, commission=0.001))
        vector = run_vectorised(bars, strategy.signals(bars, params), commission=0.001)
        gap = float(np.max(np.abs(vector.equity - result.equity) / vector.equity))
        orders = 0 if result.orders is None else result.orders.height
        print(
            f"{fast:>4} {slow:>5} {result.metrics.trades:>7} {orders:>7} {seconds:>8.2f} "
            f"{BARS / seconds:>10,.0f}  max rel gap {gap:.1e}"
        )
    params = SmaCrossParams(fast=10, slow=30)
    seconds, result = _best(
        lambda: run_event(bars, strategy, params, commission=0.001, fast_fills=False)
    )
    print(
        f"10/30 with every order through the matching engine (fast_fills=False): "
        f"{seconds:.2f} s = {BARS / seconds:,.0f} bars/s"
    )
    reference = _backtesting_py(bars.head(BT_BARS))
    if reference is not None:
        print(
            f"backtesting.py 0.6 (10/30, {BT_BARS:,} bars): {reference:.2f} s = "
            f"{BT_BARS / reference:,.0f} bars/s"
        )


if __name__ == "__main__":
    main()
