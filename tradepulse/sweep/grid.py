"""Parameter grids of a sweep: parsing, typing, enumeration, constraints, random draws.

A grid maps some of a strategy's parameters to the values to try; the other
parameters keep their default or a fixed value. Its points are the Cartesian
product of the value lists, parameters in the strategy's declaration order, the
last one varying fastest: point ``i`` is the ``i``-th combination of that
product (its *combo id*, stable for a given grid). A point whose parameters
break one of the strategy's constraints (``Params.check``, such as
``fast < slow``) is skipped and counted; a value outside its own parameter's
spec is an error, since no combination could use it.

Ranges are inclusive of ``stop`` and exact: ``fast=5:20:5`` is 5, 10, 15, 20
(integers stay integers) and ``x=0.1:0.3:0.1`` is 0.1, 0.2, 0.3, each the float
nearest to the decimal value (``start + i * step`` is computed in decimal
arithmetic, so no rounding error accumulates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from tradepulse.errors import ConfigError
from tradepulse.strategy.api import Strategy
from tradepulse.strategy.params import Param, ParameterError, Params, param_specs

__all__ = [
    "MAX_GRID_POINTS",
    "SweepGrid",
    "grid_range",
    "parse_grid_range",
    "parse_value_list",
    "resolve_grid",
]

#: Largest grid (points of the Cartesian product) a sweep enumerates exhaustively;
#: a larger one can be sampled with ``random=``.
MAX_GRID_POINTS: Final = 10_000_000
# Largest grid ``random=`` samples from (point ids are int64).
_MAX_SAMPLED_POINTS: Final = 2**62
# Points checked against the constraints per vectorised block.
_BLOCK: Final = 65_536


def _decimal(value: object, *, what: str) -> Decimal:
    """Return ``value`` (a number or its text) as a finite `Decimal`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    try:
        # repr() of a float is the shortest text that reads back to it: 0.1 -> "0.1".
        number = Decimal(value.strip() if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise ConfigError(f"{what} must be a number; got {value!r}") from None
    if not number.is_finite():
        raise ConfigError(f"{what} must be finite; got {value!r}")
    return number


def _is_integer_text(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, str):
        text = value.strip().lstrip("+-")
        return text.isdigit()
    return False


def grid_range(
    start: int | float | str, stop: int | float | str, step: int | float | str
) -> list[int] | list[float]:
    """Return ``start, start + step, ...`` up to and including ``stop`` (if a step lands on it).

    Integers (or integer text) for all three give integers; otherwise floats,
    each the float nearest to the exact decimal ``start + i * step``.

    Raises:
        ConfigError: a bound is not a finite number, ``step <= 0``,
            ``start > stop``, or the range has more than `MAX_GRID_POINTS` values.
    """
    first = _decimal(start, what="start")
    last = _decimal(stop, what="stop")
    spacing = _decimal(step, what="step")
    if spacing <= 0:
        raise ConfigError(f"step must be > 0; got {step!r}")
    if first > last:
        raise ConfigError(f"start must be <= stop; got start={start!r}, stop={stop!r}")
    count = int((last - first) // spacing) + 1
    if count > MAX_GRID_POINTS:
        raise ConfigError(
            f"range {start!r}:{stop!r}:{step!r} has {count:,} values, more than {MAX_GRID_POINTS:,}"
        )
    if all(_is_integer_text(value) for value in (start, stop, step)):
        return list(range(int(first), int(last) + 1, int(spacing)))
    return [float(first + index * spacing) for index in range(count)]


def _name_and_text(option: str, item: str, shape: str) -> tuple[str, str]:
    name, equals, text = item.partition("=")
    name = name.strip()
    if not equals or not name or not text.strip():
        raise ConfigError(f"{option} must look like {shape}; got {item!r}")
    return name, text.strip()


def parse_grid_range(item: str) -> tuple[str, list[int] | list[float]]:
    """Return the name and values of a ``name=start:stop:step`` range (stop inclusive).

    Raises:
        ConfigError: the text is malformed or the range is invalid (see `grid_range`).
    """
    shape = "name=start:stop:step (stop inclusive)"
    name, text = _name_and_text("--grid", item, shape)
    parts = text.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--grid must look like {shape}; got {item!r}")
    try:
        return name, grid_range(parts[0], parts[1], parts[2])
    except ConfigError as exc:
        raise ConfigError(f"--grid {item!r}: {exc}") from None


def parse_value_list(item: str) -> tuple[str, list[str]]:
    """Return the name and values (text, typed later by the parameter) of ``name=a,b,c``.

    Raises:
        ConfigError: the text is malformed or a value is empty.
    """
    name, text = _name_and_text("--values", item, "name=a,b,c")
    values = [value.strip() for value in text.split(",")]
    if any(not value for value in values):
        raise ConfigError(f"--values {item!r}: empty value in the list")
    return name, values


@dataclass(frozen=True, slots=True)
class SweepGrid:
    """A strategy's parameter grid, typed and checked.

    ``names`` are the swept parameters in declaration order and ``values`` their
    typed values (duplicates removed, order kept); ``fixed`` the typed values of
    parameters held constant (the rest keep their defaults). Picklable: workers
    rebuild parameters from combo ids with :meth:`params_at`.
    """

    params_type: type[Params]
    names: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    fixed: tuple[tuple[str, Any], ...]

    @property
    def points(self) -> int:
        """Return the number of points (combinations) of the grid, valid or not."""
        return math.prod(len(values) for values in self.values)

    @property
    def shape(self) -> tuple[int, ...]:
        """Return the number of values of each swept parameter."""
        return tuple(len(values) for values in self.values)

    def axis_indices(self, combos: NDArray[np.int64]) -> NDArray[np.int64]:
        """Return, per combo id, the index of each parameter's value (shape ``(n, axes)``)."""
        shape = self.shape
        out = np.empty((combos.shape[0], len(shape)), dtype=np.int64)
        rest = combos.astype(np.int64, copy=True)
        for axis in range(len(shape) - 1, -1, -1):
            out[:, axis] = rest % shape[axis]
            rest //= shape[axis]
        return out

    def values_at(self, combo: int) -> dict[str, Any]:
        """Return the swept values of combo id ``combo`` by name."""
        values: dict[str, Any] = {}
        rest = int(combo)
        for name, axis in zip(reversed(self.names), reversed(self.values), strict=True):
            rest, index = divmod(rest, len(axis))
            values[name] = axis[index]
        return {name: values[name] for name in self.names}

    def params_at(self, combo: int) -> Params:
        """Return the parameters of combo id ``combo``.

        Raises:
            ConfigError: the combination breaks one of the strategy's constraints.
        """
        return self.params_type(**dict(self.fixed), **self.values_at(combo))

    def describe(self) -> dict[str, Any]:
        """Return the grid as a JSON-ready dictionary (``grid`` and ``fixed``)."""
        return {
            "grid": {
                name: list(values) for name, values in zip(self.names, self.values, strict=True)
            },
            "fixed": dict(self.fixed),
        }

    def valid_combos(
        self, *, random: int | None = None, seed: int = 0
    ) -> tuple[NDArray[np.int64], int]:
        """Return the combo ids that satisfy the constraints (ascending) and the number skipped.

        ``random`` draws that many distinct points uniformly (deterministic in
        ``seed``) instead of taking every point; drawn points that break a
        constraint are skipped and counted like any other.

        Raises:
            ConfigError: ``random`` or ``seed`` is invalid, or the grid is too
                large to enumerate (more than `MAX_GRID_POINTS` points without
                ``random``, more than 2**62 with it).
        """
        total = self.points
        if random is not None:
            if isinstance(random, bool) or not isinstance(random, int) or random < 1:
                raise ConfigError(f"random must be an integer >= 1; got {random!r}")
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"seed must be an integer >= 0; got {seed!r}")
            if total > _MAX_SAMPLED_POINTS:
                raise ConfigError(f"the grid has {total:,} points, too many to sample from")
            if random > MAX_GRID_POINTS:
                raise ConfigError(f"random must be <= {MAX_GRID_POINTS:,}; got {random:,}")
        elif total > MAX_GRID_POINTS:
            sizes = " x ".join(
                f"{name}: {len(v)}" for name, v in zip(self.names, self.values, strict=True)
            )
            raise ConfigError(
                f"the grid has {total:,} points ({sizes}), more than {MAX_GRID_POINTS:,}; "
                "narrow it or sample it (random=N, CLI --random N)"
            )
        if random is None or random >= total:
            candidates: NDArray[np.int64] = np.arange(total, dtype=np.int64)
        else:
            generator = np.random.default_rng(seed)
            drawn = generator.choice(total, size=random, replace=False)
            candidates = np.sort(drawn.astype(np.int64))
        keep = np.ones(candidates.shape[0], dtype=np.bool_)
        for start in range(0, candidates.shape[0], _BLOCK):
            block = candidates[start : start + _BLOCK]
            for offset, combo in enumerate(block.tolist()):
                try:
                    self.params_at(combo)
                except ConfigError:  # each value passed its own spec: a constraint failed
                    keep[start + offset] = False
        valid = candidates[keep]
        return valid, int(candidates.shape[0] - valid.shape[0])

    def batch_order(self, combos: NDArray[np.int64]) -> NDArray[np.int64]:
        """Return ``combos`` in Z-order over the grid axes (neighbours stay together).

        Consecutive combos of the result form compact tiles of the grid, so a
        batch of them has few distinct values per parameter and the strategy
        can share the indicators those values define. Falls back to combo-id
        order when the axes do not fit one 63-bit key.
        """
        shape = self.shape
        bits = max((max(size - 1, 1).bit_length() for size in shape), default=1)
        if len(shape) <= 1 or bits * len(shape) > 63:
            return np.sort(combos)
        indices = self.axis_indices(combos)
        key = np.zeros(combos.shape[0], dtype=np.int64)
        axes = len(shape)
        for bit in range(bits):
            for axis in range(axes):
                key |= ((indices[:, axis] >> bit) & 1) << (bit * axes + (axes - 1 - axis))
        order = np.lexsort((combos, key))
        result: NDArray[np.int64] = combos[order]
        return result


def _typed_values(spec: Param, values: object) -> tuple[Any, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | range | np.ndarray):
        raise ConfigError(
            f"grid[{spec.name!r}] must be a sequence of values (e.g. [5, 10]); got {values!r}"
        )
    if len(values) == 0:
        raise ConfigError(f"grid[{spec.name!r}] has no values")
    typed: list[Any] = []
    for value in values:
        try:
            parsed = spec.parse(value)
        except ParameterError as exc:
            raise ConfigError(f"grid[{spec.name!r}]: {exc}") from None
        if parsed not in typed:  # a duplicate would only repeat a row
            typed.append(parsed)
    return tuple(typed)


def resolve_grid(
    strategy: Strategy,
    grid: Mapping[str, object] | None,
    fixed: Mapping[str, object] | None = None,
) -> SweepGrid:
    """Return ``strategy``'s typed grid from ``grid`` and the ``fixed`` parameter values.

    ``grid`` maps parameter names to sequences of values (numbers, or text such
    as ``"10"`` that the parameter parses); ``None`` sweeps every parameter not
    in ``fixed`` over its declared range (``Param.sweep_values``). ``fixed``
    holds values kept for every combination.

    Raises:
        ConfigError: ``grid`` or ``fixed`` is not a mapping, names an unknown
            parameter or one in both, has an empty value list or a value that
            breaks its parameter's spec, or a parameter without a declared range
            is swept by default.
        ParameterError: a fixed value is unknown or invalid.
    """
    specs = param_specs(strategy.params_type)
    known = ", ".join(specs) or "none"
    if fixed is None:
        fixed = {}
    if not isinstance(fixed, Mapping):
        raise ConfigError(f"params must be a mapping of fixed parameter values; got {fixed!r}")
    typed_fixed: dict[str, Any] = {}
    for name, value in fixed.items():
        spec = specs.get(name)
        if spec is None:
            raise ParameterError(name, value, f"is unknown (known parameters: {known})")
        typed_fixed[name] = spec.parse(value)
    swept: dict[str, tuple[Any, ...]] = {}
    if grid is None:
        for name, spec in specs.items():
            if name in typed_fixed:
                continue
            try:
                swept[name] = spec.sweep_values()
            except ConfigError as exc:
                raise ConfigError(f"{exc}; give its values in the grid or fix it") from None
    else:
        if not isinstance(grid, Mapping):
            raise ConfigError(f"grid must be a mapping of parameter name to values; got {grid!r}")
        for name in grid:
            if name not in specs:
                raise ConfigError(
                    f"grid names unknown parameter {name!r} (known parameters: {known})"
                )
            if name in typed_fixed:
                raise ConfigError(f"parameter {name!r} is both swept and fixed")
        swept = {
            name: _typed_values(spec, grid[name]) for name, spec in specs.items() if name in grid
        }
    return SweepGrid(
        params_type=strategy.params_type,
        names=tuple(swept),
        values=tuple(swept.values()),
        fixed=tuple(typed_fixed.items()),
    )
