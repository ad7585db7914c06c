"""Order submission through Ray Serve and through plain uvicorn: throughput, p50 / p99 latency.

Run: ``.venv/bin/python benchmarks/bench_serve.py`` (``make bench`` runs it with
the other benchmarks; ``--quick`` for a short pass, ``--full`` for every server
x journal combination, ``--help`` for the rest). The figures and why they are
what they are: ``docs/live-performance.md``.

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
import asyncio
import contextlib
import csv
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import psutil
import uvloop
import yaml

_T = TypeVar("_T")

REPO: Final = Path(__file__).resolve().parents[1]
HOST: Final = "127.0.0.1"
ACCOUNTS: Final = 16
BATCH_SIZE: Final = 20
P99_TARGET_MS: Final = 25.0
WARMUP_S: Final = 3.0
STEP_S: Final = 6.0
QUICK_STEP_S: Final = 3.0
CONCURRENCY: Final = (1, 4, 16, 64)
RATES: Final = (100, 200, 300, 400, 600, 800, 1000)
LOCUST_USERS: Final = 16
MAX_CONNECTIONS: Final = 256
START_TIMEOUT_S: Final = 180.0
SEED: Final = 20240601

#: Ray's own defaults for the settings `tradepulse serve` changes (the "before" figures).
RAY_DEFAULTS: Final = {
    "RAY_SERVE_ENABLE_HA_PROXY": "0",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1",
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "0",
}

ORDER: Final = {
    "symbol": "SPX",
    "side": "buy",
    "quantity": "1",
    "order_type": "limit",
    "limit_price": "1.00",
}
ORDER_BODY: Final = json.dumps(ORDER, separators=(",", ":")).encode()
#: The service behind every server: no throttles or open-order cap to hit.
SERVICE_CONFIG: Final = """\
initial_cash: "1000000000"
max_open_orders: null
orders_per_second_account: null
orders_per_second_strategy: null
instruments:
  SPX: {price_increment: "0.01", quantity_increment: "1", cash_increment: "0.01"}
"""
ADMIN_SECRET: Final = "bench-admin-secret"


def trade_secret(index: int) -> str:
    """Return the bench secret of trading account ``index``."""
    return f"bench-trader-{index:02d}-secret"


def api_keys_env() -> str:
    """Return ``TRADEPULSE_API_KEYS`` for the bench accounts and the admin key."""
    keys = [f"acct{index:02d}:trade:{trade_secret(index)}" for index in range(ACCOUNTS)]
    return ",".join([*keys, f"admin:admin:{ADMIN_SECRET}"])


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def file_system(path: Path) -> str:
    """Return the type of the file system holding ``path`` (``ext4``, ``tmpfs``, ...)."""
    best = None
    for partition in psutil.disk_partitions(all=True):
        mount = Path(partition.mountpoint)
        if path.is_relative_to(mount) and (best is None or len(str(mount)) > len(best[0])):
            best = (str(mount), partition.fstype)
    return "?" if best is None else best[1]


# ----------------------------------------------------------------------------- HTTP client


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests, one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to ``127.0.0.1:port`` (Nagle off)."""
        reader, writer = await asyncio.open_connection(HOST, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``; return the status and the body (Content-Length or chunked)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        found = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        if found is not None:
            return status, await self.reader.readexactly(int(found.group(1)))
        if b"transfer-encoding: chunked" in lower:
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    return status, b"".join(chunks)
                chunks.append(chunk[:-2])
        return status, b""

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


def http_request(
    method: str, path: str, *, secret: str, body: bytes = b"", headers: Sequence[str] = ()
) -> bytes:
    """Return the bytes of one HTTP/1.1 request."""
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {HOST}",
        f"Authorization: Bearer {secret}",
        *headers,
    ]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class OrderStream:
    """Order requests round-robin over the bench accounts, each with a fresh Idempotency-Key."""

    def __init__(self, tag: str, *, batch: int = 0) -> None:
        self._tag = tag
        self._count = itertools.count()
        self._batch = batch
        if batch:
            self._body = json.dumps(
                {"orders": [json.loads(ORDER_BODY)] * batch}, separators=(",", ":")
            ).encode()

    def next(self) -> bytes:
        """Return the next request."""
        number = next(self._count)
        secret = trade_secret(number % ACCOUNTS)
        key = f"Idempotency-Key: {self._tag}-{number}"
        if self._batch:
            return http_request(
                "POST", "/api/v1/orders/batch", secret=secret, body=self._body, headers=[key]
            )
        return http_request("POST", "/api/v1/orders", secret=secret, body=ORDER_BODY, headers=[key])


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


@dataclass
class Outcome:
    """Latencies (ms) of answered requests, failures, send lags and the step's duration."""

    latencies_ms: list[float] = field(default_factory=list)
    lags_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def record(self, latency: float | None) -> None:
        """Count one answer (None: a failure)."""
        if latency is None:
            self.errors += 1
        else:
            self.latencies_ms.append(latency)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile of ``values`` (nearest rank; NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


class ConnectionPool:
    """Idle keep-alive connections, opened on demand up to ``MAX_CONNECTIONS``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[Connection] = []
        self.opened = 0

    async def take(self) -> Connection:
        """Return an idle connection or a new one."""
        if self.idle:
            return self.idle.pop()
        self.opened += 1
        return await Connection.open(self.port)

    def give(self, connection: Connection) -> None:
        """Return a healthy connection to the pool."""
        self.idle.append(connection)

    async def prepare(self, count: int) -> None:
        """Open ``count`` connections ahead of the load (connecting is not what we time)."""
        while len(self.idle) < count:
            self.opened += 1
            self.idle.append(await Connection.open(self.port))

    def close(self) -> None:
        """Close every idle connection."""
        for connection in self.idle:
            connection.close()
        self.idle.clear()


async def _one(pool: ConnectionPool, request: bytes, expect: int) -> float | None:
    """Send ``request`` on a pooled connection; return its latency in ms (None: failed)."""
    connection = await pool.take()
    sent = time.perf_counter()
    try:
        status, _ = await connection.send(request)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        connection.close()
        return None
    latency = (time.perf_counter() - sent) * 1e3
    pool.give(connection)
    return latency if status == expect else None


async def closed_loop(
    port: int, stream: OrderStream, *, concurrency: int, seconds: float, expect: int
) -> Outcome:
    """Run ``concurrency`` clients for ``seconds`` (each sends when its last answer arrives)."""
    pool = ConnectionPool(port)
    await pool.prepare(concurrency)
    outcome = Outcome()
    start = time.perf_counter()
    end = start + seconds

    async def client() -> None:
        while time.perf_counter() < end:
            outcome.record(await _one(pool, stream.next(), expect))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    outcome.seconds = time.perf_counter() - start
    pool.close()
    return outcome


async def open_loop(
    port: int, stream: OrderStream, *, rate: float, seconds: float, expect: int
) -> Outcome:
    """Send Poisson arrivals at ``rate``/s for ``seconds``, never waiting for answers.

    Latency runs from the send; ``lags_ms`` records how late each send was
    against its schedule (the client's own delay, reported separately).
    """
    pool = ConnectionPool(port)
    await pool.prepare(min(MAX_CONNECTIONS, max(8, int(rate * 0.05))))
    outcome = Outcome()
    in_flight: set[asyncio.Task[None]] = set()
    gate = asyncio.Semaphore(MAX_CONNECTIONS)
    rng = random.Random(SEED)

    async def fire() -> None:
        async with gate:
            outcome.record(await _one(pool, stream.next(), expect))

    start = time.perf_counter()
    scheduled = start
    end = start + seconds
    while True:
        scheduled += rng.expovariate(rate)
        if scheduled >= end:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        outcome.lags_ms.append((time.perf_counter() - scheduled) * 1e3)
        task = asyncio.create_task(fire())
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.gather(*in_flight)
    outcome.seconds = max(time.perf_counter() - start, seconds)
    pool.close()
    return outcome


async def admin_call(port: int, method: str, path: str, body: dict[str, Any] | None) -> int:
    """Send one admin request; return its status."""
    connection = await Connection.open(port)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        status, _ = await connection.send(
            http_request(method, path, secret=ADMIN_SECRET, body=payload)
        )
        return status
    finally:
        connection.close()


async def reset_orders(port: int) -> None:
    """Cancel every resting order (engage, then release, the global kill switch)."""
    for engaged in (True, False):
        status = await admin_call(
            port, "POST", "/api/v1/kill-switch", {"engaged": engaged, "all_accounts": True}
        )
        if status != 200:
            raise RuntimeError(f"kill switch answered {status}")


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` on a fresh uvloop event loop (its timers overshoot less than asyncio's)."""
    return uvloop.run(coroutine)


# ----------------------------------------------------------------------------- CPU accounting


def _role(process: psutil.Process) -> str:
    try:
        line = " ".join(process.cmdline())
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    for marker, role in (
        ("ProxyActor", "proxy"),
        ("HAProxy", "proxy"),
        ("haproxy", "haproxy"),
        ("TradingApi", "replica"),
        ("StrategyRunners", "runners"),
        ("ServeReplica", "other-replica"),
        ("ServeController", "controller"),
        ("raylet", "raylet"),
        ("gcs_server", "gcs"),
    ):
        if marker in line or marker in name:
            return role
    if "tradepulse" in line or "bench_serve" in line:
        return "server"
    return "ray-other"


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores have spent busy since boot (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_by_role(root: int) -> dict[int, tuple[str, float]]:
    """Return pid -> (role, CPU seconds) for ``root`` and all its descendants."""
    try:
        top = psutil.Process(root)
        processes = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    found = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = process.cpu_times()
            found[process.pid] = (_role(process), times.user + times.system)
    return found


def cpu_delta(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """Return CPU seconds spent per role between two snapshots."""
    spent: dict[str, float] = {}
    for pid, (role, total) in after.items():
        base = before.get(pid, (role, 0.0))[1]
        spent[role] = spent.get(role, 0.0) + max(0.0, total - base)
    return spent


# ----------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class JournalPlace:
    """Where a server keeps its journal and how it syncs."""

    place: str  # "disk" or "tmpfs"
    sync: str  # "full" or "normal"

    @property
    def label(self) -> str:
        """Return e.g. ``disk/full``."""
        return f"{self.place}/{self.sync}"


class Server:
    """A server child process running the API on ``127.0.0.1:port``."""

    def __init__(
        self, target: str, journal: JournalPlace, *, workdir: Path, disk_dir: Path
    ) -> None:
        self.target = target
        self.journal = journal
        self.port = free_port()
        self.workdir = workdir
        base = Path("/dev/shm") if journal.place == "tmpfs" else disk_dir
        self.journal_dir = Path(tempfile.mkdtemp(prefix="tp-bench-journal-", dir=base))
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def command(self) -> list[str]:
        """Return the server's command line."""
        journal = str(self.journal_dir / "journal.sqlite")
        service = str(self.workdir / "service.yaml")
        if self.target == "uvicorn":
            args = {
                "journal": journal,
                "journal_sync": self.journal.sync,
                "service_config": service,
            }
            return [
                sys.executable,
                str(Path(__file__).resolve()),
                "--uvicorn-server",
                json.dumps(args),
                "--port",
                str(self.port),
            ]
        # The shipped config, with this run's journal mode and service.
        config = yaml.safe_load((REPO / "serve" / "config.yaml").read_text(encoding="utf-8"))
        (application,) = config["applications"]
        application["args"].update(journal_sync=self.journal.sync, service_config=service)
        if self.target == "serve-default":
            application.pop("runtime_env", None)
        path = self.workdir / f"{self.target}-{self.journal.sync}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return [
            sys.executable,
            "-m",
            "tradepulse",
            "serve",
            "--config",
            str(path),
            "--port",
            str(self.port),
            "--journal",
            journal,
        ]

    def start(self, extra_env: dict[str, str]) -> None:
        """Start the server and wait until it answers ``/ready``.

        Raises:
            RuntimeError: the server exited or did not come up in time.
        """
        env = {**os.environ, "TRADEPULSE_API_KEYS": api_keys_env()}
        env.pop("RAY_ADDRESS", None)
        if self.target == "serve-default":
            env.update(RAY_DEFAULTS)
        env.update(extra_env)
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} exited:\n" + "".join(self.lines)[-3000:])
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                if run(admin_call(self.port, "GET", "/api/v1/ready", None)) == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{self.target} did not come up:\n" + "".join(self.lines)[-3000:])

    def stop(self) -> None:
        """Stop the server (SIGTERM: SIGINT may be ignored in a background job) and wait."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.journal_dir, ignore_errors=True)


def run_uvicorn_server(args_json: str, port: int) -> None:
    """Serve the TradingApi FastAPI app with plain uvicorn (the comparison server)."""
    import uvicorn

    from tradepulse.serve.deployment import create_trading_app, resolve_args

    resolved = resolve_args(json.loads(args_json))
    trading = create_trading_app(resolved.model_dump(mode="json"))
    uvicorn.run(trading.app, host=HOST, port=port, log_level="warning", access_log=False)


# ----------------------------------------------------------------------------- locust


def run_locust(port: int, *, seconds: float, workdir: Path) -> StepResult | None:
    """Run ``benchmarks/locustfile.py`` headless for ``seconds``; None if locust is missing."""
    locust = shutil.which("locust", path=str(Path(sys.executable).parent))
    if locust is None:
        return None
    prefix = workdir / f"locust-{port}"
    env = {
        **os.environ,
        "TRADEPULSE_BENCH_KEY": ",".join(trade_secret(index) for index in range(ACCOUNTS)),
    }
    command = [
        locust,
        "-f",
        str(Path(__file__).resolve().parent / "locustfile.py"),
        "--headless",
        "--host",
        f"http://{HOST}:{port}",
        "-u",
        str(LOCUST_USERS),
        "-r",
        str(LOCUST_USERS),
        "-t",
        f"{seconds:g}s",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    started = time.perf_counter()
    process = psutil.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = 0.0
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            cpu = times.user + times.system
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    with open(f"{prefix}_stats.csv", encoding="utf-8") as stats:
        row = next(line for line in csv.DictReader(stats) if line["Name"] == "Aggregated")
    count = int(row["Request Count"])
    return StepResult(
        mode=f"locust u={LOCUST_USERS}",
        offered=None,
        concurrency=LOCUST_USERS,
        seconds=count / float(row["Requests/s"]) if float(row["Requests/s"]) else elapsed,
        latencies_ms=[math.nan] * count,  # locust keeps percentiles, not samples
        reported={50.0: float(row["50%"]), 99.0: float(row["99%"])},
        errors=int(row["Failure Count"]),
        lags_ms=[],
        client_cpu_s=cpu,
    )


# ----------------------------------------------------------------------------- the run


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


if __name__ == "__main__":
    main()
