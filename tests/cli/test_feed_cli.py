"""``tradepulse feed replay``: a data file into a running API, resumable, with clear errors.

The server is the production app (:func:`create_trading_app`, strategy runners
in process) served by uvicorn on a free 127.0.0.1 port in a thread.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.serve.auth import hash_secret
from tradepulse.serve.deployment import create_trading_app

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "golden" / "data" / "sp500_daily.csv"
TRADE, READ = "feed-trader-secret", "feed-reader-secret"
FEED = "feed-admin-secret"  # bars move every account's market: the feed's key is admin
SERVICE = """
instruments: {SPX: {price_increment: "0.01", quantity_increment: "0.0001", cash_increment: "0.01"}}
default_instrument: reject
risk: {margin_rate: null}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("feed")
    (folder / "service.yaml").write_text(SERVICE)
    trading = create_trading_app(
        {
            "journal": str(folder / "journal.sqlite"),
            "journal_sync": "normal",
            "service_config": str(folder / "service.yaml"),
            "api_keys": (
                {"id": "desk", "scopes": ["trade"], "secret_sha256": hash_secret(TRADE)},
                {
                    "id": "viewer",
                    "scopes": ["read"],
                    "secret_sha256": hash_secret(READ),
                    "account": "desk",
                },
                {"id": "feed", "scopes": ["admin"], "secret_sha256": hash_secret(FEED)},
            ),
        }
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(trading.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        trading.service.journal.close()


def _replay(url: str, *args: str, key: str | None = FEED) -> tuple[int, str]:
    env = {} if key is None else {"TRADEPULSE_API_KEY": key}
    result = CliRunner().invoke(
        app, ["feed", "replay", str(DATA), "--url", url, *args], env=env, catch_exceptions=False
    )
    return result.exit_code, " ".join(result.output.split())


def _get(url: str, path: str) -> dict[str, object]:
    answer = httpx.get(f"{url}/api/v1{path}", headers={"Authorization": f"Bearer {READ}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_a_replay_feeds_the_strategies_and_resumes_from_a_position(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADEPULSE_API_KEY", raising=False)
    created = httpx.post(
        f"{url}/api/v1/strategies",
        json={"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 3, "slow": 8}},
        headers={"Authorization": f"Bearer {TRADE}"},
    )
    assert created.status_code == 201

    first = _replay(url, "--symbol", "SPX", "--count", "70", "--batch", "25")
    resumed = _replay(url, "--symbol", "SPX", "--start", "60", "--count", "40", "--speed", "400")
    state = _get(url, "/strategies/s1")["runner"]

    assert first[0] == 0
    assert f"replayed 70 SPX bars (positions 0 to 69) to {url}" in first[1]
    assert resumed[0] == 0
    assert "replayed 40 SPX bars (positions 60 to 99)" in resumed[1]
    assert isinstance(state, dict)
    assert state["bars"] == 100  # bars 60..69 came twice: the server took them once
    assert _get(url, "/strategies")["strategies"]


@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        (["--symbol", "SPX"], None, "set TRADEPULSE_API_KEY"),
        (["--symbol", "SPX", "--count", "3"], "not-a-key-at-all", "HTTP 401"),
        (["--symbol", "SPX", "--count", "3"], READ, "lacks the admin scope"),
        (["--symbol", "SPX", "--count", "3"], TRADE, "key with the admin scope"),
        (["--symbol", "QQQ", "--count", "3"], FEED, "HTTP 422"),
        (["--count", "3"], FEED, "no symbol column"),
        (["--symbol", "SPX", "--batch", "0"], FEED, "--batch must be 1 to 1000"),
        (["--symbol", "SPX", "--count", "0"], FEED, "--count must be at least 1"),
        (["--symbol", "SPX", "--start", "99999"], FEED, "start must be a row"),
    ],
)
def test_errors_are_one_line_and_name_the_resume_position(
    url: str, args: list[str], key: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADEPULSE_API_KEY", raising=False)
    code, output = _replay(url, *args, key=key)

    assert code == 1
    assert message in output
    assert "Traceback" not in output
    if message.startswith("HTTP"):
        assert "resume with --start 0" in output


def test_an_unreachable_server_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEPULSE_API_KEY", raising=False)
    code, output = _replay(f"http://127.0.0.1:{_free_port()}", "--symbol", "SPX", "--count", "2")

    assert code == 1
    assert "cannot reach" in output
    assert "resume with --start 0" in output


def test_a_missing_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["feed", "replay", str(tmp_path / "none.csv"), "--symbol", "X"],
        env={"TRADEPULSE_API_KEY": "k"},
    )
    assert result.exit_code == 1
    assert "no such file" in result.output
