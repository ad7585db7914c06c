"""The Ray Serve settings `tradepulse serve` exports before it starts a local cluster."""

from __future__ import annotations

import pytest

from tradepulse.serve import runtime
from tradepulse.serve.runtime import SERVE_ENVIRONMENT, serve_environment

_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")


def test_a_clean_environment_gets_haproxy_on_free_ports_and_user_code_on_the_main_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "_haproxy_available", lambda: True)

    chosen = serve_environment({})

    assert chosen["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert chosen["RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD"] == "0"
    assert chosen["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "1"
    ports = [int(chosen[name]) for name in _PORTS]
    assert all(1024 <= port <= 65535 for port in ports)
    assert set(chosen) == {*SERVE_ENVIRONMENT, *_PORTS}


def test_what_the_environment_already_sets_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_haproxy_available", lambda: True)
    environ = {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1"}

    chosen = serve_environment(environ)

    assert chosen == {"RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1"}  # no HAProxy ports
    kept_ports = serve_environment({"RAY_SERVE_HAPROXY_STATS_PORT": "18404"})
    assert "RAY_SERVE_HAPROXY_STATS_PORT" not in kept_ports
    assert "RAY_SERVE_HAPROXY_METRICS_PORT" in kept_ports


def test_without_an_haproxy_binary_serves_own_proxy_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime, "_haproxy_available", lambda: False)

    chosen = serve_environment({})

    assert chosen["RAY_SERVE_ENABLE_HA_PROXY"] == "0"
    assert not set(_PORTS) & set(chosen)
