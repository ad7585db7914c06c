"""The shipped Prometheus config, rules, rule tests and Grafana dashboard are valid and consistent.

``promtool`` checks the config and the rules and runs ``rules_test.yml`` (the
tests skip, saying how to install it, when it is missing:
``observability/install-prometheus.sh``). Every metric name the rules and the
dashboard use must exist in :class:`~tradepulse.serve.metrics.TradingMetrics`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.routing import APIRoute

from tradepulse.serve.api import API_PREFIX
from tradepulse.serve.metrics import TradingMetrics, metrics_router

REPO_ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO_ROOT / "observability"
PROMETHEUS_YML = OBSERVABILITY / "prometheus.yml"
RULES_YML = OBSERVABILITY / "rules.yml"
RULES_TEST_YML = OBSERVABILITY / "rules_test.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "tradepulse-live.json"
INSTALLER = OBSERVABILITY / "install-prometheus.sh"
# Metric names in PromQL: ours start with tradepulse_; recording rules are tradepulse:...
OUR_METRIC = re.compile(r"\btradepulse_[a-z0-9_]+\b")
RECORDED = re.compile(r"\btradepulse:[a-z0-9_:]+\b")
NEEDS_PROMTOOL = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed: run `bash observability/install-prometheus.sh` "
    "(as root it installs Debian's prometheus package)",
)


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(RULES_YML)["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def _metrics_used(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in OUR_METRIC.findall(expr)}


@pytest.fixture(scope="module")
def known_metrics() -> frozenset[str]:
    """Return every sample name TradingMetrics can expose."""
    return TradingMetrics().metric_names()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """Return a copy of the config folder with a credentials file, as a deployment has."""
    for path in (PROMETHEUS_YML, RULES_YML, RULES_TEST_YML):
        shutil.copy(path, tmp_path / path.name)
    secret = tmp_path / "tradepulse-metrics.secret"
    secret.write_text("a-read-scope-secret\n", encoding="utf-8")
    secret.chmod(0o600)
    return tmp_path


def _promtool(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *arguments], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# ---------------------------------------------------------------------- promtool


@NEEDS_PROMTOOL
def test_promtool_accepts_the_config(config_dir: Path) -> None:
    result = _promtool("check", "config", "prometheus.yml", cwd=config_dir)

    assert result.returncode == 0, result.stdout + result.stderr


@NEEDS_PROMTOOL
def test_promtool_refuses_the_config_without_its_credentials_file(config_dir: Path) -> None:
    (config_dir / "tradepulse-metrics.secret").unlink()

    result = _promtool("check", "config", "prometheus.yml", cwd=config_dir)

    assert result.returncode != 0
    assert "tradepulse-metrics.secret" in result.stdout + result.stderr


@NEEDS_PROMTOOL
def test_promtool_accepts_the_rules(config_dir: Path) -> None:
    result = _promtool("check", "rules", "--lint=all", "rules.yml", cwd=config_dir)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_rules())} rules found" in result.stdout


@NEEDS_PROMTOOL
def test_the_rule_unit_tests_pass(config_dir: Path) -> None:
    result = _promtool("test", "rules", "rules_test.yml", cwd=config_dir)

    assert result.returncode == 0, result.stdout + result.stderr


@NEEDS_PROMTOOL
def test_the_rule_unit_tests_catch_a_wrong_threshold(config_dir: Path) -> None:
    rules = config_dir / "rules.yml"
    text = rules.read_text(encoding="utf-8")
    assert "> 0.025" in text
    rules.write_text(text.replace("> 0.025", "> 0.05"), encoding="utf-8")

    result = _promtool("test", "rules", "rules_test.yml", cwd=config_dir)

    assert result.returncode != 0
    assert "TradePulseAckLatencyHigh" in result.stdout + result.stderr


# ---------------------------------------------------------------------- names


def test_every_metric_the_rules_use_exists(known_metrics: frozenset[str]) -> None:
    used = _metrics_used([rule["expr"] for rule in _rules()])

    assert used, "the rules use no tradepulse metric"
    assert used <= known_metrics, sorted(used - known_metrics)


def test_every_recording_rule_used_is_defined_earlier_in_its_group() -> None:
    # Within a group Prometheus evaluates rules in order, so a rule sees the
    # current values of the recording rules before it (not last evaluation's).
    for group in _load_yaml(RULES_YML)["groups"]:
        recorded: set[str] = set()
        for rule in group["rules"]:
            used = set(RECORDED.findall(rule["expr"]))
            assert used <= recorded, f"{rule}: {sorted(used - recorded)} not recorded before"
            if "record" in rule:
                assert re.fullmatch(r"tradepulse:[a-z0-9_]+:[a-z0-9_]+", rule["record"])
                recorded.add(rule["record"])


def test_the_alerts_the_issue_asks_for_exist() -> None:
    alerts = {rule["alert"]: rule["expr"] for rule in _rules() if "alert" in rule}

    assert "tradepulse_kill_switch" in alerts["TradePulseKillSwitchEngaged"]
    assert "tradepulse:orders_rejected:ratio5m" in alerts["TradePulseRejectionRateHigh"]
    assert "> 0.025" in alerts["TradePulseAckLatencyHigh"]  # p99 above 25 ms
    assert "> 60" in alerts["TradePulseStrategyHeartbeatStale"]
    assert "tradepulse:equity_drawdown:ratio" in alerts["TradePulseDrawdownHigh"]
    for name in alerts:
        assert name.startswith("TradePulse")


def test_every_metric_the_dashboard_uses_exists(known_metrics: frozenset[str]) -> None:
    used = _metrics_used(_dashboard_exprs())

    assert used <= known_metrics, sorted(used - known_metrics)


def test_the_dashboard_shows_every_metric() -> None:
    used = " ".join(_dashboard_exprs())
    families = {family.name for family in TradingMetrics().registry.collect()}

    missing = sorted(name for name in families if not re.search(rf"\b{name}(_[a-z]+)?\b", used))
    assert not missing


def test_the_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "tradepulse-live"
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"datasource", "account"}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].count("(") == target["expr"].count(")")


# ---------------------------------------------------------------------- prometheus.yml


def test_the_scrape_config_matches_the_route() -> None:
    config = _load_yaml(PROMETHEUS_YML)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    route = next(
        route for route in metrics_router(TradingMetrics()).routes if isinstance(route, APIRoute)
    )

    tradepulse = jobs["tradepulse"]
    assert tradepulse["metrics_path"] == API_PREFIX + route.path
    assert tradepulse["authorization"] == {
        "type": "Bearer",
        "credentials_file": "tradepulse-metrics.secret",
    }
    assert tradepulse["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
    assert config["rule_files"] == ["rules.yml"]


def test_the_ray_job_reads_rays_discovery_file() -> None:
    from ray._private import ray_constants  # Ray's own name for the file, not a copy

    jobs = {job["job_name"]: job for job in _load_yaml(PROMETHEUS_YML)["scrape_configs"]}

    files = jobs["ray"]["file_sd_configs"][0]["files"]
    assert files == [f"/tmp/ray/{ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE}"]


# ---------------------------------------------------------------------- installer


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _install(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(INSTALLER), *arguments],
        env={"PATH": str(folder), "HOME": os.environ.get("HOME", "/")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_installer_does_nothing_when_prometheus_is_there(tmp_path: Path) -> None:
    _stub(tmp_path, "prometheus", 'echo "prometheus, version 9.9.9"')
    _stub(tmp_path, "promtool", "exit 0")
    _stub(tmp_path, "head", 'read -r line; echo "$line"')
    _stub(tmp_path, "apt-get", "echo apt-get was called >&2; exit 3")

    result = _install(tmp_path)

    assert result.returncode == 0, result.stderr
    assert "version 9.9.9" in result.stdout
    assert "apt-get was called" not in result.stderr


@pytest.mark.parametrize(("arguments", "code"), [((), 0), (("--require",), 1)])
def test_the_installer_explains_what_to_do_when_it_cannot_install(
    tmp_path: Path, arguments: tuple[str, ...], code: int
) -> None:
    _stub(tmp_path, "id", "echo 1000")  # not root
    _stub(tmp_path, "apt-get", "echo apt-get was called >&2; exit 3")

    result = _install(tmp_path, *arguments)

    assert result.returncode == code
    assert "not running as root" in result.stderr
    assert "apt-get install --no-install-recommends prometheus" in result.stderr
    assert "apt-get was called" not in result.stderr


def test_the_installer_refuses_unknown_arguments(tmp_path: Path) -> None:
    result = _install(tmp_path, "--bogus")

    assert result.returncode == 2
    assert "--bogus" in result.stderr
