"""Adaptive parameter search with Ray Tune: random or Bayesian, ASHA early stopping.

A search is described by a YAML spec (``tune/*.yaml``) that :func:`load_tune_spec`
loads strictly into a :class:`TuneSpec` (no Ray involved); :func:`run_tune`
runs it on the connected Ray cluster (connecting to a local one if need be)
and returns a :class:`TuneResult` with one row per trial, also written as
Parquet. Conventions in full: ``docs/tune.md``. Spec layout::

    name: sma_cross_random            # optional; default: the file's stem
    description: "..."                # optional free text
    data: golden/data/sp500_daily.csv # CSV/Parquet bars of one instrument
    symbol: null                      # optional: the symbol to take from a multi-symbol file
    strategy: sma_cross               # a strategy with a vectorised signals() form
    space:                            # the searched parameters (at least one)
      fast: {kind: randint, low: 5, high: 60}            # integers low..high, inclusive
      slow: {kind: quantized, low: 20, high: 250, step: 10}  # multiples of step
      # {kind: uniform, low, high} and {kind: loguniform, low, high}: float parameters
      # {kind: choice, values: [a, b]}: any parameter
    params: {direction: long}         # optional fixed parameters (others keep defaults)
    frictions: backtest/configs/equities.yaml  # optional: a friction config file, or
                                      # a mapping of its keys (name optional)
    cash: 10000                       # optional starting cash, quote currency
    objective: {metric: sharpe, mode: max}     # a walk-forward objective; mode max|min
    search:
      algorithm: random               # random | bayesian (Optuna's TPE)
      num_samples: 40                 # trials
      max_concurrent: 2               # optional: trials at once (null: as the cluster allows)
      seed: 7                         # optional: reproducible sampling (null: not)
      cpus_per_trial: 1               # optional
    scheduler: {kind: asha, grace_period: 2, reduction_factor: 3}  # optional (null: none)
    walk_forward: {train_bars: 756, test_bars: 252, anchored: false, score: stitched}

Relative paths (``data``, a ``frictions`` file) are resolved against the
working directory (or ``base_dir``). Bounds of the space must lie inside the
strategy's declared parameter ranges.

A trial is one parameter combination walked forward over the folds of
:func:`~tradepulse.backtest.walk_forward_windows`: fold k's strategy sees the
bars of its train window and its test window (rolling: the ``train_bars``
bars before the test window; anchored: every bar from the first) and trades the
test window, starting flat with ``cash``; that backtest's objective is the
fold's score. With a scheduler, after each fold the trial reports the running
mean of its scores so far (NaN scores skipped), so ASHA can stop a poor trial
after a few folds (without one, nothing acts on those reports, so only the last
is sent, carrying every fold's score); after the last fold it reports its
final objective: ``score: stitched`` (the
default) is the objective of one backtest of the test windows' targets
stitched together from the first test bar (positions carry across fold
boundaries), exactly as :func:`~tradepulse.backtest.walk_forward` runs its
out-of-sample windows; ``score: mean`` is the mean of the fold scores. An
undefined value (NaN) is reported to Tune as the worst value
(:data:`WORST_REPORTED` against the mode), so it never wins. A combination
that violates the strategy's constraints (such as ``fast >= slow``) is
reported once as that worst value and marked ``invalid``.

Market data goes to the object store once (``tune.with_parameters``); trials
reuse their actors (``reuse_actors=True``) and Tune prints nothing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import polars as pl
import yaml
from numpy.typing import NDArray

from tradepulse.backtest.config import (
    COMMISSION_KEYS,
    FRICTION_KEYS,
    FrictionConfig,
    load_friction_config,
)
from tradepulse.backtest.runner import Frictions, resolve_frictions, resolve_strategy
from tradepulse.backtest.walkforward import OBJECTIVES, WalkForwardWindow, walk_forward_windows
from tradepulse.costs.commission import CommissionTerms
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.strategy.api import Strategy, StrategyError, validate_signals
from tradepulse.strategy.params import Param, Params, param_specs
from tradepulse.strategy.plugins import load_strategy
from tradepulse.yamlfile import StrictLoader

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

__all__ = [
    "ALGORITHMS",
    "MODES",
    "SCHEDULERS",
    "SCORES",
    "SPACE_KINDS",
    "SPEC_KEYS",
    "STATUSES",
    "SUMMARY_FILE",
    "TRIALS_FILE",
    "TRIAL_COLUMNS",
    "WORST_REPORTED",
    "AshaSettings",
    "ParameterSpace",
    "TuneResult",
    "TuneSpec",
    "WalkForwardSettings",
    "load_tune_spec",
    "run_tune",
    "with_overrides",
]

#: Search algorithms: ``random`` (Tune's random sampling) and ``bayesian`` (Optuna's TPE).
ALGORITHMS: Final[tuple[str, ...]] = ("random", "bayesian")
#: Early-stopping schedulers (``None`` in a spec: every trial runs every fold).
SCHEDULERS: Final[tuple[str, ...]] = ("asha",)
#: Final objective of a trial: the stitched out-of-sample run, or the mean over folds.
SCORES: Final[tuple[str, ...]] = ("stitched", "mean")
#: Objective directions.
MODES: Final[tuple[str, ...]] = ("max", "min")
#: Search-space kinds of a parameter.
SPACE_KINDS: Final[tuple[str, ...]] = ("uniform", "loguniform", "randint", "choice", "quantized")
#: Keys accepted at the top level of a spec.
SPEC_KEYS: Final[tuple[str, ...]] = (
    "name",
    "description",
    "data",
    "symbol",
    "strategy",
    "space",
    "params",
    "frictions",
    "cash",
    "objective",
    "search",
    "scheduler",
    "walk_forward",
)
#: A trial's ``status``: all folds run, stopped early (by the scheduler, or an
#: interrupted run), its parameters violate the strategy's constraints, or it failed.
STATUSES: Final[tuple[str, ...]] = ("completed", "stopped", "invalid", "error")
#: Columns of :attr:`TuneResult.trials` around the parameter columns (which
#: follow ``stopped_early``, in the strategy's declaration order).
TRIAL_COLUMNS: Final[tuple[str, ...]] = (
    "trial",
    "trial_id",
    "status",
    "stopped_early",
    "folds_done",
    "fold_objectives",
    "objective",
    "elapsed_s",
    "error",
)
#: The file :func:`run_tune` writes in ``out``: one row per trial.
TRIALS_FILE: Final = "trials.parquet"
#: The summary :func:`run_tune` writes next to :data:`TRIALS_FILE`.
SUMMARY_FILE: Final = "summary.json"

#: What a trial reports to Tune instead of an undefined (NaN) or invalid objective:
#: ``-WORST_REPORTED`` when maximising, ``+WORST_REPORTED`` when minimising.
WORST_REPORTED: Final = 1e300

_DEFAULT_CASH: Final = 10_000.0
_OBJECTIVE_KEY: Final = "objective"
_TIME_KEY: Final = "folds_done"
_SECTION_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "objective": ("metric", "mode"),
    "search": ("algorithm", "num_samples", "max_concurrent", "seed", "cpus_per_trial"),
    "scheduler": ("kind", "grace_period", "reduction_factor"),
    "walk_forward": ("train_bars", "test_bars", "anchored", "score"),
}
_SPACE_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "uniform": ("kind", "low", "high"),
    "loguniform": ("kind", "low", "high"),
    "randint": ("kind", "low", "high"),
    "quantized": ("kind", "low", "high", "step"),
    "choice": ("kind", "values"),
}
_PARAM_DTYPES: Final[dict[str, pl.DataType]] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "str": pl.String(),
}
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Quantized bounds may be off a multiple of step by this fraction of a step (float rounding).
_STEP_TOLERANCE: Final = 1e-9


# ------------------------------------------------------------------------------ spec


@dataclass(frozen=True, slots=True)
class ParameterSpace:
    """How one parameter is sampled.

    ``kind`` is one of :data:`SPACE_KINDS`: ``uniform`` / ``loguniform`` draw a
    float in ``[low, high]`` (log-uniform: uniform in its logarithm);
    ``randint`` an integer in ``low..high`` (inclusive); ``quantized`` a
    multiple of ``step`` in ``[low, high]`` (integer or float parameter);
    ``choice`` one of ``values``.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    values: tuple[Any, ...] | None = None

    def describe(self) -> dict[str, Any]:
        """Return the space as a JSON-ready dictionary (its spec-file form)."""
        if self.kind == "choice":
            return {"kind": self.kind, "values": list(self.values or ())}
        described: dict[str, Any] = {"kind": self.kind, "low": self.low, "high": self.high}
        if self.kind == "quantized":
            described["step"] = self.step
        return described


@dataclass(frozen=True, slots=True)
class AshaSettings:
    """ASHA early stopping: a trial is judged after ``grace_period`` folds, then at
    every ``reduction_factor``-fold multiple; below the top ``1 / reduction_factor``
    of the trials judged at the same fold count, it stops."""

    grace_period: int = 1
    reduction_factor: float = 2.0


@dataclass(frozen=True, slots=True)
class WalkForwardSettings:
    """The folds a trial is walked over (see :func:`~tradepulse.backtest.walk_forward_windows`).

    ``score`` is the final objective: ``stitched`` (one backtest over all test
    windows) or ``mean`` (mean of the fold scores).
    """

    train_bars: int
    test_bars: int
    anchored: bool = False
    score: str = "stitched"


@dataclass(frozen=True, slots=True)
class TuneSpec:
    """A Tune search, as loaded from a spec file (see the module docstring).

    ``params`` holds the fixed parameters (typed), ``frictions`` the friction
    config (``None``: frictionless), ``source`` the spec file (``None`` when
    built in code).
    """

    name: str
    data: Path
    strategy: str
    space: dict[str, ParameterSpace]
    objective: str
    mode: str
    algorithm: str
    num_samples: int
    walk_forward: WalkForwardSettings
    description: str = ""
    symbol: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    frictions: FrictionConfig | None = None
    cash: float = _DEFAULT_CASH
    max_concurrent: int | None = None
    seed: int | None = None
    cpus_per_trial: float = 1.0
    scheduler: AshaSettings | None = None
    source: Path | None = None


def _fail(source: Path, message: str) -> ConfigError:
    return ConfigError(f"{source}: {message}")


def _read_document(source: Path) -> Mapping[str, object]:
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read Tune spec: {exc}") from exc
    try:
        document = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no Python tags
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}:{where}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise _fail(source, f"a Tune spec must be a mapping of keys; got {type(document).__name__}")
    return cast("Mapping[str, object]", document)


def _check_keys(
    source: Path, mapping: Mapping[Any, object], known: tuple[str, ...], prefix: str
) -> None:
    for key in mapping:
        if key not in known:
            raise _fail(source, f"unknown key '{prefix}{key}' (known: {', '.join(known)})")


def _section(source: Path, document: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = document.get(key)
    if not isinstance(value, Mapping):
        keys = ", ".join(_SECTION_KEYS[key])
        raise _fail(source, f"key '{key}' must be a mapping of {keys}; got {value!r}")
    _check_keys(source, value, _SECTION_KEYS[key], f"{key}.")
    return cast("Mapping[str, object]", value)


def _text(source: Path, key: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        kind = "a string" if empty else "a non-empty string"
        raise _fail(source, f"key '{key}' must be {kind}; got {value!r}")
    return value


def _integer(source: Path, key: str, value: object, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(source, f"key '{key}' must be an integer >= {low}; got {value!r}")
    return value


def _real(source: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, str):
            hint = " (YAML reads 5e-4 as text: write 5.0e-4 or 0.0005)"
        raise _fail(source, f"key '{key}' must be a finite number; got {value!r}{hint}")
    return float(value)


def _choice(source: Path, key: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _fail(source, f"key '{key}' must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _bounded(source: Path, key: str, spec: Param, value: object, *, integer: bool) -> float:
    """Return a space bound after checking its type and the parameter's declared range."""
    number = _real(source, key, value)
    if integer and not (isinstance(value, int) and not isinstance(value, bool)):
        raise _fail(source, f"key '{key}' must be an integer; got {value!r}")
    if spec.low is not None and number < spec.low:
        raise _fail(
            source,
            f"key '{key}' is {value!r}, below the lowest value {spec.low!r} that parameter "
            f"{spec.name!r} accepts",
        )
    if spec.high is not None and number > spec.high:
        raise _fail(
            source,
            f"key '{key}' is {value!r}, above the highest value {spec.high!r} that parameter "
            f"{spec.name!r} accepts",
        )
    return number


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) <= _STEP_TOLERANCE * max(1.0, abs(ratio))


def _space_entry(source: Path, spec: Param, value: object) -> ParameterSpace:
    prefix = f"space.{spec.name}"
    if not isinstance(value, Mapping):
        raise _fail(
            source,
            f"key '{prefix}' must be a mapping with 'kind' ({', '.join(SPACE_KINDS)}); "
            f"got {value!r}",
        )
    kind = _choice(source, f"{prefix}.kind", value.get("kind"), SPACE_KINDS)
    _check_keys(source, value, _SPACE_KEYS[kind], f"{prefix}.")
    for needed in _SPACE_KEYS[kind]:
        if needed not in value:
            raise _fail(source, f"missing key '{prefix}.{needed}' (kind {kind})")
    if kind == "choice":
        raw = value["values"]
        if not isinstance(raw, list) or not raw:
            raise _fail(source, f"key '{prefix}.values' must be a non-empty list; got {raw!r}")
        typed: list[Any] = []
        for item in raw:
            try:
                parsed = spec.parse(item)
            except ConfigError as exc:
                raise _fail(source, f"key '{prefix}.values': {exc}") from None
            if parsed in typed:
                raise _fail(source, f"key '{prefix}.values' repeats {item!r}")
            typed.append(parsed)
        return ParameterSpace(name=spec.name, kind=kind, values=tuple(typed))
    allowed = {"uniform": ("float",), "loguniform": ("float",), "randint": ("int",)}.get(
        kind, ("int", "float")
    )
    if spec.kind not in allowed or spec.choices is not None:
        suggestion = "choice" if spec.kind in ("bool", "str") or spec.choices else "randint"
        if spec.kind == "float":
            suggestion = "uniform"
        raise _fail(
            source,
            f"key '{prefix}.kind': {kind} does not suit {spec.kind} parameter {spec.name!r}"
            + (" with fixed choices" if spec.choices is not None else "")
            + f"; use {suggestion}",
        )
    integer = spec.kind == "int"
    low = _bounded(source, f"{prefix}.low", spec, value["low"], integer=integer)
    high = _bounded(source, f"{prefix}.high", spec, value["high"], integer=integer)
    if not low < high:
        raise _fail(source, f"key '{prefix}': low ({low:g}) must be < high ({high:g})")
    if kind == "loguniform" and low <= 0.0:
        raise _fail(source, f"key '{prefix}.low' must be > 0 for loguniform; got {low:g}")
    step = None
    if kind == "quantized":
        step = _real(source, f"{prefix}.step", value["step"])
        if integer and not isinstance(value["step"], int):
            raise _fail(source, f"key '{prefix}.step' must be an integer; got {value['step']!r}")
        if step <= 0.0:
            raise _fail(source, f"key '{prefix}.step' must be > 0; got {value['step']!r}")
        for bound, number in (("low", low), ("high", high)):
            if not _is_multiple(number, step):
                raise _fail(
                    source,
                    f"key '{prefix}.{bound}' ({number:g}) must be a multiple of step ({step:g})",
                )
    return ParameterSpace(name=spec.name, kind=kind, low=low, high=high, step=step)


def _space(
    source: Path, value: object, specs: Mapping[str, Param], strategy: str
) -> dict[str, ParameterSpace]:
    if not isinstance(value, Mapping) or not value:
        raise _fail(
            source, f"key 'space' must be a non-empty mapping of parameter names; got {value!r}"
        )
    space: dict[str, ParameterSpace] = {}
    for name, entry in value.items():
        spec = specs.get(name)
        if spec is None:
            raise _fail(
                source,
                f"key 'space.{name}': strategy {strategy!r} has no parameter {name!r} "
                f"(known: {', '.join(specs) or 'none'})",
            )
        space[name] = _space_entry(source, spec, entry)
    return {name: space[name] for name in specs if name in space}  # declaration order


def _fixed(
    source: Path, value: object, specs: Mapping[str, Param], space: Mapping[str, object]
) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(source, f"key 'params' must be a mapping of fixed values; got {value!r}")
    fixed: dict[str, Any] = {}
    for name, raw in value.items():
        spec = specs.get(name)
        if spec is None:
            raise _fail(
                source,
                f"key 'params.{name}': unknown parameter (known: {', '.join(specs) or 'none'})",
            )
        if name in space:
            raise _fail(source, f"key 'params.{name}': parameter {name!r} is also in 'space'")
        try:
            fixed[name] = spec.parse(raw)
        except ConfigError as exc:
            raise _fail(source, f"key 'params.{name}': {exc}") from None
    return fixed


def _resolve_path(value: str, base_dir: Path | None) -> Path:
    path = Path(value).expanduser()
    if path.is_absolute() or base_dir is None:
        return path
    return base_dir / path


def _inline_frictions(source: Path, value: Mapping[Any, object]) -> FrictionConfig:
    _check_keys(source, value, FRICTION_KEYS, "frictions.")
    commission = value.get("commission")
    terms = CommissionTerms()
    if commission is not None:
        if not isinstance(commission, Mapping):
            raise _fail(
                source,
                f"key 'frictions.commission' must be a mapping of {', '.join(COMMISSION_KEYS)}; "
                f"got {commission!r}",
            )
        _check_keys(source, commission, COMMISSION_KEYS, "frictions.commission.")
        try:
            terms = CommissionTerms(**{str(key): item for key, item in commission.items()})
        except ConfigError as exc:
            raise _fail(source, f"key 'frictions.commission': {exc}") from None
    arguments: dict[str, Any] = {
        str(key): item for key, item in value.items() if key != "commission"
    }
    arguments.setdefault("name", "inline")
    try:
        return FrictionConfig(commission=terms, **arguments)
    except ConfigError as exc:
        raise _fail(source, f"key 'frictions': {exc}") from None
    except TypeError as exc:  # pragma: no cover - keys are checked above
        raise _fail(source, f"key 'frictions': {exc}") from None


def _frictions(source: Path, value: object, base_dir: Path | None) -> FrictionConfig | None:
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        path = _resolve_path(value, base_dir)
        try:
            return load_friction_config(path)
        except ConfigError as exc:
            raise _fail(source, f"key 'frictions': {exc}") from None
    if isinstance(value, Mapping):
        return _inline_frictions(source, value)
    raise _fail(
        source,
        f"key 'frictions' must be a friction config path or a mapping of its keys; got {value!r}",
    )


def _scheduler(source: Path, value: object) -> AshaSettings | None:
    if value is None or value == "none":
        return None
    if not isinstance(value, Mapping):
        raise _fail(
            source,
            f"key 'scheduler' must be none or a mapping with kind: asha; got {value!r}",
        )
    _check_keys(source, value, _SECTION_KEYS["scheduler"], "scheduler.")
    _choice(source, "scheduler.kind", value.get("kind"), SCHEDULERS)
    grace = _integer(source, "scheduler.grace_period", value.get("grace_period", 1), low=1)
    factor = _real(source, "scheduler.reduction_factor", value.get("reduction_factor", 2))
    if factor <= 1.0:
        raise _fail(source, f"key 'scheduler.reduction_factor' must be > 1; got {factor:g}")
    return AshaSettings(grace_period=grace, reduction_factor=factor)


def _walk_forward(source: Path, document: Mapping[str, object]) -> WalkForwardSettings:
    section = _section(source, document, "walk_forward")
    for needed in ("train_bars", "test_bars"):
        if needed not in section:
            raise _fail(source, f"missing key 'walk_forward.{needed}'")
    anchored = section.get("anchored", False)
    if not isinstance(anchored, bool):
        raise _fail(source, f"key 'walk_forward.anchored' must be true or false; got {anchored!r}")
    return WalkForwardSettings(
        train_bars=_integer(source, "walk_forward.train_bars", section["train_bars"], low=2),
        test_bars=_integer(source, "walk_forward.test_bars", section["test_bars"], low=2),
        anchored=anchored,
        score=_choice(source, "walk_forward.score", section.get("score", "stitched"), SCORES),
    )


def load_tune_spec(path: str | Path, *, base_dir: str | Path | None = None) -> TuneSpec:
    """Load a Tune spec file strictly into a :class:`TuneSpec` (no Ray needed).

    The strategy is looked up (its plugin imported) so the space and the fixed
    parameters can be checked against its declared parameter ranges; a
    ``frictions`` file is loaded. ``data`` is not read here. Relative paths are
    resolved against ``base_dir`` (default: the working directory).

    Raises:
        ConfigError: the file cannot be read or is not valid YAML, a key is
            unknown, duplicated or missing, or a value is invalid (the message
            names the file, the key and the value): an unknown strategy or
            parameter, a space kind that does not suit the parameter's type,
            bounds outside the parameter's declared range, an unknown
            objective, algorithm, scheduler or score.
    """
    source = Path(path)
    base = Path(base_dir) if base_dir is not None else None
    document = _read_document(source)
    _check_keys(source, document, SPEC_KEYS, "")
    for needed in ("data", "strategy", "space", "objective", "search", "walk_forward"):
        if needed not in document:
            raise _fail(source, f"missing key '{needed}'")
    name = _text(source, "name", document.get("name", source.stem))
    if not _NAME.fullmatch(name):
        raise _fail(
            source,
            f"key 'name' must be letters, digits, '_', '-' or '.' (it names a folder); "
            f"got {name!r}",
        )
    strategy = _text(source, "strategy", document["strategy"])
    try:
        strategy_type = load_strategy(strategy)
    except TradePulseError as exc:
        raise _fail(source, f"key 'strategy': {exc}") from None
    specs = param_specs(strategy_type.params_type)
    space = _space(source, document["space"], specs, strategy)
    fixed = _fixed(source, document.get("params"), specs, space)
    objective = _section(source, document, "objective")
    metric = _choice(source, "objective.metric", objective.get("metric"), OBJECTIVES)
    default_mode = "min" if metric == "max_drawdown" else "max"
    mode = _choice(source, "objective.mode", objective.get("mode", default_mode), MODES)
    search = _section(source, document, "search")
    if "num_samples" not in search or "algorithm" not in search:
        missing = "num_samples" if "algorithm" in search else "algorithm"
        raise _fail(source, f"missing key 'search.{missing}'")
    concurrent = search.get("max_concurrent")
    seed = search.get("seed")
    cash = _real(source, "cash", document.get("cash", _DEFAULT_CASH))
    if cash <= 0.0:
        raise _fail(source, f"key 'cash' must be > 0; got {cash:g}")
    cpus = _real(source, "search.cpus_per_trial", search.get("cpus_per_trial", 1.0))
    if cpus <= 0.0:
        raise _fail(source, f"key 'search.cpus_per_trial' must be > 0; got {cpus:g}")
    symbol = document.get("symbol")
    return TuneSpec(
        name=name,
        description=_text(source, "description", document.get("description", ""), empty=True),
        data=_resolve_path(_text(source, "data", document["data"]), base),
        symbol=None if symbol is None else _text(source, "symbol", symbol),
        strategy=strategy,
        space=space,
        params=fixed,
        frictions=_frictions(source, document.get("frictions"), base),
        cash=cash,
        objective=metric,
        mode=mode,
        algorithm=_choice(source, "search.algorithm", search["algorithm"], ALGORITHMS),
        num_samples=_integer(source, "search.num_samples", search["num_samples"], low=1),
        max_concurrent=None
        if concurrent is None
        else _integer(source, "search.max_concurrent", concurrent, low=1),
        seed=None if seed is None else _integer(source, "search.seed", seed, low=0),
        cpus_per_trial=cpus,
        scheduler=_scheduler(source, document.get("scheduler")),
        walk_forward=_walk_forward(source, document),
        source=source,
    )


# ------------------------------------------------------------------------------ trials


def _worst(mode: str) -> float:
    # Finite: ASHA interpolates percentiles of the reported values, and
    # infinities there give NaN cutoffs (and numpy warnings).
    return -WORST_REPORTED if mode == "max" else WORST_REPORTED


def _nanmean(values: list[float]) -> float:
    finite = [value for value in values if not math.isnan(value)]
    return math.fsum(finite) / len(finite) if finite else math.nan


@dataclass(frozen=True, slots=True)
class _TrialData:
    """Everything a trial needs, put into the object store once for all trials."""

    bars: pl.DataFrame
    strategy: Strategy
    fixed: dict[str, Any]
    windows: tuple[WalkForwardWindow, ...]
    frictions: Frictions
    objective: str
    mode: str
    anchored: bool
    score: str
    report_folds: bool

    def parameters(self, config: Mapping[str, Any]) -> Params:
        """Return the typed parameters of a trial's sampled ``config``.

        Raises:
            ParameterError: a value is invalid or a constraint fails.
        """
        params: Params = self.strategy.params_type(**self.fixed, **dict(config))
        return params

    def _targets(self, params: Params, start: int, end: int) -> NDArray[np.float64]:
        window = self.bars.slice(start, end - start)
        return validate_signals(
            self.strategy.signals(window, params), length=window.height, strategy=self.strategy.name
        )

    def folds(self, params: Params) -> Iterator[tuple[float, float | None]]:
        """Yield ``(fold score, final objective or None)`` per fold; the final comes last.

        Raises:
            StrategyError: the strategy's signals are malformed.
        """
        full = self._targets(params, 0, self.bars.height) if self.anchored else None
        first = self.windows[0].test_start
        stitched = np.zeros(self.bars.height - first)
        scores: list[float] = []
        for window in self.windows:
            if full is not None:
                # Exact for causal signals (the strategy contract), as in walk_forward.
                targets = full[window.test_start : window.test_end]
            else:
                history = self._targets(params, window.train_start, window.test_end)
                targets = history[window.test_start - window.train_start :]
            stitched[window.test_start - first : window.test_end - first] = targets
            run = self.frictions.run(
                self.bars.slice(window.test_start, window.test_end - window.test_start), targets
            )
            scores.append(float(getattr(run.metrics, self.objective)))
            if len(scores) < len(self.windows):
                yield scores[-1], None
            elif self.score == "mean":
                yield scores[-1], _nanmean(scores)
            else:
                oos = self.frictions.run(self.bars.slice(first), stitched)
                yield scores[-1], float(getattr(oos.metrics, self.objective))


def _reportable(value: float, mode: str) -> float:
    return _worst(mode) if math.isnan(value) else value


def _trial(config: dict[str, Any], shared: _TrialData) -> None:
    """Tune's function trainable: walk one parameter combination over the folds."""
    from ray import tune

    started = time.perf_counter()

    def report(**values: Any) -> None:
        tune.report({**values, "trial_elapsed_s": time.perf_counter() - started})

    try:
        params = shared.parameters(config)
    except ConfigError as exc:
        report(objective=_worst(shared.mode), folds_done=0, status="invalid", problem=str(exc))
        return
    scores: list[float] = []
    try:
        for fold_score, final in shared.folds(params):
            scores.append(fold_score)
            if final is None and not shared.report_folds:
                continue  # nothing would act on it: spare the round trip to the driver
            value = _nanmean(scores) if final is None else final
            report(
                objective=_reportable(value, shared.mode),
                folds_done=len(scores),
                fold_objectives=list(scores),
                final_objective=math.nan if final is None else final,
                status="running" if final is None else "completed",
                problem="",
            )
    except (StrategyError, ConfigError) as exc:
        report(
            objective=_worst(shared.mode),
            folds_done=len(scores),
            fold_objectives=list(scores),
            status="error",
            problem=f"{type(exc).__name__}: {exc}",
        )


# ------------------------------------------------------------------------------ running


@dataclass(slots=True)
class _Record:
    """What the driver saw of one trial."""

    index: int
    trial_id: str
    config: dict[str, Any]
    fold_objectives: list[float] = field(default_factory=list)
    final: float | None = None
    status: str = "running"
    problem: str | None = None
    elapsed_s: float = 0.0
    finished: bool = False


def _callback_type() -> type[Any]:
    """Return the Tune callback class that records every trial (Tune loads on demand)."""
    from ray import tune

    class _Recorder(tune.Callback):
        def __init__(
            self, total: int, progress: Callable[[int, int], None] | None, *, folds: int
        ) -> None:
            self.records: dict[str, _Record] = {}
            self.total = total
            self.progress = progress
            self.folds = folds
            self.done = 0

        def __getstate__(self) -> dict[str, Any]:
            # Tune pickles its run config (callbacks included) for a later
            # restore; a progress callback (a rich bar holds locks) need not go.
            state = dict(self.__dict__)
            state["progress"] = None
            return state

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)

        def _record(self, trials: list[Trial], trial: Trial) -> _Record:
            record = self.records.get(trial.trial_id)
            if record is None:
                index = next(i for i, known in enumerate(trials) if known is trial)
                record = _Record(index=index, trial_id=trial.trial_id, config=dict(trial.config))
                self.records[trial.trial_id] = record
            return record

        def on_trial_start(
            self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
        ) -> None:
            self._record(trials, trial)

        def on_trial_result(
            self,
            iteration: int,
            trials: list[Trial],
            trial: Trial,
            result: dict[str, Any],
            **info: Any,
        ) -> None:
            record = self._record(trials, trial)
            record.elapsed_s = float(result.get("trial_elapsed_s", record.elapsed_s))
            status = str(result.get("status", "running"))
            if "fold_objectives" in result:
                record.fold_objectives = [float(value) for value in result["fold_objectives"]]
            if status in ("invalid", "error"):
                record.status = status
                record.problem = str(result.get("problem", "")) or None
                return
            if status == "completed":
                record.status = "completed"
                record.final = float(result["final_objective"])

        def _finish(self, trials: list[Trial], trial: Trial, *, error: str | None) -> None:
            record = self._record(trials, trial)
            if record.finished:
                return
            record.finished = True
            if error is not None:
                record.status = "error"
                record.problem = error
            elif record.status == "running":
                record.status = "stopped"
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total)

        def on_trial_complete(
            self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
        ) -> None:
            self._finish(trials, trial, error=None)

        def on_trial_error(
            self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
        ) -> None:
            message = "the trial failed"
            with contextlib.suppress(Exception):  # the error may not be retrievable
                error = trial.get_error()
                if error is not None:
                    lines = [line for line in str(error).splitlines() if line.strip()]
                    message = f"{type(error).__name__}: {lines[-1] if lines else error}"
            self._finish(trials, trial, error=message)

    return _Recorder


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Keep Tune off the console and off the disk for the duration of a run."""
    settings = {
        # The new console output prints a banner and paths even with verbose=0.
        "RAY_AIR_NEW_OUTPUT": "0",
        # No CSV / JSON / TensorBoard files per trial: results come back to the driver.
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _domain(space: ParameterSpace, spec: Param) -> Any:
    from ray import tune

    low, high = space.low, space.high
    if space.kind == "choice":
        return tune.choice(list(space.values or ()))
    if low is None or high is None:
        raise ConfigError(f"the {space.kind} space of {space.name!r} needs low and high")
    if space.kind == "uniform":
        return tune.uniform(low, high)
    if space.kind == "loguniform":
        return tune.loguniform(low, high)
    if space.kind == "randint":
        return tune.randint(int(low), int(high) + 1)  # Tune's upper bound is exclusive
    if space.step is None:
        raise ConfigError(f"the quantized space of {space.name!r} needs a step")
    if spec.kind == "int":
        return tune.qrandint(int(low), int(high), int(space.step))  # inclusive
    return tune.quniform(low, high, space.step)


def _searcher(spec: TuneSpec) -> Any:
    if spec.algorithm == "random":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator(random_state=spec.seed)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" lines
    return OptunaSearch(seed=spec.seed)


def _scheduler_for(spec: TuneSpec, folds: int) -> Any:
    if spec.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    if spec.scheduler.grace_period > folds:
        raise ConfigError(
            f"scheduler.grace_period ({spec.scheduler.grace_period}) exceeds the {folds} "
            "walk-forward folds of the data; lower it or use more data / shorter windows"
        )
    return ASHAScheduler(
        time_attr=_TIME_KEY,
        max_t=folds,
        grace_period=spec.scheduler.grace_period,
        reduction_factor=spec.scheduler.reduction_factor,
    )


@dataclass(frozen=True, slots=True)
class TuneResult:
    """What :func:`run_tune` produced.

    ``trials`` has one row per trial in creation order (columns
    :data:`TRIAL_COLUMNS`, the strategy's parameters after ``stopped_early``):
    ``status`` is one of :data:`STATUSES`; ``folds_done`` counts the folds
    run; ``fold_objectives`` their scores; ``objective`` the final objective
    (null unless completed; NaN when undefined); ``elapsed_s`` the trial's own
    compute time; ``error`` the problem of an invalid or failed trial.
    ``best_*`` describe the completed trial with the best finite objective
    (the first such trial on ties; ``None`` when there is none). ``elapsed_s``
    is the search's wall time (cluster start-up excluded); ``path`` the
    Parquet file written (``None`` without ``out``).
    """

    spec: TuneSpec
    trials: pl.DataFrame
    folds: int
    elapsed_s: float
    best_trial: int | None
    best_params: dict[str, Any] | None
    best_objective: float | None
    path: Path | None = None

    def count(self, status: str) -> int:
        """Return how many trials ended with ``status`` (one of :data:`STATUSES`)."""
        return int(self.trials.filter(pl.col("status") == status).height)

    @property
    def trials_per_s(self) -> float:
        """Return trials finished per second of search."""
        return self.trials.height / self.elapsed_s if self.elapsed_s > 0 else math.inf

    def summary(self) -> dict[str, Any]:
        """Return the JSON-ready summary (``--json``)."""
        spec = self.spec
        return {
            "spec": spec.name,
            "strategy": spec.strategy,
            "objective": spec.objective,
            "mode": spec.mode,
            "score": spec.walk_forward.score,
            "algorithm": spec.algorithm,
            "scheduler": None if spec.scheduler is None else "asha",
            "seed": spec.seed,
            "folds": self.folds,
            "trials": self.trials.height,
            "completed": self.count("completed"),
            "stopped_early": self.count("stopped"),
            "invalid": self.count("invalid"),
            "errors": self.count("error"),
            "best_trial": self.best_trial,
            "best_params": self.best_params,
            "best_objective": _finite_or_none(self.best_objective),
            "elapsed_s": round(self.elapsed_s, 6),
            "trials_per_s": round(self.trials_per_s, 3) if self.elapsed_s > 0 else None,
            "path": None if self.path is None else str(self.path),
        }


def _frame(
    records: list[_Record], specs: Mapping[str, Param], values: list[dict[str, Any]]
) -> pl.DataFrame:
    columns: list[pl.Series] = [
        pl.Series("trial", [record.index for record in records], dtype=pl.Int64),
        pl.Series("trial_id", [record.trial_id for record in records], dtype=pl.String),
        pl.Series("status", [record.status for record in records], dtype=pl.String),
        pl.Series(
            "stopped_early", [record.status == "stopped" for record in records], dtype=pl.Boolean
        ),
    ]
    for name, spec in specs.items():
        label = f"param_{name}" if name in TRIAL_COLUMNS else name
        column = [row.get(name) for row in values]
        columns.append(pl.Series(label, column, dtype=_PARAM_DTYPES[spec.kind], strict=False))
    columns.extend(
        [
            pl.Series("folds_done", [len(r.fold_objectives) for r in records], dtype=pl.Int64),
            pl.Series(
                "fold_objectives",
                [list(r.fold_objectives) for r in records],
                dtype=pl.List(pl.Float64),
            ),
            pl.Series("objective", [r.final for r in records], dtype=pl.Float64),
            pl.Series("elapsed_s", [r.elapsed_s for r in records], dtype=pl.Float64),
            pl.Series("error", [r.problem for r in records], dtype=pl.String),
        ]
    )
    return pl.DataFrame(columns)


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _parameter_values(
    shared: _TrialData, specs: Mapping[str, Param], config: Mapping[str, Any]
) -> dict[str, Any]:
    """Return every parameter's value in a trial: typed, or as sampled when invalid."""
    try:
        return shared.parameters(config).to_dict()
    except ConfigError:  # a constraint failed: defaults, fixed values, then the sample
        merged = {name: spec.default for name, spec in specs.items()}
        merged.update(shared.fixed)
        merged.update({name: _plain(value) for name, value in config.items()})
        return merged


def _plain(value: Any) -> Any:
    """Return numpy scalars as Python values (JSON and polars want those)."""
    return value.item() if isinstance(value, np.generic) else value


def _best(records: list[_Record], mode: str) -> _Record | None:
    best: _Record | None = None
    for record in records:
        if record.status != "completed" or record.final is None or math.isnan(record.final):
            continue
        better = best is None or best.final is None
        if not better and best is not None and best.final is not None:
            better = record.final > best.final if mode == "max" else record.final < best.final
        if better:
            best = record
    return best


def _load_bars(spec: TuneSpec) -> pl.DataFrame:
    from tradepulse.data.loaders import load_bars

    if not spec.data.exists():
        raise ConfigError(f"data file {spec.data} of Tune spec {spec.name!r} does not exist")
    bars = load_bars(spec.data, symbol=spec.symbol)
    if spec.symbol is not None and "symbol" in bars.columns:
        bars = bars.filter(pl.col("symbol") == spec.symbol)
    return bars


def run_tune(
    spec: TuneSpec,
    *,
    bars: pl.DataFrame | None = None,
    out: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TuneResult:
    """Run the search ``spec`` describes on the connected Ray cluster.

    Connects to a local cluster first if Ray is not initialised
    (:func:`tradepulse.cluster.connect`). ``bars`` replaces the spec's ``data``
    file. With ``out``, :data:`TRIALS_FILE` (one row per trial) and
    ``summary.json`` are written in that folder (created if needed).
    ``progress(done, total)`` is called as trials finish. With a ``seed``, the
    sampled combinations are reproducible (random search; Bayesian search only
    with ``max_concurrent: 1``, since its suggestions depend on the results
    already in); which trials ASHA stops may depend on completion order when
    trials run concurrently.

    Raises:
        ConfigError: the data are too short for one fold, the ASHA grace period
            exceeds the folds, the strategy has no ``signals()`` form, the
            frictions are invalid, or ``out`` is not a writable folder.
        DataError: the data file cannot be read.
    """
    from ray import tune

    from tradepulse.cluster.connect import connect

    if bars is None:
        bars = _load_bars(spec)
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if "symbol" in bars.columns and bars.get_column("symbol").n_unique() > 1:
        raise ConfigError(
            "bars must hold one symbol; set 'symbol' in the spec to pick one of "
            + ", ".join(map(str, bars.get_column("symbol").unique(maintain_order=True).to_list()))
        )
    strategy = resolve_strategy(spec.strategy)
    if not strategy.has_signals:
        raise ConfigError(
            f"strategy {strategy.name!r} has no vectorised signals() form, which Tune trials need"
        )
    settings = spec.walk_forward
    windows = walk_forward_windows(
        bars.height,
        train_bars=settings.train_bars,
        test_bars=settings.test_bars,
        anchored=settings.anchored,
    )
    frictions = resolve_frictions(
        spec.frictions,
        cash=spec.cash,
        commission=None,
        slippage=None,
        sizing=None,
        latency_bars=None,
        periods_per_year=None,
    )
    frictions.run(bars.slice(0, 2), np.zeros(2))  # checks frictions and columns before fan-out
    scheduler = _scheduler_for(spec, len(windows))
    out_dir = None if out is None else Path(out)
    if out_dir is not None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create output folder {out_dir}: {exc}") from exc
    specs = param_specs(strategy.params_type)
    shared = _TrialData(
        bars=bars,
        strategy=strategy,
        fixed=dict(spec.params),
        windows=windows,
        frictions=frictions,
        objective=spec.objective,
        mode=spec.mode,
        anchored=settings.anchored,
        score=settings.score,
        report_folds=scheduler is not None,
    )
    connect()
    recorder = _callback_type()(spec.num_samples, progress, folds=len(windows))
    trainable = tune.with_resources(
        tune.with_parameters(_trial, shared=shared), {"cpu": spec.cpus_per_trial}
    )
    started = time.perf_counter()
    with _quiet_tune(), tempfile.TemporaryDirectory(prefix="tradepulse-tune-") as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={name: _domain(space, specs[name]) for name, space in spec.space.items()},
            tune_config=tune.TuneConfig(
                metric=_OBJECTIVE_KEY,
                mode=spec.mode,
                search_alg=_searcher(spec),
                scheduler=scheduler,
                num_samples=spec.num_samples,
                max_concurrent_trials=spec.max_concurrent,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=spec.name,
                storage_path=storage,
                verbose=0,
                callbacks=[recorder],
            ),
        )
        tuner.fit()
    elapsed = time.perf_counter() - started
    records = sorted(recorder.records.values(), key=lambda record: record.index)
    for record in records:
        if record.status == "running":  # the run was interrupted (Ctrl-C) mid-trial
            record.status = "stopped"
    values = [_parameter_values(shared, specs, record.config) for record in records]
    best = _best(records, spec.mode)
    result = TuneResult(
        spec=spec,
        trials=_frame(records, specs, values),
        folds=len(windows),
        elapsed_s=elapsed,
        best_trial=None if best is None else best.index,
        best_params=None if best is None else values[records.index(best)],
        best_objective=None if best is None else best.final,
        path=None if out_dir is None else out_dir / TRIALS_FILE,
    )
    if out_dir is not None:
        _write(result, out_dir)
    return result


def _write(result: TuneResult, out_dir: Path) -> None:
    summary = result.summary()
    text = json.dumps(summary, indent=2, allow_nan=False, default=str)
    try:
        result.trials.write_parquet(out_dir / TRIALS_FILE, metadata={"tradepulse.tune": text})
        (out_dir / SUMMARY_FILE).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write Tune results to {out_dir}: {exc}") from exc


def with_overrides(
    spec: TuneSpec,
    *,
    data: Path | None = None,
    num_samples: int | None = None,
    seed: int | None = None,
    max_concurrent: int | None = None,
) -> TuneSpec:
    """Return ``spec`` with the given values replaced (``None`` keeps the spec's).

    Raises:
        ConfigError: ``num_samples`` or ``max_concurrent`` < 1, or ``seed`` < 0.
    """
    for name, value, low in (
        ("num_samples", num_samples, 1),
        ("max_concurrent", max_concurrent, 1),
        ("seed", seed, 0),
    ):
        if value is not None and value < low:
            raise ConfigError(f"{name} must be >= {low}; got {value}")
    return replace(
        spec,
        data=spec.data if data is None else data,
        num_samples=spec.num_samples if num_samples is None else num_samples,
        seed=spec.seed if seed is None else seed,
        max_concurrent=spec.max_concurrent if max_concurrent is None else max_concurrent,
    )
