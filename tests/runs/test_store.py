"""Tests for judgeflow.runs.store: batching, durability (a real killed process), resume queries, cost, config checks.

Commits are counted two ways: the store's own `StoreStats` and, independently, the commit frames in the WAL file
(each frame header records a non-zero database size only when it ends a transaction). What another sqlite3
connection can see is what was committed: that is how "durable" is checked.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from judgeflow.calls.cache import CallRecord
from judgeflow.inputs.config import ConfigError
from judgeflow.runs.store import (
    META_CONFIG,
    META_CREATED,
    META_FINETUNE_JOB,
    META_VERSION,
    STORE_FILENAME,
    ConfigMismatch,
    RunStore,
    StoreError,
)

pytestmark = pytest.mark.anyio


def _committed_ids(path: Path, kind: str) -> set[str]:
    """Ids another connection sees: only committed rows."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT id FROM items WHERE kind = ?", (kind,))}


def _wal_commits(wal: bytes) -> int:
    """Transactions in a WAL file: frames (with the header's salts) whose commit field is non-zero."""
    page_size = struct.unpack(">I", wal[8:12])[0]
    salts = wal[16:24]
    commits, offset = 0, 32
    while offset + 24 + page_size <= len(wal):
        header = wal[offset : offset + 24]
        if header[8:16] != salts:
            break
        commits += struct.unpack(">I", header[4:8])[0] != 0
        offset += 24 + page_size
    return commits


def _call(request_hash: str, *, cost: float | None, model: str = "gpt-4o-mini", text: str = "4") -> CallRecord:
    return CallRecord(
        request_hash=request_hash,
        provider="openai",
        model=model,
        request_json="{}",
        response_text=text,
        response_model=f"{model}-2024",
        finish_reason="stop",
        input_tokens=10,
        output_tokens=2,
        cost_usd=cost,
    )


async def test_many_records_commit_in_few_transactions(tmp_path: Path) -> None:
    # A long delay, so that only the batch size closes batches and the count is exact on a loaded machine.
    async with await RunStore.open(tmp_path, batch_rows=500, batch_delay_s=60.0) as store:
        for i in range(2000):
            await store.record_item("question", f"q{i}", "", {"id": f"q{i}", "question": "why?"})
        await store.flush()
        wal = await anyio.Path(tmp_path / f"{STORE_FILENAME}-wal").read_bytes()
        stats = store.stats
    assert stats.rows == 2000
    assert stats.pending == 0
    assert stats.transactions == 4
    assert _wal_commits(wal) == stats.transactions + 1  # + the commit that created the schema
    assert len(await anyio.to_thread.run_sync(_committed_ids, tmp_path / STORE_FILENAME, "question")) == 2000


async def test_durable_returns_only_after_its_batch_committed(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    async with await RunStore.open(tmp_path, batch_delay_s=1.0) as store:
        await store.record_item("answer", "a1", "", {"id": "a1"})
        assert await anyio.to_thread.run_sync(_committed_ids, path, "answer") == set()  # still in the open batch
        assert await store.done_items("answer") == {"a1"}  # but the store itself reads its own writes
        await store.record_item("answer", "a2", "", {"id": "a2"}, durable=True)
        assert await anyio.to_thread.run_sync(_committed_ids, path, "answer") == {"a1", "a2"}
        assert store.stats.transactions == 1


async def test_a_durable_write_commits_at_once_instead_of_waiting_for_the_batch_timer(tmp_path: Path) -> None:
    # The timer would take an hour: a durable writer asks for the commit, and reads are answered meanwhile.
    async with await RunStore.open(tmp_path, batch_delay_s=3600.0) as store:
        await store.record_item("answer", "a0", "", {"id": "a0"})
        with anyio.fail_after(60):
            await store.record_item("answer", "a1", "", {"id": "a1"}, durable=True)
            assert await store.done_items("answer") == {"a0", "a1"}
        assert await anyio.to_thread.run_sync(_committed_ids, tmp_path / STORE_FILENAME, "answer") == {"a0", "a1"}
        assert store.stats.transactions == 1


async def test_concurrent_durable_writers_share_commits(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path, batch_delay_s=0.01) as store:

        async def writer(w: int) -> None:
            for i in range(20):
                await store.record_item("judgement", f"{w}-{i}", "teacher", {"status": "ok"}, durable=True)

        async with anyio.create_task_group() as tg:
            for w in range(100):
                tg.start_soon(writer, w)
        assert store.stats.rows == 2000
        assert store.stats.transactions <= 200  # ~one commit per round of 100 writers, not one per row


async def test_reopen_after_aclose_sees_everything(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path, batch_delay_s=10.0) as store:
        for i in range(50):
            store.record_item_nowait("question", f"q{i}", "", {"id": f"q{i}", "text": "café ✓"})
        await store.record_call(_call("h1", cost=0.5))
        await store.set_meta(META_FINETUNE_JOB, "ftjob-123")
    assert not (tmp_path / f"{STORE_FILENAME}-wal").exists()  # the last close checkpointed the WAL
    async with await RunStore.open(tmp_path) as again:
        assert await again.done_items("question") == {f"q{i}" for i in range(50)}
        records = [record async for record in again.iter_items("question")]
        assert records[0] == {"id": "q0", "text": "café ✓"}
        call = await again.get_call("h1")
        assert call is not None
        assert call.result().text == "4"
        assert await again.get_meta(META_FINETUNE_JOB) == "ftjob-123"


CRASH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    import anyio

    from judgeflow.runs.store import RunStore

    async def main() -> None:
        store = await RunStore.open(Path(sys.argv[1]))

        async def writer(w: int) -> None:
            for i in range(10):
                await store.record_item("judgement", f"{w}-{i}", "teacher", {"status": "ok"}, durable=True)

        async with anyio.create_task_group() as tg:
            for w in range(20):
                tg.start_soon(writer, w)
        for i in range(100):  # enqueued but never committed: these may be lost
            store.record_item_nowait("judgement", f"late-{i}", "teacher", {"status": "ok"})
        sys.stdout.write("written\\n")
        sys.stdout.flush()
        os._exit(1)

    anyio.run(main)
    """
)


async def test_killed_process_loses_no_durable_item(tmp_path: Path) -> None:
    result = await anyio.run_process([sys.executable, "-c", CRASH, str(tmp_path)], check=False)
    assert result.returncode == 1, result.stderr.decode()
    assert result.stdout == b"written\n"
    assert (tmp_path / f"{STORE_FILENAME}-wal").exists()  # no clean close: recovery goes through the WAL
    async with await RunStore.open(tmp_path) as store:
        done = await store.done_items("judgement", "teacher")
    assert {f"{w}-{i}" for w in range(20) for i in range(10)} <= done


async def test_done_items_by_kind_and_judge_and_failed_ones_are_not_done(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path) as store:
        await store.record_item("question", "q1", "", {"id": "q1"})
        await store.record_item("answer", "q1", "", {"id": "q1"})
        await store.record_item("judgement", "q1", "teacher", {"id": "q1", "status": "ok"})
        await store.record_item("judgement", "q2", "teacher", {"id": "q2", "status": "failed", "error": "500"})
        await store.record_item("judgement", "q3", "teacher", {"id": "q3", "status": "unparsed"})
        await store.record_item("judgement", "q4", "student_base", {"id": "q4", "status": "ok"})
        assert await store.done_items("question") == {"q1"}
        assert await store.done_items("judgement", "teacher") == {"q1", "q3"}
        assert await store.done_items("judgement", "teacher", include_failed=True) == {"q1", "q2", "q3"}
        assert await store.done_items("judgement") == {"q1", "q3", "q4"}
        # The retry replaces the failed record.
        await store.record_item("judgement", "q2", "teacher", {"id": "q2", "status": "ok"})
        assert await store.done_items("judgement", "teacher") == {"q1", "q2", "q3"}
        teacher = [r async for r in store.iter_items("judgement", "teacher", page=2)]
        assert [r["id"] for r in teacher] == ["q1", "q2", "q3"]
        assert teacher[1]["status"] == "ok"
        with pytest.raises(ValueError, match="kind"):
            await store.done_items("verdict")  # type: ignore[arg-type]


async def test_iter_items_pages_through_everything_in_order(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path) as store:
        for i in range(25):
            for judge in ("b", "a"):
                await store.record_item("judgement", f"{i:03d}", judge, {"id": f"{i:03d}", "judge": judge})
        seen = [(r["id"], r["judge"]) async for r in store.iter_items("judgement", page=7)]
    assert seen == [(f"{i:03d}", judge) for i in range(25) for judge in ("a", "b")]


async def test_cost_counts_each_request_hash_once(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path) as store:
        await store.record_call(_call("h1", cost=0.5, text="first"))
        await store.record_call(_call("h1", cost=0.7, text="second"))  # the same request again: ignored
        await store.record_call(_call("h2", cost=0.25, model="gpt-4o"))
        await store.record_call(_call("h3", cost=None))  # unpriced
        assert await store.total_cost() == pytest.approx(0.75)
        by_model = await store.cost_by_model()
        first = await store.get_call("h1")
        missing = await store.get_call("nope")
    assert by_model["gpt-4o-mini-2024"].calls == 2
    assert by_model["gpt-4o-mini-2024"].cost_usd == pytest.approx(0.5)
    assert by_model["gpt-4o-mini-2024"].unpriced_calls == 1
    assert by_model["gpt-4o-mini-2024"].input_tokens == 20
    assert by_model["gpt-4o-2024"].cost_usd == pytest.approx(0.25)
    assert first is not None
    assert first.response_text == "first"
    assert missing is None


async def test_config_mismatch_names_the_keys_and_the_way_out(tmp_path: Path) -> None:
    config: dict[str, Any] = {"seed": 0, "budget": {"max_cost_usd": 5.0}, "out_dir": "runs/a", "workers": {"n": 2}}
    async with await RunStore.open(tmp_path) as store:
        await store.check_config(config)
        await store.check_config({"workers": {"n": 2}, "out_dir": "runs/a", "budget": {"max_cost_usd": 5.0}, "seed": 0})
        stored = await store.get_meta(META_CONFIG)
        assert stored is not None
    changed = {"seed": 1, "budget": {"max_cost_usd": 10.0}, "out_dir": "runs/b", "workers": {"n": 2}}
    async with await RunStore.open(tmp_path) as store:
        await store.check_config(dict(config, out_dir="runs/b"), ignore=("out_dir",))
        with pytest.raises(ConfigMismatch) as caught:
            await store.check_config(changed, ignore=("out_dir",))
    message = str(caught.value)
    assert caught.value.keys == ["budget.max_cost_usd", "seed"]
    assert "budget.max_cost_usd (5.0 -> 10.0)" in message
    assert "seed (0 -> 1)" in message
    assert "out_dir" not in message
    assert "use --restart to start over" in message
    assert isinstance(caught.value, ConfigError)  # the CLI reports it as a user error


async def test_wal_mode_and_meta_written_at_creation(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path) as store:
        assert await store.get_meta(META_VERSION) == "0.1.0"
        assert await store.get_meta(META_CREATED)
        assert await store.get_meta("nothing") is None

        def journal_mode() -> str:
            with contextlib.closing(sqlite3.connect(tmp_path / STORE_FILENAME)) as db:
                return str(db.execute("PRAGMA journal_mode").fetchone()[0])

        assert await anyio.to_thread.run_sync(journal_mode) == "wal"


async def test_nowait_refuses_when_full_and_record_waits_for_room(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path, max_pending=3, batch_delay_s=0.02) as store:
        for i in range(3):
            store.record_item_nowait("question", f"q{i}", "", {})
        with pytest.raises(anyio.WouldBlock):
            store.record_item_nowait("question", "q3", "", {})
        with anyio.fail_after(5):
            await store.record_item("question", "q3", "", {})
        await store.flush()
        assert store.stats.rows == 4


async def test_cancelled_durable_writer_still_writes_its_row(tmp_path: Path) -> None:
    async with await RunStore.open(tmp_path, batch_delay_s=0.5) as store:
        with anyio.move_on_after(0.01):
            await store.record_item("question", "q1", "", {}, durable=True)
        await store.flush()
        assert await store.done_items("question") == {"q1"}


async def test_closed_store_refuses_and_a_failed_write_is_loud(tmp_path: Path) -> None:
    store = await RunStore.open(tmp_path)
    await store.aclose()
    await store.aclose()  # idempotent
    with pytest.raises(anyio.ClosedResourceError):
        await store.record_item("question", "q1", "", {})
    with pytest.raises(anyio.ClosedResourceError):
        await store.get_meta("x")

    broken = await RunStore.open(tmp_path)
    await broken.record_item("question", "lost", "", {})  # in the same batch as the bad row: lost with it
    await broken.record_call(CallRecord("h", "p", "m", "{}", "t", "m", input_tokens=2**70))  # too big for SQLite
    with pytest.raises(StoreError):
        await broken.flush()
    with pytest.raises(StoreError):
        await broken.record_item("question", "q1", "", {})
    with pytest.raises(StoreError, match="not saved"):
        await broken.aclose()
    async with await RunStore.open(tmp_path) as reopened:
        assert await reopened.done_items("question") == set()


async def test_open_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    await anyio.Path(tmp_path / STORE_FILENAME).write_bytes(b"not a database, just some bytes" * 100)
    started = time.perf_counter()
    with pytest.raises(sqlite3.DatabaseError):
        await RunStore.open(tmp_path)
    assert time.perf_counter() - started < 10  # the half-opened store was closed, not waited on


async def test_a_store_from_before_logprobs_gains_the_column_and_keeps_its_calls(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "store.sqlite")
    old.execute(
        "CREATE TABLE calls(request_hash TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL, "
        "request_json TEXT NOT NULL, response_text TEXT NOT NULL, response_model TEXT NOT NULL, finish_reason TEXT, "
        "input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL, created REAL NOT NULL)"
    )
    old.execute("INSERT INTO calls VALUES ('h', 'openai', 'm', '{}', '4\nok', 'm', 'stop', 3, 2, 0.5, 1.0)")
    old.commit()
    old.close()
    async with await RunStore.open(tmp_path) as store:
        record = await store.get_call("h")
        assert record is not None
        assert (record.response_text, record.logprobs_json) == ("4\nok", None)
        await store.record_call(CallRecord("h2", "p", "m", "{}", "t", "m", logprobs_json="[]"), durable=True)
        again = await store.get_call("h2")
        assert again is not None
        assert again.logprobs_json == "[]"
