"""Liveness pings on Ray Serve: the ingress's lifespan pings the runner deployment, no bars needed.

The live application runs on the session's Ray cluster as ``serve/config.yaml``
builds it, with ``runners.ping_seconds`` at 0.2 s. A strategy takes a few bars,
then every runner replica is killed and no bar comes: the heartbeat
(``tradepulse_strategy_heartbeat_timestamp_seconds``) must move past the kill
(a replacement replica answered a ping, which for a replica that never held the
strategy means it rebuilt it from the journal), while the last-bar gauge stays
where the bars left it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from strategy_support import serve_app

from tradepulse.cluster import ClusterInfo
from tradepulse.data import load_bars
from tradepulse.live import iter_bars
from tradepulse.serve.auth import hash_secret

REPO = Path(__file__).resolve().parents[2]
APP = "strategy-pings-on-serve"
SECRET = "desk-secret-pings-1"
HEADERS = {"Authorization": f"Bearer {SECRET}"}
INCREMENTS = {"price_increment": "0.01", "quantity_increment": "0.0001", "cash_increment": "0.01"}
SERVICE = f"""
commission_rate: "0.0005"
instruments: {{SPX: {INCREMENTS}}}
risk: {{margin_rate: null}}
"""


@pytest.fixture(scope="module")
def api(ray_session: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the live application on Serve with fast pings; yield its /api/v1 base URL."""
    from tradepulse.serve.settings import AppArgs, RunnerArgs

    folder = tmp_path_factory.mktemp("pings")
    (folder / "service.yaml").write_text(SERVICE)
    args = AppArgs(
        journal=str(folder / "journal.sqlite"),
        journal_sync="normal",
        service_config=str(folder / "service.yaml"),
        api_keys=({"id": "desk", "scopes": ["admin"], "secret_sha256": hash_secret(SECRET)},),
        runners=RunnerArgs(min_replicas=1, max_replicas=1, ping_seconds=0.2),
    )
    with serve_app(args, name=APP) as url:
        yield url


def _gauge(client: httpx.Client, name: str, strategy: str) -> float | None:
    text = client.get("/metrics").text
    found = re.search(rf'^{name}{{strategy="{strategy}"}} (\S+)$', text, re.MULTILINE)
    return None if found is None else float(found.group(1))


def _runner_replicas() -> list[str]:
    import ray

    return sorted(
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if "StrategyRunners" in actor["name"]
    )


def test_pings_keep_a_strategy_alive_and_rebuild_its_killed_runner_without_bars(
    api: str,
) -> None:
    import ray

    bars = list(iter_bars(load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(40)))
    bodies = [
        {"symbol": "SPX", "ts": b.ts, "open": b.open, "high": b.high, "low": b.low}
        | {"close": b.close, "volume": b.volume}
        for b in bars
    ]
    heartbeat = "tradepulse_strategy_heartbeat_timestamp_seconds"
    last_bar = "tradepulse_strategy_last_bar_timestamp_seconds"
    with httpx.Client(base_url=api, headers=HEADERS, timeout=120) as client:
        created = client.post("/strategies", json={"plugin": "sma_cross", "symbol": "SPX"})
        assert created.status_code == 201, created.text
        strategy_id = created.json()["id"]
        response = client.post("/market/bars", json=bodies)
        assert response.status_code == 200, response.text
        bar_time = _gauge(client, last_bar, strategy_id)
        before = _runner_replicas()
        for name in before:
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        killed_at = time.time()
        deadline = killed_at + 60
        beat = _gauge(client, heartbeat, strategy_id)
        while (beat is None or beat <= killed_at) and time.time() < deadline:
            time.sleep(0.2)
            beat = _gauge(client, heartbeat, strategy_id)
        after = _runner_replicas()
        state = client.get(f"/strategies/{strategy_id}").json()
        bar_time_after = _gauge(client, last_bar, strategy_id)

    assert before
    assert not set(before) & set(after)  # a new replica took over
    assert beat is not None
    assert beat > killed_at  # answered by the new replica, with no bar since the kill
    assert bar_time is not None
    assert bar_time < killed_at
    assert bar_time_after == bar_time  # no market data meanwhile
    assert state["last_heartbeat"] > killed_at
    assert state["runner"]["bars"] == len(bars)  # rebuilt from the journal by the ping
