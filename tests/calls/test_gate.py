"""Tests for judgeflow.calls.gate: the retry loop, in-flight caps, adaptive concurrency at run time, the budget.

Delays are tiny (milliseconds) and nothing asserts on wall-clock speed: the tests check counts, order, the
events published and the limits in force.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.calls.backoff import RetryPolicy
from judgeflow.calls.budget import Budget, BudgetExceeded, Reservation
from judgeflow.calls.gate import CallGate, GateRegistry, Limits
from judgeflow.protocol.calls import ErrorDecision, ErrorKind, LimitKey
from judgeflow.protocol.events import BudgetExhausted, CallRetry, ConcurrencyChanged, Event

KEY = LimitKey("openai", "chat", "gpt-4o-mini")
E = TypeVar("E", bound=Event)
QUICK = RetryPolicy(max_attempts=6, base_delay_s=0.001, max_delay_s=0.005, max_retry_after_s=0.05)


@pytest.fixture
def anyio_backend() -> str:
    # aiolimiter is asyncio-only.
    return "asyncio"


class ProviderError(Exception):
    """What a fake provider raises: it carries the decision its classify() returns."""

    def __init__(self, kind: ErrorKind, retry_after_s: float | None = None) -> None:
        super().__init__(kind)
        self.decision = ErrorDecision(kind, f"fake {kind}", retry_after_s=retry_after_s, status=429)


class Classifier:
    """A provider's classify(), counting what it was asked about."""

    def __init__(self) -> None:
        self.seen: list[BaseException] = []

    def __call__(self, error: BaseException) -> ErrorDecision:
        self.seen.append(error)
        if isinstance(error, ProviderError):
            return error.decision
        return ErrorDecision("fatal", repr(error))


class Flaky:
    """A call that fails with the given errors, in order, then returns ``"ok"``."""

    def __init__(self, *errors: ProviderError) -> None:
        self.errors = list(errors)
        self.raised: list[ProviderError] = []
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if self.errors:
            error = self.errors.pop(0)
            self.raised.append(error)
            raise error
        return "ok"


def gate(**kwargs: object) -> CallGate:
    kwargs.setdefault("retry", QUICK)
    return CallGate(KEY, Limits(**kwargs), seed=0)  # type: ignore[arg-type]


def of_type(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


# --------------------------------------------------------------------------------------------------------------
# Limits


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rpm": 0}, "rpm"),
        ({"tpm": -5.0}, "tpm"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 4, "min_in_flight": 5}, "min_in_flight"),
        ({"min_in_flight": 0}, "min_in_flight"),
        ({"burst_s": 0.0}, "burst_s"),
    ],
)
def test_limits_rejects_bad_values(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Limits(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------
# The retry loop


@pytest.mark.anyio
async def test_first_try_success_publishes_nothing() -> None:
    g, fn, classify, events = gate(max_in_flight=4), Flaky(), Classifier(), list[Event]()
    assert await g.call(fn, classify=classify, publish=events.append) == "ok"
    assert (fn.calls, classify.seen, events) == (1, [], [])
    stats = g.stats()
    assert (stats.attempts, stats.retries, stats.failed, stats.in_flight, stats.limit) == (1, 0, 0, 0, 4)


@pytest.mark.anyio
async def test_transient_errors_are_retried_with_backoff() -> None:
    g, classify, events = gate(max_in_flight=4), Classifier(), list[Event]()
    fn = Flaky(ProviderError("transient"), ProviderError("transient"))
    assert await g.call(fn, classify=classify, publish=events.append) == "ok"
    assert fn.calls == 3
    assert classify.seen == fn.raised
    assert all(isinstance(e, CallRetry) for e in events)
    retries = of_type(events, CallRetry)
    assert [(r.attempt, r.reason, r.detail) for r in retries] == [
        (1, "transient", "fake transient"),
        (2, "transient", "fake transient"),
    ]
    assert all((r.provider, r.endpoint, r.model) == ("openai", "chat", "gpt-4o-mini") for r in retries)
    assert all(0.0 <= r.delay_s <= QUICK.max_delay_s for r in retries)
    # Transient errors say nothing about the rate limit: the cap stays.
    assert g.limit == 4
    assert g.stats().retries == 2


@pytest.mark.anyio
async def test_rate_limited_shrinks_concurrency_once_per_overload_and_honours_retry_after() -> None:
    g, classify, events = gate(max_in_flight=8), Classifier(), list[Event]()
    fn = Flaky(ProviderError("rate_limited", retry_after_s=0.01), ProviderError("rate_limited", 0.02))
    assert await g.call(fn, classify=classify, publish=events.append) == "ok"
    assert fn.calls == 3
    # The second 429 lands inside the cooldown window: one cut, not two.
    assert events[0] == ConcurrencyChanged("openai", "chat", "gpt-4o-mini", limit=4, maximum=8)
    assert [type(e) for e in events] == [ConcurrencyChanged, CallRetry, CallRetry]
    retries = of_type(events, CallRetry)
    assert [(r.attempt, r.reason) for r in retries] == [(1, "rate_limited"), (2, "rate_limited")]
    # The server's retry-after is a floor under the backoff.
    assert retries[0].delay_s >= 0.01
    assert retries[1].delay_s >= 0.02
    assert g.limit == 4
    assert g.stats().rate_limited == 2


@pytest.mark.anyio
async def test_rate_limited_without_adaptive_only_retries() -> None:
    g, events = gate(max_in_flight=8, adaptive=False), list[Event]()
    fn = Flaky(ProviderError("rate_limited", 0.001))
    assert await g.call(fn, classify=Classifier(), publish=events.append) == "ok"
    assert [type(e) for e in events] == [CallRetry]
    assert g.limit == 8


@pytest.mark.anyio
async def test_fatal_raises_at_once() -> None:
    g, events = gate(), list[Event]()
    error = ProviderError("fatal")
    fn = Flaky(error, ProviderError("transient"))
    with pytest.raises(ProviderError) as caught:
        await g.call(fn, classify=Classifier(), publish=events.append)
    assert caught.value is error
    assert (fn.calls, events) == (1, [])
    assert (g.in_flight, g.stats().failed) == (0, 1)


@pytest.mark.anyio
async def test_unclassifiable_errors_are_fatal() -> None:
    async def broken() -> str:
        raise KeyError("bug")

    classify = Classifier()
    with pytest.raises(KeyError):
        await gate().call(broken, classify=classify, publish=list[Event]().append)
    assert len(classify.seen) == 1


@pytest.mark.anyio
async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002)
    g, events = gate(retry=policy), list[Event]()
    fn = Flaky(*(ProviderError("transient") for _ in range(5)))
    with pytest.raises(ProviderError) as caught:
        await g.call(fn, classify=Classifier(), publish=events.append)
    assert fn.calls == 3
    assert caught.value is fn.raised[-1]
    assert any("gave up after 3 attempts" in note for note in caught.value.__notes__)
    assert [e.attempt for e in events if isinstance(e, CallRetry)] == [1, 2]
    assert (g.in_flight, g.stats().attempts, g.stats().failed) == (0, 3, 1)


@pytest.mark.anyio
async def test_a_broken_classifier_propagates_and_releases_the_slot() -> None:
    def classify(error: BaseException) -> ErrorDecision:
        raise RuntimeError("classifier bug")

    g = gate(max_in_flight=1)
    with pytest.raises(RuntimeError, match="classifier bug"):
        await g.call(Flaky(ProviderError("transient")), classify=classify, publish=list[Event]().append)
    assert g.in_flight == 0


# --------------------------------------------------------------------------------------------------------------
# Cancellation


@pytest.mark.anyio
async def test_cancellation_during_backoff_propagates_and_holds_no_slot() -> None:
    # The server asks for a long wait; we cancel while the call sleeps it off.
    g = gate(retry=RetryPolicy(max_retry_after_s=60.0), max_in_flight=2)
    fn = Flaky(ProviderError("rate_limited", retry_after_s=30.0))
    classify = Classifier()
    retrying = anyio.Event()
    events: list[Event] = []

    def publish(event: Event) -> None:
        events.append(event)
        if isinstance(event, CallRetry):
            retrying.set()

    finished = False

    async def caller() -> None:
        nonlocal finished
        await g.call(fn, classify=classify, publish=publish)
        finished = True

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller)
            await retrying.wait()
            assert g.in_flight == 0  # backing off is not being in flight
            scope.cancel()
    assert scope.cancelled_caught
    assert not finished
    assert (fn.calls, len(classify.seen), g.in_flight) == (1, 1, 0)
    assert [type(e) for e in events] == [ConcurrencyChanged, CallRetry]


@pytest.mark.anyio
async def test_cancellation_during_the_call_is_never_classified() -> None:
    g = gate(max_in_flight=1)
    classify = Classifier()
    started = anyio.Event()

    async def hangs() -> str:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: g.call(hangs, classify=classify, publish=list[Event]().append))
            await started.wait()
            assert g.in_flight == 1
            scope.cancel()
    assert scope.cancelled_caught
    assert (classify.seen, g.in_flight, g.stats().failed) == ([], 0, 0)
    # The slot really is free: the next call gets it.
    assert await g.call(Flaky(), classify=classify, publish=list[Event]().append) == "ok"


@pytest.mark.anyio
async def test_cancellation_while_waiting_for_a_slot_leaves_the_gate_usable() -> None:
    g = gate(max_in_flight=1, adaptive=False)
    release = anyio.Event()

    async def holds() -> str:
        await release.wait()
        return "held"

    results: list[str] = []

    async def run(fn: Callable[[], Awaitable[str]]) -> None:
        results.append(await g.call(fn, classify=Classifier(), publish=list[Event]().append))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, holds)
        await anyio.wait_all_tasks_blocked()
        # Cancelled while queued for the only slot (the deadline is a way to cancel, not a speed check).
        with anyio.move_on_after(0.01) as waiting:
            await g.call(Flaky(), classify=Classifier(), publish=list[Event]().append)
        assert waiting.cancelled_caught
        assert (g.in_flight, g.stats().waiting) == (1, 0)
        release.set()
    assert results == ["held"]
    assert g.in_flight == 0


# --------------------------------------------------------------------------------------------------------------
# In-flight caps


class Probe:
    """A call that records how many calls were inside at once."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    async def __call__(self) -> str:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            await anyio.sleep(0.002)
        finally:
            self.current -= 1
        return "ok"


async def run_many(g: CallGate, fn: Callable[[], Awaitable[str]], n: int, events: list[Event]) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(lambda: g.call(fn, classify=Classifier(), publish=events.append))


@pytest.mark.anyio
async def test_in_flight_cap_is_respected() -> None:
    g, probe = gate(max_in_flight=3, adaptive=False), Probe()
    await run_many(g, probe, 12, [])
    assert probe.peak == 3
    assert (g.in_flight, g.stats().attempts) == (0, 12)


@pytest.mark.anyio
async def test_adaptive_cut_applies_to_later_calls() -> None:
    g, events = gate(max_in_flight=4), list[Event]()
    await g.call(Flaky(ProviderError("rate_limited", 0.001)), classify=Classifier(), publish=events.append)
    assert g.limit == 2
    probe = Probe()
    await run_many(g, probe, 10, events)
    assert probe.peak == 2
    # Successes inside the cooldown window do not raise the cap again.
    assert g.limit == 2
    assert of_type(events, ConcurrencyChanged) == [ConcurrencyChanged("openai", "chat", "gpt-4o-mini", 2, 4)]


@pytest.mark.anyio
async def test_adaptive_grows_back_after_the_cooldown() -> None:
    g, events = gate(max_in_flight=8, cooldown_s=0.0), list[Event]()
    await g.call(Flaky(ProviderError("rate_limited", 0.001)), classify=Classifier(), publish=events.append)
    assert g.limit == 4
    for _ in range(10):  # AdaptiveConcurrency's default increase_every
        await g.call(Flaky(), classify=Classifier(), publish=events.append)
    assert g.limit == 5
    assert [e.limit for e in events if isinstance(e, ConcurrencyChanged)] == [4, 5]


@pytest.mark.anyio
async def test_nested_calls_from_one_task_each_take_a_slot() -> None:
    g = gate(max_in_flight=2)

    async def outer() -> str:
        inner = await g.call(Flaky(), classify=Classifier(), publish=list[Event]().append)
        return f"{inner} {g.in_flight}"

    assert await g.call(outer, classify=Classifier(), publish=list[Event]().append) == "ok 1"


@pytest.mark.anyio
async def test_rate_buckets_charge_requests_and_tokens_beyond_the_bucket_size() -> None:
    # A 10 ms bucket holds 100 tokens; a 250-token call takes them in chunks instead of failing.
    g = gate(rpm=600_000, tpm=600_000, burst_s=0.01)
    for tokens in (0, 50, 250):
        assert await g.call(Flaky(), classify=Classifier(), estimated_tokens=tokens, publish=list[Event]().append)
    assert g.stats().attempts == 3


# --------------------------------------------------------------------------------------------------------------
# GateRegistry


@pytest.mark.anyio
async def test_registry_shares_one_gate_per_key() -> None:
    asked: list[LimitKey] = []

    def limits_for(key: LimitKey) -> Limits:
        asked.append(key)
        return Limits(max_in_flight=2 if key.model == "small" else 5, retry=QUICK)

    registry = GateRegistry(limits_for, seed=7)
    a, b = LimitKey("openai", "chat", "small"), LimitKey("openai", "chat", "big")
    assert registry.gate(a) is registry.gate(a)
    assert registry.gate(b) is not registry.gate(a)
    assert asked == [a, b]
    assert [g.key for g in registry.gates()] == [a, b]
    assert [s.limit for s in registry.stats()] == [2, 5]

    # Actors calling the same model share its cap.
    probe = Probe()
    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(lambda: registry.gate(a).call(probe, classify=Classifier(), publish=list[Event]().append))
    assert probe.peak == 2


# --------------------------------------------------------------------------------------------------------------
# Budget


def test_budget_reserve_settle_release() -> None:
    events: list[Event] = []
    budget = Budget(1.0, publish=events.append)
    first = budget.reserve(0.4)
    second = budget.reserve(0.4)
    assert budget.spent_usd == 0.0
    assert budget.reserved_usd == pytest.approx(0.8)
    assert budget.remaining_usd == pytest.approx(0.2)
    first.settle(0.3)
    assert budget.spent_usd == pytest.approx(0.3)
    assert budget.reserved_usd == pytest.approx(0.4)
    second.release()
    assert budget.spent_usd == pytest.approx(0.3)
    assert budget.reserved_usd == 0.0
    assert not budget.exhausted
    assert events == []


def test_budget_counts_calls_in_flight_and_refuses_before_the_call() -> None:
    events: list[Event] = []
    budget = Budget(1.0, publish=events.append)
    budget.reserve(0.6)  # in flight, not yet spent
    with pytest.raises(BudgetExceeded) as caught:
        budget.reserve(0.6)
    refused = caught.value
    assert (refused.budget_usd, refused.spent_usd, refused.reserved_usd, refused.estimate_usd) == (
        1.0,
        0.0,
        0.6,
        0.6,
    )
    assert "$1.0000" in str(refused)
    assert "in flight $0.6000" in str(refused)
    # A smaller call still fits; BudgetExhausted is published once however often we refuse.
    budget.reserve(0.4)
    with pytest.raises(BudgetExceeded):
        budget.reserve(0.01)
    assert events == [BudgetExhausted(spent_usd=0.0, budget_usd=1.0)]
    assert budget.exhausted


def test_budget_exact_fit_is_allowed_and_free_calls_always_are() -> None:
    budget = Budget(0.5, publish=list[Event]().append)
    budget.reserve(0.5).settle(0.5)
    assert budget.remaining_usd == 0.0
    budget.reserve(0.0).settle(0.0)
    assert budget.spent_usd == 0.5


def test_unlimited_budget_only_keeps_count() -> None:
    budget = Budget(None, publish=list[Event]().append)
    for _ in range(3):
        budget.reserve(1e6).settle(2e6)
    assert (budget.spent_usd, budget.remaining_usd, budget.exhausted) == (6e6, None, False)


def test_reservation_context_manager_releases_on_error_and_closes_once() -> None:
    budget = Budget(1.0, publish=list[Event]().append)
    with pytest.raises(ValueError, match="provider"), budget.reserve(0.7):
        raise ValueError("provider failed")
    assert budget.reserved_usd == 0.0
    with budget.reserve(0.7) as reservation:
        assert isinstance(reservation, Reservation)
        reservation.settle(0.5)
    assert (budget.spent_usd, budget.reserved_usd, reservation.open) == (0.5, 0.0, False)
    reservation.release()  # no-op once settled
    with pytest.raises(RuntimeError, match="already"):
        reservation.settle(0.1)
    assert budget.spent_usd == 0.5


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_budget_rejects_bad_amounts(bad: float) -> None:
    with pytest.raises(ValueError, match="max_usd"):
        Budget(bad, publish=list[Event]().append)
    budget = Budget(1.0, publish=list[Event]().append)
    with pytest.raises(ValueError, match="estimate_usd"):
        budget.reserve(bad)
    reservation = budget.reserve(0.1)
    with pytest.raises(ValueError, match="actual_usd"):
        reservation.settle(bad)
    assert reservation.open


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.floats(0, 0.5)),
        st.tuples(st.just("settle"), st.floats(0, 1)),  # fraction of the estimate actually spent
        st.tuples(st.just("release"), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(max_usd=st.floats(0, 2), ops=_OPS)
def test_budget_never_lets_spent_plus_reserved_exceed_the_maximum(max_usd: float, ops: list[tuple[str, float]]) -> None:
    events: list[Event] = []
    budget = Budget(max_usd, publish=events.append)
    open_: list[Reservation] = []
    for op, x in ops:
        if op == "reserve":
            try:
                open_.append(budget.reserve(x))
            except BudgetExceeded:
                assert budget.spent_usd + budget.reserved_usd + x > max_usd
        elif open_ and op == "settle":
            reservation = open_.pop(0)
            reservation.settle(reservation.estimate_usd * x)
        elif open_:
            open_.pop().release()
        assert budget.reserved_usd >= 0.0
        assert budget.spent_usd + budget.reserved_usd <= max_usd + 1e-9
    assert len(events) <= 1
    assert budget.exhausted == bool(events)


@pytest.mark.anyio
async def test_budget_with_concurrent_calls_never_overspends() -> None:
    events: list[Event] = []
    budget = Budget(1.0, publish=events.append)
    g = gate(max_in_flight=50, adaptive=False)
    refused = 0

    async def paid_call() -> None:
        nonlocal refused
        try:
            reservation = budget.reserve(0.15)
        except BudgetExceeded:
            refused += 1
            return
        with reservation:
            await g.call(Probe(), classify=Classifier(), publish=events.append)
            reservation.settle(0.1)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(paid_call)
    # All 20 start before any finishes: only six 0.15 reservations fit in 1.0.
    assert refused == 14
    assert budget.spent_usd == pytest.approx(0.6)
    assert budget.reserved_usd == 0.0
    assert of_type(events, BudgetExhausted) == [BudgetExhausted(spent_usd=0.0, budget_usd=1.0)]
