"""The stress matrix on the Ray executor gives the local executor's report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.data import load_bars, synthesize_bars
from tradepulse.stress import load_scenarios, run_stress

pytestmark = pytest.mark.usefixtures("ray_session")


def test_ray_executor_gives_the_local_report() -> None:
    from tradepulse.cluster import RayExecutor

    bars = synthesize_bars(bars=400, seed=8, freq="1d")
    scenarios = load_scenarios(["*"])
    params = {"fast": 5, "slow": 20}

    on_ray = run_stress(
        bars, "sma_cross", params, scenarios=scenarios, seeds=2, executor=RayExecutor()
    )
    local = run_stress(bars, "sma_cross", params, scenarios=scenarios, seeds=2)

    assert on_ray.rows == local.rows
    assert on_ray.baseline == local.baseline
    assert on_ray.passed == local.passed


def test_cli_without_local_runs_on_the_session_cluster(sample_dir: Path) -> None:
    data = sample_dir / "sp500_daily.csv"

    result = CliRunner().invoke(
        app,
        ["stress", str(data), "--strategy", "sma_cross", "--scenarios", "gap_open", "--json"],
    )

    assert result.exit_code == 0, result.output
    expected = run_stress(
        load_bars(data), "sma_cross", scenarios=load_scenarios(["gap_open"]), seeds=1
    )
    payload = json.loads(result.stdout)
    assert payload["passed"] is True
    assert payload["rows"] == [row.to_dict() for row in expected.rows]
