"""Cluster-wide limits: one rate-limit actor that every shard worker leases requests, tokens and in-flight slots from.

A provider's ``rpm``, ``tpm`` and ``concurrency`` are the provider's, not a worker's: with N workers each keeping
the limit locally, N times the limit would reach the server. So the buckets live once, in `ClusterLimiter` (an
async Ray actor, created by the driver), with the arithmetic of `judgeflow.calls.gate.LocalPermits`; each
worker's gates get a `LeasedPermits` (a `judgeflow.calls.gate.PermitSource`) that takes from it.

Leases come in batches, so the actor is not on every call's path: a lease waits for one request (and its tokens)
and takes up to ``lease`` more that are free at that moment, never waiting for them (a permit granted now and
used seconds later would let a burst past the bucket). What a worker leased and did not use within ``ttl_s`` is
dropped, so a lease never shifts requests by more than the bucket's slack. In-flight slots are leased the same
way and given back as soon as no call of the worker waits for one; the slots of a worker that died are freed by
the driver (`ClusterLimiter.forget`), which knows its holder name.

The budget (``--max-cost``) is lent the same way (`LeasedBudget`, a `judgeflow.calls.budget.Allowance`): a
worker's budget draws a slice when its next call would not fit, and gives back what it did not spend when its
shard ends. What a dead worker drew counts as spent, so the cap holds whatever happens; near the cap, a call may
be refused while another worker still holds an unspent slice (at most one slice per worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from judgeflow.calls.gate import Limits, rate_bucket, take_capacity
from judgeflow.protocol.calls import LimitKey

__all__ = ["ClusterLimiter", "LeasedBudget", "LeasedPermits", "LimiterStats", "leased_permits"]

DEFAULT_LEASE = 4
"""Permits asked for per round trip (one waited for, the rest only if free at once)."""
DEFAULT_TTL_S = 0.5
"""How long leased rate permits stay usable: half the default bucket's one-second slack."""


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """What the limiter granted, for the benchmark and the tests."""

    leases: int
    requests: int
    tokens: int
    slot_leases: int
    peak_slots: dict[str, int]


@dataclass(slots=True)
class _Key:
    limits: Limits
    requests: Any  # aiolimiter buckets (None: unlimited)
    tokens: Any
    free_slots: int
    holders: dict[str, int] = field(default_factory=dict)
    peak: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class ClusterLimiter:
    """The rate-limit actor's body (``ray.remote(ClusterLimiter)``): buckets and slots per limit key.

    Its methods run on the actor's one event loop, so the check and the grant of a lease happen with no task
    switch between them; a key's limits are those of the first lease that names it (every worker of a run has
    the same config).
    """

    def __init__(self, max_cost_usd: float | None = None) -> None:
        self._keys: dict[str, _Key] = {}
        self._gone: set[str] = set()  # holders that finished or died: a lease they left waiting gets nothing
        self._budget_left = max_cost_usd
        self._lent: dict[str, float] = {}
        self._leases = self._requests = self._tokens = self._slot_leases = 0

    def _key(self, key: str, limits: Limits) -> _Key:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key(
                limits,
                rate_bucket(limits.rpm, limits.burst_s),
                rate_bucket(limits.tpm, limits.burst_s),
                limits.max_in_flight,
            )
        return state

    async def lease(self, key: str, limits: Limits, want: int, tokens_each: int) -> int:
        """Wait for one request with ``tokens_each`` tokens, then take up to ``want - 1`` more that are free now;
        returns how many requests were granted (each with ``tokens_each`` tokens)."""
        state = self._key(key, limits)
        tokens_each = tokens_each if state.tokens is not None else 0
        await take_capacity(state.requests, 1.0)
        await take_capacity(state.tokens, float(tokens_each))
        granted = 1
        while granted < want and _free_now(state.requests, 1) and _free_now(state.tokens, tokens_each):
            await take_capacity(state.requests, 1.0)  # free now: returns without waiting
            await take_capacity(state.tokens, float(tokens_each))
            granted += 1
        self._leases += 1
        self._requests += granted
        self._tokens += granted * tokens_each
        return granted

    async def enter(self, key: str, limits: Limits, holder: str, want: int) -> int:
        """Wait for an in-flight slot of ``key``, then take up to ``want`` that are free; returns how many (none
        for a holder that is gone)."""
        state = self._key(key, limits)
        while state.free_slots < 1 and holder not in self._gone:
            state.changed.clear()
            await state.changed.wait()
        if holder in self._gone:
            return 0
        granted = min(want, state.free_slots)
        state.free_slots -= granted
        state.holders[holder] = state.holders.get(holder, 0) + granted
        state.peak = max(state.peak, state.limits.max_in_flight - state.free_slots)
        self._slot_leases += 1
        return granted

    async def leave(self, key: str, holder: str, count: int) -> None:
        """Give back ``count`` slots of ``holder``."""
        state = self._keys.get(key)
        if state is None:
            return
        held = state.holders.get(holder, 0)
        count = min(count, held)
        state.holders[holder] = held - count
        state.free_slots += count
        state.changed.set()

    async def forget(self, holder: str) -> int:
        """Free every slot ``holder`` holds (a worker that finished, or died); returns how many."""
        self._gone.add(holder)
        freed = 0
        for state in self._keys.values():
            held = state.holders.pop(holder, 0)
            state.free_slots += held
            state.changed.set()
            freed += held
        return freed

    async def grant_budget(self, holder: str, wanted_usd: float) -> float:
        """Lend ``holder`` up to ``wanted_usd`` of the budget; 0.0 when none is left (or no budget was set)."""
        if self._budget_left is None or holder in self._gone:
            return 0.0
        granted = min(wanted_usd, self._budget_left)
        self._budget_left -= granted
        self._lent[holder] = self._lent.get(holder, 0.0) + granted
        return granted

    async def give_back_budget(self, holder: str, unspent_usd: float) -> None:
        """Take back what ``holder`` drew and did not spend."""
        if self._budget_left is None:
            return
        back = min(unspent_usd, self._lent.get(holder, 0.0))
        self._lent[holder] = self._lent.get(holder, 0.0) - back
        self._budget_left += back

    async def stats(self) -> LimiterStats:
        return LimiterStats(
            self._leases,
            self._requests,
            self._tokens,
            self._slot_leases,
            {key: state.peak for key, state in self._keys.items()},
        )


def _free_now(bucket: Any, amount: int) -> bool:
    return bucket is None or amount == 0 or (amount <= bucket.max_rate and bucket.has_capacity(amount))


Call = Callable[[Any], Any]
"""Awaits a Ray object reference (the worker passes one bound to its event loop)."""


class LeasedPermits:
    """A worker's permits of one key, leased from the `ClusterLimiter` actor in batches."""

    def __init__(
        self,
        actor: Any,
        key: str,
        limits: Limits,
        *,
        holder: str,
        lease: int = DEFAULT_LEASE,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self._actor = actor
        self._key = key
        self._limits = limits
        self._holder = holder
        self._lease = max(1, lease)
        self._ttl_s = ttl_s
        self._rated = limits.rpm is not None or limits.tpm is not None
        self._requests = 0
        self._tokens = 0
        self._tokens_each = 0
        self._expires = 0.0
        self._rate_lock = anyio.Lock()
        # Slots: leased but unused, in use, callers waiting, whether a slot lease is on its way.
        self._free = self._used = self._waiting = 0
        self._leasing = False
        self._error: BaseException | None = None
        self._slot_changed = anyio.Event()

    async def acquire(self, tokens: int) -> None:
        if not self._rated:
            return
        tokens = tokens if self._limits.tpm is not None else 0
        async with self._rate_lock:
            now = anyio.current_time()
            if now > self._expires or self._requests < 1 or self._tokens < tokens:
                want = self._lease if tokens <= self._tokens_each or self._tokens_each == 0 else 1
                granted = await _wait(self._actor.lease.remote(self._key, self._limits, want, tokens))
                self._requests, self._tokens, self._tokens_each = granted, granted * tokens, tokens
                self._expires = anyio.current_time() + self._ttl_s
            self._requests -= 1
            self._tokens -= tokens

    async def enter(self) -> None:
        # The lease is not awaited by the caller: a call that waits at the actor while a call of this worker gives
        # a slot back would hold that slot's place forever. Whatever a lease brings comes in `_granted`.
        self._waiting += 1
        try:
            while self._free < 1:
                if self._error is not None:
                    raise self._error
                if not self._leasing:
                    self._leasing = True
                    ref = self._actor.enter.remote(self._key, self._limits, self._holder, self._lease)
                    asyncio.wrap_future(ref.future()).add_done_callback(self._granted)
                await self._slot_changed.wait()
        finally:
            self._waiting -= 1
        self._free -= 1
        self._used += 1
        self._give_back()

    def _granted(self, future: asyncio.Future[Any]) -> None:
        self._leasing = False
        if future.cancelled():
            self._error = RuntimeError("a lease from the cluster's limiter was cancelled")
        elif future.exception() is not None:
            self._error = future.exception()
        else:
            self._free += int(future.result())
        self._wake()
        self._give_back()

    def leave(self) -> None:
        self._used -= 1
        self._free += 1
        self._wake()
        self._give_back()

    def _wake(self) -> None:
        self._slot_changed.set()
        self._slot_changed = anyio.Event()

    def _give_back(self) -> None:
        """Slots nobody here waits for go back at once, so other workers' calls get them."""
        if self._free > 0 and self._waiting == 0:
            count, self._free = self._free, 0
            self._actor.leave.remote(self._key, self._holder, count)  # not awaited: nothing depends on it


async def _wait(ref: Any) -> Any:
    """The value of a Ray object reference, awaited on the running (asyncio) loop."""
    return await asyncio.wrap_future(ref.future())


class LeasedBudget:
    """A worker's share of the run's budget, drawn from the `ClusterLimiter` a slice at a time."""

    def __init__(self, actor: Any, *, holder: str, slice_usd: float) -> None:
        self._actor = actor
        self._holder = holder
        self._slice_usd = slice_usd

    async def grant(self, wanted_usd: float) -> float:
        granted: float = await _wait(self._actor.grant_budget.remote(self._holder, max(wanted_usd, self._slice_usd)))
        return granted

    def give_back(self, unspent_usd: float) -> None:
        self._actor.give_back_budget.remote(self._holder, unspent_usd)  # not awaited: nothing depends on it


def leased_permits(actor: Any, *, holder: str, lease: int = DEFAULT_LEASE) -> Callable[[LimitKey, Limits], Any]:
    """A `judgeflow.calls.gate.PermitFactory` over the cluster's limiter actor, for one shard's run."""

    def make(key: LimitKey, limits: Limits) -> LeasedPermits:
        name = f"{key.provider}/{key.endpoint}/{key.model}@{key.server}"
        return LeasedPermits(actor, name, limits, holder=holder, lease=lease)

    return make
