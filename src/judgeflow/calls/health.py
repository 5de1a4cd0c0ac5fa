"""Whether a server answers: calls to a server that went away pause, one of them probes, all resume together.

A failed call the provider classifies ``unreachable`` (no usable answer: refused, reset, DNS, TLS, timeout, a
gateway's 502/503/504) says something about the server, not the item. `ServerHealth` is the state machine, pure
(every method takes ``now``, as `judgeflow.calls.backoff` does); `ServerWatch` adds the clock, the waiting and the
events, and is shared by every gate that calls the same server.

- **up** (or not yet known): calls go.
- **down**, since the first call of the streak: no call starts, except one probe at a time, a real call let
  through on a schedule (`judgeflow.calls.backoff.probe_delay`); the others wait holding no slot. Any answer
  (an HTTP status other than 502/503/504, to the probe or to a call that was already in flight) brings the
  server back up and releases everyone. A call that failed while an answer came in after it started was a blip:
  the gate retries it as transient, and nothing goes down.
- **stopped**: down for longer than the limit, ``grace_s`` while the server never answered in this run (a wrong
  URL, a closed port, a TLS or DNS error: the run should stop in seconds) or ``outage_limit_s`` once it has
  (a server that goes away for a few minutes is waited for). Every waiting and later call raises
  `judgeflow.protocol.errors.ServerUnreachable`: the run stops and the items not done stay pending.

Waiting is never a failure: an unreachable call is not an attempt, so no item is ever written ``failed``
because its server was away.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from enum import Enum

import anyio

from judgeflow.calls.backoff import probe_delay
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.errors import ServerUnreachable
from judgeflow.protocol.events import ServerDown, ServerUp

__all__ = ["Admission", "HealthPolicy", "ServerHealth", "ServerWatch"]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """How long a run waits for a server that does not answer, and how often it asks.

    ``grace_s``: while the server has not answered once in this run. ``outage_limit_s``: once it has.
    ``probe_base_s`` / ``probe_max_s``: the probe schedule (`judgeflow.calls.backoff.probe_delay`).
    """

    grace_s: float = 10.0
    outage_limit_s: float = 600.0
    probe_base_s: float = 0.5
    probe_max_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("grace_s", "outage_limit_s", "probe_base_s", "probe_max_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class Admission(Enum):
    """What a call may do now: go, go as the probe, wait, or give up (the run stops)."""

    GO = "go"
    PROBE = "probe"
    WAIT = "wait"
    STOPPED = "stopped"


class ServerHealth:
    """The pure state machine of one server (see the module docstring); ``now`` is any monotonic clock."""

    __slots__ = (
        "_jitter",
        "answered",
        "detail",
        "down_since",
        "last_answer",
        "next_probe_at",
        "policy",
        "probes",
        "probing",
        "reached",
        "stopped",
    )

    def __init__(self, policy: HealthPolicy | None = None) -> None:
        self.policy = policy or HealthPolicy()
        self.reached = False
        """An HTTP answer of any kind (a 503 too) came back in this run: the server exists, so waiting for it
        is an outage (``outage_limit_s``), not a wrong address (``grace_s``)."""
        self.answered = False
        self.last_answer = -math.inf
        self.down_since: float | None = None
        self.next_probe_at = -math.inf
        self.probes = 0
        self.probing = False
        self.stopped = False
        self.detail = ""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    @property
    def limit_s(self) -> float:
        return self.policy.outage_limit_s if self.reached else self.policy.grace_s

    def deadline(self) -> float:
        """When waiting ends in a stop (infinite while up)."""
        return math.inf if self.down_since is None else self.down_since + self.limit_s

    def admit(self, now: float) -> tuple[Admission, float]:
        """May a call start now? With `Admission.WAIT`, the time to ask again (a probe may be due, or the limit)."""
        if not self.stopped and self.down_since is not None and now >= self.deadline():
            self.stopped = True
        if self.stopped:
            return Admission.STOPPED, now
        if self.down_since is None:
            return Admission.GO, now
        if not self.probing and now >= self.next_probe_at:
            self.probing = True
            return Admission.PROBE, now
        wake = self.deadline() if self.probing else min(self.next_probe_at, self.deadline())
        return Admission.WAIT, wake

    def on_answer(self, now: float, *, probe: bool) -> float | None:
        """The server answered; returns how long it was down when this ends an outage, else None."""
        if probe:
            self.probing = False
        self.reached = self.answered = True
        self.last_answer = max(self.last_answer, now)
        if self.down_since is None or self.stopped:
            return None
        down_s = now - self.down_since
        self.down_since = None
        self.probes = 0
        self.next_probe_at = -math.inf
        return down_s

    def on_unreachable(
        self, now: float, *, started: float, detail: str, probe: bool, reached: bool, jitter: float
    ) -> bool:
        """A call that started at ``started`` got no usable answer. Returns False for a blip (an answer came in
        after the call started: retry it as transient), True when the server is (still) down.

        ``reached``: the failure was itself an HTTP answer (a gateway's 503), so the server exists.
        """
        if probe:
            self.probing = False
        self.reached = self.reached or reached
        if self.down_since is None and self.last_answer > started:
            return False
        self.detail = detail
        if self.down_since is None:
            # A server that never answered is down since the call began (a call that hung for a minute waited
            # a minute); one that answered before is down since we learnt it.
            self.down_since = now if self.answered else started
            self.probes = 0
            self.next_probe_at = now + self._delay(jitter)
        elif probe:
            self.probes += 1
            self.next_probe_at = now + self._delay(jitter)
        return True

    def release_probe(self) -> None:
        """The probe ended without saying anything about the server (cancelled, or a local error)."""
        self.probing = False

    def _delay(self, jitter: float) -> float:
        return probe_delay(self.probes, jitter=jitter, base_s=self.policy.probe_base_s, max_s=self.policy.probe_max_s)


class ServerWatch:
    """`ServerHealth` with a clock: calls wait here while their server is down, and learn when it is back.

    ``server`` is the base URL (shown to the user); ``provider`` is for the events, which go to the ``publish``
    of the call that caused them. One watch per server per run, shared by the gates of that server.
    """

    def __init__(
        self,
        provider: str,
        server: str,
        policy: HealthPolicy | None = None,
        *,
        seed: int | str | None = None,
    ) -> None:
        self.provider = provider
        self.server = server
        self.health = ServerHealth(policy)
        self._rng = random.Random(f"{provider}@{server}" if seed is None else seed)
        self._changed = anyio.Event()
        self._down_wall = 0.0

    async def admit(self) -> bool:
        """Wait until a call may start; True when it starts as the probe. Raises `ServerUnreachable` once the run
        has waited past its limit (every waiting call wakes up and raises it too)."""
        health = self.health
        while True:
            now = anyio.current_time()
            admission, wake = health.admit(now)
            if admission is Admission.GO:
                return False
            if admission is Admission.PROBE:
                return True
            if admission is Admission.STOPPED:
                self._notify()
                raise self.error(now)
            changed = self._changed
            with anyio.move_on_after(max(0.0, wake - now)):
                await changed.wait()

    def answered(self, *, probe: bool, publish: Publish) -> None:
        health = self.health
        if not probe and health.answered and health.down_since is None:
            # Nearly every call ends here; only the clock is worth keeping.
            health.last_answer = anyio.current_time()
            return
        down_s = health.on_answer(anyio.current_time(), probe=probe)
        if down_s is not None:
            publish(ServerUp(self.provider, self.server, down_s))
            self._notify()

    def unreachable(self, *, started: float, detail: str, probe: bool, reached: bool, publish: Publish) -> bool:
        """Record a call that got no usable answer; False when it was a blip (retry it as transient)."""
        health = self.health
        was_down = health.down
        now = anyio.current_time()
        down = health.on_unreachable(
            now, started=started, detail=detail, probe=probe, reached=reached, jitter=self._rng.random()
        )
        if not down:
            return False
        if not was_down:
            since = health.down_since if health.down_since is not None else now
            self._down_wall = time.time() - (now - since)
        if not was_down or probe:
            publish(
                ServerDown(
                    self.provider,
                    self.server,
                    since=self._down_wall,
                    detail=detail,
                    probes=health.probes,
                    next_probe_s=max(0.0, health.next_probe_at - now),
                    limit_s=health.limit_s,
                )
            )
        self._notify()
        return True

    def release_probe(self) -> None:
        self.health.release_probe()
        self._notify()

    def error(self, now: float) -> ServerUnreachable:
        """The error the run stops with (a new instance for each call that raises it)."""
        health = self.health
        since = health.down_since if health.down_since is not None else now
        down_s = max(0.0, now - since)
        tries = health.probes + 1
        if health.reached:
            at = time.strftime("%H:%M:%S", time.localtime(self._down_wall))
            reason = (
                f"{self.server} has not answered since {at} ({down_s:.0f} s, past the outage limit of "
                f"{health.policy.outage_limit_s:g} s; {tries} tries); last error: {health.detail}"
            )
        else:
            reason = (
                f"nothing answered at {self.server} for {down_s:.0f} s ({tries} tries; last error: {health.detail}); "
                f"is the server running, and is the URL right? (the grace is {health.policy.grace_s:g} s: "
                "--grace S, or [calls] grace_s, waits longer)"
            )
        return ServerUnreachable(
            reason, server=self.server, down_s=down_s, detail=health.detail, ever_answered=health.reached
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def __repr__(self) -> str:
        state = "stopped" if self.health.stopped else "down" if self.health.down else "up"
        return f"ServerWatch({self.server!r}, {state})"
