"""The fake OpenAI server's failures on demand: scripted failures, an RPM window, and seeded random faults.

Clients are tested against the failures a real API hands out (429 with ``Retry-After`` / ``retry-after-ms`` and
``x-ratelimit-*`` headers, 5xx, a truncated body, a request that never answers); keeping them here, away from
the endpoints, means every faulted endpoint fails the same way. They apply to the endpoints in
``FakeOpenAI.fault_endpoints`` (chat completions and embeddings by default), in this order: ``fail_first_n``
(deterministic), then the ``rpm`` sliding window (per model), then one draw from ``random.Random(seed)`` against
``fault_429``, ``fault_500``, ``fault_malformed`` (a 200 with a truncated JSON body) and ``fault_timeout`` (the
server sits on the request for ``timeout_s``, or until it shuts down).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import deque

from aiohttp import web

from .openai_config import ORGANIZATION, FakeOpenAI, ServerStats, openai_error

__all__ = ["FaultInjector", "reset_duration"]

_MALFORMED_BODY = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"index": 0, "mess'


def reset_duration(seconds: float) -> str:
    """OpenAI's ``x-ratelimit-reset-*`` style: ``250ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1.0:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60.0)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class FaultInjector:
    """What the faults remember between requests: the seeded draws, the eligible-request count, the RPM windows.

    The config and stats are passed in per request, so a test that changes the config mid-run is heard at once.
    ``closing`` is set when the server shuts down, which releases requests held by timeout faults.
    """

    def __init__(self, seed: int, closing: asyncio.Event) -> None:
        self.closing = closing
        self._rng = random.Random(seed)
        self._eligible = 0
        self._windows: dict[str, deque[float]] = {}

    async def inject(
        self, model: str, config: FakeOpenAI, stats: ServerStats
    ) -> tuple[web.Response | None, dict[str, str] | None]:
        """``(fault, headers)``: the response to send instead of the real one (None: serve it), and the
        ``x-ratelimit-*`` headers to add to a served response."""
        self._eligible += 1
        if self._eligible <= config.fail_first_n:
            return _status_fault(config.fail_first_status, config), None
        headers: dict[str, str] | None = None
        if config.rpm is not None:
            limited, headers = self._rate_window(model, config.rpm, config, stats)
            if limited is not None:
                return limited, None
        total = config.fault_429 + config.fault_500 + config.fault_malformed + config.fault_timeout
        if total <= 0:
            return None, headers
        draw = self._rng.random()
        if draw < config.fault_429:
            return _status_fault(429, config), None
        draw -= config.fault_429
        if draw < config.fault_500:
            return _status_fault(500, config), None
        draw -= config.fault_500
        if draw < config.fault_malformed:
            stats.served_malformed += 1
            return web.Response(body=_MALFORMED_BODY, content_type="application/json"), None
        draw -= config.fault_malformed
        if draw < config.fault_timeout:
            stats.served_timeout += 1
            # Sleep on the closing event, so that shutting the server down never waits out a timeout fault.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), config.timeout_s)
            return openai_error(504, "The server timed out.", type_="server_error"), None
        return None, headers

    def _rate_window(
        self, model: str, rpm: int, config: FakeOpenAI, stats: ServerStats
    ) -> tuple[web.Response | None, dict[str, str]]:
        now = config.clock()
        span = config.rpm_window_s
        window = self._windows.setdefault(model, deque())
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= rpm:
            wait = max(0.0, window[0] + span - now)
            stats.rate_limited += 1
            headers = {
                "retry-after": str(max(1, math.ceil(wait))),
                "x-ratelimit-limit-requests": str(rpm),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": reset_duration(wait),
            }
            message = (
                f"Rate limit reached for {model or 'this endpoint'} in organization org-{ORGANIZATION} on "
                f"requests per min (RPM): Limit {rpm}, Used {len(window)}, Requested 1. "
                f"Please try again in {reset_duration(wait)}."
            )
            return openai_error(429, message, type_="requests", code="rate_limit_exceeded", headers=headers), headers
        window.append(now)
        reset = window[0] + span - now
        return None, {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-remaining-requests": str(rpm - len(window)),
            "x-ratelimit-reset-requests": reset_duration(reset),
        }


def _status_fault(status: int, config: FakeOpenAI) -> web.Response:
    if status == 429:
        wait = config.retry_after_s
        headers = {
            "retry-after-ms": str(round(wait * 1000)),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": reset_duration(wait),
        }
        return openai_error(
            429,
            f"Rate limit reached (injected by the test server). Please try again in {reset_duration(wait)}.",
            type_="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    if status >= 500:
        return openai_error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            type_="server_error",
        )
    return openai_error(status, f"Injected failure with status {status}.")
