"""Run every ``benchmarks/bench_*.py`` in its own process and print their figures.

Each script prints its own table; this runner only sequences them so one
benchmark's JIT caches and memory do not colour another's figures.
``bench_serve.py`` runs its ``--quick`` pass here (~1.5 minutes instead of ~15):
``.venv/bin/python benchmarks/bench_serve.py`` alone gives the complete figures
of ``docs/live-performance.md``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Final

#: Arguments a script gets here, instead of its (longer) default run.
ARGUMENTS: Final[dict[str, tuple[str, ...]]] = {"bench_serve.py": ("--quick",)}


def main() -> None:
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    failures = []
    for script in scripts:
        arguments = ARGUMENTS.get(script.name, ())
        print(f"\n=== {' '.join([script.name, *arguments])} ===", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(script), *arguments], check=False)
        print(f"--- {script.name}: {time.perf_counter() - started:.1f} s wall", flush=True)
        if result.returncode != 0:
            failures.append(script.name)
    if failures:
        print(f"\nfailed: {', '.join(failures)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
