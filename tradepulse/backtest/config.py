"""Market-friction configs: the commission, spread, slippage and latency of a market.

A friction config is a YAML file (``backtest/configs/*.yaml``) loaded strictly into
a frozen :class:`FrictionConfig`: an unknown or duplicated key, a missing ``name``,
a value of the wrong type or out of range, or a YAML syntax error raises
:class:`~tradepulse.errors.ConfigError` naming the file, the key and the value (or
the line). :meth:`FrictionConfig.engine_arguments` turns a config into the keyword
arguments of :func:`tradepulse.backtest.run_vectorised`::

    config = load_friction_config("backtest/configs/equities.yaml")
    result = run_vectorised(bars, targets, cash=10_000, **config.engine_arguments())

File layout (every key but ``name`` is optional; units as in :mod:`tradepulse.costs`)::

    name: equities            # identifier (non-empty string)
    description: "..."        # free text
    commission:
      rate: 0.0005            # fraction of traded notional (0.0005 = 5 bps)
      per_unit: 0.0           # quote currency per unit traded
      per_fill: 0.0           # quote currency per fill
    spread_bps: 1.0           # full quoted bid-ask spread, basis points of price
    slippage_bps: 0.5         # fixed move against every fill, basis points
    impact_bps: 0.0           # square-root impact at full bar participation, basis points
    latency_bars: 0           # extra bars between a decision and its fill
    sizing: whole             # fractional | whole
    periods_per_year: null    # annualisation override; null derives it from timestamps
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypedDict

import yaml

from tradepulse.costs import (
    BPS,
    MAX_ADVERSE_FRACTION,
    MAX_COMMISSION_RATE,
    SIZINGS,
    CommissionModel,
    CommissionTerms,
    FixedCommission,
    FixedSlippage,
    NotionalCommission,
    PerUnitCommission,
    Sizing,
    SlippageModel,
    SpreadSlippage,
    SquareRootImpact,
)
from tradepulse.errors import ConfigError
from tradepulse.yamlfile import StrictLoader

__all__ = [
    "COMMISSION_KEYS",
    "FRICTION_KEYS",
    "EngineArguments",
    "FrictionConfig",
    "load_friction_config",
]

#: Keys accepted at the top level of a friction config file.
FRICTION_KEYS: Final[tuple[str, ...]] = (
    "name",
    "description",
    "commission",
    "spread_bps",
    "slippage_bps",
    "impact_bps",
    "latency_bars",
    "sizing",
    "periods_per_year",
)
#: Keys accepted in a friction config's ``commission`` mapping.
COMMISSION_KEYS: Final[tuple[str, ...]] = ("rate", "per_unit", "per_fill")

_BPS_LIMIT: Final = MAX_ADVERSE_FRACTION / BPS  # 10,000 bps: a price moved to 0


class EngineArguments(TypedDict):
    """Keyword arguments of :func:`~tradepulse.backtest.run_vectorised` from a config."""

    commission: list[CommissionModel]
    slippage: list[SlippageModel]
    sizing: Sizing
    latency_bars: int
    periods_per_year: float | None


def _number(key: str, value: object, *, upper: float = math.inf, positive: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite number in range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = ""
        if isinstance(value, str):
            hint = " (YAML reads 5e-4 as text: write 5.0e-4 or 0.0005)"
        raise ConfigError(f"key {key!r} must be a number; got {value!r}{hint}")
    number = float(value)
    low_ok = number > 0.0 if positive else number >= 0.0
    if not math.isfinite(number) or not low_ok or number >= upper:
        low = "> 0" if positive else ">= 0"
        bound = f" and < {upper:g}" if math.isfinite(upper) else ""
        raise ConfigError(f"key {key!r} must be finite, {low}{bound}; got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class FrictionConfig:
    """The frictions of one market, checked when constructed.

    ``commission`` holds the fee terms (``rate`` a fraction of traded notional,
    ``per_unit`` quote currency per unit, ``per_fill`` quote currency per fill);
    ``spread_bps`` (full bid-ask spread), ``slippage_bps`` and ``impact_bps``
    (square-root impact at full participation) are basis points of price;
    ``latency_bars`` delays every fill by that many bars; ``sizing`` is
    ``"fractional"`` or ``"whole"``; ``periods_per_year`` overrides the
    annualisation derived from the bar timestamps (``None``: derive it).

    Raises:
        ConfigError: a field has the wrong type or is out of range (the message
            names the key and the value), or spread, slippage and impact together
            move a price by 100% or more.
    """

    name: str
    description: str = ""
    commission: CommissionTerms = field(default_factory=CommissionTerms)
    spread_bps: float = 0.0
    slippage_bps: float = 0.0
    impact_bps: float = 0.0
    latency_bars: int = 0
    sizing: Sizing = "fractional"
    periods_per_year: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"key 'name' must be a non-empty string; got {self.name!r}")
        if not isinstance(self.description, str):
            raise ConfigError(f"key 'description' must be a string; got {self.description!r}")
        if not isinstance(self.commission, CommissionTerms):
            raise ConfigError(
                f"key 'commission' must be CommissionTerms; got {type(self.commission).__name__}"
            )
        for key in ("spread_bps", "slippage_bps", "impact_bps"):
            object.__setattr__(self, key, _number(key, getattr(self, key), upper=_BPS_LIMIT))
        total = self.spread_bps / 2.0 + self.slippage_bps + self.impact_bps
        if total >= _BPS_LIMIT:
            raise ConfigError(
                "keys 'spread_bps' / 2 + 'slippage_bps' + 'impact_bps' must be < 10000 bps; "
                f"got {total:g}"
            )
        latency = self.latency_bars
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ConfigError(f"key 'latency_bars' must be an integer >= 0; got {latency!r}")
        if self.sizing not in SIZINGS:
            raise ConfigError(
                f"key 'sizing' must be one of {', '.join(SIZINGS)}; got {self.sizing!r}"
            )
        if self.periods_per_year is not None:
            periods = _number("periods_per_year", self.periods_per_year, positive=True)
            object.__setattr__(self, "periods_per_year", periods)

    def commission_models(self) -> list[CommissionModel]:
        """Return one commission model per non-zero fee term (empty: no commission)."""
        models: list[CommissionModel] = []
        if self.commission.rate > 0.0:
            models.append(NotionalCommission(rate=self.commission.rate))
        if self.commission.per_unit > 0.0:
            models.append(PerUnitCommission(per_unit=self.commission.per_unit))
        if self.commission.per_fill > 0.0:
            models.append(FixedCommission(per_fill=self.commission.per_fill))
        return models

    def slippage_models(self) -> list[SlippageModel]:
        """Return one execution-price model per non-zero friction (empty: none)."""
        models: list[SlippageModel] = []
        if self.spread_bps > 0.0:
            models.append(SpreadSlippage(spread_bps=self.spread_bps))
        if self.slippage_bps > 0.0:
            models.append(FixedSlippage(slippage_bps=self.slippage_bps))
        if self.impact_bps > 0.0:
            models.append(SquareRootImpact(impact_bps=self.impact_bps))
        return models

    def engine_arguments(self) -> EngineArguments:
        """Return the keyword arguments of ``run_vectorised`` this config sets.

        ``commission`` and ``slippage`` are lists of cost models, plus ``sizing``,
        ``latency_bars`` and ``periods_per_year``; pass them with ``**``.
        """
        return EngineArguments(
            commission=self.commission_models(),
            slippage=self.slippage_models(),
            sizing=self.sizing,
            latency_bars=self.latency_bars,
            periods_per_year=self.periods_per_year,
        )


def _check_keys(
    path: Path, mapping: Mapping[object, object], *, known: tuple[str, ...], prefix: str
) -> None:
    """Raise `ConfigError` for the first key of ``mapping`` not in ``known``."""
    for key in mapping:
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{prefix}{key}' (known: {', '.join(known)})")


def _commission(path: Path, value: object) -> CommissionTerms:
    """Return the ``commission`` mapping of a config file as `CommissionTerms`."""
    if value is None:
        return CommissionTerms()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{path}: key 'commission' must be a mapping of {', '.join(COMMISSION_KEYS)}; "
            f"got {value!r}"
        )
    _check_keys(path, value, known=COMMISSION_KEYS, prefix="commission.")
    try:
        return CommissionTerms(
            rate=_number("commission.rate", value.get("rate", 0.0), upper=MAX_COMMISSION_RATE),
            per_unit=_number("commission.per_unit", value.get("per_unit", 0.0)),
            per_fill=_number("commission.per_fill", value.get("per_fill", 0.0)),
        )
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_friction_config(path: str | Path) -> FrictionConfig:
    """Load a market-friction YAML file into a checked `FrictionConfig`.

    Every key but ``name`` is optional and defaults to no friction (see the
    module docstring for the keys and their units).

    Raises:
        ConfigError: the file cannot be read, is not valid YAML (the message gives
            the line), is not a mapping, has an unknown, duplicated or missing key,
            or a value of the wrong type or out of range; the message names the
            file, the key and the value.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read friction config: {exc}") from exc
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
        raise ConfigError(
            f"{source}: a friction config must be a mapping of keys; got {type(document).__name__}"
        )
    _check_keys(source, document, known=FRICTION_KEYS, prefix="")
    if "name" not in document:
        raise ConfigError(f"{source}: missing key 'name'")
    commission = _commission(source, document.get("commission"))
    try:
        return FrictionConfig(
            name=document["name"],
            description=document.get("description", ""),
            commission=commission,
            spread_bps=document.get("spread_bps", 0.0),
            slippage_bps=document.get("slippage_bps", 0.0),
            impact_bps=document.get("impact_bps", 0.0),
            latency_bars=document.get("latency_bars", 0),
            sizing=document.get("sizing", "fractional"),
            periods_per_year=document.get("periods_per_year"),
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
