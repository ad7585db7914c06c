"""Configuration of the execution service: cash, instruments, costs, risk limits, throttles.

:class:`ServiceConfig` is a frozen, validated dataclass;
:meth:`ServiceConfig.from_mapping` builds one from plain data (a YAML or JSON
document, the Serve application's arguments) and refuses unknown keys by name;
:meth:`ServiceConfig.to_mapping` writes it back as JSON-ready data (decimals as
strings), which the journal records at every start.

Unknown symbols: by default an order or bar for a symbol not listed in
``instruments`` gets an instrument cut from ``default_instrument`` (the
domain's fine default increments, so a paper-trading laptop session needs no
instrument list). A live deployment that must trade only what it configured
sets ``default_instrument`` to ``None``: orders for other symbols are then
rejected with the reason ``unknown_symbol`` and their bars refused.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

from tradepulse.domain.instrument import Instrument
from tradepulse.errors import ConfigError
from tradepulse.execution.risk import RiskLimits
from tradepulse.execution.throttle import RateLimit

__all__ = [
    "DEFAULT_INITIAL_CASH",
    "DEFAULT_INSTRUMENT",
    "DEFAULT_RETAIN_ENDED_ORDERS",
    "ServiceConfig",
]

#: Cash every account starts with, in quote currency.
DEFAULT_INITIAL_CASH: Final = Decimal(100_000)
#: Ended orders the execution service keeps in memory by default (older ones stay in the journal).
DEFAULT_RETAIN_ENDED_ORDERS: Final = 100_000
#: Template for symbols missing from ``instruments`` (its symbol is replaced).
DEFAULT_INSTRUMENT: Final = Instrument(symbol="*")

_INCREMENTS: Final = ("price_increment", "quantity_increment", "cash_increment")
_RISK_KEYS: Final = (
    "max_order_quantity",
    "max_order_notional",
    "max_position",
    "max_position_notional",
    "margin_rate",
)


def _decimal(name: str, value: object) -> Decimal:
    """Return ``value`` (a Decimal, int, float or numeric string) as a Decimal."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the decimal the float prints as (see arithmetic)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    else:
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not number.is_finite():
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return number


def _optional_decimal(name: str, value: object) -> Decimal | None:
    return None if value is None else _decimal(name, value)


def _mapping(name: str, value: object, allowed: tuple[str, ...] | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping, got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{name} keys must be strings, got {key!r}")
        if allowed is not None and key not in allowed:
            raise ConfigError(
                f"unknown key {name}.{key}; expected one of: {', '.join(sorted(allowed))}"
            )
    return value


def _instrument(name: str, symbol: str, value: object) -> Instrument:
    spec = _mapping(name, {} if value is None else value, _INCREMENTS)
    increments = {key: _decimal(f"{name}.{key}", spec[key]) for key in _INCREMENTS if key in spec}
    return Instrument(symbol=symbol, **increments)


def _increments(instrument: Instrument) -> dict[str, str]:
    return {key: str(getattr(instrument, key)) for key in _INCREMENTS}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """How the execution service trades (see the module docstring for unknown symbols).

    - ``initial_cash``: cash each account starts with (quote currency, >= 0).
    - ``instruments``: symbol -> :class:`~tradepulse.domain.Instrument` (tick,
      lot and cash increments); ``default_instrument`` the template for other
      symbols, or ``None`` to reject them.
    - ``commission_rate``: commission as a fraction of traded notional
      (0.001 = 10 bps), rounded to the instrument's cash increment per fill.
    - ``risk``: pre-trade :class:`~tradepulse.execution.RiskLimits` (order
      quantity / notional, position, position notional, cash / margin).
    - ``max_open_orders``: working orders one account may have (None: no limit).
    - ``orders_per_second_account`` / ``account_burst``: order-rate throttle per
      account (token bucket; None: off; burst defaults to one second's worth);
      ``orders_per_second_strategy`` / ``strategy_burst`` the same per
      (account, strategy).
    - ``max_participation``: the paper exchange fills at most this fraction of a
      bar's volume per account, symbol and strategy tag (an account's untagged
      orders share one budget; None: no cap).
    - ``retain_ended_orders``: ended orders (filled, cancelled, rejected,
      expired) kept in memory, the most recently ended ones (None: all).
      Older ones are read back from the journal when asked for, so every read
      answers the same; memory stays bounded in a long session.

    Raises:
        ConfigError: a value has the wrong type or is out of range.
    """

    initial_cash: Decimal = DEFAULT_INITIAL_CASH
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    default_instrument: Instrument | None = DEFAULT_INSTRUMENT
    commission_rate: Decimal = Decimal(0)
    risk: RiskLimits = field(default_factory=RiskLimits)
    max_open_orders: int | None = None
    orders_per_second_account: float | None = None
    account_burst: int | None = None
    orders_per_second_strategy: float | None = None
    strategy_burst: int | None = None
    max_participation: float | None = None
    retain_ended_orders: int | None = DEFAULT_RETAIN_ENDED_ORDERS

    def __post_init__(self) -> None:
        cash = self.initial_cash
        if not isinstance(cash, Decimal) or not cash.is_finite() or cash < 0:
            raise ConfigError(f"initial_cash must be a finite Decimal >= 0, got {cash!r}")
        rate = self.commission_rate
        if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < 1:
            raise ConfigError(f"commission_rate must be a Decimal in [0, 1), got {rate!r}")
        if not isinstance(self.instruments, Mapping):
            raise ConfigError(f"instruments must be a mapping, got {self.instruments!r}")
        for symbol, instrument in self.instruments.items():
            if not isinstance(instrument, Instrument) or instrument.symbol != symbol:
                raise ConfigError(
                    f"instruments[{symbol!r}] must be an Instrument with symbol {symbol!r}, "
                    f"got {instrument!r}"
                )
        object.__setattr__(self, "instruments", MappingProxyType(dict(self.instruments)))
        if self.default_instrument is not None and not isinstance(
            self.default_instrument, Instrument
        ):
            raise ConfigError(
                f"default_instrument must be an Instrument or None, got {self.default_instrument!r}"
            )
        if not isinstance(self.risk, RiskLimits):
            raise ConfigError(f"risk must be a RiskLimits, got {self.risk!r}")
        limit = self.max_open_orders
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigError(f"max_open_orders must be an integer >= 1 or None, got {limit!r}")
        retain = self.retain_ended_orders
        if retain is not None and (
            isinstance(retain, bool) or not isinstance(retain, int) or retain < 0
        ):
            raise ConfigError(
                f"retain_ended_orders must be an integer >= 0 or None, got {retain!r}"
            )
        share = self.max_participation
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1
        ):
            raise ConfigError(f"max_participation must be a fraction in (0, 1], got {share!r}")
        for rate_name, burst_name in (
            ("orders_per_second_account", "account_burst"),
            ("orders_per_second_strategy", "strategy_burst"),
        ):
            per_second, burst = getattr(self, rate_name), getattr(self, burst_name)
            if per_second is None:
                if burst is not None:
                    raise ConfigError(f"{burst_name} needs {rate_name}, which is None")
                continue
            try:
                RateLimit(per_second=per_second, burst=burst)
            except ConfigError as error:
                raise ConfigError(f"{rate_name} / {burst_name}: {error}") from None

    @property
    def account_rate_limit(self) -> RateLimit | None:
        """Return the per-account order-rate limit (None: off)."""
        if self.orders_per_second_account is None:
            return None
        return RateLimit(per_second=self.orders_per_second_account, burst=self.account_burst)

    @property
    def strategy_rate_limit(self) -> RateLimit | None:
        """Return the per-strategy order-rate limit (None: off)."""
        if self.orders_per_second_strategy is None:
            return None
        return RateLimit(per_second=self.orders_per_second_strategy, burst=self.strategy_burst)

    def instrument(self, symbol: str) -> Instrument | None:
        """Return the instrument ``symbol`` trades as, or None when unknown symbols are refused."""
        found = self.instruments.get(symbol)
        if found is not None:
            return found
        if self.default_instrument is None:
            return None
        return dataclasses.replace(self.default_instrument, symbol=symbol)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ServiceConfig:
        """Return the configuration described by ``data`` (every key optional).

        Keys: ``initial_cash``, ``commission_rate`` (numbers or numeric
        strings), ``instruments`` (symbol -> ``{price_increment,
        quantity_increment, cash_increment}``), ``default_instrument`` (the same
        increments mapping, or ``null`` / ``"reject"`` to reject unknown
        symbols), ``risk`` (``max_order_quantity``, ``max_order_notional``,
        ``max_position``, ``max_position_notional``, ``margin_rate``; ``null``
        disables one), ``max_open_orders``, ``orders_per_second_account``,
        ``account_burst``, ``orders_per_second_strategy``, ``strategy_burst``,
        ``max_participation``, ``retain_ended_orders``.

        Raises:
            ConfigError: a key is unknown (the message names it) or a value is invalid.
        """
        names = tuple(item.name for item in dataclasses.fields(cls))
        data = _mapping("config", data, names)
        kwargs: dict[str, Any] = {}
        for name in ("initial_cash", "commission_rate"):
            if name in data:
                kwargs[name] = _decimal(name, data[name])
        if "instruments" in data:
            spec = _mapping("instruments", data["instruments"] or {}, None)
            kwargs["instruments"] = {
                symbol: _instrument(f"instruments.{symbol}", symbol, value)
                for symbol, value in spec.items()
            }
        if "default_instrument" in data:
            value = data["default_instrument"]
            kwargs["default_instrument"] = (
                None
                if value is None or value == "reject"
                else _instrument("default_instrument", DEFAULT_INSTRUMENT.symbol, value)
            )
        if "risk" in data:
            risk = _mapping("risk", data["risk"] or {}, _RISK_KEYS)
            kwargs["risk"] = RiskLimits(
                **{key: _optional_decimal(f"risk.{key}", risk[key]) for key in risk}
            )
        for name in ("max_open_orders", "account_burst", "strategy_burst", "retain_ended_orders"):
            if name in data:
                value = data[name]
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ConfigError(f"{name} must be an integer or null, got {value!r}")
                kwargs[name] = value
        for name in (
            "orders_per_second_account",
            "orders_per_second_strategy",
            "max_participation",
        ):
            if name in data:
                value = data[name]
                if value is not None and (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise ConfigError(f"{name} must be a number or null, got {value!r}")
                kwargs[name] = None if value is None else float(value)
        return cls(**kwargs)

    def to_mapping(self) -> dict[str, Any]:
        """Return the configuration as JSON-ready data that :meth:`from_mapping` reads back."""
        risk = self.risk
        return {
            "initial_cash": str(self.initial_cash),
            "instruments": {
                symbol: _increments(instrument)
                for symbol, instrument in sorted(self.instruments.items())
            },
            "default_instrument": (
                None if self.default_instrument is None else _increments(self.default_instrument)
            ),
            "commission_rate": str(self.commission_rate),
            "risk": {
                key: None if getattr(risk, key) is None else str(getattr(risk, key))
                for key in _RISK_KEYS
            },
            "max_open_orders": self.max_open_orders,
            "orders_per_second_account": self.orders_per_second_account,
            "account_burst": self.account_burst,
            "orders_per_second_strategy": self.orders_per_second_strategy,
            "strategy_burst": self.strategy_burst,
            "max_participation": self.max_participation,
            "retain_ended_orders": self.retain_ended_orders,
        }
