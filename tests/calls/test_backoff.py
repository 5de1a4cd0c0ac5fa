"""Tests for judgeflow.calls.backoff: retry-after parsing, backoff bounds and the AIMD rule, all without a clock."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.calls.backoff import AdaptiveConcurrency, RetryPolicy, backoff_delay, parse_retry_after

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC).timestamp()

# --------------------------------------------------------------------------------------------------------------
# parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"content-type": "application/json"}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250", "Retry-After": "10"}, 0.25),
        ({"retry-after-ms": "12.5"}, 0.0125),
        ({"Retry-After": "7"}, 7.0),
        ({"RETRY-AFTER": " 2.5 "}, 2.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "-1"}, 0.0),
        # Garbage in a more specific header falls through to the next one.
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "soon", "x-ratelimit-reset-requests": "1s"}, 1.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "1e999"}, None),
        ({"retry-after": "9" * 400}, None),
        ({"retry-after": ""}, None),
        # Retry-After wins over the reset headers.
        ({"retry-after": "4", "x-ratelimit-reset-requests": "30s"}, 4.0),
    ],
)
def test_parse_retry_after_headers(headers: Mapping[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now_epoch=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("offset_s", "expected"),
    [(30.0, 30.0), (0.0, 0.0), (-120.0, 0.0), (3600.0, 3600.0)],
)
def test_parse_retry_after_http_date_is_relative_to_now(offset_s: float, expected: float) -> None:
    when = datetime.fromtimestamp(NOW + offset_s, tz=UTC)
    headers = {"Retry-After": format_datetime(when, usegmt=True)}
    assert parse_retry_after(headers, now_epoch=NOW) == pytest.approx(expected)


def test_parse_retry_after_http_date_literal() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now_epoch=now) == 60.0
    # "-0000" means UTC without saying so; it parses as a naive datetime.
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 -0000"}, now_epoch=now) == 60.0
    assert parse_retry_after({"retry-after": "Wed, 99 Foo 2015 07:28:00 GMT"}, now_epoch=now) is None


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("1.5s", 1.5),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("250ns", 2.5e-7),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("2", 2.0),  # a bare number: seconds
        (".5s", 0.5),
        ("1x", None),
        ("s", None),
        ("1s2", None),
        ("-1s", None),
        ("", None),
        ("1 s", None),
    ],
)
def test_parse_retry_after_openai_durations(duration: str, expected: float | None) -> None:
    assert parse_retry_after({"x-ratelimit-reset-requests": duration}, now_epoch=NOW) == pytest.approx(expected)
    assert parse_retry_after({"X-RateLimit-Reset-Tokens": duration}, now_epoch=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("remaining_requests", "remaining_tokens", "expected"),
    [
        ("0", "5000", 2.0),  # the request bucket is empty: its reset is the one to wait for
        ("10", "0", 360.0),  # the token bucket is empty
        ("0", "0", 360.0),  # both empty: wait for both
        (None, None, 360.0),  # no remaining headers: wait for the longer one
        ("junk", None, 360.0),
    ],
)
def test_parse_retry_after_picks_the_empty_bucket(
    remaining_requests: str | None, remaining_tokens: str | None, expected: float
) -> None:
    headers = {"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "6m0s"}
    if remaining_requests is not None:
        headers["x-ratelimit-remaining-requests"] = remaining_requests
    if remaining_tokens is not None:
        headers["x-ratelimit-remaining-tokens"] = remaining_tokens
    assert parse_retry_after(headers, now_epoch=NOW) == pytest.approx(expected)


def test_parse_retry_after_one_reset_header_garbage_uses_the_other() -> None:
    headers = {"x-ratelimit-reset-requests": "later", "x-ratelimit-reset-tokens": "3s"}
    assert parse_retry_after(headers, now_epoch=NOW) == 3.0


_HEADER_NAMES = st.sampled_from(
    [
        "retry-after-ms",
        "Retry-After",
        "retry-after",
        "x-ratelimit-reset-requests",
        "X-RateLimit-Reset-Tokens",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
        "content-type",
    ]
)
_HEADER_VALUES = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"-?[0-9]{0,6}(\.[0-9]{0,3})?", fullmatch=True),
    st.from_regex(r"([0-9]{1,4}(\.[0-9]{0,2})?(h|m|s|ms|us|ns))+", fullmatch=True),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: format_datetime(d, usegmt=True)),
    st.floats().map(str),
)


@settings(max_examples=500, deadline=None)
@given(
    headers=st.dictionaries(st.one_of(_HEADER_NAMES, st.text(max_size=10)), _HEADER_VALUES, max_size=6),
    now_epoch=st.floats(),
)
def test_parse_retry_after_never_raises_and_is_never_negative(headers: dict[str, str], now_epoch: float) -> None:
    result = parse_retry_after(headers, now_epoch=now_epoch)
    assert result is None or (math.isfinite(result) and result >= 0.0)


# --------------------------------------------------------------------------------------------------------------
# RetryPolicy and backoff_delay

FAST = RetryPolicy(max_attempts=6, base_delay_s=0.5, max_delay_s=60.0, max_retry_after_s=120.0)


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay_s, policy.max_delay_s, policy.max_retry_after_s) == (
        6,
        0.5,
        60.0,
        120.0,
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay_s": -1.0},
        {"max_delay_s": math.inf},
        {"max_retry_after_s": math.nan},
    ],
)
def test_retry_policy_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "jitter", "retry_after", "expected"),
    [
        (1, 0.0, None, 0.0),
        (1, 0.5, None, 0.25),  # ceiling 0.5
        (2, 0.5, None, 0.5),  # ceiling 1.0
        (3, 0.5, None, 1.0),  # ceiling 2.0
        (8, 0.5, None, 30.0),  # ceiling 64 capped at 60
        (10_000, 0.5, None, 30.0),  # no overflow
        (1, 0.0, 10.0, 10.0),  # the server's wait is a floor
        (8, 0.9, 10.0, 54.0),  # ...not a ceiling
        (1, 0.0, 1000.0, 120.0),  # capped at max_retry_after_s
        (1, 0.0, math.inf, 120.0),
        (1, 0.5, -5.0, 0.25),  # a negative hint means "now"
        (1, 0.5, math.nan, 0.25),  # a NaN hint is ignored
    ],
)
def test_backoff_delay_table(attempt: int, jitter: float, retry_after: float | None, expected: float) -> None:
    assert backoff_delay(FAST, attempt, jitter=jitter, retry_after_s=retry_after) == pytest.approx(expected)


@pytest.mark.parametrize(("attempt", "jitter"), [(0, 0.5), (1, 1.0), (1, -0.1), (1, math.nan)])
def test_backoff_delay_rejects_bad_arguments(attempt: int, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"attempt|jitter"):
        backoff_delay(FAST, attempt, jitter=jitter, retry_after_s=None)


@settings(max_examples=300, deadline=None)
@given(
    policy=st.builds(
        RetryPolicy,
        max_attempts=st.integers(1, 20),
        base_delay_s=st.floats(0, 100),
        max_delay_s=st.floats(0, 1000),
        max_retry_after_s=st.floats(0, 1000),
    ),
    attempt=st.integers(1, 5000),
    jitter=st.floats(0, 1, exclude_max=True),
    retry_after=st.none() | st.floats(allow_nan=False),
)
def test_backoff_delay_stays_within_bounds(
    policy: RetryPolicy, attempt: int, jitter: float, retry_after: float | None
) -> None:
    delay = backoff_delay(policy, attempt, jitter=jitter, retry_after_s=retry_after)
    assert math.isfinite(delay)
    assert delay >= 0.0
    server_floor = 0.0 if retry_after is None else min(max(retry_after, 0.0), policy.max_retry_after_s)
    assert delay >= server_floor
    assert delay <= max(policy.max_delay_s, server_floor)
    assert delay <= max(policy.base_delay_s * 2.0 ** min(attempt - 1, 1000), server_floor)


# --------------------------------------------------------------------------------------------------------------
# AdaptiveConcurrency


def test_adaptive_starts_at_maximum_unless_told() -> None:
    assert AdaptiveConcurrency(16).limit == 16
    assert AdaptiveConcurrency(16, initial=4).limit == 4


def test_adaptive_halves_once_per_cooldown_window() -> None:
    ac = AdaptiveConcurrency(16, cooldown_s=5.0)
    assert ac.on_rate_limited(100.0) == 8
    # The rest of the same overload's 429s do not cut again.
    assert ac.on_rate_limited(100.1) is None
    assert ac.on_rate_limited(104.9) is None
    assert ac.limit == 8
    # A 429 after the window is a new overload.
    assert ac.on_rate_limited(105.0) == 4
    assert ac.on_rate_limited(110.0) == 2
    assert ac.on_rate_limited(115.0) == 1
    assert ac.on_rate_limited(120.0) is None
    assert ac.limit == 1


def test_adaptive_never_goes_below_minimum() -> None:
    ac = AdaptiveConcurrency(5, minimum=3, cooldown_s=0.0)
    assert ac.on_rate_limited(0.0) == 3
    assert ac.on_rate_limited(1.0) is None
    assert ac.limit == 3


def test_adaptive_grows_by_one_every_n_successes_after_cooldown() -> None:
    ac = AdaptiveConcurrency(8, cooldown_s=5.0, increase_every=3)
    assert ac.on_rate_limited(0.0) == 4
    # Successes inside the window were in flight before the cut: ignored.
    assert [ac.on_success(1.0) for _ in range(10)] == [None] * 10
    assert ac.limit == 4
    assert [ac.on_success(5.0) for _ in range(3)] == [None, None, 5]
    assert [ac.on_success(6.0) for _ in range(3)] == [None, None, 6]


def test_adaptive_rate_limit_restarts_the_success_count() -> None:
    ac = AdaptiveConcurrency(8, initial=4, cooldown_s=1.0, increase_every=3)
    ac.on_success(0.0)
    ac.on_success(0.0)
    assert ac.on_rate_limited(0.0) == 2
    assert [ac.on_success(2.0) for _ in range(3)] == [None, None, 3]


def test_adaptive_stops_at_maximum() -> None:
    ac = AdaptiveConcurrency(3, initial=2, increase_every=1)
    assert ac.on_success(0.0) == 3
    assert ac.on_success(0.0) is None
    assert ac.limit == 3


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0,), {}, "maximum"),
        ((4,), {"minimum": 0}, "minimum"),
        ((4,), {"minimum": 5}, "maximum"),
        ((4,), {"initial": 5}, "initial"),
        ((4,), {"minimum": 2, "initial": 1}, "initial"),
        ((4,), {"cooldown_s": -1.0}, "cooldown_s"),
        ((4,), {"increase_every": 0}, "increase_every"),
    ],
)
def test_adaptive_rejects_bad_configuration(args: tuple[int], kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AdaptiveConcurrency(*args, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 50), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1])),
    cooldown=st.floats(0, 10),
    increase_every=st.integers(1, 5),
    events=st.lists(st.tuples(st.booleans(), st.floats(0, 3)), max_size=200),
)
def test_adaptive_never_leaves_its_bounds(
    bounds: tuple[int, int], cooldown: float, increase_every: int, events: list[tuple[bool, float]]
) -> None:
    minimum, maximum = bounds
    ac = AdaptiveConcurrency(maximum, minimum=minimum, cooldown_s=cooldown, increase_every=increase_every)
    now = 0.0
    for rate_limited, dt in events:
        now += dt
        before = ac.limit
        changed = ac.on_rate_limited(now) if rate_limited else ac.on_success(now)
        assert minimum <= ac.limit <= maximum
        if changed is None:
            assert ac.limit == before
        else:
            assert changed == ac.limit != before
            # Decrease is multiplicative, increase additive by one.
            assert changed == (max(minimum, before // 2) if rate_limited else before + 1)
