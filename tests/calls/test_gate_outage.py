"""The gate and a server that goes away, a model that cannot be used, and a model whose every call fails.

A fake call raises errors that carry the decision a provider's ``classify`` would return. Probes are fast (tens of
milliseconds) and nothing asserts on wall-clock speed: the tests wait for events and check counts and outcomes.
"""

from __future__ import annotations

import re

import anyio
import anyio.lowlevel
import pytest

from judgeflow.calls.backoff import RetryPolicy
from judgeflow.calls.gate import FAILURE_STREAK, CallGate, GateRegistry, Limits
from judgeflow.calls.health import HealthPolicy
from judgeflow.protocol.calls import ErrorDecision, ErrorKind, LimitKey
from judgeflow.protocol.errors import ModelUnusable, ServerUnreachable
from judgeflow.protocol.events import CallRetry, Event, ServerDown, ServerUp

pytestmark = pytest.mark.anyio

KEY = LimitKey("openai", "chat.completions", "gpt-4o-mini", "http://127.0.0.1:9/v1")
QUICK = RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002)
FAST = HealthPolicy(grace_s=0.3, outage_limit_s=30.0, probe_base_s=0.01, probe_max_s=0.02)


class Failure(Exception):
    def __init__(self, kind: ErrorKind, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(kind)
        self.decision = ErrorDecision(kind, f"fake {kind}", status=status, hint=hint)


def classify(error: BaseException) -> ErrorDecision:
    assert isinstance(error, Failure)
    return error.decision


class Server:
    """A server that is up, or away (every call fails ``unreachable``), counting the calls that reached it."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0
        self.refused = 0

    async def call(self) -> str:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if not self.up:
            self.refused += 1
            raise Failure("unreachable")
        return "ok"


def gate(limits: Limits | None = None, health: HealthPolicy = FAST) -> CallGate:
    return GateRegistry(lambda _key: limits or Limits(retry=QUICK), health=health).gate(KEY)


async def wait_for(events: list[Event], condition: type[Event], count: int = 1) -> None:
    with anyio.fail_after(10):
        while sum(isinstance(e, condition) for e in events) < count:  # noqa: ASYNC110
            await anyio.sleep(0.005)


async def test_a_server_that_never_answers_stops_the_run_within_the_grace_not_after_the_attempts() -> None:
    server, events = Server(), list[Event]()
    server.up = False
    with pytest.raises(ServerUnreachable) as caught:
        await gate().call(server.call, classify=classify, publish=events.append)
    assert server.refused > QUICK.max_attempts  # waiting is not an attempt: the grace decides
    stop = caught.value
    assert stop.server == KEY.server
    assert not stop.ever_answered
    assert re.match(rf"nothing answered at {re.escape(KEY.server)} for \d+ s \(\d+ tries; ", stop.message)
    assert "last error: fake unreachable" in stop.message
    assert "--grace S" in stop.message
    downs = [e for e in events if isinstance(e, ServerDown)]
    assert downs[0].server == KEY.server
    assert downs[0].limit_s == FAST.grace_s
    assert [e.probes for e in downs] == list(range(len(downs)))  # one event per failed probe
    assert not any(isinstance(e, CallRetry) for e in events)


async def test_an_outage_pauses_every_call_and_loses_none() -> None:
    server, events = Server(), list[Event]()
    paused = gate(Limits(max_in_flight=4, retry=QUICK))
    assert await paused.call(server.call, classify=classify, publish=events.append) == "ok"
    server.up = False
    results: list[str] = []

    async def one() -> None:
        results.append(await paused.call(server.call, classify=classify, publish=events.append))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(one)
        await wait_for(events, ServerDown, count=3)  # down, and two failed probes
        # One call at a time probes; the others wait holding no slot (the probe fails at once).
        assert paused.in_flight <= 1
        assert server.refused < 20 + 3  # the waiting calls did not hammer the server
        server.up = True
    assert results == ["ok"] * 20
    ups = [e for e in events if isinstance(e, ServerUp)]
    assert len(ups) == 1
    assert ups[0].down_s > 0
    assert paused.stats().failed == 0


async def test_an_outage_longer_than_the_limit_stops_every_waiting_call() -> None:
    server, events = Server(), list[Event]()
    short = gate(health=HealthPolicy(grace_s=30.0, outage_limit_s=0.2, probe_base_s=0.01, probe_max_s=0.02))
    await short.call(server.call, classify=classify, publish=events.append)
    server.up = False
    stops: list[BaseException] = []

    async def one() -> None:
        try:
            await short.call(server.call, classify=classify, publish=events.append)
        except ServerUnreachable as error:
            stops.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert len(stops) == 5
    assert len({id(stop) for stop in stops}) == 5  # one error each: none carries another task's traceback
    first = stops[0]
    assert isinstance(first, ServerUnreachable)
    assert first.ever_answered
    assert "past the outage limit of 0.2 s" in first.message


async def test_a_model_the_server_refuses_closes_the_gate_for_good() -> None:
    calls = 0

    async def refused() -> str:
        nonlocal calls
        calls += 1
        raise Failure("fatal_model", status=401, hint="the key came from OPENAI_API_KEY")

    closed = gate()
    with pytest.raises(ModelUnusable) as caught:
        await closed.call(refused, classify=classify, publish=lambda _e: None)
    with pytest.raises(ModelUnusable) as again:
        await closed.call(refused, classify=classify, publish=lambda _e: None)
    assert calls == 1  # the second call never reached the server
    for error in (caught.value, again.value):
        assert error.status == 401
        assert error.model == "openai:gpt-4o-mini"
        assert error.message == (
            f"openai:gpt-4o-mini: {KEY.server} answered fake fatal_model (the key came from OPENAI_API_KEY)"
        )
    assert isinstance(caught.value.__cause__, Failure)
    assert closed.unusable is not None
    caught.value.role = "teacher"
    assert caught.value.message.startswith("teacher (openai:gpt-4o-mini): ")


async def test_calls_waiting_for_a_slot_do_not_call_a_closed_model() -> None:
    calls = 0

    async def refused() -> str:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        raise Failure("fatal_model", status=404)

    closed, stops = gate(Limits(max_in_flight=2, retry=QUICK)), []

    async def one() -> None:
        try:
            await closed.call(refused, classify=classify, publish=lambda _e: None)
        except ModelUnusable as error:
            stops.append(error)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(one)
    assert len(stops) == 10
    assert calls == 2  # the two in flight; the eight waiting for a slot saw the gate closed


async def test_the_first_calls_of_a_model_all_failing_make_it_unusable() -> None:
    calls = 0

    async def bad() -> str:
        nonlocal calls
        calls += 1
        raise Failure("fatal", status=400)

    never = gate()
    for _ in range(FAILURE_STREAK - 1):
        with pytest.raises(Failure):
            await never.call(bad, classify=classify, publish=lambda _e: None)
    with pytest.raises(ModelUnusable, match=f"the first {FAILURE_STREAK} calls to it at .* all failed") as caught:
        await never.call(bad, classify=classify, publish=lambda _e: None)
    assert caught.value.status == 400
    with pytest.raises(ModelUnusable):
        await never.call(bad, classify=classify, publish=lambda _e: None)
    assert calls == FAILURE_STREAK


async def test_failing_items_of_a_model_that_worked_stay_per_item() -> None:
    answers = iter(["ok"])

    async def mostly_bad() -> str:
        answer = next(answers, None)
        if answer is None:
            raise Failure("fatal", status=400)
        return answer

    worked = gate()
    assert await worked.call(mostly_bad, classify=classify, publish=lambda _e: None) == "ok"
    for _ in range(FAILURE_STREAK * 2):
        with pytest.raises(Failure):
            await worked.call(mostly_bad, classify=classify, publish=lambda _e: None)
    assert worked.unusable is None


async def test_a_connection_error_while_others_get_answers_is_a_counted_retry() -> None:
    events: list[Event] = []
    blip, slow_started = gate(), anyio.Event()
    attempts = 0

    async def slow_then_fine() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            slow_started.set()
            await anyio.sleep(0.05)  # another call is answered meanwhile
            raise Failure("unreachable")
        return "ok"

    async def fine() -> str:
        return "ok"

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: blip.call(slow_then_fine, classify=classify, publish=events.append))
        await slow_started.wait()
        await blip.call(fine, classify=classify, publish=events.append)
    retries = [e for e in events if isinstance(e, CallRetry)]
    assert [r.reason for r in retries] == ["transient"]
    assert not any(isinstance(e, ServerDown) for e in events)


async def test_a_cancelled_probe_lets_another_call_probe() -> None:
    events: list[Event] = []
    watched = gate(health=HealthPolicy(grace_s=30.0, outage_limit_s=30.0, probe_base_s=0.01, probe_max_s=0.02))
    server = Server()
    await watched.call(server.call, classify=classify, publish=events.append)
    # The server goes down (as a call in flight would find), with nobody else waiting.
    watched.watch.unreachable(
        started=anyio.current_time(), detail="refused", probe=False, reached=False, publish=events.append
    )
    hung = anyio.Event()

    async def hang() -> str:
        hung.set()
        await anyio.sleep_forever()
        raise AssertionError("never")

    with anyio.move_on_after(5) as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: watched.call(hang, classify=classify, publish=events.append))
            await hung.wait()
            assert watched.watch.health.probing  # the hanging call is the probe
            tg.cancel_scope.cancel()
    assert not scope.cancelled_caught
    assert not watched.watch.health.probing
    assert await watched.call(server.call, classify=classify, publish=events.append) == "ok"
    assert any(isinstance(e, ServerUp) for e in events)


async def test_gates_of_one_server_share_its_watch() -> None:
    registry = GateRegistry(lambda _key: Limits(), health=FAST)
    chat = registry.gate(KEY)
    other = registry.gate(LimitKey("openai", "chat.completions", "gpt-4o", KEY.server))
    elsewhere = registry.gate(LimitKey("openai", "chat.completions", "gpt-4o", "http://127.0.0.1:10/v1"))
    assert chat.watch is other.watch
    assert elsewhere.watch is not chat.watch
    assert registry.watches() == [chat.watch, elsewhere.watch]
