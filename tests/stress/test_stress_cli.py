"""``tradepulse stress``: the table, JSON, the gate's exit status and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.backtest import load_friction_config
from tradepulse.cli import app
from tradepulse.cli.stress import GATE_FAILED_EXIT
from tradepulse.data import load_bars
from tradepulse.stress import load_scenarios, run_stress

runner = CliRunner()
REPO_ROOT = Path(__file__).resolve().parents[2]

FAILING = """\
name: {name}
transform: {{kind: gap_open, gap: -0.2}}
thresholds: {{max_drawdown: 0.05}}
"""


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not valid JSON: {constant}")

    payload: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return payload


@pytest.fixture(scope="module")
def sp500_path(sample_dir: Path) -> Path:
    return sample_dir / "sp500_daily.csv"


@pytest.fixture(scope="module")
def sp500(sp500_path: Path) -> pl.DataFrame:
    return load_bars(sp500_path)


def _invoke(*arguments: str) -> Any:
    return runner.invoke(app, ["stress", *arguments])


def test_json_matches_the_python_api(sp500_path: Path, sp500: pl.DataFrame) -> None:
    config = REPO_ROOT / "backtest" / "configs" / "equities.yaml"

    result = _invoke(
        str(sp500_path),
        "--strategy",
        "sma_cross",
        "--param",
        "fast=20",
        "--param",
        "slow=50",
        "--scenarios",
        "flash_crash",
        "--scenarios",
        "regime*",
        "--seeds",
        "2",
        "--config",
        str(config),
        "--local",
        "--json",
    )

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    expected = run_stress(
        sp500,
        "sma_cross",
        {"fast": 20, "slow": 50},
        scenarios=load_scenarios(["flash_crash", "regime_flip"]),
        seeds=2,
        config=load_friction_config(config),
    )
    assert payload["rows"] == [row.to_dict() for row in expected.rows]
    assert payload["baseline"] == expected.baseline.to_dict()
    assert payload["passed"] is True
    assert payload["failing"] == []
    assert [scenario["name"] for scenario in payload["scenarios"]] == [
        "flash_crash",
        "regime_flip",
    ]
    assert payload["frictions"]["config"] == "equities"
    assert "promotion gate passed: 4 runs" in result.stderr


def test_table_lists_every_run(sp500_path: Path) -> None:
    result = _invoke(str(sp500_path), "--strategy", "sma_cross", "--seeds", "2", "--local")

    assert result.exit_code == 0, result.output
    for name in (
        "baseline",
        "flash_crash",
        "gap_open",
        "trading_halt",
        "liquidity_drought",
        "volatility_spike",
        "regime_flip",
    ):
        assert name in result.stdout
    assert "promotion gate passed: 12 runs within their thresholds" in result.stdout


def test_a_failing_gate_exits_non_zero_and_names_the_scenarios(
    sp500_path: Path, tmp_path: Path
) -> None:
    for name in ("deep_gap", "another_gap"):
        (tmp_path / f"{name}.yaml").write_text(FAILING.format(name=name), encoding="utf-8")
    passing = REPO_ROOT / "backtest" / "configs" / "stress" / "flash_crash.yaml"

    result = _invoke(
        str(sp500_path),
        "--strategy",
        "sma_cross",
        "--scenarios",
        str(passing),
        "--scenarios",
        str(tmp_path),
        "--seeds",
        "2",
        "--local",
        "--json",
    )

    assert result.exit_code == GATE_FAILED_EXIT == 3
    payload = _strict_json(result.stdout)
    assert payload["passed"] is False
    assert payload["failing"] == ["another_gap", "deep_gap"]
    message = result.stderr.strip()
    assert message.startswith("error: promotion gate failed: another_gap (2 of 2 runs failed;")
    assert "deep_gap (2 of 2 runs failed; seed 0: max_drawdown" in message
    assert "flash_crash" not in message
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--scenarios", "meteor"], 1, "no scenario matches 'meteor'"),
        (["--engine", "warp"], 2, "--engine must be one of vector, event"),
        (["--address", "127.0.0.1:1"], 2, "--local and --address exclude each other"),
        (["--param", "fast"], 1, "parameter assignment must look like name=value"),
        (["--param", "fast=50"], 1, "fast"),
        (["--config", "missing.yaml"], 1, "cannot read friction config"),
    ],
)
def test_bad_input_is_one_line(
    sp500_path: Path, arguments: list[str], code: int, message: str
) -> None:
    result = _invoke(str(sp500_path), "--strategy", "sma_cross", "--local", *arguments)

    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_scenario_file_names_the_file_and_key(sp500_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(FAILING.format(name="x") + "colour: red\n", encoding="utf-8")

    result = _invoke(str(sp500_path), "--strategy", "sma_cross", "--scenarios", str(bad), "--local")

    assert result.exit_code == 1
    assert str(bad) in result.stderr
    assert "unknown key 'colour'" in result.stderr


def test_missing_data_and_unknown_strategy(sp500_path: Path, tmp_path: Path) -> None:
    missing = _invoke(str(tmp_path / "none.csv"), "--strategy", "sma_cross", "--local")
    unknown = _invoke(str(sp500_path), "--strategy", "nope", "--local")

    assert missing.exit_code == 1
    assert "no such file" in missing.stderr
    assert unknown.exit_code == 1
    assert "nope" in unknown.stderr
