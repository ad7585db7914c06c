"""Strategy classes that fake entry points load in the plugin tests."""

from __future__ import annotations

from dataclasses import dataclass

from tradepulse.strategy import Bar, Params, Strategy, StrategyContext, param


@dataclass(frozen=True, slots=True)
class EmptyParams(Params):
    """No parameters."""


@dataclass(frozen=True, slots=True)
class OneParams(Params):
    """One bounded parameter."""

    size: int = param(1, low=1, high=3, description="A size.")
    note: str = param("none", description="Free text: no range.")


class _Quiet(Strategy[EmptyParams]):
    params_type = EmptyParams

    def handle_tick(self, ctx: StrategyContext[EmptyParams], bar: Bar) -> None:
        """Never trade."""


class Good(_Quiet):
    """A well-formed plugin."""

    name = "good"
    api_version = "1.0"


class OtherGood(Strategy[OneParams]):
    """Another well-formed plugin, event form only."""

    name = "other_good"
    api_version = "1.0"
    params_type = OneParams

    def handle_tick(self, ctx: StrategyContext[OneParams], bar: Bar) -> None:
        """Never trade."""


class OldMajor(_Quiet):
    """Written for a future major version."""

    name = "old_major"
    api_version = "2.0"


class ZeroMajor(_Quiet):
    """Written for a pre-release major version."""

    name = "zero_major"
    api_version = "0.9"


class NewerMinor(_Quiet):
    """Written for a newer minor version than ours."""

    name = "newer_minor"
    api_version = "1.1"


class Malformed(_Quiet):
    """A version that is not MAJOR.MINOR."""

    name = "malformed"
    api_version = "one"


class NoVersion(_Quiet):
    """Declares no api_version."""

    name = "no_version"


class WrongName(_Quiet):
    """Its name differs from the entry-point name."""

    name = "something_else"
    api_version = "1.0"


class Abstract(Strategy[EmptyParams]):
    """Forgets handle_tick."""

    name = "abstract"
    api_version = "1.0"
    params_type = EmptyParams


class UndecoratedParams(Params):
    """Forgets @dataclass: its annotation would silently not be a parameter."""

    size: int = 1


@dataclass(frozen=True, slots=True)
class ListParams(Params):
    """An unsupported parameter type."""

    sizes: tuple[int, ...] = (1, 2)


class BadParams(_Quiet):
    """Its parameters are not a dataclass."""

    name = "bad_params"
    api_version = "1.0"
    params_type = UndecoratedParams  # type: ignore[assignment]


class NoParamsType(Strategy[EmptyParams]):
    """params_type is not a Params dataclass."""

    name = "no_params_type"
    api_version = "1.0"
    params_type = dict  # type: ignore[assignment]

    def handle_tick(self, ctx: StrategyContext[EmptyParams], bar: Bar) -> None:
        """Never trade."""


NOT_A_STRATEGY = 42
