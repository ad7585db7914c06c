"""Compare TradePulse's vectorised ``sma_cross`` backtest with backtesting.py and vectorbt.

Run: ``.venv/bin/python benchmarks/compare_peers.py`` (needs the ``peers`` extra:
``pip install -e '.[peers]'``; ``make setup`` installs it with the dev tools).

The conventions (``docs/backtesting.md``): a decision on bar t's close fills at
bar t+1's open; all-in sizing ``cash / (price * (1 + fee))``; 0.1% commission on
every fill; a position still open at the end is marked to the last close without
an exit commission; a reversal is two trades. Each peer is set up to follow them:

- backtesting.py 0.6.6 (whole units): ``Backtest(data, SmaCross, cash=10_000,
  commission=0.001, trade_on_close=False, exclusive_orders=True,
  finalize_trades=False)``; the strategy computes the SMAs with ``self.I`` and
  trades on ``backtesting.lib.crossover`` (strict on both bars): ``buy()`` on an up
  cross unless already long, ``sell()`` (long_short) or ``position.close()``
  (long) on a down cross. ``buy()`` sizes ``floor(equity / (open * (1 + fee)))``
  units; ``exclusive_orders`` closes the other side first (two trades);
  ``finalize_trades=False`` leaves the last trade open, marked to the last close.
- vectorbt 1.2.0 (fractional): ``Portfolio.from_signals(close, entries, exits or
  short_entries, price=open, size=inf, fees=0.001, init_cash=10_000)`` with the
  cross signals shifted one bar, so an order decided at t's close fills at
  t+1's open. ``size=inf`` spends all cash ``/ (1 + fees)``.

For every data set, (fast, slow) pair and direction the table shows each
library's trade count and final equity, ours, their relative difference, the
largest relative difference of the per-bar equity curves, and whether every
trade (entry and exit bar, size, entry and exit price, P&L) matches to 1e-9.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest import BacktestResult, run_event, run_vectorised
from tradepulse.data import load_bars, synthesize_bars
from tradepulse.indicators import sma
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar

REPO_ROOT = Path(__file__).resolve().parents[1]
CASH = 10_000.0
COMMISSION = 0.001
TOLERANCE = 1e-9
PAIRS = ((10, 30), (20, 50), (50, 200))
DIRECTIONS: tuple[Literal["long", "long_short"], ...] = ("long", "long_short")
SYNTHETIC_BARS = 100_000
SYNTHETIC_SEED = 20240601

Direction = Literal["long", "long_short"]


@dataclass(frozen=True)
class TradeRow:
    """One trade as both sides report it: bars, signed size, prices, net P&L."""

    entry_bar: int
    exit_bar: int
    size: float
    entry_price: float
    exit_price: float
    pnl: float


@dataclass(frozen=True)
class PeerRun:
    """What a peer library produced: final equity, per-bar equity and trades."""

    final_equity: float
    equity: NDArray[np.float64]
    trades: list[TradeRow]


@dataclass(frozen=True)
class Comparison:
    """One line of the table."""

    data: str
    fast: int
    slow: int
    direction: Direction
    library: str
    their_trades: int
    our_trades: int
    their_equity: float
    our_equity: float
    equity_difference: float
    curve_difference: float
    trades_match: bool

    @property
    def agrees(self) -> bool:
        """Return whether trades and equity agree to `TOLERANCE`."""
        return (
            self.trades_match
            and self.their_trades == self.our_trades
            and self.equity_difference <= TOLERANCE
            and self.curve_difference <= TOLERANCE
        )


# ------------------------------------------------------------------------------ ours


def sma_cross_targets(bars: pl.DataFrame, fast: int, slow: int, direction: Direction) -> Any:
    """Return the built-in ``sma_cross`` strategy's target per bar."""
    params = SmaCrossParams(fast=fast, slow=slow, direction=direction)
    return SmaCross().signals(bars, params)


def run_ours(
    bars: pl.DataFrame,
    fast: int,
    slow: int,
    direction: Direction,
    *,
    sizing: Literal["fractional", "whole"],
    engine: Literal["vector", "event"] = "vector",
) -> BacktestResult:
    """Backtest ``sma_cross`` with TradePulse's vectorised or event-driven engine."""
    if engine == "event":
        params = SmaCrossParams(fast=fast, slow=slow, direction=direction)
        return run_event(bars, SmaCross(), params, cash=CASH, commission=COMMISSION, sizing=sizing)
    targets = sma_cross_targets(bars, fast, slow, direction)
    return run_vectorised(bars, targets, cash=CASH, commission=COMMISSION, sizing=sizing)


def our_trades(result: BacktestResult) -> list[TradeRow]:
    """Return our trades as `TradeRow` (size signed: negative for shorts)."""
    rows = []
    for trade in result.trades.iter_rows(named=True):
        sign = 1.0 if trade["side"] == "long" else -1.0
        rows.append(
            TradeRow(
                entry_bar=trade["entry_bar"],
                exit_bar=trade["exit_bar"],
                size=sign * trade["quantity"],
                entry_price=trade["entry_price"],
                exit_price=trade["exit_price"],
                pnl=trade["pnl"],
            )
        )
    return rows


# ------------------------------------------------------------------------------ peers


def _crosses(bars: pl.DataFrame, fast: int, slow: int) -> tuple[NDArray[np.bool_], ...]:
    """Strict up and down crosses of the SMAs, computed here (not by the strategy)."""
    close = bars.get_column("close").to_numpy()
    quick, steady = sma(close, fast), sma(close, slow)
    up = np.zeros(close.shape[0], dtype=np.bool_)
    down = np.zeros(close.shape[0], dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        up[1:] = (quick[:-1] < steady[:-1]) & (quick[1:] > steady[1:])
        down[1:] = (quick[:-1] > steady[:-1]) & (quick[1:] < steady[1:])
    return up, down


@contextmanager
def _quiet_peer() -> Iterator[None]:
    """Silence the peers' own warnings: pandas 3 deprecations inside their code, and
    backtesting.py's "Some trades remain open" (intended: an open trade is marked to
    the last close)."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        yield


def _pandas_ohlcv(bars: pl.DataFrame) -> Any:
    frame = bars.select("ts", "open", "high", "low", "close", "volume").to_pandas()
    frame = frame.set_index("ts")
    frame.index = frame.index.tz_localize(None)
    return frame


def run_backtesting_py(bars: pl.DataFrame, fast: int, slow: int, direction: Direction) -> PeerRun:
    """Backtest ``sma_cross`` with backtesting.py (whole units), our conventions."""
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    class SmaCrossPeer(Strategy):  # type: ignore[misc]  # untyped base class
        fast = 10
        slow = 30
        long_short = False

        def init(self) -> None:
            self.quick = self.I(sma, self.data.Close, self.fast)
            self.steady = self.I(sma, self.data.Close, self.slow)

        def next(self) -> None:
            if crossover(self.quick, self.steady):
                if not self.position.is_long:
                    self.buy()
            elif crossover(self.steady, self.quick):
                if self.long_short:
                    if not self.position.is_short:
                        self.sell()
                elif self.position.is_long:
                    self.position.close()

    data = _pandas_ohlcv(bars).rename(columns=str.capitalize)
    backtest = Backtest(
        data,
        SmaCrossPeer,
        cash=CASH,
        commission=COMMISSION,
        trade_on_close=False,
        exclusive_orders=True,
        finalize_trades=False,
    )
    with _quiet_peer():
        stats = backtest.run(fast=fast, slow=slow, long_short=direction == "long_short")
    broker = stats._strategy._broker
    trades = [
        TradeRow(
            entry_bar=int(t.entry_bar),
            exit_bar=int(t.exit_bar),
            size=float(t.size),
            entry_price=float(t.entry_price),
            exit_price=float(t.exit_price),
            pnl=float(t.pl),
        )
        for t in broker.closed_trades
    ]
    last_bar = bars.height - 1
    last_close = float(bars.get_column("close")[-1])
    for t in broker.trades:
        # An open trade's pl excludes the entry commission (already paid from cash).
        entry_commission = abs(t.size) * t.entry_price * COMMISSION
        trades.append(
            TradeRow(
                entry_bar=int(t.entry_bar),
                exit_bar=last_bar,
                size=float(t.size),
                entry_price=float(t.entry_price),
                exit_price=last_close,
                pnl=float(t.pl) - entry_commission,
            )
        )
    equity = stats._equity_curve["Equity"].to_numpy(dtype=np.float64)
    return PeerRun(final_equity=float(stats["Equity Final [$]"]), equity=equity, trades=trades)


def run_vectorbt(bars: pl.DataFrame, fast: int, slow: int, direction: Direction) -> PeerRun:
    """Backtest ``sma_cross`` with vectorbt (fractional, ``size=inf``), our conventions."""
    import vectorbt as vbt

    frame = _pandas_ohlcv(bars)
    up, down = _crosses(bars, fast, slow)
    # A signal on bar t's close executes at bar t+1's open.
    entries = np.concatenate(([False], up[:-1]))
    downs = np.concatenate(([False], down[:-1]))
    sides = {"short_entries": downs} if direction == "long_short" else {"exits": downs}
    with _quiet_peer():
        portfolio = vbt.Portfolio.from_signals(
            frame["close"],
            entries=entries,
            price=frame["open"],
            size=np.inf,
            fees=COMMISSION,
            init_cash=CASH,
            **sides,
        )
        records = portfolio.trades.values  # numpy structured records
        equity = portfolio.value().to_numpy(dtype=np.float64)
        final_equity = float(portfolio.final_value())
    trades = [
        TradeRow(
            entry_bar=int(r["entry_idx"]),
            exit_bar=int(r["exit_idx"]),
            size=float(r["size"]) * (1.0 if r["direction"] == 0 else -1.0),
            entry_price=float(r["entry_price"]),
            exit_price=float(r["exit_price"]),
            pnl=float(r["pnl"]),
        )
        for r in records
    ]
    return PeerRun(final_equity=final_equity, equity=equity, trades=trades)


# ------------------------------------------------------------------------------ comparison


def _close(a: float, b: float, *, scale: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(b), scale)


def trades_agree(ours: list[TradeRow], theirs: list[TradeRow]) -> bool:
    """Return whether both lists hold the same trades (bars exact, numbers to 1e-9).

    Prices and sizes are compared relative to themselves, P&L relative to the
    starting cash (a P&L near zero has no meaningful relative error).
    """
    if len(ours) != len(theirs):
        return False
    for mine, peer in zip(ours, theirs, strict=True):
        if (mine.entry_bar, mine.exit_bar) != (peer.entry_bar, peer.exit_bar):
            return False
        if not (
            _close(mine.size, peer.size, scale=0.0)
            and _close(mine.entry_price, peer.entry_price, scale=0.0)
            and _close(mine.exit_price, peer.exit_price, scale=0.0)
            and _close(mine.pnl, peer.pnl, scale=CASH)
        ):
            return False
    return True


def compare(
    name: str,
    bars: pl.DataFrame,
    fast: int,
    slow: int,
    direction: Direction,
    library: str,
    engine: Literal["vector", "event"] = "vector",
) -> Comparison:
    """Run ``sma_cross`` with us (``engine``) and with ``library`` and compare the results."""
    if library == "backtesting.py":
        peer = run_backtesting_py(bars, fast, slow, direction)
        ours = run_ours(bars, fast, slow, direction, sizing="whole", engine=engine)
    elif library == "vectorbt":
        peer = run_vectorbt(bars, fast, slow, direction)
        ours = run_ours(bars, fast, slow, direction, sizing="fractional", engine=engine)
    else:
        raise ValueError(f"unknown library {library!r}")
    curve = float(np.max(np.abs(ours.equity - peer.equity) / np.abs(peer.equity)))
    return Comparison(
        data=name,
        fast=fast,
        slow=slow,
        direction=direction,
        library=library,
        their_trades=len(peer.trades),
        our_trades=ours.metrics.trades,
        their_equity=peer.final_equity,
        our_equity=ours.metrics.final_equity,
        equity_difference=abs(ours.metrics.final_equity - peer.final_equity)
        / abs(peer.final_equity),
        curve_difference=curve,
        trades_match=trades_agree(our_trades(ours), peer.trades),
    )


def data_sets(synthetic_bars: int = SYNTHETIC_BARS) -> dict[str, pl.DataFrame]:
    """Return the shipped real daily data and synthetic 1-minute bars."""
    sample = REPO_ROOT / "golden" / "data"
    return {
        "sp500_daily": load_bars(sample / "sp500_daily.csv"),
        "nasdaq_daily": load_bars(sample / "nasdaq_daily.csv"),
        f"synthetic_1min_{synthetic_bars // 1000}k": synthesize_bars(
            bars=synthetic_bars, seed=SYNTHETIC_SEED
        ),
    }


def main() -> None:
    """Print the comparison table; exit 1 if any line disagrees beyond 1e-9."""
    header = (
        f"{'data':<22} {'fast':>4} {'slow':>4} {'direction':<10} {'library':<14} {'engine':<6} "
        f"{'trades':>6} {'ours':>6} {'final equity':>18} {'ours':>18} "
        f"{'rel diff':>9} {'curve diff':>10} {'trades ok':>9}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    failures = 0
    for name, bars in data_sets().items():
        for fast, slow in PAIRS:
            for direction in DIRECTIONS:
                for library, engine in itertools.product(
                    ("backtesting.py", "vectorbt"), ("vector", "event")
                ):
                    row = compare(name, bars, fast, slow, direction, library, engine)
                    failures += not row.agrees
                    print(
                        f"{row.data:<22} {row.fast:>4} {row.slow:>4} {row.direction:<10} "
                        f"{row.library:<14} {engine:<6} {row.their_trades:>6} "
                        f"{row.our_trades:>6} "
                        f"{row.their_equity:>18.9f} {row.our_equity:>18.9f} "
                        f"{row.equity_difference:>9.1e} {row.curve_difference:>10.1e} "
                        f"{'yes' if row.trades_match else 'NO':>9}",
                        flush=True,
                    )
    elapsed = time.perf_counter() - started
    verdict = "all agree" if not failures else f"{failures} line(s) disagree"
    print(f"\n{verdict} to {TOLERANCE:g} relative ({elapsed:.1f} s)")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
