"""``tradepulse strategies``: a table (or JSON) of every strategy and its parameters."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint

import pytest
import typer
from typer.testing import CliRunner

from tradepulse.cli.strategies import strategies_command
from tradepulse.strategy import ENTRY_POINT_GROUP
from tradepulse.strategy import plugins as plugins_module

BUILTINS = ["bollinger_breakout", "geometry_phase", "rsi_reversion", "sma_cross"]

runner = CliRunner()
app = typer.Typer()
app.command()(strategies_command)


def test_table_lists_every_builtin_with_its_parameters() -> None:
    result = runner.invoke(app, [], env={"COLUMNS": "160"})

    assert result.exit_code == 0, result.output
    for name in BUILTINS:
        assert name in result.stdout
    for text in ("fast", "slow", "direction", "long | long_short", "1 .. 500", "num_std"):
        assert text in result.stdout


def test_json_describes_defaults_ranges_and_choices() -> None:
    result = runner.invoke(app, ["--json"])

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["api_version"] == "1.0"
    assert payload["errors"] == []
    listed = {entry["name"]: entry for entry in payload["strategies"]}
    assert set(BUILTINS) <= set(listed)
    sma = listed["sma_cross"]
    assert sma["entry_point"] == "tradepulse.strategy.builtins.sma_cross:SmaCross"
    assert sma["distribution"] == "tradepulse"
    fast = sma["parameters"][0]
    assert (fast["name"], fast["type"], fast["default"], fast["low"], fast["high"]) == (
        "fast",
        "int",
        10,
        1,
        500,
    )


def test_refused_plugin_is_reported_and_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint(
            name="other_good", value="strategy_plugin_fixtures:OtherGood", group=ENTRY_POINT_GROUP
        ),
        EntryPoint(
            name="old_major", value="strategy_plugin_fixtures:OldMajor", group=ENTRY_POINT_GROUP
        ),
    ]
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: points)

    table = runner.invoke(app, [], env={"COLUMNS": "160"})
    as_json = runner.invoke(app, ["--json"])

    assert table.exit_code == 1
    assert "other_good" in table.stdout
    assert "Free text: no range." in table.stdout
    assert "plugin refused" in table.stderr
    assert "'old_major'" in table.stderr
    assert "2.0" in table.stderr
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)
    assert [entry["name"] for entry in payload["strategies"]] == ["other_good"]
    assert payload["errors"][0]["plugin"] == "old_major"
