"""Time the synthetic market generator and the bar file round trip on 1,000,000 bars.

Run: ``.venv/bin/python benchmarks/bench_synth.py``. After a JIT warm-up, prints the best
of 5 runs for: ``synthesize_bars(bars=1_000_000)``; the same plus ``write_bars`` to
Parquet (the figure the < 3 s target is about); writing and loading Parquet and CSV
(``load_bars`` includes parsing and contract validation); ``validate_bars`` alone and
``resample_bars`` to 5 minutes. Then the first-call time in a fresh process (import +
numba compile or on-disk cache load), and whether two runs wrote byte-identical files.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tradepulse.data.loaders import load_bars, write_bars
from tradepulse.data.resample import resample_bars
from tradepulse.data.schema import validate_bars
from tradepulse.data.synth import synthesize_bars

BARS = 1_000_000
REPEATS = 5
SEED = 20240601

_FIRST_CALL = """
import time
t0 = time.perf_counter()
from tradepulse.data.synth import synthesize_bars
t1 = time.perf_counter()
synthesize_bars(bars=10, seed=1)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def _best(action: Callable[[], object]) -> float:
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    """Print the timings described in the module docstring."""
    synthesize_bars(bars=1_000, seed=SEED)  # JIT warm-up
    with tempfile.TemporaryDirectory() as folder:
        parquet = Path(folder) / "bars.parquet"
        csv = Path(folder) / "bars.csv"
        frame = synthesize_bars(bars=BARS, seed=SEED)

        rows: list[tuple[str, float]] = [
            ("synthesize_bars", _best(lambda: synthesize_bars(bars=BARS, seed=SEED))),
            (
                "synthesize_bars + write Parquet",
                _best(lambda: write_bars(synthesize_bars(bars=BARS, seed=SEED), parquet)),
            ),
            ("write_bars Parquet", _best(lambda: write_bars(frame, parquet))),
            ("load_bars Parquet", _best(lambda: load_bars(parquet))),
            ("write_bars CSV", _best(lambda: write_bars(frame, csv))),
            ("load_bars CSV", _best(lambda: load_bars(csv))),
            ("validate_bars", _best(lambda: validate_bars(frame))),
            ("resample_bars 1min -> 5m", _best(lambda: resample_bars(frame, every="5m"))),
        ]
        first_bytes = parquet.read_bytes()
        write_bars(synthesize_bars(bars=BARS, seed=SEED), parquet)
        identical = parquet.read_bytes() == first_bytes
        parquet_mib = parquet.stat().st_size / 2**20
        csv_mib = csv.stat().st_size / 2**20

    fresh = subprocess.run(
        [sys.executable, "-c", _FIRST_CALL], capture_output=True, text=True, check=True
    )
    import_seconds, first_call_seconds = (float(value) for value in fresh.stdout.split())

    print(f"{BARS:,} one-minute bars, seed {SEED}, best of {REPEATS} (after JIT warm-up)")
    print(f"{'step':<34}{'seconds':>9}{'bars/s':>14}")
    for name, seconds in rows:
        print(f"{name:<34}{seconds:>9.3f}{BARS / seconds:>14,.0f}")
    print(f"file sizes: Parquet {parquet_mib:.1f} MiB, CSV {csv_mib:.1f} MiB")
    print(f"same seed, byte-identical Parquet: {identical}")
    print(
        f"fresh process: import {import_seconds:.3f} s, first synthesize_bars call "
        f"{first_call_seconds:.3f} s (numba compile or cache load)"
    )


if __name__ == "__main__":
    main()
