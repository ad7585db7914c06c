"""What a load step measured, and the tables the serve benchmark prints."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from serve_bench.common import P99_TARGET_MS

__all__ = [
    "StepResult",
    "Summary",
    "percentile",
    "print_results",
    "print_summary",
    "summarise",
    "sustained_rate",
]


@dataclass
class StepResult:
    """What one load step measured."""

    mode: str
    offered: float | None  # requests/s (open loop), None for closed loop
    concurrency: int | None
    seconds: float
    latencies_ms: list[float]
    errors: int
    lags_ms: list[float]
    client_cpu_s: float
    server_cpu: dict[str, float] = field(default_factory=dict)
    others_cpu_s: float = 0.0
    reported: dict[float, float] = field(default_factory=dict)  # percentiles a tool reported
    orders_per_request: int = 1

    @property
    def others_percent(self) -> float:
        """Return the CPU other processes on the machine used, in % of all cores."""
        return 100 * self.others_cpu_s / (self.seconds * (os.cpu_count() or 1))

    @property
    def done(self) -> int:
        """Return the number of answered requests."""
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        """Return answered requests per second."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Return the q-th percentile of the latencies in milliseconds (nearest rank)."""
        if q in self.reported:
            return self.reported[q]
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile of ``values`` (nearest rank; NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def sustained_rate(results: Sequence[StepResult]) -> float | None:
    """Return the highest offered rate answered in full with p99 <= the target (None if none)."""
    best = None
    for result in results:
        if result.mode != "open" or result.offered is None:
            continue
        served = result.errors == 0 and result.done == len(result.lags_ms)
        if served and result.percentile(99) <= P99_TARGET_MS:
            best = result.offered if best is None else max(best, result.offered)
    return best


def print_results(label: str, results: Sequence[StepResult]) -> None:
    """Print one server's table."""
    print(f"\n{label}")
    print(
        f"  {'step':<15}{'req/s':>7}{'orders/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}"
        f"{'lag99':>7}{'client':>7}{'other':>7}  server CPU ms per request, by process"
    )
    for result in results:
        if result.mode == "open":
            name = f"open {result.offered:g}/s"
        elif result.mode.startswith("locust"):
            name = result.mode
        else:
            name = f"{result.mode} c={result.concurrency}"
        per = max(result.done, 1)
        cpu = ", ".join(
            f"{role} {seconds * 1e3 / per:.2f}"
            for role, seconds in sorted(result.server_cpu.items(), key=lambda item: -item[1])
            if seconds * 1e3 / per >= 0.05
        )
        lag = f"{percentile(result.lags_ms, 99):7.2f}" if result.lags_ms else f"{'':7}"
        other = f"{result.others_percent:6.0f}%" if result.others_cpu_s else f"{'':7}"
        print(
            f"  {name:<15}{result.rate:>7.0f}{result.rate * result.orders_per_request:>9.0f}"
            f"{result.percentile(50):>8.2f}{result.percentile(99):>8.2f}{result.errors:>5}"
            f"{lag}{result.client_cpu_s * 1e3 / per:>7.2f}{other}  {cpu}",
            flush=True,
        )
    rate = sustained_rate(results)
    shown = "none of the offered rates" if rate is None else f"{rate:g} orders/s"
    print(f"  sustained rate with p99 <= {P99_TARGET_MS:g} ms: {shown}", flush=True)


@dataclass
class Summary:
    """One server's headline figures."""

    label: str
    sustained: float | None
    peak: float
    sequential_p50: float
    sequential_p99: float
    batch_orders: float


def summarise(label: str, results: Sequence[StepResult]) -> Summary:
    """Return the headline figures of one server's steps."""
    sequential = next((r for r in results if r.mode == "closed" and r.concurrency == 1), None)
    return Summary(
        label=label,
        sustained=sustained_rate(results),
        peak=max((r.rate for r in results if r.mode == "closed"), default=0.0),
        sequential_p50=math.nan if sequential is None else sequential.percentile(50),
        sequential_p99=math.nan if sequential is None else sequential.percentile(99),
        batch_orders=max(
            (r.rate * r.orders_per_request for r in results if r.mode == "batch"), default=0.0
        ),
    )


def print_summary(summaries: Sequence[Summary]) -> None:
    """Print every server's headline figures, one row each."""
    print(f"\nsummary (the sustained rate keeps p99 <= {P99_TARGET_MS:g} ms)")
    print(
        f"  {'server (journal)':<34}{'sustained/s':>12}{'peak req/s':>11}"
        f"{'c=1 p50':>9}{'c=1 p99':>9}{'batch orders/s':>16}"
    )
    for summary in summaries:
        shown = "-" if summary.sustained is None else f"{summary.sustained:g}"
        print(
            f"  {summary.label:<34}{shown:>12}{summary.peak:>11.0f}{summary.sequential_p50:>9.2f}"
            f"{summary.sequential_p99:>9.2f}{summary.batch_orders:>16.0f}"
        )
