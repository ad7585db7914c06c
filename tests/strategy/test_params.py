"""Typed strategy parameters: parsing, validation, specs and sweep grids."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest

from tradepulse.errors import ConfigError
from tradepulse.strategy import (
    Param,
    ParameterError,
    Params,
    StrategyError,
    from_mapping,
    param,
    param_specs,
    parse_assignments,
)
from tradepulse.strategy.builtins import (
    BollingerBreakoutParams,
    GeometryPhaseParams,
    RsiReversionParams,
    SmaCrossParams,
)


@dataclass(frozen=True, slots=True)
class MixedParams(Params):
    """Every supported kind."""

    count: int = param(3, low=1, high=10, step=2, description="A count.")
    ratio: float = param(0.5, low=0.0, high=1.0, step=0.25, description="A ratio.")
    enabled: bool = param(False, description="A switch.")
    label: str = "plain"
    mode: Literal["a", "b"] = param("a", description="A mode.")
    level: Literal[1, 2, 3] = param(2, description="A level.")
    free: float = param(1.0, description="Unbounded.")


def test_from_mapping_converts_cli_strings_to_typed_values() -> None:
    params = SmaCrossParams.from_mapping({"fast": "5", "slow": " 20 ", "direction": "long_short"})

    assert params == SmaCrossParams(fast=5, slow=20, direction="long_short")
    assert type(params.fast) is int


def test_module_from_mapping_keeps_defaults_for_missing_keys() -> None:
    params = from_mapping(SmaCrossParams, {"slow": "40"})

    assert (params.fast, params.slow, params.direction) == (10, 40, "long")


@pytest.mark.parametrize(
    ("values", "parameter", "message"),
    [
        (
            {"fats": "5"},
            "fats",
            "parameter 'fats' is unknown (known parameters: fast, slow, direction), got '5'",
        ),
        ({"fast": "ten"}, "fast", "parameter 'fast' must be an integer, got 'ten'"),
        ({"fast": "10.5"}, "fast", "parameter 'fast' must be an integer, got '10.5'"),
        ({"fast": "0"}, "fast", "parameter 'fast' must be >= 1, got '0'"),
        ({"slow": "5000"}, "slow", "parameter 'slow' must be <= 1000, got '5000'"),
        (
            {"direction": "short"},
            "direction",
            "parameter 'direction' must be one of 'long', 'long_short', got 'short'",
        ),
        ({"fast": "50"}, "fast", "parameter 'fast' must be < slow (30), got 50"),
        ({"fast": 2.5}, "fast", "parameter 'fast' must be an integer, got 2.5"),
        ({"fast": True}, "fast", "parameter 'fast' must be an integer, got True"),
    ],
)
def test_from_mapping_errors_name_the_parameter_and_value(
    values: dict[str, object], parameter: str, message: str
) -> None:
    with pytest.raises(ParameterError) as caught:
        SmaCrossParams.from_mapping(values)

    assert caught.value.parameter == parameter
    assert str(caught.value) == message
    assert isinstance(caught.value, ConfigError)


def test_constraint_error_reports_the_offending_value() -> None:
    with pytest.raises(ParameterError, match=r"parameter 'fast' must be < slow \(30\), got 50"):
        SmaCrossParams(fast=50)


@pytest.mark.parametrize(
    ("params_type", "values", "message"),
    [
        (RsiReversionParams, {"lower": "70"}, "parameter 'lower' must be < upper (70.0), got 70.0"),
        (GeometryPhaseParams, {"exit": "0.1"}, "parameter 'exit' must be < entry (0.05), got 0.1"),
        (BollingerBreakoutParams, {"num_std": "0.1"}, "parameter 'num_std' must be >= 0.5"),
    ],
)
def test_builtin_constraints(
    params_type: type[Params], values: dict[str, object], message: str
) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        params_type.from_mapping(values)


def test_direct_construction_normalises_numbers() -> None:
    params = SmaCrossParams(fast=np.int64(5))  # type: ignore[arg-type]
    ratio = MixedParams(ratio=1).ratio

    assert type(params.fast) is int
    assert type(ratio) is float


def test_direct_construction_checks_types() -> None:
    with pytest.raises(ParameterError, match="parameter 'fast' must be an integer, got '10'"):
        SmaCrossParams(fast="10")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("on", True), ("0", False), ("off", False)],
)
def test_bool_strings_parse(text: str, expected: bool) -> None:
    assert MixedParams.from_mapping({"enabled": text}).enabled is expected


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"enabled": "maybe"}, "must be true or false"),
        ({"enabled": 1}, "must be true or false"),
        ({"ratio": "nan"}, "must be a finite number"),
        ({"ratio": "inf"}, "must be a finite number"),
        ({"ratio": "half"}, "must be a number"),
        ({"ratio": "1.5"}, "must be <= 1.0"),
        ({"label": 3}, "must be a string"),
        ({"level": "4"}, "must be one of 1, 2, 3"),
        ({"mode": "c"}, "must be one of 'a', 'b'"),
    ],
)
def test_mixed_kinds_reject_bad_values(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(ParameterError, match=fragment):
        MixedParams.from_mapping(values)


def test_numbers_are_normalised_to_the_declared_kind() -> None:
    params = MixedParams.from_mapping(
        {"count": np.int64(5), "ratio": 1, "free": np.float32(2.5), "level": "3", "mode": "b"}
    )

    assert params.count == 5
    assert type(params.count) is int
    assert params.ratio == 1.0
    assert type(params.ratio) is float
    assert params.free == 2.5
    assert type(params.free) is float
    assert params.level == 3
    assert params.mode == "b"
    assert MixedParams.from_mapping({"enabled": np.bool_(True)}).enabled is True


def test_to_dict_lists_every_value() -> None:
    assert SmaCrossParams().to_dict() == {"fast": 10, "slow": 30, "direction": "long"}


def test_param_specs_describe_bounds_choices_and_kinds() -> None:
    specs = param_specs(MixedParams)

    assert list(specs) == ["count", "ratio", "enabled", "label", "mode", "level", "free"]
    assert specs["count"].describe() == {
        "name": "count",
        "type": "int",
        "default": 3,
        "low": 1,
        "high": 10,
        "step": 2,
        "choices": None,
        "description": "A count.",
    }
    assert specs["label"] == Param(default="plain", name="label", kind="str")
    assert specs["mode"].choices == ("a", "b")
    assert specs["level"].kind == "int"
    assert specs["level"].choices == (1, 2, 3)


def test_sweep_values_follow_the_declared_ranges() -> None:
    specs = param_specs(MixedParams)

    assert specs["count"].sweep_values() == (1, 3, 5, 7, 9)
    assert specs["ratio"].sweep_values() == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert specs["enabled"].sweep_values() == (False, True)
    assert specs["mode"].sweep_values() == ("a", "b")
    assert param_specs(SmaCrossParams)["fast"].sweep_values() == tuple(range(1, 501))


def test_sweep_values_need_bounds_and_a_float_step() -> None:
    specs = param_specs(MixedParams)
    no_step = Param(default=0.5, low=0.0, high=1.0, name="x", kind="float")
    int_without_step = Param(default=2, low=1, high=3, name="n", kind="int")

    with pytest.raises(ConfigError, match="parameter 'free' has no bounds"):
        specs["free"].sweep_values()
    with pytest.raises(ConfigError, match="parameter 'x' has no step"):
        no_step.sweep_values()
    assert int_without_step.sweep_values() == (1, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"low": 5, "high": 1}, "low must be <= high"),
        ({"step": 0}, "step must be > 0"),
        ({"choices": ()}, "choices must not be empty"),
    ],
)
def test_param_declaration_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        param(1, **kwargs)  # type: ignore[arg-type]


def test_invalid_params_classes_are_refused() -> None:
    @dataclass(frozen=True)
    class NoDefault(Params):
        size: int

    @dataclass(frozen=True)
    class BadDefault(Params):
        size: int = param(0, low=1, high=5)

    @dataclass(frozen=True)
    class BoundedText(Params):
        name: str = param("x", low=1)

    @dataclass(frozen=True)
    class ChoicesOutsideLiteral(Params):
        mode: Literal["a", "b"] = param("a", choices=("a", "z"))

    @dataclass(frozen=True)
    class MixedLiteral(Params):
        mode: Literal["a", 1] = "a"

    class Undecorated(Params):
        size: int = 1

    cases = [
        (NoDefault, "needs a default"),
        (BadDefault, "invalid default: parameter 'size' must be >= 1, got 0"),
        (BoundedText, "bounds apply to numbers only"),
        (ChoicesOutsideLiteral, "outside"),
        (MixedLiteral, "unsupported parameter type"),
        (Undecorated, "must be decorated with @dataclass"),
        (dict, "must derive from tradepulse.strategy.Params"),
    ]
    for params_type, fragment in cases:
        with pytest.raises(StrategyError, match=fragment):
            param_specs(params_type)  # type: ignore[arg-type]


def test_unresolvable_annotation_is_refused() -> None:
    @dataclass(frozen=True)
    class Dangling(Params):
        size: NotDefinedAnywhere = 1  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(StrategyError, match="cannot resolve parameter types"):
        param_specs(Dangling)


def test_parse_assignments_splits_on_the_first_equals() -> None:
    assert parse_assignments(["fast=10", " slow =30", "expr=a=b", "empty="]) == {
        "fast": "10",
        "slow": "30",
        "expr": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (["fast"], "must look like name=value, got 'fast'"),
        (["=3"], "must look like name=value"),
        (["fast=1", "fast=2"], "parameter 'fast' is assigned twice"),
    ],
)
def test_parse_assignments_errors(items: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_assignments(items)
