"""End to end: a real Prometheus scrapes the live API's /api/v1/metrics with a read key.

The app (real execution service, in-process backend, metered) runs under
uvicorn in a thread on 127.0.0.1; a ``prometheus`` process started from a
configuration derived from ``observability/prometheus.yml`` scrapes it every
second; its HTTP API must then report the orders this test sent. Skipped,
saying how to install it, when the ``prometheus`` binary is missing
(``observability/install-prometheus.sh``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from tradepulse.execution.journal import Journal
from tradepulse.execution.risk import RiskLimits
from tradepulse.execution.service import ExecutionService
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.serve import ApiKeyStore, InProcessBackend, create_app
from tradepulse.serve.metrics import (
    MeteredBackend,
    RequestClockMiddleware,
    TradingMetrics,
    metrics_router,
)

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed: run `bash observability/install-prometheus.sh` "
    "(as root it installs Debian's prometheus package)",
)

OBSERVABILITY = Path(__file__).resolve().parents[2] / "observability"
READER_SECRET = "reader-secret-for-prometheus"
TRADER_SECRET = "trader-secret-0002"
FEED_SECRET = "feed-admin-secret-03"  # POST /market/bars needs admin
DAY_NS = 86_400 * 10**9
WAIT_SECONDS = 25.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(what: str, check: Callable[[], bool], *, log: Path | None = None) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    detail = log.read_text(encoding="utf-8", errors="replace")[-3000:] if log else ""
    pytest.fail(f"timed out after {WAIT_SECONDS} s waiting for {what}\n{detail}")


@pytest.fixture
def api_port() -> Iterator[int]:
    """Serve the metered app with uvicorn in a thread; yield its port on 127.0.0.1."""
    service = ExecutionService(
        journal=Journal(":memory:"),
        config=ServiceConfig(risk=RiskLimits(max_order_quantity=Decimal(100))),
    )
    metrics = TradingMetrics()
    backend = MeteredBackend(InProcessBackend(service), metrics)
    keys = ApiKeyStore.from_env_value(
        f"reader:read:{READER_SECRET},trader:trade:{TRADER_SECRET},feed:admin:{FEED_SECRET}"
    )
    app = create_app(backend, keys=keys, routers=[metrics_router(metrics, refresh=backend.refresh)])
    app.add_middleware(RequestClockMiddleware, clock=metrics.clock)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        _wait_for("uvicorn to start", lambda: server.started)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _prometheus_config(folder: Path, *, api_port: int) -> Path:
    """Write our prometheus.yml, narrowed to the TradePulse job on ``api_port``, into ``folder``."""
    config: dict[str, Any] = yaml.safe_load(
        (OBSERVABILITY / "prometheus.yml").read_text(encoding="utf-8")
    )
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "tradepulse")
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{api_port}"]
    config["scrape_configs"] = [job]
    shutil.copy(OBSERVABILITY / "rules.yml", folder / "rules.yml")
    credentials = folder / job["authorization"]["credentials_file"]
    credentials.write_text(READER_SECRET + "\n", encoding="utf-8")
    credentials.chmod(0o600)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def prometheus(tmp_path: Path, api_port: int) -> Iterator[httpx.Client]:
    """Start prometheus scraping the API every second; yield a client of its HTTP API."""
    config = _prometheus_config(tmp_path, api_port=api_port)
    port = _free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:

            def ready() -> bool:
                if process.poll() is not None:
                    pytest.fail(
                        f"prometheus exited with {process.returncode}:\n"
                        + log.read_text(encoding="utf-8", errors="replace")[-3000:]
                    )
                try:
                    return client.get("/-/ready").status_code == 200
                except httpx.TransportError:
                    return False

            _wait_for("prometheus to be ready", ready, log=log)
            yield client
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _query(client: httpx.Client, expr: str) -> dict[str, float]:
    """Return an instant query's result as {label text: value}."""
    body = client.get("/api/v1/query", params={"query": expr}).json()
    assert body["status"] == "success", body
    return {
        ",".join(f"{k}={v}" for k, v in sorted(row["metric"].items())): float(row["value"][1])
        for row in body["data"]["result"]
    }


def test_prometheus_scrapes_the_order_counters(
    api_port: int, prometheus: httpx.Client, tmp_path: Path
) -> None:
    trade = {"Authorization": f"Bearer {TRADER_SECRET}"}
    feed = {"Authorization": f"Bearer {FEED_SECRET}"}
    bar = {"symbol": "AAPL", "open": 100, "high": 101, "low": 99, "close": 100, "volume": 1e6}
    order = {"symbol": "AAPL", "side": "buy", "quantity": "10", "strategy": "sma"}
    with httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10.0) as api:
        assert api.post("/api/v1/market/bars", json=bar | {"ts": DAY_NS}, headers=feed).is_success
        # Two orders accepted (one of them retried with its key), one above the 100-unit limit.
        for headers in (
            trade | {"Idempotency-Key": "k1"},
            trade | {"Idempotency-Key": "k1"},
            trade,
        ):
            assert api.post("/api/v1/orders", json=order, headers=headers).is_success
        big = order | {"quantity": "500"}
        assert api.post("/api/v1/orders", json=big, headers=trade).json()["status"] == "rejected"
        fills = api.post("/api/v1/market/bars", json=bar | {"ts": 2 * DAY_NS}, headers=feed)
        assert len(fills.json()["fills"]) == 2

    def scraped() -> bool:
        return _query(prometheus, "sum(tradepulse_fills_total)") == {"": 2.0}

    _wait_for("a scrape with the fills", scraped, log=tmp_path / "prometheus.log")

    assert _query(prometheus, 'up{job="tradepulse"}') == {
        f"__name__=up,instance=127.0.0.1:{api_port},job=tradepulse,service=tradepulse-api": 1.0
    }
    assert _query(prometheus, "sum by (order_type) (tradepulse_orders_submitted_total)") == {
        "order_type=market": 3.0
    }
    assert _query(prometheus, "sum by (reason) (tradepulse_orders_rejected_total)") == {
        "reason=max_order_quantity": 1.0
    }
    assert _query(prometheus, "sum by (strategy) (tradepulse_orders_filled_total)") == {
        "strategy=sma": 2.0
    }
    assert _query(prometheus, "sum(tradepulse_orders_replayed_total)") == {"": 1.0}
    # 20 units bought at 100 (day 2 open), marked at 100.
    assert _query(prometheus, "sum by (symbol) (tradepulse_position_units)") == {
        "symbol=AAPL": 20.0
    }
    assert _query(prometheus, "sum(tradepulse_request_ack_seconds_count)") == {"": 4.0}

    # The shipped rules loaded, and every one evaluates against the real series.
    def rules_healthy() -> bool:
        groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
        assert [group["name"] for group in groups] == ["tradepulse"]
        return all(rule["health"] == "ok" for group in groups for rule in group["rules"])

    _wait_for("the rules to evaluate", rules_healthy, log=tmp_path / "prometheus.log")
    firing = prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
    assert [alert for alert in firing if alert["state"] == "firing"] == []
