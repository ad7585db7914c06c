"""Load for the serve benchmark: an asyncio HTTP/1.1 client, closed and open loops, locust.

On two cores a general-purpose client costs the server CPU; this one spends
0.1-0.2 ms per request. Every request is prepared bytes on a pooled
connection (Nagle off); latency runs from the send to the end of the answer.
"""

from __future__ import annotations

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
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import psutil
import uvloop

from serve_bench.common import (
    ACCOUNTS,
    ADMIN_SECRET,
    HOST,
    LOCUST_USERS,
    MAX_CONNECTIONS,
    ORDER_BODY,
    SEED,
    trade_secret,
)
from serve_bench.report import StepResult

__all__ = [
    "Connection",
    "ConnectionPool",
    "OrderStream",
    "Outcome",
    "admin_call",
    "closed_loop",
    "http_request",
    "open_loop",
    "reset_orders",
    "run",
    "run_locust",
]

_T = TypeVar("_T")
LOCUSTFILE: Final = Path(__file__).resolve().parents[1] / "locustfile.py"


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
        str(LOCUSTFILE),
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
