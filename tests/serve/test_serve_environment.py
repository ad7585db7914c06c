"""The Ray Serve settings of the live application: `tradepulse serve`, the config file, the docs.

:mod:`tradepulse.serve.runtime` defines them once; ``tests/deploy/test_rayservice.py``
checks the RayService manifest against the same definitions.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tradepulse.serve import runtime
from tradepulse.serve.runtime import (
    APPLICATION_ENVIRONMENT,
    CLUSTER_ENVIRONMENT,
    LOGGING_CONFIG,
    SERVE_ENVIRONMENT,
    load_serve_config,
    serve_environment,
)

REPO = Path(__file__).resolve().parents[2]
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


def test_an_explicit_haproxy_binary_decides_like_ray_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "haproxy"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(binary))
    assert not runtime._haproxy_available()  # not executable
    binary.chmod(0o755)
    assert runtime._haproxy_available()
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(tmp_path / "missing"))
    assert not runtime._haproxy_available()


def test_the_settings_split_into_process_wide_and_per_application_ones() -> None:
    assert not set(CLUSTER_ENVIRONMENT) & set(APPLICATION_ENVIRONMENT)
    assert dict(SERVE_ENVIRONMENT) == {**CLUSTER_ENVIRONMENT, **APPLICATION_ENVIRONMENT}
    assert all(isinstance(value, str) for value in SERVE_ENVIRONMENT.values())


def test_every_variable_is_one_the_installed_ray_serve_reads() -> None:
    # A renamed or misspelt variable would silently do nothing: each name must
    # be read from the environment in Ray Serve's constants module.
    from ray.serve._private import constants

    source = Path(constants.__file__).read_text(encoding="utf-8")
    for name in (*SERVE_ENVIRONMENT, *_PORTS, "RAY_SERVE_HAPROXY_BINARY_PATH"):
        assert re.search(rf"""(environ\.get|get_env_\w+)\(\s*["']{name}["']""", source), name


def test_the_default_application_runs_with_the_application_settings() -> None:
    config = load_serve_config(None)

    (application,) = config.applications
    assert application.runtime_env == {"env_vars": dict(APPLICATION_ENVIRONMENT)}
    assert config.logging_config is not None
    assert config.logging_config.log_level == LOGGING_CONFIG["log_level"]
    assert config.logging_config.enable_access_log is LOGGING_CONFIG["enable_access_log"]


def _exports(text: str) -> list[dict[str, str]]:
    """Return the ``RAY_SERVE_*`` variables of every ``export`` line in ``text``."""
    found = []
    for line in text.splitlines():
        command = line.lstrip("# ")
        if command.startswith("export "):
            words = shlex.split(command)
            pairs = dict(word.split("=", 1) for word in words[1:])
            ray_serve = {name: value for name, value in pairs.items() if name.startswith("RAY_")}
            if ray_serve:
                found.append(ray_serve)
    return found


@pytest.mark.parametrize("document", ["serve/config.yaml", "docs/live-performance.md"])
def test_the_documented_exports_for_serve_run_are_the_cluster_settings(document: str) -> None:
    exports = _exports((REPO / document).read_text(encoding="utf-8"))

    assert exports == [dict(CLUSTER_ENVIRONMENT)]


def test_the_shipped_config_carries_the_application_settings() -> None:
    raw = yaml.safe_load((REPO / "serve" / "config.yaml").read_text(encoding="utf-8"))
    (application,) = raw["applications"]

    # As written (strings, as env_vars must be), not only after validation.
    assert application["runtime_env"] == {"env_vars": dict(APPLICATION_ENVIRONMENT)}
    assert raw["logging_config"] == dict(LOGGING_CONFIG)
