"""The cluster-wide limiter and its leases, in one process: the actor's body is a plain class, so these run without
Ray (a handle whose ``.remote()`` schedules the method on the test's loop stands in for the actor).

Rate bounds are checked as upper bounds on what was granted in the time the test took: a slow machine only
grants less, so nothing here depends on speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from judgeflow.calls.gate import Limits
from judgeflow.flows.ray.limiter import ClusterLimiter, LeasedPermits

pytestmark = pytest.mark.anyio


class _Ref:
    def __init__(self, task: asyncio.Future[Any]) -> None:
        self._task = task

    def future(self) -> asyncio.Future[Any]:
        return self._task


class _Method:
    def __init__(self, fn: Callable[..., Awaitable[Any]]) -> None:
        self._fn = fn

    def remote(self, *args: Any) -> _Ref:
        return _Ref(asyncio.ensure_future(self._fn(*args)))


class LocalHandle:
    """An actor handle over a `ClusterLimiter` in this process."""

    def __init__(self, actor: ClusterLimiter) -> None:
        self.lease = _Method(actor.lease)
        self.enter = _Method(actor.enter)
        self.leave = _Method(actor.leave)
        self.forget = _Method(actor.forget)


async def test_slots_hold_across_workers_and_are_leased_in_batches() -> None:
    actor = ClusterLimiter()
    handle = LocalHandle(actor)
    limits = Limits(max_in_flight=3)
    in_flight = peak = done = 0

    async def worker(name: str) -> None:
        permits = LeasedPermits(handle, "key", limits, holder=name, lease=3)

        async def call() -> None:
            nonlocal in_flight, peak, done
            await permits.enter()
            in_flight += 1
            peak = max(peak, in_flight)
            await anyio.sleep(0.005)
            in_flight -= 1
            done += 1
            permits.leave()

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(call)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for name in ("w0", "w1", "w2", "w3"):
                tg.start_soon(worker, name)
    stats = await actor.stats()
    assert done == 120
    assert peak == 3
    assert stats.peak_slots == {"key": 3}
    assert stats.slot_leases < 60  # batched: far fewer round trips than calls


async def test_a_dead_holders_slots_come_back_and_its_waiting_lease_gets_none() -> None:
    actor = ClusterLimiter()
    limits = Limits(max_in_flight=2)
    assert await actor.enter("key", limits, "dead", 5) == 2
    waiting = asyncio.ensure_future(actor.enter("key", limits, "dead", 1))
    alive = asyncio.ensure_future(actor.enter("key", limits, "alive", 1))
    await anyio.sleep(0.01)
    assert not waiting.done()
    assert not alive.done()
    assert await actor.forget("dead") == 2
    assert await waiting == 0
    assert await alive == 1


async def test_rate_leases_never_grant_more_than_the_bucket_allows() -> None:
    actor = ClusterLimiter()
    handle = LocalHandle(actor)
    limits = Limits(rpm=600, tpm=60_000)  # a bucket of 10 requests and 1,000 tokens, refilled about 9.7/s
    granted = 0

    async def worker(name: str) -> None:
        nonlocal granted
        permits = LeasedPermits(handle, "key", limits, holder=name, lease=4)
        for _ in range(8):
            await permits.acquire(50)
            granted += 1

    started = anyio.current_time()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for name in ("w0", "w1", "w2", "w3"):
                tg.start_soon(worker, name)
    elapsed = anyio.current_time() - started
    stats = await actor.stats()
    assert granted == 32
    # What the actor granted (used or not) stays within the bucket plus its refill over the time taken.
    assert stats.requests <= 10 + (600 - 10) / 61 * elapsed + 1
    assert stats.tokens == stats.requests * 50
    assert stats.leases < stats.requests  # some leases brought several permits


async def test_budgets_drawn_from_one_allowance_never_pass_its_cap_together() -> None:
    from judgeflow.calls.budget import Budget, BudgetExceeded
    from judgeflow.flows.ray.limiter import LeasedBudget

    actor = ClusterLimiter(max_cost_usd=1.0)
    handle = LocalHandle(actor)
    handle.grant_budget = _Method(actor.grant_budget)  # type: ignore[attr-defined]
    handle.give_back_budget = _Method(actor.give_back_budget)  # type: ignore[attr-defined]
    budgets = [
        Budget(1.0, publish=lambda _event: None, allowance=LeasedBudget(handle, holder=f"w{i}", slice_usd=0.05))
        for i in range(3)
    ]
    refused = 0
    for _ in range(40):
        for budget in budgets:
            await budget.make_room(0.03)
            try:
                with budget.reserve(0.03) as reservation:
                    reservation.settle(0.02)  # an estimate is an upper bound: the call costs less
            except BudgetExceeded:
                refused += 1
    spent = sum(budget.spent_usd for budget in budgets)
    assert refused > 0
    assert spent <= 1.0
    for budget in budgets:
        budget.give_back()
    await anyio.sleep(0.01)  # the give-backs are sent, not awaited
    assert await actor.grant_budget("later", 10.0) == pytest.approx(1.0 - spent)
