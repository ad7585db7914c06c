"""Order submission through Ray Serve and through plain uvicorn: throughput, p50 / p99 latency.

Run: ``.venv/bin/python benchmarks/bench_serve.py`` for the complete figures
(~15 minutes; ``--full`` for every server x journal combination, ``--help``
for the rest); ``make bench`` runs it with ``--quick`` (~1.5 minutes) among the
other benchmarks. The figures and why they are what they are:
``docs/live-performance.md``. The parts live in ``benchmarks/serve_bench/``.

Every server is a child process, so the load generator (this process) never
shares an interpreter with it:

- ``serve``: the real ``tradepulse serve`` command (a local Ray cluster,
  :func:`tradepulse.serve.deployment.build_app`, the API on 127.0.0.1) with the
  shipped ``serve/config.yaml`` and the command's Serve settings (HAProxy
  ingress, user code on the replica's main loop; see
  :func:`tradepulse.serve.runtime.serve_environment`);
- ``serve-default``: the same with Ray's own defaults for those settings (Serve's
  Python HTTP proxy), the "before" figures;
- ``uvicorn``: the same FastAPI app over the same execution service
  (:func:`tradepulse.serve.deployment.create_trading_app`) served by plain
  uvicorn, for comparison.

Load: an asyncio HTTP/1.1 keep-alive client written for this script (on two
cores a general-purpose client costs the server CPU: the ``client`` column
gives this one's CPU per request; locust's is printed on its own row). Every
request is a ``POST /api/v1/orders`` of a one-unit buy limit far below the
market (it rests) with its own ``Idempotency-Key``, round-robin over
``ACCOUNTS`` API keys:

- closed loop: ``c`` clients, each sending its next order when its last answer
  arrives (throughput at that concurrency);
- open loop: Poisson arrivals at an offered rate, never waiting for answers;
  the "sustained rate" is the highest offered rate answered in full with
  p99 <= 25 ms (``lag99`` is how late the client itself sent, at p99);
- batch: ``POST /api/v1/orders/batch`` of ``BATCH_SIZE`` orders, closed loop;
- locust: ``benchmarks/locustfile.py`` headless, ``LOCUST_USERS`` users.

``other`` is the CPU the rest of the machine used meanwhile (% of all cores):
a step with a high figure ran next to someone else's work. Between steps the
global kill switch cancels the resting orders (the service's pre-trade check
scans an account's open orders, so they must not pile up).

Journals: ``disk`` is a folder on the file system of ``--disk-dir`` (default:
the temp folder), ``tmpfs`` one under ``/dev/shm``; ``full`` / ``normal`` are
the journal's SQLite synchronous modes (``full`` syncs the log at every commit).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from serve_bench.common import (
    ACCOUNTS,
    BATCH_SIZE,
    P99_TARGET_MS,
    SERVICE_CONFIG,
    file_system,
)
from serve_bench.load import OrderStream, closed_loop, open_loop, reset_orders, run, run_locust
from serve_bench.report import StepResult, print_results, print_summary, summarise
from serve_bench.servers import (
    JournalPlace,
    Server,
    cpu_by_role,
    cpu_delta,
    machine_busy_seconds,
    run_uvicorn_server,
)

WARMUP_S: Final = 3.0
STEP_S: Final = 6.0
QUICK_STEP_S: Final = 3.0
CONCURRENCY: Final = (1, 4, 16, 64)
RATES: Final = (100, 200, 300, 400, 600, 800, 1000)


@dataclass
class Plan:
    """Which steps to run and for how long."""

    step_s: float
    concurrency: tuple[int, ...]
    rates: tuple[float, ...]
    batch_concurrency: tuple[int, ...]
    locust: bool


def measure(server: Server, plan: Plan) -> list[StepResult]:
    """Run the plan's steps against a started ``server``."""
    process = server.process
    assert process is not None
    tag = itertools.count()

    def step(mode: str, value: float, batch: int = 0) -> StepResult:
        run(reset_orders(server.port))
        stream = OrderStream(f"{server.target}-{next(tag)}", batch=batch)
        expect = 200 if batch else 201
        before_cpu = cpu_by_role(process.pid)
        client_before = time.process_time()
        busy_before = machine_busy_seconds()
        if mode == "open":
            outcome = run(
                open_loop(server.port, stream, rate=value, seconds=plan.step_s, expect=expect)
            )
        else:
            outcome = run(
                closed_loop(
                    server.port, stream, concurrency=int(value), seconds=plan.step_s, expect=expect
                )
            )
        client_cpu = time.process_time() - client_before
        busy = machine_busy_seconds() - busy_before
        spent = cpu_delta(before_cpu, cpu_by_role(process.pid))
        return StepResult(
            mode="batch" if batch else mode,
            offered=value if mode == "open" else None,
            concurrency=None if mode == "open" else int(value),
            seconds=outcome.seconds,
            latencies_ms=outcome.latencies_ms,
            errors=outcome.errors,
            lags_ms=outcome.lags_ms,
            client_cpu_s=client_cpu,
            server_cpu=spent,
            others_cpu_s=max(0.0, busy - client_cpu - sum(spent.values())),
            orders_per_request=batch or 1,
        )

    # Warm up (the first requests import and compile lazily on the server).
    run(
        closed_loop(server.port, OrderStream("warmup"), concurrency=4, seconds=WARMUP_S, expect=201)
    )
    results = [step("closed", concurrency) for concurrency in plan.concurrency]
    for rate in plan.rates:
        result = step("open", rate)
        results.append(result)
        if result.done < 0.9 * rate * plan.step_s or result.percentile(99) > 20 * P99_TARGET_MS:
            break  # saturated: higher rates only queue
    results.extend(
        step("closed", concurrency, batch=BATCH_SIZE) for concurrency in plan.batch_concurrency
    )
    if plan.locust:
        run(reset_orders(server.port))
        before_cpu = cpu_by_role(process.pid)
        swarm = run_locust(server.port, seconds=plan.step_s, workdir=server.workdir)
        if swarm is not None:
            swarm.server_cpu = cpu_delta(before_cpu, cpu_by_role(process.pid))
            results.append(swarm)
    return results


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short steps, fewer of them")
    parser.add_argument("--full", action="store_true", help="every target x journal combination")
    parser.add_argument("--targets", help="comma-separated: serve, serve-default, uvicorn")
    parser.add_argument(
        "--journals", help="comma-separated: disk/full, disk/normal, tmpfs/full, ..."
    )
    parser.add_argument("--rates", help="comma-separated offered rates (requests/s)")
    parser.add_argument("--concurrency", help="comma-separated closed-loop client counts")
    parser.add_argument("--step-seconds", type=float, help=f"seconds per step (default {STEP_S:g})")
    parser.add_argument("--no-locust", action="store_true", help="skip the locust step")
    parser.add_argument(
        "--disk-dir", type=Path, help="folder for the disk journals (default: temp)"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the servers (repeatable)"
    )
    parser.add_argument("--uvicorn-server", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _numbers(text: str | None, default: tuple[float, ...]) -> tuple[float, ...]:
    return default if text is None else tuple(float(part) for part in text.split(",") if part)


def _matrix(options: argparse.Namespace) -> list[tuple[str, JournalPlace]]:
    """Return the (target, journal) pairs to run."""
    everything = [JournalPlace(p, s) for p in ("disk", "tmpfs") for s in ("full", "normal")]
    if options.targets or options.journals:
        targets = (options.targets or "serve,uvicorn").split(",")
        journals = (
            [JournalPlace(*item.split("/")) for item in options.journals.split(",")]
            if options.journals
            else [JournalPlace("disk", "full"), JournalPlace("disk", "normal")]
        )
        return list(itertools.product(targets, journals))
    if options.full:
        return list(itertools.product(["serve", "serve-default", "uvicorn"], everything))
    if options.quick:
        return [
            ("serve", JournalPlace("disk", "normal")),
            ("uvicorn", JournalPlace("disk", "normal")),
        ]
    default = [
        JournalPlace("disk", "full"),
        JournalPlace("disk", "normal"),
        JournalPlace("tmpfs", "normal"),
    ]
    return [
        *(("serve", journal) for journal in default),
        ("serve-default", JournalPlace("disk", "normal")),
        *(("uvicorn", journal) for journal in default),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark (or, with the hidden --uvicorn-server, be the comparison server)."""
    options = parse_arguments(argv)
    if options.uvicorn_server is not None:
        run_uvicorn_server(options.uvicorn_server, options.port)
        return
    plan = Plan(
        step_s=options.step_seconds or (QUICK_STEP_S if options.quick else STEP_S),
        concurrency=tuple(
            int(c) for c in _numbers(options.concurrency, (1, 16) if options.quick else CONCURRENCY)
        ),
        rates=_numbers(options.rates, (100, 300) if options.quick else RATES),
        batch_concurrency=(4,),
        locust=not options.no_locust,
    )
    disk_dir = (options.disk_dir or Path(tempfile.gettempdir())).resolve()
    extra_env = dict(item.split("=", 1) for item in options.env)
    print(
        f"order submission: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{plan.step_s:g} s per step; {ACCOUNTS} accounts; batch = {BATCH_SIZE} orders; "
        f"disk journals in {disk_dir} ({file_system(disk_dir)}), "
        f"tmpfs journals in /dev/shm ({file_system(Path('/dev/shm'))})",
        flush=True,
    )
    summaries = []
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "service.yaml").write_text(SERVICE_CONFIG, encoding="utf-8")
        for target, journal in _matrix(options):
            server = Server(target, journal, workdir=workdir, disk_dir=disk_dir)
            label = f"{target} (journal {journal.label})"
            started = time.perf_counter()
            try:
                server.start(extra_env)
                print(f"\n[{label}: up in {time.perf_counter() - started:.1f} s]", flush=True)
                results = measure(server, plan)
            finally:
                server.stop()
            print_results(label, results)
            summaries.append(summarise(label, results))
    print_summary(summaries)


if __name__ == "__main__":
    main()
