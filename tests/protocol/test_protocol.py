"""Channels keep honest statistics and close like anyio streams; the bus never blocks a publisher."""

from __future__ import annotations

import anyio
import pytest

from judgeflow.core.splits import assign_split, split_point
from judgeflow.protocol import (
    Channel,
    EventBus,
    Failed,
    ItemDone,
    Missed,
    Scored,
    Unparsed,
    verdict_score,
    verdict_status,
)
from judgeflow.protocol.bus import batches

pytestmark = pytest.mark.anyio


async def test_channel_counts_peak_fill_and_sender_wait() -> None:
    channel = Channel[int]("numbers", capacity=2)
    received: list[int] = []

    async def consume() -> None:
        await anyio.sleep(0.05)  # let the producer fill the buffer and wait
        with channel.receiver:
            async for item in channel.receiver:
                received.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        async with channel.sender:
            for number in range(5):
                await channel.sender.send(number)
    assert received == [0, 1, 2, 3, 4]
    assert channel.stats.sent == 5
    assert channel.stats.peak == 2
    assert channel.stats.wait_s > 0.0
    assert channel.stats.current == 0


async def test_channel_ends_when_every_clone_is_closed() -> None:
    channel = Channel[str]("words", capacity=4)
    first = channel.sender
    second = first.clone()
    await first.send("a")
    first.close()
    await second.send("b")
    second.close()
    with channel.receiver:
        assert [item async for item in channel.receiver] == ["a", "b"]


async def test_send_to_a_consumer_that_went_away_is_an_error() -> None:
    channel = Channel[int]("gone", capacity=0)
    channel.receiver.close()
    with channel.sender, pytest.raises(anyio.BrokenResourceError):
        await channel.sender.send(1)


def test_negative_capacity_is_rejected() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Channel[int]("bad", capacity=-1)


async def test_bus_delivers_to_every_subscriber_and_ends_on_close() -> None:
    bus = EventBus()
    first = bus.subscribe_nowait(buffer=8)
    second = bus.subscribe_nowait(buffer=8)
    bus.publish(ItemDone("a", "1"))
    bus.close()
    with first, second:
        assert [event async for event in first] == [ItemDone("a", "1")]
        assert [event async for event in second] == [ItemDone("a", "1")]


async def test_slow_subscriber_is_told_how_many_it_missed() -> None:
    bus = EventBus()
    slow = bus.subscribe_nowait(buffer=2)
    for index in range(5):
        bus.publish(ItemDone("a", str(index)))  # never blocks, even with a full buffer
    slow.receive_nowait()
    slow.receive_nowait()
    bus.publish(ItemDone("a", "late"))
    bus.close()
    with slow:
        rest = [event async for event in slow]
    assert rest == [Missed(3), ItemDone("a", "late")]


async def test_a_closed_subscriber_is_dropped_without_disturbing_the_publisher() -> None:
    bus = EventBus()
    gone = bus.subscribe_nowait(buffer=2)
    gone.close()
    kept = bus.subscribe_nowait(buffer=2)
    bus.publish(ItemDone("a", "1"))
    bus.close()
    with kept:
        assert [event async for event in kept] == [ItemDone("a", "1")]


def test_verdict_helpers() -> None:
    assert verdict_status(Scored(4.0, "ok", "4")) == "ok"
    assert verdict_status(Unparsed("??", "no score found")) == "unparsed"
    assert verdict_status(Failed("boom")) == "failed"
    assert verdict_score(Scored(4.5, "", "4.5")) == 4.5
    assert verdict_score(Unparsed("", "empty reply")) is None


def test_split_is_deterministic_and_near_the_fraction() -> None:
    ids = [f"doc-q{index:03d}" for index in range(2000)]
    first = [assign_split(item, seed=7, train_fraction=0.65) for item in ids]
    assert first == [assign_split(item, seed=7, train_fraction=0.65) for item in ids]
    share = first.count("train") / len(ids)
    assert 0.60 < share < 0.70
    other_seed = [assign_split(item, seed=8, train_fraction=0.65) for item in ids]
    assert other_seed != first
    assert all(0.0 <= split_point(item, seed=1) < 1.0 for item in ids)


def test_split_rejects_a_bad_fraction() -> None:
    with pytest.raises(ValueError, match="train_fraction"):
        assign_split("x", seed=0, train_fraction=1.5)


async def test_an_observer_takes_every_buffered_event_in_one_wake() -> None:
    bus = EventBus()
    events = bus.subscribe_nowait(buffer=16)
    for i in range(5):
        bus.publish(ItemDone("teacher", f"q{i}"))
    bus.close()
    with events:
        got = [[event.item_id for event in batch if isinstance(event, ItemDone)] async for batch in batches(events)]
    assert got == [["q0", "q1", "q2", "q3", "q4"]]
