"""Plugin discovery through entry points, API-version checks and clear refusals."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from tradepulse.errors import ConfigError
from tradepulse.strategy import (
    ENTRY_POINT_GROUP,
    STRATEGY_API_VERSION,
    IncompatiblePluginError,
    PluginError,
    Strategy,
    UnknownStrategyError,
    check_api_version,
    describe_strategy,
    discover_strategies,
    load_plugin,
    load_strategy,
    scan_plugins,
)
from tradepulse.strategy import plugins as plugins_module
from tradepulse.strategy.builtins import BollingerBreakout, GeometryPhase, RsiReversion, SmaCross

BUILTINS: dict[str, type[Strategy]] = {
    "bollinger_breakout": BollingerBreakout,
    "geometry_phase": GeometryPhase,
    "rsi_reversion": RsiReversion,
    "sma_cross": SmaCross,
}
FIXTURES = "strategy_plugin_fixtures"


def fake(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group=ENTRY_POINT_GROUP)


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> list[EntryPoint]:
    """Replace the installed entry points by a list the test fills."""
    points: list[EntryPoint] = []
    monkeypatch.setattr(plugins_module, "_entry_points", lambda: list(points))
    return points


def test_builtins_are_discovered_through_entry_points() -> None:
    found = discover_strategies()

    # Other installed plugins may be present too; the built-ins must be.
    assert {name: found[name] for name in BUILTINS} == BUILTINS
    for name, strategy in BUILTINS.items():
        assert strategy.name == name
        assert strategy.api_version == STRATEGY_API_VERSION
        assert strategy().has_signals
        assert load_strategy(name) is strategy


def test_unknown_name_lists_the_known_strategies() -> None:
    with pytest.raises(UnknownStrategyError) as caught:
        load_strategy("sma_crossover")

    message = str(caught.value)
    assert message.startswith("unknown strategy 'sma_crossover' (known strategies: ")
    for name in BUILTINS:
        assert name in message
    assert isinstance(caught.value, ConfigError)


def test_unknown_name_with_nothing_installed(entry_points: list[EntryPoint]) -> None:
    with pytest.raises(UnknownStrategyError, match="known strategies: none installed"):
        load_strategy("anything")


@pytest.mark.parametrize(
    ("name", "declared", "fragment"),
    [
        ("old_major", "2.0", "major versions differ"),
        ("zero_major", "0.9", "major versions differ"),
        ("newer_minor", "1.1", "newer than the 1.0 this TradePulse implements"),
        ("malformed", "one", "expected 'MAJOR.MINOR'"),
        ("no_version", "None", "expected 'MAJOR.MINOR'"),
    ],
)
def test_incompatible_api_version_is_refused_naming_both_versions(
    entry_points: list[EntryPoint], name: str, declared: str, fragment: str
) -> None:
    class_name = "".join(part.title() for part in name.split("_"))
    entry_points.append(fake(name, f"{FIXTURES}:{class_name}"))

    with pytest.raises(IncompatiblePluginError) as caught:
        load_strategy(name)

    message = str(caught.value)
    assert f"plugin {name!r}" in message
    assert declared in message
    assert STRATEGY_API_VERSION in message
    assert fragment in message
    assert caught.value.plugin == name
    assert caught.value.plugin_version == declared


def test_check_api_version_accepts_our_version() -> None:
    check_api_version("mine", STRATEGY_API_VERSION)


@pytest.mark.parametrize(
    ("name", "target", "fragment"),
    [
        (
            "missing",
            "no_such_module_anywhere:Thing",
            "plugin 'missing' (entry point missing = 'no_such_module_anywhere:Thing') failed to "
            "import: ModuleNotFoundError: No module named 'no_such_module_anywhere'",
        ),
        (
            "broken",
            "strategy_broken_plugin:Broken",
            "failed to import: RuntimeError: broken plugin: missing configuration",
        ),
        ("absent", f"{FIXTURES}:DoesNotExist", "failed to import: AttributeError"),
        ("number", f"{FIXTURES}:NOT_A_STRATEGY", "is not a tradepulse Strategy subclass"),
        ("abstract", f"{FIXTURES}:Abstract", "does not implement handle_tick"),
        ("wrong", f"{FIXTURES}:WrongName", "declares name 'something_else'"),
        ("bad_params", f"{FIXTURES}:BadParams", "must be decorated with @dataclass"),
        ("no_params_type", f"{FIXTURES}:NoParamsType", "params_type must be a Params dataclass"),
    ],
)
def test_unusable_plugins_are_refused_with_a_clear_message(
    entry_points: list[EntryPoint], name: str, target: str, fragment: str
) -> None:
    entry_points.append(fake(name, target))

    with pytest.raises(PluginError) as caught:
        load_strategy(name)

    assert fragment in str(caught.value)
    assert "Traceback" not in str(caught.value)
    assert caught.value.plugin == name


def test_load_strategy_does_not_import_other_plugins(entry_points: list[EntryPoint]) -> None:
    entry_points.extend(
        [fake("broken", "strategy_broken_plugin:Broken"), fake("good", f"{FIXTURES}:Good")]
    )

    strategy = load_strategy("good")

    assert strategy.name == "good"


def test_scan_keeps_good_plugins_and_reports_the_rest(entry_points: list[EntryPoint]) -> None:
    entry_points.extend(
        [
            fake("good", f"{FIXTURES}:Good"),
            fake("old_major", f"{FIXTURES}:OldMajor"),
            fake("other_good", f"{FIXTURES}:OtherGood"),
            fake("twice", f"{FIXTURES}:Good"),
            fake("twice", f"{FIXTURES}:OtherGood"),
        ]
    )

    scan = scan_plugins()

    assert [item.name for item in scan.found] == ["good", "other_good"]
    assert scan.found[0].entry_point == f"{FIXTURES}:Good"
    assert scan.found[0].distribution is None
    assert [error.plugin for error in scan.errors] == ["old_major", "twice"]
    assert "registered more than once" in str(scan.errors[1])


def test_discover_raises_on_any_refused_plugin(entry_points: list[EntryPoint]) -> None:
    entry_points.extend(
        [fake("good", f"{FIXTURES}:Good"), fake("old_major", f"{FIXTURES}:OldMajor")]
    )
    with pytest.raises(IncompatiblePluginError, match="'old_major'"):
        discover_strategies()

    entry_points.append(fake("missing", "no_such_module_anywhere:Thing"))
    with pytest.raises(PluginError, match=r"2 plugins refused: .*'missing'.*'old_major'"):
        discover_strategies()


def test_discover_returns_good_plugins_by_name(entry_points: list[EntryPoint]) -> None:
    entry_points.extend(
        [fake("other_good", f"{FIXTURES}:OtherGood"), fake("good", f"{FIXTURES}:Good")]
    )

    found = discover_strategies()

    assert list(found) == ["good", "other_good"]


def test_duplicate_names_are_refused_by_load(entry_points: list[EntryPoint]) -> None:
    entry_points.extend([fake("good", f"{FIXTURES}:Good"), fake("good", f"{FIXTURES}:Good")])

    with pytest.raises(PluginError, match="'good' is registered more than once"):
        load_strategy("good")


def test_load_plugin_reports_the_distribution_of_an_installed_entry_point() -> None:
    (point,) = [p for p in plugins_module._entry_points() if p.name == "sma_cross"]

    assert load_plugin(point) is SmaCross
    assert point.dist is not None
    assert point.dist.name == "tradepulse"


def test_describe_strategy_lists_forms_and_parameters() -> None:
    description = describe_strategy(SmaCross)

    assert description["name"] == "sma_cross"
    assert description["api_version"] == "1.0"
    assert description["forms"] == ["event", "vectorised"]
    assert description["description"].startswith("Long (or long/short) on strict crosses")
    assert [p["name"] for p in description["parameters"]] == ["fast", "slow", "direction"]
    assert description["parameters"][2]["choices"] == ["long", "long_short"]


def test_describe_strategy_without_docstring_or_signals() -> None:
    from strategy_plugin_fixtures import OtherGood

    class Bare(OtherGood):
        pass

    description = describe_strategy(Bare)

    assert description["description"] == ""
    assert description["forms"] == ["event"]
