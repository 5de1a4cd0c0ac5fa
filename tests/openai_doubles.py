"""Helpers for tests against the fake OpenAI server: a clock moved by hand, and a server with an SDK client.

Shared by the tests of the server itself and of the clients built on it, so that each states only what it checks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai

from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

__all__ = ["ManualClock", "running"]


class ManualClock:
    """The server clock, moved by hand: fine-tuning phases and the RPM window without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def running(
    config: FakeOpenAI | None = None, *, timeout_s: float = 10.0
) -> AsyncIterator[tuple[OpenAIServer, openai.AsyncOpenAI]]:
    """A fake server and an SDK client of it that does not retry, so a test sees every error the server sends."""
    async with (
        serve_openai(config) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=timeout_s) as client,
    ):
        yield server, client
