"""Token buckets and keyed throttles, driven by hand-set nanosecond times."""

from __future__ import annotations

import pytest

from tradepulse.errors import ConfigError
from tradepulse.execution import RateLimit, Throttle, TokenBucket
from tradepulse.execution.throttle import NS_PER_SECOND

MS = 1_000_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"per_second": 0},
        {"per_second": -1.0},
        {"per_second": float("inf")},
        {"per_second": float("nan")},
        {"per_second": True},
        {"per_second": "5"},
        {"per_second": 2e9},  # faster than one per nanosecond
        {"per_second": 5, "burst": 0},
        {"per_second": 5, "burst": 2.5},
        {"per_second": 5, "burst": True},
    ],
)
def test_rate_limit_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"per_second|burst"):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_rate_limit_defaults_burst_to_one_second_of_tokens() -> None:
    assert RateLimit(per_second=2.5).burst == 3
    assert RateLimit(per_second=0.2).burst == 1
    assert RateLimit(per_second=10, burst=4).capacity == 4
    assert RateLimit(per_second=4).interval_ns == 250 * MS


def test_bucket_admits_the_burst_then_one_per_interval() -> None:
    # 2 per second, burst 3: three at t=0, then one every 500 ms.
    bucket = TokenBucket(RateLimit(per_second=2, burst=3))

    admitted_at_zero = [bucket.try_acquire(0) for _ in range(4)]

    assert admitted_at_zero == [True, True, True, False]
    # After three tokens at t=0 the next one is due at 3 * 500 ms - 2 * 500 ms = 500 ms.
    assert bucket.wait_ns(0) == 500 * MS
    assert bucket.wait_ns(499 * MS) == 1 * MS
    assert not bucket.try_acquire(499 * MS)
    assert bucket.try_acquire(500 * MS)
    assert not bucket.try_acquire(500 * MS)
    assert bucket.try_acquire(1000 * MS)


def test_bucket_refills_completely_after_idling() -> None:
    bucket = TokenBucket(RateLimit(per_second=2, burst=3))
    for _ in range(3):
        bucket.consume(0)
    assert not bucket.is_full(1000 * MS)

    later = 1500 * MS  # three intervals later: full again, and no more than full
    assert bucket.is_full(later)
    assert [bucket.try_acquire(later) for _ in range(4)] == [True, True, True, False]


def test_bucket_does_not_gain_tokens_when_the_clock_steps_back() -> None:
    bucket = TokenBucket(RateLimit(per_second=1, burst=2))
    assert bucket.try_acquire(10 * NS_PER_SECOND)
    assert bucket.try_acquire(10 * NS_PER_SECOND)

    assert not bucket.try_acquire(5 * NS_PER_SECOND)
    assert bucket.wait_ns(5 * NS_PER_SECOND) == 6 * NS_PER_SECOND


def test_throttle_keeps_one_bucket_per_key() -> None:
    throttle = Throttle(RateLimit(per_second=1, burst=1))

    assert throttle.try_acquire("alice", 0)
    assert not throttle.try_acquire("alice", 0)
    assert throttle.try_acquire("bob", 0)
    assert throttle.wait_ns("carol", 0) == 0
    assert throttle.wait_ns("alice", 0) == NS_PER_SECOND
    assert throttle.try_acquire("alice", NS_PER_SECOND)


def test_throttle_forgets_only_full_buckets() -> None:
    throttle = Throttle(RateLimit(per_second=1, burst=1))
    throttle.consume("busy", 10 * NS_PER_SECOND)  # empty until t = 11 s
    for number in range(4095):
        throttle.consume(f"idle-{number}", 0)  # full again from t = 1 s

    throttle.consume("newcomer", 10 * NS_PER_SECOND)  # the 4097th key: prunes first

    assert sorted(throttle._buckets) == ["busy", "newcomer"]
    assert throttle.wait_ns("busy", 10 * NS_PER_SECOND) == NS_PER_SECOND
    assert throttle.wait_ns("idle-7", 10 * NS_PER_SECOND) == 0


def test_models_refuse_a_wrong_limit_and_show_it() -> None:
    limit = RateLimit(per_second=3, burst=2)
    with pytest.raises(ConfigError, match="RateLimit"):
        TokenBucket(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="RateLimit"):
        Throttle(None)  # type: ignore[arg-type]
    assert "per_second=3" in repr(TokenBucket(limit))
    assert Throttle(limit).limit == limit
    assert TokenBucket(limit).limit == limit
    assert "burst=2" in repr(Throttle(limit))
