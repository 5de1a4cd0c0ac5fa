"""The gate every provider call passes: rate limits, in-flight caps and retries (the budget is `calls.budget`).

Providers declare policy, this module enforces it. A provider names the `LimitKey` its calls count against and
classifies its own errors into an `ErrorDecision`; `CallGate.call` is the one place where calls wait for
capacity, fail, back off and retry. Every actor calling the same (provider, endpoint, model, server) shares one
gate through a `GateRegistry`, so limits hold for the whole run, not per actor; every gate of one server shares
that server's `judgeflow.calls.health.ServerWatch`, so an outage pauses them all together.

A call ends in one of three ways besides its result: the item's own error (``fatal``, or a retryable error
after its last attempt), which the actor records as that item's failure; `judgeflow.protocol.errors.ModelUnusable`
(``fatal_model``, or the first calls of a model all failing), which closes the gate for good and stops the run;
`judgeflow.protocol.errors.ServerUnreachable` when the server stays away past the run's limit.

The arithmetic (backoff, retry-after, AIMD) lives in the pure `judgeflow.calls.backoff`; this module adds the clock
(``anyio.current_time()``), the sleeping and the limiters. Where a call's rate (a request, its tokens) and, beyond
the gate's own cap, its in-flight slot come from is a `PermitSource`: `LocalPermits` by default (aiolimiter
buckets in this process), or one that leases them from elsewhere, so that several processes keep one limit
together (`judgeflow.flows.ray.limiter`). aiolimiter is asyncio-only: run anyio on its asyncio backend, and
create gates per run (a limiter binds to the event loop that first uses it).
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, TypeVar

import anyio
from aiolimiter import AsyncLimiter

from judgeflow.calls.backoff import AdaptiveConcurrency, RetryPolicy, backoff_delay
from judgeflow.calls.health import HealthPolicy, ServerWatch
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.calls import ErrorDecision, LimitKey
from judgeflow.protocol.errors import ModelUnusable
from judgeflow.protocol.events import CallRetry, ConcurrencyChanged

__all__ = [
    "CallGate",
    "GateRegistry",
    "GateStats",
    "Limits",
    "LocalPermits",
    "PermitFactory",
    "PermitSource",
    "rate_bucket",
    "take_capacity",
]

T = TypeVar("T")

FAILURE_STREAK = 20
"""When this many calls of a model have failed one after another and none has ever succeeded, the model counts
as unusable: a server that says "no such model" in a way no classifier recognises (a permanent 500, a 400 for
every request) stops the run instead of failing every item. It cannot trip once a call has succeeded."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one `LimitKey`.

    ``rpm`` / ``tpm``: requests and tokens per minute (None: unlimited). They are enforced as leaky buckets
    that hold ``burst_s`` seconds' worth of the rate, so at most ``rpm * burst_s / 60`` requests go out at
    once (at least one): providers enforce per-minute limits over shorter windows too, and a whole minute's
    quota sent in the first second earns 429s. The bucket drains at ``(rpm - burst) / (60 + burst_s)`` per
    second, so that a full bucket plus what drains in a minute and ``burst_s`` is at most ``rpm``: a provider
    that counts a sliding minute sees the limit kept even when requests reach it bunched up by network delays
    (the steady rate is about ``burst_s / 30`` below ``rpm / 60``: 3% with the default one-second bucket).

    ``max_in_flight``: calls outstanding at once. With ``adaptive`` the cap halves on rate limiting and grows
    back towards ``max_in_flight`` (never below ``min_in_flight``); see `judgeflow.calls.backoff.AdaptiveConcurrency`.
    """

    rpm: float | None = None
    tpm: float | None = None
    max_in_flight: int = 16
    adaptive: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    min_in_flight: int = 1
    cooldown_s: float = 5.0
    burst_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight}")
        if not 1 <= self.min_in_flight <= self.max_in_flight:
            raise ValueError(f"min_in_flight must be within [1, max_in_flight], got {self.min_in_flight}")
        if not (math.isfinite(self.burst_s) and self.burst_s > 0):
            raise ValueError(f"burst_s must be a positive number, got {self.burst_s!r}")

    def stricter(self, other: Limits) -> Limits:
        """The stricter of two roles' limits on one shared key (one gate cannot honour both)."""

        def low(x: float | None, y: float | None) -> float | None:
            return y if x is None else x if y is None else min(x, y)

        return dataclasses.replace(
            self,
            rpm=low(self.rpm, other.rpm),
            tpm=low(self.tpm, other.tpm),
            max_in_flight=min(self.max_in_flight, other.max_in_flight),
        )


def rate_bucket(per_minute: float | None, burst_s: float) -> AsyncLimiter | None:
    """The leaky bucket that keeps ``per_minute`` (see `Limits`); None when unlimited."""
    if per_minute is None:
        return None
    size = max(1.0, per_minute * burst_s / 60.0)
    # A full bucket plus what drains in a minute (and burst_s more, the slack for requests that arrive bunched
    # up) must not pass the limit; see `Limits`. A bucket as big as the limit (an rpm of 1, or a burst_s of a
    # minute) cannot honour that and drains at the plain rate.
    per_second = (per_minute - size) / (60.0 + burst_s) if per_minute > size else per_minute / 60.0
    return AsyncLimiter(size, size / per_second)


class PermitSource(Protocol):
    """Where one `LimitKey`'s calls take their rate and their shared in-flight slots.

    `acquire` waits until one request and ``tokens`` tokens may go out; `enter` waits for an in-flight slot held
    beyond the gate's own cap (a limit shared with other processes) and `leave` gives it back (sync: it is
    called in ``finally`` blocks, never waits).
    """

    async def acquire(self, tokens: int) -> None: ...

    async def enter(self) -> None: ...

    def leave(self) -> None: ...


PermitFactory: TypeAlias = Callable[[LimitKey, Limits], PermitSource]
"""Makes the permit source of a key from its limits (one per gate)."""


class LocalPermits:
    """Permits from this process alone: aiolimiter buckets for RPM and TPM; the gate's own cap is the only
    in-flight limit, so `enter` and `leave` do nothing."""

    def __init__(self, limits: Limits) -> None:
        self._requests = rate_bucket(limits.rpm, limits.burst_s)
        self._tokens = rate_bucket(limits.tpm, limits.burst_s)

    async def acquire(self, tokens: int) -> None:
        await self.acquire_many(1, tokens)

    async def acquire_many(self, requests: int, tokens: int) -> None:
        """``requests`` requests and ``tokens`` tokens at once (a lease for another process)."""
        await take_capacity(self._requests, float(requests))
        await take_capacity(self._tokens, float(tokens))

    async def enter(self) -> None:
        return None

    def leave(self) -> None:
        return None


async def take_capacity(bucket: AsyncLimiter | None, amount: float) -> None:
    """Take ``amount`` from ``bucket`` (None: unlimited), waiting as long as it takes.

    aiolimiter refuses a single acquisition larger than its bucket; a big one takes its share in bucket-sized
    chunks so it is charged in full (and waits as long as its size demands).
    """
    if bucket is None:
        return
    while amount > 0:
        chunk = min(amount, bucket.max_rate)
        await bucket.acquire(chunk)
        amount -= chunk


@dataclass(frozen=True, slots=True)
class GateStats:
    """A gate at a glance, for the dashboard. ``attempts`` counts every try, retries included."""

    key: LimitKey
    limit: int
    maximum: int
    in_flight: int
    waiting: int
    attempts: int
    retries: int
    rate_limited: int
    failed: int


class CallGate:
    """Rate limits, an in-flight cap and the retry loop of one `LimitKey`."""

    def __init__(
        self,
        key: LimitKey,
        limits: Limits,
        *,
        seed: int | str | None = None,
        watch: ServerWatch | None = None,
        streak: int = FAILURE_STREAK,
        permits: PermitSource | None = None,
    ) -> None:
        self.key = key
        self.limits = limits
        self.watch = watch if watch is not None else ServerWatch(key.provider, key.server)
        self.streak = streak
        self._unusable: ModelUnusable | None = None
        self._succeeded = False
        self._failures_in_a_row = 0
        self._adaptive = (
            AdaptiveConcurrency(limits.max_in_flight, minimum=limits.min_in_flight, cooldown_s=limits.cooldown_s)
            if limits.adaptive
            else None
        )
        # CapacityLimiter rather than a Semaphore: its size can change while tokens are borrowed. Shrinking it
        # below the number in flight preempts nothing; new calls just wait until enough have finished.
        self._slots = anyio.CapacityLimiter(limits.max_in_flight)
        self._permits = permits if permits is not None else LocalPermits(limits)
        # A private generator, so jitter is reproducible per gate and nobody else's draws shift it.
        self._rng = random.Random(f"{key.provider}/{key.endpoint}/{key.model}" if seed is None else seed)
        self._attempts = 0
        self._retries = 0
        self._rate_limited = 0
        self._failed = 0

    @property
    def limit(self) -> int:
        """The current in-flight cap."""
        return self.limits.max_in_flight if self._adaptive is None else self._adaptive.limit

    @property
    def in_flight(self) -> int:
        return self._slots.borrowed_tokens

    @property
    def unusable(self) -> ModelUnusable | None:
        """Why this model cannot be used, once a call found out (every later call raises it)."""
        return self._unusable

    def stats(self) -> GateStats:
        return GateStats(
            key=self.key,
            limit=self.limit,
            maximum=self.limits.max_in_flight,
            in_flight=self._slots.borrowed_tokens,
            waiting=self._slots.statistics().tasks_waiting,
            attempts=self._attempts,
            retries=self._retries,
            rate_limited=self._rate_limited,
            failed=self._failed,
        )

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        classify: Callable[[BaseException], ErrorDecision],
        estimated_tokens: int = 0,
        publish: Publish,
    ) -> T:
        """Await ``fn()`` within this key's limits, retrying what ``classify`` says is worth retrying.

        Each attempt waits for the server to be usable (`ServerWatch.admit`), takes an in-flight slot, then
        request and token capacity, then awaits ``fn()``. A failure is classified: ``rate_limited`` also tells
        adaptive concurrency (publishing `ConcurrencyChanged` when the cap moves); ``rate_limited`` and
        ``transient`` back off and retry, up to ``retry.max_attempts``; ``unreachable`` hands the call to the
        server's watch, which holds it until the server answers (not an attempt: an item never fails because
        its server was away), or raises `ServerUnreachable`; ``fatal_model`` raises `ModelUnusable`, now and
        for every later call; ``fatal`` raises the error itself. The slot is released while backing off or
        waiting. `CallRetry` is published before the sleep, so observers see the wait while it happens.
        Cancellation is never classified or retried: it propagates at once and every slot is released.

        ``estimated_tokens`` (prompt plus ``max_tokens``) is charged to the TPM bucket before the call.
        """
        policy = self.limits.retry
        watch = self.watch
        attempt = 0
        while True:
            self._raise_if_unusable()
            probe = await watch.admit()
            attempt += 1
            # A fresh borrower per attempt: CapacityLimiter allows one token per borrower, and one task may
            # run calls through the same gate from nested code.
            borrower = object()
            # A free slot is taken without awaiting: the awaiting acquire always yields to the event loop
            # (twice), which is a measurable share of a fast call's CPU. The call itself yields right after.
            try:
                self._slots.acquire_on_behalf_of_nowait(borrower)
            except anyio.WouldBlock:
                await self._slots.acquire_on_behalf_of(borrower)
            settled = entered = False
            try:
                self._raise_if_unusable()  # it may have closed while this call waited for a slot
                await self._permits.enter()
                entered = True
                await self._permits.acquire(estimated_tokens)
                self._attempts += 1
                started = anyio.current_time()
                try:
                    result = await fn()
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception as exc:
                    decision = classify(exc)
                    kind = decision.kind
                    settled = True
                    if kind == "unreachable":
                        if watch.unreachable(
                            started=started,
                            detail=decision.detail,
                            probe=probe,
                            reached=decision.status is not None,
                            publish=publish,
                        ):
                            attempt -= 1
                            continue
                        kind = "transient"  # a blip: the server answered another call after this one began
                    else:
                        watch.answered(probe=probe, publish=publish)
                    if kind == "fatal_model":
                        self._failed += 1
                        raise self._close(decision) from exc
                    if kind == "rate_limited":
                        self._rate_limited += 1
                        self._on_rate_limited(publish)
                    if kind not in ("rate_limited", "transient") or attempt >= policy.max_attempts:
                        self._failed += 1
                        if kind != "fatal":
                            exc.add_note(f"judgeflow: gave up after {attempt} attempts ({kind}: {decision.detail})")
                        if self._failed_again(decision):
                            raise self._unusable_error() from exc
                        raise
                else:
                    settled = True
                    watch.answered(probe=probe, publish=publish)
                    self._succeeded = True
                    self._failures_in_a_row = 0
                    # Only a first-try success says the current cap is sustainable; one that needed retries
                    # is neutral.
                    if attempt == 1:
                        self._on_success(publish)
                    return result
            finally:
                if entered:
                    self._permits.leave()
                self._slots.release_on_behalf_of(borrower)
                if probe and not settled:
                    watch.release_probe()

            delay = backoff_delay(policy, attempt, jitter=self._rng.random(), retry_after_s=decision.retry_after_s)
            self._retries += 1
            publish(
                CallRetry(
                    provider=self.key.provider,
                    endpoint=self.key.endpoint,
                    model=self.key.model,
                    attempt=attempt,
                    delay_s=delay,
                    reason=kind,
                    detail=decision.detail,
                )
            )
            await anyio.sleep(delay)

    def _raise_if_unusable(self) -> None:
        if self._unusable is not None:
            raise self._unusable_error()

    def _unusable_error(self) -> ModelUnusable:
        # A new instance for every call that raises it: one exception raised by many tasks would collect all
        # their tracebacks.
        known = self._unusable
        assert known is not None
        return ModelUnusable(
            known.reason,
            model=known.model,
            server=known.server,
            status=known.status,
            detail=known.detail,
            hint=known.hint,
        )

    def _close(self, decision: ErrorDecision) -> ModelUnusable:
        """Close the gate for good: every call to this model on this server would fail like this one."""
        if self._unusable is None:
            where = self.key.server or "its server"
            reason = f"{where} answered {decision.detail}"
            if decision.hint:
                reason += f" ({decision.hint})"
            self._unusable = ModelUnusable(
                reason,
                model=f"{self.key.provider}:{self.key.model}",
                server=self.key.server,
                status=decision.status,
                detail=decision.detail,
                hint=decision.hint,
            )
        return self._unusable_error()

    def _failed_again(self, decision: ErrorDecision) -> bool:
        """Count a call that failed for good; True when the model has failed `streak` times and never worked."""
        self._failures_in_a_row += 1
        if self._succeeded or self._failures_in_a_row < self.streak:
            return False
        where = self.key.server or "its server"
        self._unusable = ModelUnusable(
            f"the first {self._failures_in_a_row} calls to it at {where} all failed, the last with: {decision.detail}",
            model=f"{self.key.provider}:{self.key.model}",
            server=self.key.server,
            status=decision.status,
            detail=decision.detail,
            hint=decision.hint,
        )
        return True

    def _on_success(self, publish: Publish) -> None:
        if self._adaptive is not None:
            self._apply(self._adaptive.on_success(anyio.current_time()), publish)

    def _on_rate_limited(self, publish: Publish) -> None:
        if self._adaptive is not None:
            self._apply(self._adaptive.on_rate_limited(anyio.current_time()), publish)

    def _apply(self, new_limit: int | None, publish: Publish) -> None:
        if new_limit is None:
            return
        self._slots.total_tokens = new_limit
        publish(
            ConcurrencyChanged(
                provider=self.key.provider,
                endpoint=self.key.endpoint,
                model=self.key.model,
                limit=new_limit,
                maximum=self.limits.max_in_flight,
            )
        )

    def __repr__(self) -> str:
        return f"CallGate({self.key!r}, limit={self.limit}, in_flight={self.in_flight})"


class GateRegistry:
    """One `CallGate` per `LimitKey`, created on first use and shared by every actor calling that model, and one
    `ServerWatch` per (provider, server), shared by the gates of that server.

    ``limits_for`` maps a key to its limits (config lookup with defaults); it is called once per key. ``health``
    says how long the run waits for a server that does not answer. ``permits`` makes each gate's `PermitSource`
    (default: `LocalPermits`). Create one registry per run: gates hold rate
    limiters bound to the run's event loop.
    """

    def __init__(
        self,
        limits_for: Callable[[LimitKey], Limits],
        *,
        seed: int = 0,
        health: HealthPolicy | None = None,
        permits: PermitFactory | None = None,
    ) -> None:
        self._limits_for = limits_for
        self._permits = permits
        self._seed = seed
        self.health = health or HealthPolicy()
        self._gates: dict[LimitKey, CallGate] = {}
        self._watches: dict[tuple[str, str], ServerWatch] = {}

    def gate(self, key: LimitKey) -> CallGate:
        gate = self._gates.get(key)
        if gate is None:
            seed = f"{self._seed}/{key.provider}/{key.endpoint}/{key.model}"
            limits = self._limits_for(key)
            source = None if self._permits is None else self._permits(key, limits)
            gate = self._gates[key] = CallGate(key, limits, seed=seed, watch=self.watch(key), permits=source)
        return gate

    def watch(self, key: LimitKey) -> ServerWatch:
        """The watch of ``key``'s server (every gate of that server shares it)."""
        where = (key.provider, key.server)
        watch = self._watches.get(where)
        if watch is None:
            seed = f"{self._seed}/{key.provider}@{key.server}"
            watch = self._watches[where] = ServerWatch(key.provider, key.server, self.health, seed=seed)
        return watch

    def watches(self) -> list[ServerWatch]:
        """Every server watch created so far, in creation order."""
        return list(self._watches.values())

    def gates(self) -> list[CallGate]:
        """Every gate created so far, in creation order."""
        return list(self._gates.values())

    def stats(self) -> list[GateStats]:
        return [gate.stats() for gate in self._gates.values()]
