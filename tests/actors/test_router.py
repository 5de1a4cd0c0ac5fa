"""The Router: records every item and routes it by its predicate."""

from __future__ import annotations

import anyio
import pytest

from doubles import (
    drain,
    feed,
)
from judgeflow.actors import Router
from judgeflow.protocol import (
    Channel,
)

pytestmark = pytest.mark.anyio


async def test_router_records_every_item_and_routes_by_predicate() -> None:
    recorded: list[int] = []
    source, evens, odds = Channel[int]("in", 4), Channel[int]("even", 16), Channel[int]("odd", 16)
    router = Router[int](lambda n: (0,) if n % 2 == 0 else (1,), record=recorded.append)
    async with anyio.create_task_group() as tg:
        await tg.start(router.run, source.receiver, [evens.sender, odds.sender])
        await feed(source, list(range(7)))
    assert recorded == list(range(7))
    assert await drain(evens) == [0, 2, 4, 6]
    assert await drain(odds) == [1, 3, 5]
