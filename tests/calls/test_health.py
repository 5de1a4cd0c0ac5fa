"""The server health state machine, without a clock: every transition, the limits, the blip rule, the probes."""

from __future__ import annotations

import math

import pytest

from judgeflow.calls.backoff import probe_delay
from judgeflow.calls.health import Admission, HealthPolicy, ServerHealth

POLICY = HealthPolicy(grace_s=10.0, outage_limit_s=600.0, probe_base_s=0.5, probe_max_s=10.0)


def down(health: ServerHealth, now: float, *, started: float | None = None, probe: bool = False) -> bool:
    return health.on_unreachable(
        now, started=now if started is None else started, detail="refused", probe=probe, reached=False, jitter=0.0
    )


def test_calls_go_while_the_server_is_up_or_not_yet_known() -> None:
    health = ServerHealth(POLICY)
    assert health.admit(0.0) == (Admission.GO, 0.0)
    health.on_answer(1.0, probe=False)
    assert health.admit(2.0) == (Admission.GO, 2.0)
    assert health.deadline() == math.inf


def test_a_server_that_never_answered_stops_the_run_after_the_grace() -> None:
    health = ServerHealth(POLICY)
    assert down(health, 0.01, started=0.0)
    assert health.down_since == 0.0  # since the call began
    admission, wake = health.admit(0.02)
    assert admission is Admission.WAIT
    assert wake == pytest.approx(0.01 + 0.25)  # the first probe: 0.5 s scaled by the jitter floor
    assert health.admit(0.3)[0] is Admission.PROBE
    assert health.admit(0.3) == (Admission.WAIT, 10.0)  # a probe is out: only the deadline wakes the others
    assert down(health, 0.31, probe=True)
    assert health.probes == 1
    assert health.admit(9.99)[0] is Admission.PROBE
    health.release_probe()
    assert health.admit(10.0)[0] is Admission.STOPPED
    assert health.stopped
    assert health.admit(11.0)[0] is Admission.STOPPED  # for good
    assert health.on_answer(12.0, probe=False) is None  # too late: the run has stopped


def test_a_call_that_hung_counts_its_time_against_the_grace() -> None:
    health = ServerHealth(POLICY)
    down(health, 60.0, started=0.0)  # a connect that timed out after a minute
    assert health.admit(60.0)[0] is Admission.STOPPED


def test_a_server_that_answered_before_is_waited_for_until_the_outage_limit() -> None:
    health = ServerHealth(POLICY)
    health.on_answer(5.0, probe=False)
    assert down(health, 100.0, started=90.0)
    assert health.down_since == 100.0  # since we learnt it: it was answering until lately
    assert health.limit_s == 600.0
    assert health.admit(650.0)[0] is Admission.PROBE
    assert down(health, 651.0, probe=True)
    assert health.admit(699.0)[0] is Admission.PROBE
    assert health.on_answer(699.5, probe=True) == pytest.approx(599.5)
    assert not health.down
    assert health.probes == 0
    assert health.admit(700.0)[0] is Admission.GO


def test_an_http_answer_in_an_outage_means_the_server_exists() -> None:
    health = ServerHealth(POLICY)
    # A gateway's 503 is no answer from the model, but the server is there: wait for it as for an outage.
    assert health.on_unreachable(1.0, started=0.0, detail="503", probe=False, reached=True, jitter=0.0)
    assert health.limit_s == 600.0
    assert health.admit(100.0)[0] is Admission.PROBE


def test_a_failure_after_an_answer_that_came_in_later_is_a_blip() -> None:
    health = ServerHealth(POLICY)
    health.on_answer(5.0, probe=False)
    # This call began at 4.0; another one was answered at 5.0: the server is up, retry this one as transient.
    assert not down(health, 6.0, started=4.0)
    assert not health.down
    assert down(health, 6.0, started=5.5)


def test_calls_in_flight_that_fail_while_down_change_nothing_but_the_detail() -> None:
    health = ServerHealth(POLICY)
    down(health, 1.0)
    next_probe = health.next_probe_at
    assert health.on_unreachable(1.1, started=0.5, detail="reset", probe=False, reached=False, jitter=0.9)
    assert (health.next_probe_at, health.probes, health.detail) == (next_probe, 0, "reset")


def test_probes_back_off_to_a_cap() -> None:
    health = ServerHealth(POLICY)
    now = 0.0
    down(health, now)
    gaps = []
    for _ in range(8):
        now = health.next_probe_at
        assert health.admit(now)[0] is Admission.PROBE
        assert health.on_unreachable(now, started=now, detail="x", probe=True, reached=True, jitter=0.0)
        gaps.append(health.next_probe_at - now)
    assert gaps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]  # base * 2**n, capped, times the jitter floor 0.5


def test_probe_delay() -> None:
    assert probe_delay(0, jitter=0.0) == 0.25
    assert probe_delay(0, jitter=0.999) == pytest.approx(0.5, abs=1e-3)
    assert probe_delay(3, jitter=0.5) == 4.0 * 0.75
    assert probe_delay(10_000, jitter=0.0) == 5.0
    with pytest.raises(ValueError, match="failed"):
        probe_delay(-1, jitter=0.0)
    with pytest.raises(ValueError, match="jitter"):
        probe_delay(0, jitter=1.0)


@pytest.mark.parametrize("field", ["grace_s", "outage_limit_s", "probe_base_s", "probe_max_s"])
def test_the_policy_refuses_nonsense(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        HealthPolicy(**{field: -1.0})
    with pytest.raises(ValueError, match=field):
        HealthPolicy(**{field: math.inf})
