"""Scenario files load strictly; names resolve to the shipped files or to paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tradepulse.backtest.config import FrictionConfig
from tradepulse.costs import CommissionTerms
from tradepulse.errors import ConfigError
from tradepulse.execution import VolumeProportionalDepth
from tradepulse.metrics import Metrics
from tradepulse.stress import (
    DEFAULT_DROUGHT_PARTICIPATION,
    SHIPPED_SCENARIOS,
    TRANSFORMS,
    EngineSettings,
    FlashCrash,
    FrictionOverrides,
    LiquidityDrought,
    Scenario,
    Thresholds,
    find_scenarios,
    load_scenario,
    load_scenarios,
    scenario_directory,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
STRESS_DIR = REPO_ROOT / "backtest" / "configs" / "stress"

MINIMAL = """\
name: crash
transform:
  kind: flash_crash
  drop: 0.2
thresholds:
  max_drawdown: 0.3
"""


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------- shipped scenarios


def test_one_shipped_scenario_per_kind() -> None:
    scenarios = [load_scenario(path) for path in sorted(STRESS_DIR.glob("*.yaml"))]

    assert sorted(scenario.kind for scenario in scenarios) == sorted(TRANSFORMS)
    for scenario in scenarios:
        assert scenario.source is not None
        assert scenario.name == scenario.source.stem
        assert scenario.description
        assert scenario.thresholds.max_drawdown is not None
        assert scenario.thresholds.loss_limit is not None


def test_package_copies_equal_the_documented_files() -> None:
    documented = {path.name: path.read_bytes() for path in STRESS_DIR.glob("*.yaml")}
    shipped = {path.name: path.read_bytes() for path in SHIPPED_SCENARIOS.glob("*.yaml")}

    assert shipped == documented, (
        "tradepulse/stress/configs must be a copy of backtest/configs/stress: "
        "cp backtest/configs/stress/*.yaml tradepulse/stress/configs/"
    )


def test_shipped_liquidity_drought_bites_through_the_event_engine() -> None:
    scenario = load_scenario(STRESS_DIR / "liquidity_drought.yaml")

    assert isinstance(scenario.transform, LiquidityDrought)
    assert scenario.engine_for(None, has_signals=True) == "event"
    assert scenario.liquidity() == (0.10, None)
    assert scenario.frictions.impact_bps == 25.0


# ------------------------------------------------------------------------ loading


def test_minimal_file_loads_with_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, MINIMAL))

    assert scenario == Scenario(
        name="crash",
        transform=FlashCrash(drop=0.2),
        thresholds=Thresholds(max_drawdown=0.3),
        source=tmp_path / "scenario.yaml",
    )
    assert scenario.engine == EngineSettings()
    assert scenario.frictions.given() == {}


def test_full_file_loads_every_section(tmp_path: Path) -> None:
    text = """\
name: dry
description: no volume
transform: {kind: liquidity_drought, factor: 0.5, bars: 3, at: 7}
thresholds: {max_drawdown: 0.5, loss_limit: -0.2}
engine:
  kind: event
  max_participation: 0.05
  depth: {model: volume_proportional, fraction_per_level: 0.01, levels: 4}
frictions:
  commission: {rate: 0.001}
  impact_bps: 30
  sizing: whole
"""
    scenario = load_scenario(_write(tmp_path, text))

    assert scenario.transform == LiquidityDrought(factor=0.5, bars=3, at=7)
    assert scenario.thresholds == Thresholds(max_drawdown=0.5, loss_limit=-0.2)
    assert scenario.engine == EngineSettings(
        kind="event",
        max_participation=0.05,
        depth=VolumeProportionalDepth(fraction_per_level=0.01, levels=4),
    )
    assert scenario.frictions.given() == {
        "commission": CommissionTerms(rate=0.001),
        "impact_bps": 30.0,
        "sizing": "whole",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "colour: red\n", "unknown key 'colour'"),
        (MINIMAL.replace("max_drawdown", "max_dd"), "unknown key 'thresholds.max_dd'"),
        (MINIMAL.replace("drop: 0.2", "drop: 0.2\n  size: 3"), "unknown key 'size'"),
        (MINIMAL.replace("drop: 0.2", "drop: 20"), "key 'drop' must be a finite number"),
        (MINIMAL.replace("kind: flash_crash", "kind: crash"), "key 'kind' must be one of"),
        (MINIMAL.replace("  kind: flash_crash\n", ""), "key 'transform.kind' must name"),
        (MINIMAL.replace("name: crash\n", ""), "missing key 'name'"),
        (MINIMAL.replace("name: crash", "name: ''"), "key 'name' must be a non-empty string"),
        (MINIMAL.replace("max_drawdown: 0.3", "max_drawdown: 30"), "key 'max_drawdown'"),
        (MINIMAL + "  loss_limit: 0.2\n", "key 'loss_limit' must be a fraction in [-1, 0]"),
        (MINIMAL.replace("  max_drawdown: 0.3\n", ""), "thresholds need max_drawdown"),
        ("name: x\ntransform: {kind: gap_open, gap: 0.1}\n", "missing key 'thresholds'"),
        ("name: x\nthresholds: {max_drawdown: 0.3}\n", "missing key 'transform'"),
        (MINIMAL + "engine: {kind: fast}\n", "key 'engine.kind' must be one of vector, event"),
        (MINIMAL + "engine: {speed: 1}\n", "unknown key 'engine.speed'"),
        (MINIMAL + "engine: {max_participation: 2}\n", "key 'engine.max_participation'"),
        (
            MINIMAL + "engine: {kind: vector, max_participation: 0.1}\n",
            "need the event engine; got engine.kind 'vector'",
        ),
        (MINIMAL + "engine: {depth: {model: deep}}\n", "key 'engine.depth.model' must be one"),
        (
            MINIMAL + "engine: {depth: {model: constant, quantity_per_level: -1}}\n",
            "key 'engine.depth'",
        ),
        (
            MINIMAL + "engine: {depth: {model: constant, size: 1}}\n",
            "unknown key 'engine.depth.size'",
        ),
        (MINIMAL + "frictions: {spread: 1}\n", "unknown key 'frictions.spread'"),
        (MINIMAL + "frictions: {name: x}\n", "unknown key 'frictions.name'"),
        (MINIMAL + "frictions: {spread_bps: -1}\n", "key 'spread_bps'"),
        (MINIMAL + "frictions: {sizing: lots}\n", "key 'sizing' must be one of"),
        (MINIMAL + "frictions: {commission: {fee: 1}}\n", "'frictions.commission.fee'"),
        (MINIMAL + "frictions: {commission: 0.1}\n", "key 'frictions.commission' must be"),
        (MINIMAL + "frictions: 3\n", "key 'frictions' must be a mapping"),
        (MINIMAL + "name: again\n", "duplicate key 'name'"),
        ("name: x\nkind: [unclosed\n", "line 3, column 1: invalid YAML"),
        ("- a\n- b\n", "must be a mapping of keys; got list"),
    ],
)
def test_bad_files_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_scenario(path)

    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- typed settings


def test_thresholds_name_what_failed() -> None:
    def metrics(total_return: float, max_drawdown: float) -> Metrics:
        values = dict.fromkeys((spec.name for spec in dataclasses.fields(Metrics)), 0.0)
        values.update(total_return=total_return, max_drawdown=max_drawdown, trades=0, bars=1)
        return Metrics(**values)  # type: ignore[arg-type]

    limits = Thresholds(max_drawdown=0.3, loss_limit=-0.2)

    assert limits.failures(metrics(-0.2, 0.3)) == ()  # both limits are inclusive
    assert limits.failures(metrics(-0.25, 0.31)) == (
        "max_drawdown 31.00% > 30.00%",
        "total_return -25.00% < -20.00%",
    )
    assert limits.failures(metrics(float("nan"), 0.1)) == ("total_return nan% < -20.00%",)


def test_engine_choice_follows_the_documented_order() -> None:
    crash = Scenario(name="c", transform=FlashCrash(drop=0.1), thresholds=Thresholds(0.5))
    pinned = dataclasses.replace(crash, engine=EngineSettings(kind="vector"))
    capped = dataclasses.replace(crash, engine=EngineSettings(max_participation=0.2))
    drought = Scenario(
        name="d",
        transform=LiquidityDrought(factor=0.1, bars=2),
        thresholds=Thresholds(0.5),
    )
    drought_vector = dataclasses.replace(drought, engine=EngineSettings(kind="vector"))

    assert crash.engine_for(None, has_signals=True) == "vector"
    assert crash.engine_for(None, has_signals=False) == "event"
    assert crash.engine_for("event", has_signals=True) == "event"
    assert pinned.engine_for("event", has_signals=True) == "vector"
    assert capped.engine_for("vector", has_signals=True) == "event"
    assert capped.liquidity() == (0.2, None)
    assert drought.engine_for("vector", has_signals=True) == "event"
    assert drought.liquidity() == (DEFAULT_DROUGHT_PARTICIPATION, None)
    assert drought_vector.liquidity() == (None, None)
    assert drought_vector.engine_for(None, has_signals=True) == "vector"


def test_friction_overrides_replace_only_their_keys() -> None:
    base = FrictionConfig(
        name="base", commission=CommissionTerms(rate=0.001), spread_bps=2.0, sizing="whole"
    )
    overrides = FrictionOverrides(impact_bps=40, spread_bps=5.0)

    merged = overrides.apply(base, name="s")

    assert merged == dataclasses.replace(base, impact_bps=40.0, spread_bps=5.0)
    assert overrides.apply(None, name="s") == FrictionConfig(
        name="s", impact_bps=40.0, spread_bps=5.0
    )
    assert FrictionOverrides().apply(base, name="s") is base
    assert FrictionOverrides().apply(None, name="s") is None


def test_scenario_checks_its_fields() -> None:
    with pytest.raises(ConfigError, match="key 'transform' must be a StressTransform"):
        Scenario(name="x", transform="crash", thresholds=Thresholds(0.5))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="key 'description' must be a string"):
        Scenario(
            name="x",
            transform=FlashCrash(drop=0.1),
            thresholds=Thresholds(0.5),
            description=3,  # type: ignore[arg-type]
        )
    with pytest.raises(ConfigError, match=r"key 'engine\.depth' must be a depth model"):
        EngineSettings(depth="deep")  # type: ignore[arg-type]


# --------------------------------------------------------------------- resolution


def test_bare_names_use_the_working_directory_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "backtest" / "configs" / "stress"
    local.mkdir(parents=True)
    _write(local, MINIMAL, "crash.yaml")
    _write(local, MINIMAL.replace("name: crash", "name: crash_two"), "crash_two.yaml")
    monkeypatch.chdir(tmp_path)

    assert scenario_directory() == local
    assert find_scenarios(["crash"]) == [local / "crash.yaml"]
    assert find_scenarios(["crash*"]) == [local / "crash.yaml", local / "crash_two.yaml"]


def test_bare_names_fall_back_to_the_package_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    found = find_scenarios(["flash_crash", "*", "gap_open"])

    assert scenario_directory() == SHIPPED_SCENARIOS
    assert found[0] == SHIPPED_SCENARIOS / "flash_crash.yaml"
    assert sorted(path.name for path in found) == sorted(
        path.name for path in STRESS_DIR.glob("*.yaml")
    )


def test_paths_folders_and_path_globs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    first = _write(folder, MINIMAL, "a.yaml")
    second = _write(folder, MINIMAL.replace("name: crash", "name: other"), "b.yml")
    (folder / "notes.txt").write_text("not a scenario", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert find_scenarios([str(first)]) == [first]
    assert find_scenarios([str(folder)]) == [first, second]
    assert find_scenarios(["mine/*.yaml"]) == [Path("mine/a.yaml")]
    assert [scenario.name for scenario in load_scenarios([str(folder)])] == ["crash", "other"]


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["meteor"], "no scenario matches 'meteor' in"),
        (["nowhere/*.yaml"], "no scenario file matches 'nowhere/*.yaml'"),
        ([], "no scenario given"),
    ],
)
def test_unmatched_patterns_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patterns: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as caught:
        find_scenarios(patterns)

    assert message in str(caught.value)
    if patterns == ["meteor"]:
        assert "available: flash_crash" in str(caught.value)


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, MINIMAL, "a.yaml")
    _write(tmp_path, MINIMAL, "b.yaml")

    with pytest.raises(ConfigError, match="two scenarios are named 'crash'"):
        load_scenarios([str(tmp_path)])
