"""Stress-scenario files: a transform, promotion-gate thresholds, optional engine and frictions.

A scenario is a YAML file (shipped in ``backtest/configs/stress/``) loaded
strictly into a frozen :class:`Scenario`: an unknown or duplicated key, a
missing one, a value of the wrong type or out of range, or a YAML syntax error
raises :class:`~tradepulse.errors.ConfigError` naming the file and the key::

    name: flash_crash               # identifier (non-empty string)
    description: "..."             # free text
    transform:                      # what happens to the bars (tradepulse.stress.transforms)
      kind: flash_crash             # flash_crash | gap_open | trading_halt |
                                    # liquidity_drought | volatility_spike | regime_flip
      drop: 0.2                     # ... the kind's parameters
      at: null                      # first bar of the event; null: drawn from the seed
    thresholds:                     # the promotion gate (at least one)
      max_drawdown: 0.35            # largest drawdown allowed, fraction in (0, 1]
      loss_limit: -0.25             # worst total return allowed, fraction in [-1, 0]
    engine:                         # optional
      kind: event                   # vector | event | null (the run's choice)
      max_participation: 0.1        # event engine: share of a bar's volume fills may take
      depth:                        # event engine: order-book depth model
        model: volume_proportional  # constant | volume_proportional | square_root
        fraction_per_level: 0.01    # ... the model's parameters
    frictions:                      # optional: friction keys set for this scenario
      impact_bps: 50.0              # (as in backtest/configs/*.yaml, without name)

A bare scenario name or glob (``flash_crash``, ``'*'``) is looked up by file
stem in ``backtest/configs/stress/`` under the working directory when that
folder exists, else in the copies shipped inside the package
(:data:`SHIPPED_SCENARIOS`); anything that looks like a path is used as one.
"""

from __future__ import annotations

import fnmatch
import glob
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, cast

import yaml

from tradepulse.backtest.config import COMMISSION_KEYS, FRICTION_KEYS, FrictionConfig
from tradepulse.backtest.runner import ENGINES, Engine
from tradepulse.costs.commission import CommissionTerms
from tradepulse.costs.sizing import Sizing
from tradepulse.errors import ConfigError
from tradepulse.execution.liquidity import (
    ConstantDepth,
    DepthModel,
    SquareRootImpactDepth,
    VolumeProportionalDepth,
)
from tradepulse.metrics import Metrics
from tradepulse.stress.transforms import LiquidityDrought, StressTransform, build_transform
from tradepulse.yamlfile import StrictLoader

__all__ = [
    "DEFAULT_DROUGHT_PARTICIPATION",
    "DEPTH_MODELS",
    "ENGINE_KEYS",
    "SCENARIO_KEYS",
    "SCENARIO_SUFFIXES",
    "SHIPPED_SCENARIOS",
    "THRESHOLD_KEYS",
    "EngineSettings",
    "FrictionOverrides",
    "Scenario",
    "Thresholds",
    "find_scenarios",
    "load_scenario",
    "load_scenarios",
    "scenario_directory",
]

#: Keys accepted at the top level of a scenario file.
SCENARIO_KEYS: Final = ("name", "description", "transform", "thresholds", "engine", "frictions")
#: Keys accepted in a scenario's ``thresholds``.
THRESHOLD_KEYS: Final = ("max_drawdown", "loss_limit")
#: Keys accepted in a scenario's ``engine``.
ENGINE_KEYS: Final = ("kind", "max_participation", "depth")
#: Depth models a scenario's ``engine.depth.model`` may name.
DEPTH_MODELS: Final[dict[str, type[DepthModel]]] = {
    "constant": ConstantDepth,
    "volume_proportional": VolumeProportionalDepth,
    "square_root": SquareRootImpactDepth,
}
#: Participation cap (share of a bar's volume) of a liquidity drought whose file sets
#: neither ``engine.max_participation`` nor ``engine.depth``: without one the event
#: engine fills any size, and the drought would only show through impact costs.
DEFAULT_DROUGHT_PARTICIPATION: Final = 0.1
#: Extensions of scenario files.
SCENARIO_SUFFIXES: Final = (".yaml", ".yml")
#: The scenario files shipped inside the package (copies of ``backtest/configs/stress``).
SHIPPED_SCENARIOS: Final = Path(__file__).resolve().parent / "configs"
#: Where bare scenario names are looked up first, relative to the working directory.
_LOCAL_SCENARIOS: Final = Path("backtest") / "configs" / "stress"
_FRICTION_OVERRIDE_KEYS: Final = tuple(
    key for key in FRICTION_KEYS if key not in ("name", "description")
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The promotion gate of one scenario: every run must stay within both limits.

    ``max_drawdown``: the largest drawdown allowed (a fraction in (0, 1]);
    ``loss_limit``: the worst total return allowed (a fraction in [-1, 0], e.g.
    ``-0.25`` for a 25% loss). ``None`` leaves a limit out; at least one is set.

    Raises:
        ConfigError: a limit is out of range or both are ``None``.
    """

    max_drawdown: float | None = None
    loss_limit: float | None = None

    def __post_init__(self) -> None:
        if self.max_drawdown is None and self.loss_limit is None:
            raise ConfigError("thresholds need max_drawdown, loss_limit or both")
        if self.max_drawdown is not None:
            limit = _number("max_drawdown", self.max_drawdown)
            if not 0.0 < limit <= 1.0:
                raise ConfigError(
                    f"key 'max_drawdown' must be a fraction in (0, 1]; got {self.max_drawdown!r}"
                )
            object.__setattr__(self, "max_drawdown", limit)
        if self.loss_limit is not None:
            limit = _number("loss_limit", self.loss_limit)
            if not -1.0 <= limit <= 0.0:
                raise ConfigError(
                    "key 'loss_limit' must be a fraction in [-1, 0] (the worst total return "
                    f"allowed, e.g. -0.25 for a 25% loss); got {self.loss_limit!r}"
                )
            object.__setattr__(self, "loss_limit", limit)

    def failures(self, metrics: Metrics) -> tuple[str, ...]:
        """Return why ``metrics`` fail the gate (empty: they pass); NaN fails."""
        found: list[str] = []
        if self.max_drawdown is not None and not metrics.max_drawdown <= self.max_drawdown:
            found.append(f"max_drawdown {metrics.max_drawdown:.2%} > {self.max_drawdown:.2%}")
        if self.loss_limit is not None and not metrics.total_return >= self.loss_limit:
            found.append(f"total_return {metrics.total_return:.2%} < {self.loss_limit:.2%}")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How a scenario is backtested; ``None`` fields leave the run's choice.

    ``kind``: ``"vector"`` or ``"event"``; ``max_participation`` (a fraction in
    (0, 1]) and ``depth`` (a :class:`~tradepulse.execution.DepthModel`) need the
    event engine, which they imply when ``kind`` is ``None``.

    Raises:
        ConfigError: ``kind`` is unknown, ``max_participation`` is out of range,
            ``depth`` is not a depth model, or a liquidity setting asks for the
            vectorised engine.
    """

    kind: Engine | None = None
    max_participation: float | None = None
    depth: DepthModel | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in ENGINES:
            raise ConfigError(
                f"key 'engine.kind' must be one of {', '.join(ENGINES)}; got {self.kind!r}"
            )
        if self.max_participation is not None:
            cap = _number("engine.max_participation", self.max_participation)
            if not 0.0 < cap <= 1.0:
                raise ConfigError(
                    "key 'engine.max_participation' must be a fraction in (0, 1]; "
                    f"got {self.max_participation!r}"
                )
            object.__setattr__(self, "max_participation", cap)
        if self.depth is not None and not isinstance(self.depth, DepthModel):
            raise ConfigError(f"key 'engine.depth' must be a depth model; got {self.depth!r}")
        liquidity = self.max_participation is not None or self.depth is not None
        if self.kind == "vector" and liquidity:
            raise ConfigError(
                "keys 'engine.max_participation' and 'engine.depth' need the event engine; "
                "got engine.kind 'vector'"
            )


@dataclass(frozen=True, slots=True)
class FrictionOverrides:
    """Friction settings a scenario changes; ``None`` keeps the run's value.

    The fields mean what they mean in :class:`~tradepulse.backtest.FrictionConfig`
    (``commission`` replaces all fee terms at once).

    Raises:
        ConfigError: a value is invalid (checked as a `FrictionConfig` would).
    """

    commission: CommissionTerms | None = None
    spread_bps: float | None = None
    slippage_bps: float | None = None
    impact_bps: float | None = None
    latency_bars: int | None = None
    sizing: Sizing | None = None
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        # Built once as a config, so every value is checked exactly as a friction file.
        checked = self.apply(None, name="overrides")
        if checked is not None:
            for key in self.given():
                object.__setattr__(self, key, getattr(checked, key))

    def given(self) -> dict[str, Any]:
        """Return the settings that are not ``None``, by key."""
        return {
            spec.name: getattr(self, spec.name)
            for spec in fields(self)
            if getattr(self, spec.name) is not None
        }

    def apply(self, config: FrictionConfig | None, *, name: str) -> FrictionConfig | None:
        """Return ``config`` with these settings (a config named ``name`` when ``None``).

        Without settings ``config`` is returned unchanged (``None`` stays ``None``:
        a frictionless run).

        Raises:
            ConfigError: a merged value is invalid.
        """
        given = self.given()
        if not given:
            return config
        if config is None:
            return FrictionConfig(name=name, **given)
        return replace(config, **given)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One stress scenario: a named transform of the bars and the gate it must pass.

    ``source`` is the file it was loaded from (``None``: built in Python).

    Raises:
        ConfigError: ``name`` is empty, or a field has the wrong type.
    """

    name: str
    transform: StressTransform
    thresholds: Thresholds
    description: str = ""
    engine: EngineSettings = field(default_factory=EngineSettings)
    frictions: FrictionOverrides = field(default_factory=FrictionOverrides)
    source: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"key 'name' must be a non-empty string; got {self.name!r}")
        if not isinstance(self.description, str):
            raise ConfigError(f"key 'description' must be a string; got {self.description!r}")
        checks = (
            ("transform", self.transform, StressTransform),
            ("thresholds", self.thresholds, Thresholds),
            ("engine", self.engine, EngineSettings),
            ("frictions", self.frictions, FrictionOverrides),
        )
        for key, value, expected in checks:
            if not isinstance(value, expected):
                raise ConfigError(
                    f"key {key!r} must be a {expected.__name__}; got {type(value).__name__}"
                )

    @property
    def kind(self) -> str:
        """Return the transform's kind (``flash_crash`` ...)."""
        return self.transform.kind

    def liquidity(self) -> tuple[float | None, DepthModel | None]:
        """Return the participation cap and depth model this scenario runs with.

        A liquidity drought whose file sets neither gets
        :data:`DEFAULT_DROUGHT_PARTICIPATION` unless it asks for the vectorised engine.
        """
        cap, depth = self.engine.max_participation, self.engine.depth
        drought = isinstance(self.transform, LiquidityDrought)
        if drought and cap is None and depth is None and self.engine.kind != "vector":
            cap = DEFAULT_DROUGHT_PARTICIPATION
        return cap, depth

    def engine_for(self, default: Engine | None, *, has_signals: bool) -> Engine:
        """Return the engine of this scenario's runs.

        The scenario's ``engine.kind`` wins; a participation cap or depth model
        (:meth:`liquidity`) implies ``"event"``; otherwise ``default``, else
        ``"vector"`` for a strategy with ``signals()`` and ``"event"`` without.
        """
        if self.engine.kind is not None:
            return self.engine.kind
        cap, depth = self.liquidity()
        if cap is not None or depth is not None:
            return "event"
        if default is not None:
            return default
        return "vector" if has_signals else "event"


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"key {key!r} must be a finite number; got {value!r}")
    return float(value)


def _read(source: Path) -> Mapping[str, object]:
    """Return the top-level mapping of a scenario file."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read scenario: {exc}") from exc
    try:
        document = yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass: no Python tags
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{source}:{where} invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{source}: a scenario must be a mapping of keys; got {type(document).__name__}"
        )
    return cast("Mapping[str, object]", document)


def _section(
    source: Path, document: Mapping[str, object], key: str, known: Sequence[str]
) -> dict[str, object]:
    """Return the mapping under ``key`` (empty when absent or null), keys checked."""
    value = document.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: key {key!r} must be a mapping; got {value!r}")
    for name in value:
        if known and name not in known:
            raise ConfigError(f"{source}: unknown key '{key}.{name}' (known: {', '.join(known)})")
    return {str(name): item for name, item in value.items()}


def _transform(source: Path, document: Mapping[str, object]) -> StressTransform:
    if "transform" not in document:
        raise ConfigError(f"{source}: missing key 'transform'")
    parameters = _section(source, document, "transform", ())
    kind = parameters.pop("kind", None)
    if not isinstance(kind, str):
        raise ConfigError(f"{source}: key 'transform.kind' must name a transform; got {kind!r}")
    try:
        return build_transform(kind, parameters)
    except ConfigError as exc:
        raise ConfigError(f"{source}: transform: {exc}") from exc


def _depth(source: Path, value: object) -> DepthModel | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: key 'engine.depth' must be a mapping; got {value!r}")
    parameters = {str(name): item for name, item in value.items()}
    model = parameters.pop("model", None)
    model_type = DEPTH_MODELS.get(model) if isinstance(model, str) else None
    if model_type is None:
        raise ConfigError(
            f"{source}: key 'engine.depth.model' must be one of {', '.join(DEPTH_MODELS)}; "
            f"got {model!r}"
        )
    known = [spec.name for spec in fields(model_type)]  # type: ignore[arg-type]
    for name in parameters:
        if name not in known:
            raise ConfigError(
                f"{source}: unknown key 'engine.depth.{name}' for {model} "
                f"(known: model, {', '.join(known)})"
            )
    try:
        return model_type(**parameters)
    except TypeError as exc:
        raise ConfigError(f"{source}: key 'engine.depth': {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: key 'engine.depth': {exc}") from exc


def _frictions(source: Path, document: Mapping[str, object]) -> FrictionOverrides:
    given = _section(source, document, "frictions", _FRICTION_OVERRIDE_KEYS)
    commission = given.pop("commission", None)
    try:
        if commission is not None:
            if not isinstance(commission, Mapping):
                raise ConfigError(
                    f"key 'frictions.commission' must be a mapping of "
                    f"{', '.join(COMMISSION_KEYS)}; got {commission!r}"
                )
            for name in commission:
                if name not in COMMISSION_KEYS:
                    raise ConfigError(
                        f"unknown key 'frictions.commission.{name}' "
                        f"(known: {', '.join(COMMISSION_KEYS)})"
                    )
            given["commission"] = CommissionTerms(**commission)
        return FrictionOverrides(**given)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"{source}: frictions: {exc}") from exc


def load_scenario(path: str | Path) -> Scenario:
    """Load a stress-scenario YAML file into a checked :class:`Scenario`.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML (the message gives
            the line), is not a mapping, has an unknown, duplicated or missing key,
            or a value of the wrong type or out of range; the message names the
            file and the key.
    """
    source = Path(path)
    document = _read(source)
    for key in document:
        if key not in SCENARIO_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r} (known: {', '.join(SCENARIO_KEYS)})")
    for key in ("name", "thresholds"):
        if key not in document:
            raise ConfigError(f"{source}: missing key {key!r}")
    transform = _transform(source, document)
    limits = _section(source, document, "thresholds", THRESHOLD_KEYS)
    settings = _section(source, document, "engine", ENGINE_KEYS)
    depth = _depth(source, settings.pop("depth", None))
    frictions = _frictions(source, document)
    try:
        return Scenario(
            name=cast("str", document["name"]),
            description=cast("str", document.get("description", "")),
            transform=transform,
            thresholds=Thresholds(**limits),  # type: ignore[arg-type]
            engine=EngineSettings(depth=depth, **settings),  # type: ignore[arg-type]
            frictions=frictions,
            source=source,
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def scenario_directory() -> Path:
    """Return where bare scenario names are looked up.

    ``backtest/configs/stress`` under the working directory when it exists,
    else :data:`SHIPPED_SCENARIOS`.
    """
    local = Path.cwd() / _LOCAL_SCENARIOS
    return local if local.is_dir() else SHIPPED_SCENARIOS


def _is_path(pattern: str) -> bool:
    return "/" in pattern or "\\" in pattern or pattern.lower().endswith(SCENARIO_SUFFIXES)


def _scenario_files(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.iterdir()
        if path.is_file() and path.suffix.lower() in SCENARIO_SUFFIXES
    )


def find_scenarios(patterns: Sequence[str]) -> list[Path]:
    """Return the scenario files ``patterns`` name, in order, each once.

    A pattern is an existing file; an existing folder (its ``*.yaml`` files); a
    path glob (it contains ``/`` or ends in ``.yaml``: ``my/stress/*.yaml``); or
    a bare name or glob matched against the file stems in
    :func:`scenario_directory` (``flash_crash``, ``'*drought*'``, ``'*'``).

    Raises:
        ConfigError: no pattern is given, or one matches nothing (the message
            lists the scenarios available).
    """
    if not patterns:
        raise ConfigError("no scenario given: name one, a glob ('*') or a path")
    found: list[Path] = []
    for pattern in patterns:
        candidate = Path(pattern)
        if candidate.is_file():
            matches = [candidate]
        elif candidate.is_dir():
            matches = _scenario_files(candidate)
        elif _is_path(pattern):
            matches = sorted(Path(match) for match in glob.glob(pattern))
        else:
            directory = scenario_directory()
            shipped = _scenario_files(directory)
            matches = [path for path in shipped if fnmatch.fnmatchcase(path.stem, pattern)]
            if not matches:
                names = ", ".join(path.stem for path in shipped) or "none"
                raise ConfigError(
                    f"no scenario matches {pattern!r} in {directory} (available: {names})"
                )
        if not matches:
            raise ConfigError(f"no scenario file matches {pattern!r}")
        found.extend(path for path in matches if path not in found)
    return found


def load_scenarios(patterns: Sequence[str]) -> list[Scenario]:
    """Load the scenarios ``patterns`` name (see :func:`find_scenarios`).

    Raises:
        ConfigError: a pattern matches nothing, a file is invalid, or two files
            hold scenarios of the same name.
    """
    scenarios = [load_scenario(path) for path in find_scenarios(patterns)]
    seen: dict[str, Path | None] = {}
    for scenario in scenarios:
        if scenario.name in seen:
            raise ConfigError(
                f"two scenarios are named {scenario.name!r}: {seen[scenario.name]} "
                f"and {scenario.source}"
            )
        seen[scenario.name] = scenario.source
    return scenarios
