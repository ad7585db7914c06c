"""Typed strategy parameters: declared once, validated everywhere, read by sweeps.

A strategy's parameters are a frozen dataclass deriving from :class:`Params`;
each field is declared with :func:`param`, which records a :class:`Param` spec
(default, inclusive bounds and/or choices, sweep step, description)::

    @dataclass(frozen=True, slots=True)
    class SmaCrossParams(Params):
        fast: int = param(10, low=1, high=500, step=1, description="Fast SMA period (bars).")
        slow: int = param(30, low=2, high=1000, step=1, description="Slow SMA period (bars).")

        def check(self) -> None:
            if self.fast >= self.slow:
                raise ParameterError("fast", self.fast, f"must be < slow ({self.slow})")

Supported field types: ``int``, ``float``, ``bool``, ``str`` and ``Literal[...]``
of strings or integers (its values become the choices). Constructing a params
object checks every value against its spec, then calls :meth:`Params.check`
for constraints between parameters. :meth:`Params.from_mapping` converts the
strings of ``--param k=v`` (or values from a YAML file or a sweep) into typed
values with errors that name the parameter and the value.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar

import numpy as np

from tradepulse.errors import ConfigError
from tradepulse.strategy.api import StrategyError

__all__ = [
    "Param",
    "ParamKind",
    "ParameterError",
    "Params",
    "from_mapping",
    "param",
    "param_specs",
    "parse_assignments",
]

T = TypeVar("T")
ParamsT = TypeVar("ParamsT", bound="Params")

#: The value types a parameter may have.
ParamKind = Literal["int", "float", "bool", "str"]

_METADATA_KEY = "tradepulse.param"
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_KIND_OF_TYPE: dict[object, ParamKind] = {int: "int", float: "float", bool: "bool", str: "str"}
# Specs of each params class, built once (classes are immutable in practice).
_SPEC_CACHE: dict[type, dict[str, Param]] = {}
_KIND_WORD: dict[ParamKind, str] = {
    "int": "an integer",
    "float": "a finite number",
    "bool": "true or false",
    "str": "a string",
}


class ParameterError(ConfigError):
    """A strategy parameter is unknown or has an invalid value.

    ``parameter`` names it and ``value`` is the offending value.
    """

    def __init__(self, parameter: str, value: object, problem: str) -> None:
        self.parameter = parameter
        self.value = value
        self.problem = problem
        super().__init__(f"parameter {parameter!r} {problem}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Param:
    """The spec of one parameter.

    ``low`` and ``high`` are inclusive bounds (numeric kinds only), ``choices``
    the allowed values, ``step`` the spacing of a sweep grid over
    ``[low, high]``. ``name`` and ``kind`` are filled in by :func:`param_specs`
    from the dataclass field.
    """

    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    step: float | None = None
    description: str = ""
    name: str = ""
    kind: ParamKind = "str"

    def validate(self, value: object) -> Any:
        """Return ``value`` normalised to this parameter's kind after checking it.

        Accepts values of the right type (an integer where a float is expected;
        numpy scalars); strings are *not* parsed here (see :meth:`parse`).

        Raises:
            ParameterError: wrong type, outside ``[low, high]`` or not a choice.
        """
        typed = self._coerce(value)
        if self.low is not None and typed < self.low:
            raise ParameterError(self.name, value, f"must be >= {self.low!r}")
        if self.high is not None and typed > self.high:
            raise ParameterError(self.name, value, f"must be <= {self.high!r}")
        if self.choices is not None and typed not in self.choices:
            allowed = ", ".join(repr(choice) for choice in self.choices)
            raise ParameterError(self.name, value, f"must be one of {allowed}")
        return typed

    def parse(self, value: object) -> Any:
        """Return ``value`` (a string such as ``"10"``, or an already typed value) validated.

        Raises:
            ParameterError: the text does not parse as this kind, or the value is
                out of range or not a choice.
        """
        if not isinstance(value, str) or self.kind == "str":
            return self.validate(value)
        text = value.strip()
        parsed: object
        if self.kind == "bool":
            lowered = text.lower()
            if lowered not in _TRUE | _FALSE:
                raise ParameterError(self.name, value, f"must be {_KIND_WORD['bool']}")
            parsed = lowered in _TRUE
        elif self.kind == "int":
            try:
                parsed = int(text, 10)
            except ValueError:
                raise ParameterError(self.name, value, "must be an integer") from None
        else:
            try:
                parsed = float(text)
            except ValueError:
                raise ParameterError(self.name, value, "must be a number") from None
        try:
            return self.validate(parsed)
        except ParameterError as exc:
            raise ParameterError(self.name, value, exc.problem) from None

    def sweep_values(self) -> tuple[Any, ...]:
        """Return the sweep grid: the choices, ``(False, True)`` or ``low..high`` by ``step``.

        Integer parameters without a step use step 1. Float grids are
        ``low + i * step`` for every i that stays <= ``high`` (within 1e-9 steps).

        Raises:
            ConfigError: a numeric parameter lacks bounds, or a float one lacks a step.
        """
        if self.choices is not None:
            return self.choices
        if self.kind == "bool":
            return (False, True)
        if self.low is None or self.high is None:
            raise ConfigError(f"parameter {self.name!r} has no bounds to sweep (give low and high)")
        if self.kind == "int":
            step = 1 if self.step is None else int(self.step)
            return tuple(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ConfigError(f"parameter {self.name!r} has no step to sweep (give step)")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return tuple(self.low + index * self.step for index in range(count))

    def describe(self) -> dict[str, Any]:
        """Return the spec as a JSON-ready dictionary."""
        return {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "choices": list(self.choices) if self.choices is not None else None,
            "description": self.description,
        }

    def _coerce(self, value: object) -> Any:
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool | np.bool_):
                return bool(value)
        elif isinstance(value, bool):
            pass  # a bool is an int in Python, never a valid number or string here
        elif kind == "int":
            if isinstance(value, numbers.Integral):
                return int(value)
        elif kind == "float":
            if isinstance(value, numbers.Real):
                number = float(value)
                if math.isfinite(number):
                    return number
        elif isinstance(value, str):
            return value
        raise ParameterError(self.name, value, f"must be {_KIND_WORD[kind]}")


def param(
    default: T,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[T] | None = None,
    step: float | None = None,
    description: str = "",
) -> T:
    """Declare a parameter field of a :class:`Params` dataclass.

    ``default`` is its value when not given; ``low``/``high`` are inclusive
    bounds; ``choices`` the allowed values; ``step`` the spacing of sweep grids;
    ``description`` one line for ``tradepulse strategies``.

    Raises:
        ConfigError: ``low > high``, ``step <= 0`` or ``choices`` is empty.
    """
    if low is not None and high is not None and low > high:
        raise ConfigError(f"param low must be <= high, got low={low!r}, high={high!r}")
    if step is not None and not step > 0:
        raise ConfigError(f"param step must be > 0, got {step!r}")
    if choices is not None and len(choices) == 0:
        raise ConfigError("param choices must not be empty")
    spec = Param(
        default=default,
        low=low,
        high=high,
        choices=tuple(choices) if choices is not None else None,
        step=step,
        description=description,
    )
    # The dataclass machinery sees a Field; type checkers see a value of type T.
    return field(default=default, metadata={_METADATA_KEY: spec})


def _kind_and_choices(annotation: object, where: str) -> tuple[ParamKind, tuple[Any, ...] | None]:
    if annotation in _KIND_OF_TYPE:
        return _KIND_OF_TYPE[annotation], None
    if typing.get_origin(annotation) is Literal:
        values = typing.get_args(annotation)
        if all(isinstance(v, str) for v in values):
            return "str", values
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "int", values
    raise StrategyError(
        f"{where}: unsupported parameter type {annotation!r} "
        "(use int, float, bool, str or a Literal of strings or integers)"
    )


def _specs(params_type: type[Params]) -> dict[str, Param]:
    cached = _SPEC_CACHE.get(params_type)
    if cached is None:
        cached = _SPEC_CACHE[params_type] = _build_specs(params_type)
    return cached


def _build_specs(params_type: type[Params]) -> dict[str, Param]:
    owner = params_type.__qualname__
    if not (isinstance(params_type, type) and issubclass(params_type, Params)):
        raise StrategyError(f"{owner}: parameters must derive from tradepulse.strategy.Params")
    # Params is frozen, so a dataclass deriving from it is frozen too (dataclasses
    # refuses a mutable one); an undecorated subclass would silently have no fields.
    if "__dataclass_fields__" not in params_type.__dict__:
        raise StrategyError(f"{owner}: parameters must be decorated with @dataclass(frozen=True)")
    try:
        hints = typing.get_type_hints(params_type)
    except (NameError, TypeError) as exc:
        raise StrategyError(f"{owner}: cannot resolve parameter types: {exc}") from exc
    specs: dict[str, Param] = {}
    for item in dataclasses.fields(params_type):
        where = f"{owner}.{item.name}"
        kind, literal_choices = _kind_and_choices(hints[item.name], where)
        declared = item.metadata.get(_METADATA_KEY)
        if isinstance(declared, Param):
            spec = declared
        elif item.default is not dataclasses.MISSING:
            spec = Param(default=item.default)
        else:
            raise StrategyError(
                f"{where}: every parameter needs a default (declare it with param())"
            )
        choices = spec.choices if spec.choices is not None else literal_choices
        if kind == "str" and (spec.low is not None or spec.high is not None):
            raise StrategyError(f"{where}: bounds apply to numbers only")
        spec = dataclasses.replace(spec, name=item.name, kind=kind, choices=choices)
        if literal_choices is not None and not set(spec.choices or ()) <= set(literal_choices):
            raise StrategyError(f"{where}: choices {spec.choices!r} outside {literal_choices!r}")
        try:
            spec = dataclasses.replace(spec, default=spec.validate(spec.default))
        except ParameterError as exc:
            raise StrategyError(f"{where}: invalid default: {exc}") from exc
        specs[item.name] = spec
    return specs


def param_specs(params_type: type[Params]) -> dict[str, Param]:
    """Return the :class:`Param` spec of every field of ``params_type``, in declaration order.

    Raises:
        StrategyError: ``params_type`` is not a frozen :class:`Params` dataclass, a
            field has an unsupported type or no default, or a default violates
            its own spec.
    """
    return dict(_specs(params_type))


@dataclass(frozen=True, slots=True)
class Params:
    """Base of every strategy's frozen parameter dataclass.

    Construction validates each field against its :class:`Param` spec (and
    normalises numbers: ``int`` where an integer is declared, ``float`` where a
    float is), then calls :meth:`check`.
    """

    def __post_init__(self) -> None:
        for name, spec in _specs(type(self)).items():
            value = getattr(self, name)
            typed = spec.validate(value)
            if typed is not value:
                object.__setattr__(self, name, typed)  # frozen: normalise in place once
        self.check()

    def check(self) -> None:
        """Check constraints between parameters (override; the default accepts all).

        Raises:
            ConfigError: a constraint fails (use :class:`ParameterError` to name
                the parameter and its value).
        """

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Self:
        """Return parameters built from ``values``, defaults for the rest.

        Values may be strings (``{"fast": "10"}``, as from ``--param fast=10``)
        or typed values.

        Raises:
            ParameterError: a key is unknown, a value has the wrong type or does
                not parse, lies outside its bounds or is not a choice, or a
                constraint of :meth:`check` fails.
        """
        specs = _specs(cls)
        typed: dict[str, Any] = {}
        for key, value in values.items():
            spec = specs.get(key)
            if spec is None:
                known = ", ".join(specs) or "none"
                raise ParameterError(key, value, f"is unknown (known parameters: {known})")
            typed[key] = spec.parse(value)
        return cls(**typed)

    def to_dict(self) -> dict[str, Any]:
        """Return the parameter values by name (JSON-ready)."""
        return {name: getattr(self, name) for name in _specs(type(self))}


def from_mapping(params_type: type[ParamsT], values: Mapping[str, object]) -> ParamsT:
    """Return ``params_type.from_mapping(values)``; see :meth:`Params.from_mapping`."""
    return params_type.from_mapping(values)


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """Return ``{"k": "v"}`` for command-line assignments such as ``["k=v"]``.

    Whitespace around the key is ignored; the value is everything after the first ``=``.

    Raises:
        ConfigError: an item has no ``=`` or an empty key, or a key repeats.
    """
    result: dict[str, str] = {}
    for item in assignments:
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ConfigError(f"parameter assignment must look like name=value, got {item!r}")
        if key in result:
            raise ConfigError(f"parameter {key!r} is assigned twice, got {item!r}")
        result[key] = value
    return result
