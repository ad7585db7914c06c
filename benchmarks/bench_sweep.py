"""Time the issue's parameter sweep: sma_cross on 1,000,000 synthetic 1-minute bars.

Run: ``.venv/bin/python benchmarks/bench_sweep.py [--vectorbt]``. The workload:
``--grid fast=5:100:5 --grid slow=20:300:10`` (580 grid points, 499 with
fast < slow), 0.1% commission, on ``tradepulse.data.synthesize_bars`` bars
(fixed seed) written to a Parquet file. Each case runs the real command,
``tradepulse sweep ... --json``, in a fresh process and prints its figures:

- the sweep itself: elapsed seconds and combinations per second (targets:
  >= 150 combos/s on the Ray executor on a 2-core machine);
- start-up: starting the local Ray cluster and warming its workers up (imports,
  compiled kernels), which ``elapsed_s`` excludes; and end to end;
- peak memory of the whole process tree (driver, Ray's processes, workers):
  summed RSS (shared pages counted in every process) and summed PSS (shared
  pages split; what the tree really holds). Target: <= 1.5 GB.

Cases: the Ray executor (a local cluster started by the command) and the local
executor (one process, one core) for reference. ``--vectorbt`` also times
vectorbt's ``Portfolio.from_signals`` over the same 499 combinations (slow and
memory-hungry: minutes and several GB).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BARS = 1_000_000
SEED = 20240601
GRID = ["--grid", "fast=5:100:5", "--grid", "slow=20:300:10"]
COMMISSION = 0.001
TARGET_COMBOS_PER_S = 150.0
TARGET_MEMORY_MB = 1.5 * 1024


def run_case(data: Path, out: Path, *, local: bool) -> dict[str, Any]:
    """Run ``tradepulse sweep`` on ``data`` in a fresh process; return its JSON and wall time."""
    command = [
        sys.executable, "-m", "tradepulse", "sweep", str(data), "--strategy", "sma_cross",
        *GRID, "--commission", str(COMMISSION), "--out", str(out), "--json", "--top", "3",
    ]  # fmt: skip
    if local:
        command.append("--local")
    started = time.perf_counter()
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    payload: dict[str, Any] = json.loads(completed.stdout)
    payload["wall_s"] = time.perf_counter() - started
    return payload


def report(name: str, payload: dict[str, Any], *, judged: bool) -> None:
    """Print one case's figures (``judged``: against the targets)."""
    memory = payload["peak_pss_mb"] or payload["peak_rss_mb"]
    rate = payload["combos_per_s"]
    verdict = "ok" if rate >= TARGET_COMBOS_PER_S and memory <= TARGET_MEMORY_MB else "MISSED"
    cost = payload["cost"]
    print(f"{name}:")
    print(
        f"  {payload['combos']} combinations ({payload['skipped']} skipped), "
        f"{payload['batches']} batches of {payload['batch_size']}"
    )
    print(f"  sweep itself:       {payload['elapsed_s']:.2f} s, {rate:,.1f} combos/s")
    print(
        f"  start-up:           {payload['startup_s']:.2f} s (cluster start + worker warm-up); "
        f"end to end {payload['wall_s']:.2f} s "
        f"({payload['combos'] / payload['wall_s']:,.1f} combos/s)"
    )
    print(
        f"  peak memory (tree): {payload['peak_rss_mb']:,.0f} MiB RSS summed, "
        f"{payload['peak_pss_mb'] or float('nan'):,.0f} MiB PSS summed"
    )
    print(
        f"  task cost:          {cost['tasks']} tasks, {cost['cpu_s']:.2f} CPU s, "
        f"{cost['wall_s']:.2f} task-wall s, worker peak {cost['max_peak_rss_mb']:,.0f} MiB, "
        f"{cost['workers']} worker(s)"
    )
    if judged:
        print(
            f"  targets (>= {TARGET_COMBOS_PER_S:g} combos/s, <= {TARGET_MEMORY_MB:,.0f} MiB "
            f"PSS): {verdict}"
        )


def vectorbt_seconds(data: Path) -> tuple[float, float] | None:
    """Return (seconds, peak RSS MiB) of vectorbt on the same 499 combinations, or None."""
    script = f"""
import resource, time, warnings
import numpy as np
import polars as pl
import vectorbt as vbt
bars = pl.read_parquet({str(data)!r})
close = bars.get_column("close").to_pandas()
price = bars.get_column("open").to_pandas()
pairs = [(f, s) for f in range(5, 101, 5) for s in range(20, 301, 10) if f < s]
started = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fast = vbt.MA.run(close, [f for f, _ in pairs], short_name="fast")
    slow = vbt.MA.run(close, [s for _, s in pairs], short_name="slow")
    entries = fast.ma_crossed_above(slow)
    exits = fast.ma_crossed_below(slow)
    portfolio = vbt.Portfolio.from_signals(
        close, entries.shift(1, fill_value=False), exits.shift(1, fill_value=False),
        price=price, fees={COMMISSION}, init_cash=10_000.0, freq="1min",
    )
    portfolio.sharpe_ratio()
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    try:
        completed = subprocess.run(
            [sys.executable, "-c", script], check=True, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as error:
        print(f"vectorbt failed: {error.stderr.strip().splitlines()[-1:]}")
        return None
    seconds, peak = completed.stdout.split()
    return float(seconds), float(peak)


def main() -> None:
    """Print the sweep figures for the Ray and the local executor."""
    from tradepulse.data import synthesize_bars

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "bars.parquet"
        synthesize_bars(bars=BARS, seed=SEED).write_parquet(data)
        print(
            f"sma_cross {' '.join(GRID)}, {COMMISSION:.1%} commission, "
            f"{BARS:,} synthetic 1-minute bars"
        )
        report(
            "Ray executor (local cluster)",
            run_case(data, Path(folder) / "ray", local=False),
            judged=True,
        )
        report(
            "local executor (one process, for reference)",
            run_case(data, Path(folder) / "local", local=True),
            judged=False,
        )
        if "--vectorbt" in sys.argv:
            peer = vectorbt_seconds(data)
            if peer is not None:
                print(
                    f"vectorbt (reference): {peer[0]:.1f} s ({499 / peer[0]:,.1f} combos/s), "
                    f"peak RSS {peer[1]:,.0f} MiB"
                )


if __name__ == "__main__":
    main()
