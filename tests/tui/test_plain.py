"""The plain display: its progress line, and that it says at once when a server goes away or comes back."""

from __future__ import annotations

import io
import time

import anyio
import pytest

from judgeflow.protocol.events import Event, ItemDone, RunStarted, ServerDown, ServerUp
from judgeflow.tui.plain import PlainDisplay, ProgressState

pytestmark = pytest.mark.anyio

SINCE = 1_700_000_000.0
URL = "http://127.0.0.1:9/v1"


def test_the_line_says_which_server_is_away_since_when() -> None:
    state = ProgressState()
    for event in (
        RunStarted("out.jsonl", 0, kind="judge", n_items=10, judges={"j": 10}),
        ItemDone("j", "1"),
        ServerDown("openai", URL, SINCE, "refused"),
    ):
        state.fold(event)
    at = time.strftime("%H:%M:%S", time.localtime(SINCE))
    assert state.line() == f"j 1/10 | server unreachable since {at}, retrying: {URL}"
    state.fold(ServerUp("openai", URL, 3.0))
    assert state.line() == "j 1/10"


async def test_a_server_going_away_is_printed_at_once_not_at_the_next_interval() -> None:
    send, receive = anyio.create_memory_object_stream[Event](16)
    stream = io.StringIO()
    display = PlainDisplay(interval=3600.0, stream=stream)
    async with anyio.create_task_group() as tg:
        tg.start_soon(display.show, receive)
        async with send:
            await send.send(ItemDone("j", "1"))
            await send.send(ServerDown("openai", URL, SINCE, "refused", probes=1))
            with anyio.fail_after(5):
                while "server unreachable" not in stream.getvalue():  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            await send.send(ServerUp("openai", URL, 2.0))
            with anyio.fail_after(5):
                while stream.getvalue().count("\n") < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
    printed = stream.getvalue().splitlines()
    assert "retrying (tried 2 times)" in printed[0]
    assert printed[1] == "j 1"
