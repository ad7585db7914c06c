"""Order-rate throttles: token buckets with a burst, driven by an injected clock.

A :class:`TokenBucket` admits ``burst`` requests at once and then one every
``1 / per_second`` seconds. It is implemented as the generic cell rate
algorithm (GCRA) on integer nanoseconds: the bucket keeps one number, the
*theoretical arrival time* of the next request, so it is exact, deterministic
and needs no timer. Time is whatever the caller passes (``now_ns``): the
execution service passes its injectable clock, so tests drive it by hand. A
clock that steps backwards never admits more than ``burst`` requests early.

:class:`Throttle` keeps one bucket per key (an account, a strategy) and can
check several keys before spending a token from any of them, so a request
refused by one limit does not use up another's allowance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from tradepulse.errors import ConfigError

__all__ = ["NS_PER_SECOND", "RateLimit", "Throttle", "TokenBucket"]

#: Nanoseconds in a second.
NS_PER_SECOND: Final = 1_000_000_000
# Buckets a Throttle keeps before it forgets the full (idle) ones.
_PRUNE_THRESHOLD: Final = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """A sustained rate of ``per_second`` requests with bursts of up to ``burst``.

    ``burst`` defaults to one second's worth (``ceil(per_second)``, at least 1).

    Raises:
        ConfigError: ``per_second`` is not a positive finite number or ``burst``
            is not an integer >= 1.
    """

    per_second: float
    burst: int | None = None

    def __post_init__(self) -> None:
        rate = self.per_second
        if (
            isinstance(rate, bool)
            or not isinstance(rate, int | float)
            or not 0 < rate < math.inf
            or NS_PER_SECOND / rate < 1
        ):
            raise ConfigError(
                f"per_second must be a positive finite number of at most {NS_PER_SECOND}, "
                f"got {rate!r}"
            )
        burst = self.burst
        if burst is None:
            object.__setattr__(self, "burst", max(1, math.ceil(rate)))
        elif isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ConfigError(f"burst must be an integer >= 1, got {burst!r}")

    @property
    def interval_ns(self) -> int:
        """Return the time one token takes to refill, in nanoseconds (at least 1)."""
        return max(1, round(NS_PER_SECOND / self.per_second))

    @property
    def capacity(self) -> int:
        """Return the bucket size (``burst`` after defaulting)."""
        return self.burst if self.burst is not None else max(1, math.ceil(self.per_second))


class TokenBucket:
    """One token bucket (GCRA on integer nanoseconds); see the module docstring."""

    __slots__ = ("_interval_ns", "_limit", "_tat_ns", "_tolerance_ns")

    def __init__(self, limit: RateLimit) -> None:
        if not isinstance(limit, RateLimit):
            raise ConfigError(f"limit must be a RateLimit, got {limit!r}")
        self._limit = limit
        self._interval_ns = limit.interval_ns
        self._tolerance_ns = (limit.capacity - 1) * self._interval_ns
        self._tat_ns: int | None = None  # None: full bucket

    def __repr__(self) -> str:
        return f"TokenBucket({self._limit!r})"

    @property
    def limit(self) -> RateLimit:
        """Return the rate limit."""
        return self._limit

    def wait_ns(self, now_ns: int) -> int:
        """Return how long a request at ``now_ns`` must wait for a token (0: one is free)."""
        tat = self._tat_ns
        if tat is None:
            return 0
        return max(0, tat - now_ns - self._tolerance_ns)

    def consume(self, now_ns: int) -> None:
        """Spend one token at ``now_ns`` (call only after :meth:`wait_ns` returned 0)."""
        tat = self._tat_ns
        start = now_ns if tat is None else max(tat, now_ns)
        self._tat_ns = start + self._interval_ns

    def try_acquire(self, now_ns: int) -> bool:
        """Spend one token at ``now_ns`` if one is free; return whether it was."""
        if self.wait_ns(now_ns) > 0:
            return False
        self.consume(now_ns)
        return True

    def is_full(self, now_ns: int) -> bool:
        """Return whether the bucket has refilled completely by ``now_ns``."""
        return self._tat_ns is None or self._tat_ns <= now_ns


class Throttle:
    """Token buckets by key, all with the same :class:`RateLimit`.

    Buckets are created on first use; idle (full) buckets are forgotten once
    more than a few thousand keys have been seen, which changes nothing since
    a new bucket starts full.

    Raises:
        ConfigError: ``limit`` is not a RateLimit.
    """

    __slots__ = ("_buckets", "_limit", "_prune_at")

    def __init__(self, limit: RateLimit) -> None:
        if not isinstance(limit, RateLimit):
            raise ConfigError(f"limit must be a RateLimit, got {limit!r}")
        self._limit = limit
        self._buckets: dict[str, TokenBucket] = {}
        self._prune_at = _PRUNE_THRESHOLD

    def __repr__(self) -> str:
        return f"Throttle({self._limit!r})"

    @property
    def limit(self) -> RateLimit:
        """Return the rate limit every key gets."""
        return self._limit

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._limit)
        return bucket

    def wait_ns(self, key: str, now_ns: int) -> int:
        """Return how long ``key`` must wait for a token at ``now_ns`` (0: one is free)."""
        bucket = self._buckets.get(key)
        return 0 if bucket is None else bucket.wait_ns(now_ns)

    def consume(self, key: str, now_ns: int) -> None:
        """Spend one of ``key``'s tokens at ``now_ns``."""
        if len(self._buckets) >= self._prune_at and key not in self._buckets:
            self._buckets = {
                name: bucket for name, bucket in self._buckets.items() if not bucket.is_full(now_ns)
            }
            # Scan again only after as many new keys again: amortised O(1) per key.
            self._prune_at = max(_PRUNE_THRESHOLD, 2 * len(self._buckets))
        self._bucket(key).consume(now_ns)

    def try_acquire(self, key: str, now_ns: int) -> bool:
        """Spend one of ``key``'s tokens at ``now_ns`` if one is free; return whether it was."""
        if self.wait_ns(key, now_ns) > 0:
            return False
        self.consume(key, now_ns)
        return True
