"""Retry timing and adaptive concurrency as plain arithmetic: no clock, no I/O, no event loop.

Everything that depends on time or chance takes it as an argument (``now``, ``now_epoch``, ``jitter``), so the
rules are tested exhaustively without sleeping, and the runtime core (`judgeflow.calls.gate`) is the only place
that reads a clock or draws a random number.

- `parse_retry_after` reads how long a server asked us to wait from its response headers.
- `RetryPolicy` and `backoff_delay` decide how long to wait before the next attempt.
- `probe_delay` spaces the probes of a server that does not answer (`judgeflow.calls.health`).
- `AdaptiveConcurrency` moves an in-flight cap down when the server pushes back and up while it does not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["AdaptiveConcurrency", "RetryPolicy", "backoff_delay", "parse_retry_after", "probe_delay"]


# ----------------------------------------------------------------------------------------------------
# Retry-After headers

# Go-style durations as OpenAI sends them in x-ratelimit-reset-*: "20ms", "1s", "6m0s", "1h2m3.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _parse_number(text: str) -> float | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    return _finite(float(text))


def _parse_duration(text: str) -> float | None:
    """Seconds in a Go duration string ("1h2m3.5s"); a bare number counts as seconds."""
    text = text.strip()
    plain = _parse_number(text)
    if plain is not None:
        return plain
    total = 0.0
    pos = 0
    while pos < len(text):
        part = _DURATION_PART.match(text, pos)
        if part is None:
            return None
        total += float(part.group(1)) * _UNIT_S[part.group(2)]
        pos = part.end()
    return _finite(total) if pos > 0 else None


def _parse_http_date(text: str, now_epoch: float) -> float | None:
    try:
        when = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; "-0000" parses as naive.
        when = when.replace(tzinfo=UTC)
    try:
        return _finite(when.timestamp() - now_epoch)
    except (OverflowError, ValueError):
        return None


def _pick_reset(lower: Mapping[str, str]) -> float | None:
    """The x-ratelimit-reset-* wait that matters: the one for the bucket that is empty.

    OpenAI sends a reset time for the request bucket and for the token bucket with every response. After a
    429 the ``remaining`` header of the bucket we exhausted is 0; waiting for the other bucket's (often much
    longer, full-refill) reset would only waste time. When that does not single one out, wait for the longer
    reset.
    """
    resets: dict[str, float] = {}
    for bucket in ("requests", "tokens"):
        raw = lower.get(f"x-ratelimit-reset-{bucket}")
        value = _parse_duration(raw) if raw is not None else None
        if value is not None:
            resets[bucket] = value
    if not resets:
        return None
    empty = [b for b in resets if _parse_number(lower.get(f"x-ratelimit-remaining-{b}", "")) == 0]
    chosen = empty or list(resets)
    return max(resets[bucket] for bucket in chosen)


def parse_retry_after(headers: Mapping[str, str], *, now_epoch: float) -> float | None:
    """Seconds the server asked us to wait before retrying, or None when its headers do not say.

    Sources, most specific first (the first one that parses wins):

    1. ``retry-after-ms``: milliseconds (OpenAI and Azure send it next to ``retry-after``);
    2. ``retry-after``: delta-seconds, or an HTTP-date taken relative to ``now_epoch`` (Unix seconds);
    3. ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens``: Go durations such as ``"6m0s"``
       (see `_pick_reset` for which one is used when both are present).

    Header names are case-insensitive. The result is never negative (a date in the past means "now"); a value
    that does not parse is skipped, never raised, because a malformed header must not turn a retryable error
    into a crash.
    """
    lower = {name.lower(): value for name, value in headers.items() if isinstance(name, str) and isinstance(value, str)}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms is not None and (ms := _parse_number(raw_ms)) is not None:
        return max(0.0, ms / 1000.0)
    raw = lower.get("retry-after")
    if raw is not None and (seconds := _parse_retry_after_value(raw, now_epoch)) is not None:
        return max(0.0, seconds)
    reset = _pick_reset(lower)
    return None if reset is None else max(0.0, reset)


def _parse_retry_after_value(text: str, now_epoch: float) -> float | None:
    seconds = _parse_number(text)
    return seconds if seconds is not None else _parse_http_date(text, now_epoch)


# ----------------------------------------------------------------------------------------------------
# Backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a call is retried.

    ``max_attempts`` counts the first try: 6 means one call and up to five retries. ``max_retry_after_s`` caps
    how long we honour a server's retry-after, so a misconfigured server cannot park a worker for an hour.
    """

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("base_delay_s", "max_delay_s", "max_retry_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def backoff_delay(policy: RetryPolicy, attempt: int, *, jitter: float, retry_after_s: float | None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first try).

    Exponential backoff with full jitter: ``jitter * min(max_delay_s, base_delay_s * 2 ** (attempt - 1))``
    with ``jitter`` drawn uniformly from ``[0, 1)`` by the caller. Full jitter spreads a crowd of callers
    that failed together, instead of having them all come back at the same instant.

    When the server said how long to wait, we wait at least that long (capped at ``max_retry_after_s``): the
    server knows when its bucket refills, and retrying earlier only earns another 429.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
    # Past ~1000 doublings any finite base is beyond max_delay_s; capping the exponent avoids OverflowError.
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** min(attempt - 1, 1000))
    delay = jitter * ceiling
    if retry_after_s is not None and not math.isnan(retry_after_s):
        delay = max(delay, min(max(retry_after_s, 0.0), policy.max_retry_after_s))
    return delay


def probe_delay(failed: int, *, jitter: float, base_s: float = 0.5, max_s: float = 10.0) -> float:
    """Seconds until the next probe of a server that did not answer, after ``failed`` failed probes.

    ``min(max_s, base_s * 2 ** failed)``, scaled by a factor in ``[0.5, 1)`` from ``jitter`` (uniform in
    ``[0, 1)``): unlike a retry, a probe must not come back at once (a dead address answers in a millisecond),
    and several runs probing one server should not do it in step. The cap keeps a server's return noticed
    within ``max_s`` seconds; a probe that fails costs nothing.
    """
    if failed < 0:
        raise ValueError(f"failed counts from 0, got {failed}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
    return min(max_s, base_s * 2.0 ** min(failed, 1000)) * (0.5 + 0.5 * jitter)


# ----------------------------------------------------------------------------------------------------
# Adaptive concurrency


class AdaptiveConcurrency:
    """AIMD control of an in-flight cap: halve on rate limiting, creep back up while calls succeed.

    The rule:

    - **Decrease**: a rate-limited call halves the limit (``limit // 2``, never below ``minimum``). Only the
      first 429 of a ``cooldown_s`` window cuts: one overload makes every call in flight fail at about the
      same time, and counting each of them would collapse the limit to ``minimum`` for a single event. A 429
      that arrives after the window has passed is a new overload and cuts again, so sustained pushback keeps
      walking the limit down.
    - **Increase**: every ``increase_every`` successes add 1, up to ``maximum``. Successes during the cooldown
      window are ignored: those calls were in flight before the cut and say nothing about whether the new,
      lower limit is sustainable. A 429 also restarts the success count.

    Additive increase with multiplicative decrease converges on the largest limit the server sustains and
    shares it fairly between competing clients (the same reason TCP uses it). The limit starts at ``initial``
    (default ``maximum``: the configured cap is the user's best guess, and adaptation only has to correct it
    downwards). Methods return the new limit when it changed and None otherwise; ``now`` is any monotonic
    clock in seconds.
    """

    __slots__ = (
        "_cooldown_until",
        "_limit",
        "_successes",
        "cooldown_s",
        "increase_every",
        "maximum",
        "minimum",
    )

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        initial: int | None = None,
        cooldown_s: float = 5.0,
        increase_every: int = 10,
    ) -> None:
        if minimum < 1:
            raise ValueError(f"minimum must be at least 1, got {minimum}")
        if maximum < minimum:
            raise ValueError(f"maximum ({maximum}) must be >= minimum ({minimum})")
        start = maximum if initial is None else initial
        if not minimum <= start <= maximum:
            raise ValueError(f"initial ({start}) must be within [{minimum}, {maximum}]")
        if not (math.isfinite(cooldown_s) and cooldown_s >= 0):
            raise ValueError(f"cooldown_s must be a finite number >= 0, got {cooldown_s!r}")
        if increase_every < 1:
            raise ValueError(f"increase_every must be at least 1, got {increase_every}")
        self.maximum = maximum
        self.minimum = minimum
        self.cooldown_s = cooldown_s
        self.increase_every = increase_every
        self._limit = start
        self._successes = 0
        self._cooldown_until = -math.inf

    @property
    def limit(self) -> int:
        """The current in-flight cap, always within [minimum, maximum]."""
        return self._limit

    def in_cooldown(self, now: float) -> bool:
        return now < self._cooldown_until

    def on_success(self, now: float) -> int | None:
        """A call succeeded without being rate limited; may raise the limit by one."""
        if self.in_cooldown(now):
            return None
        self._successes += 1
        if self._successes < self.increase_every:
            return None
        self._successes = 0
        if self._limit >= self.maximum:
            return None
        self._limit += 1
        return self._limit

    def on_rate_limited(self, now: float) -> int | None:
        """The server said "too many requests"; halves the limit at most once per cooldown window."""
        self._successes = 0
        if self.in_cooldown(now):
            return None
        self._cooldown_until = now + self.cooldown_s
        new = max(self.minimum, self._limit // 2)
        if new == self._limit:
            return None
        self._limit = new
        return new

    def __repr__(self) -> str:
        return f"AdaptiveConcurrency(limit={self._limit}, minimum={self.minimum}, maximum={self.maximum})"
