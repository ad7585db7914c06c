"""Latency models: when a submitted order is acknowledged and when it may first fill.

Time is counted two ways at once: in bars (``bar`` indices as the matching
engine processes them; the submission bar is the last bar processed, ``-1``
before the first) and in nanoseconds (the ``ts`` stamps of the bars and of the
submission). An order may fill on the first bar that satisfies *both*
``bar index >= eligible_bar`` and ``bar ts >= eligible_ts_ns``; the engine
never lets it fill on or before its submission bar, whatever the model says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from tradepulse.errors import ConfigError

__all__ = [
    "DEFAULT_ACKNOWLEDGE_NS",
    "DEFAULT_LATENCY_BARS",
    "DEFAULT_MATCH_NS",
    "FixedLatency",
    "LatencyModel",
    "OrderTiming",
]

#: Extra whole bars an order waits after the next bar (0: it may fill on the next bar).
DEFAULT_LATENCY_BARS: Final = 0
#: Submission to acknowledgement, in nanoseconds.
DEFAULT_ACKNOWLEDGE_NS: Final = 0
#: Acknowledgement to first possible fill, in nanoseconds.
DEFAULT_MATCH_NS: Final = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderTiming:
    """When an order is acknowledged and from when it may fill.

    ``acknowledge_ts_ns``: UTC nanoseconds at which the venue acknowledges it
    (it stays NEW, and cannot fill, before). ``eligible_bar``: first bar index on
    which it may fill. ``eligible_ts_ns``: earliest bar stamp on which it may fill.
    """

    acknowledge_ts_ns: int
    eligible_bar: int
    eligible_ts_ns: int


@runtime_checkable
class LatencyModel(Protocol):
    """Schedule an order submitted after bar ``submit_bar`` at ``submit_ts_ns``."""

    def schedule(self, *, submit_bar: int, submit_ts_ns: int) -> OrderTiming:
        """Return the order's :class:`OrderTiming`."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class FixedLatency:
    """The same latency for every order.

    ``bars``: whole bars skipped after the next one (an order submitted after
    bar t may fill from bar ``t + 1 + bars``). ``acknowledge_ns``: submission to
    acknowledgement. ``match_ns``: acknowledgement to the first possible fill;
    a bar stamped before ``submit_ts_ns + acknowledge_ns + match_ns`` cannot fill it.

    Raises:
        ConfigError: a field is not a non-negative integer.
    """

    bars: int = DEFAULT_LATENCY_BARS
    acknowledge_ns: int = DEFAULT_ACKNOWLEDGE_NS
    match_ns: int = DEFAULT_MATCH_NS

    def __post_init__(self) -> None:
        for name in ("bars", "acknowledge_ns", "match_ns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"FixedLatency.{name} must be an integer >= 0, got {value!r}")

    def schedule(self, *, submit_bar: int, submit_ts_ns: int) -> OrderTiming:
        """Return the acknowledgement time and the first bar and time the order may fill."""
        acknowledged = submit_ts_ns + self.acknowledge_ns
        return OrderTiming(
            acknowledge_ts_ns=acknowledged,
            eligible_bar=submit_bar + 1 + self.bars,
            eligible_ts_ns=acknowledged + self.match_ns,
        )
