"""TradePulse's exception hierarchy: one root, errors that name what was wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BarContractError",
    "ConfigError",
    "DataError",
    "DataValidationError",
    "IndicatorError",
    "OptimalTransportError",
    "TradePulseError",
    "ValidationProblem",
]


class TradePulseError(Exception):
    """Root of every error TradePulse raises on purpose."""


class ConfigError(TradePulseError, ValueError):
    """A configuration key or value is invalid."""


class IndicatorError(TradePulseError, ValueError):
    """An indicator was given an invalid parameter or input."""


class OptimalTransportError(TradePulseError, RuntimeError):
    """An exact optimal-transport solve (Ricci curvature) did not reach optimality."""


class DataError(TradePulseError):
    """Market data could not be read (missing file, unreadable format, bad option)."""


@dataclass(frozen=True, slots=True)
class ValidationProblem:
    """One violation of the bar contract.

    ``row`` is the 0-based data row (``None`` when the problem concerns the
    whole file or a whole column).
    """

    row: int | None
    column: str | None
    value: str | None
    rule: str

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        column = f", column {self.column!r}" if self.column is not None else ""
        value = f", value {self.value}" if self.value is not None else ""
        return f"{where}{column}{value}: {self.rule}"


class DataValidationError(DataError):
    """Market data violates the bar contract; ``problems`` lists every violation found."""

    def __init__(self, source: str, problems: Sequence[ValidationProblem]) -> None:
        self.source = source
        self.problems: tuple[ValidationProblem, ...] = tuple(problems)
        first = str(self.problems[0]) if self.problems else "invalid data"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{source}: {first}{more}")


class BarContractError(DataValidationError):
    """Bars violate the bar contract: ``problems`` lists the first, ``omitted`` counts the rest.

    ``total`` is ``len(problems) + omitted``: every violation found, listed or not.
    """

    def __init__(
        self, source: str, problems: Sequence[ValidationProblem], *, omitted: int = 0
    ) -> None:
        super().__init__(source, problems)
        self.omitted = omitted
        self.total = len(self.problems) + omitted
        if self.total > 1:
            first = str(self.problems[0]) if self.problems else "invalid data"
            self.args = (f"{source}: {first} (and {self.total - 1} more)",)
