"""The run store: one SQLite file per run folder, so that a crashed run resumes without losing or re-buying work.

A judging run takes hours and costs money. Every paid model call (`calls`, keyed by the hash of its request),
every question, answer and judgement (`items`) and the run's identity (`meta`: its config, version, a
fine-tuning job id) go into ``<run folder>/store.sqlite``; a resumed run skips what is already there.

Writes are batched, because a transaction per row caps a run at a few hundred rows a second: ``record_*`` only
enqueue, and the writer commits whatever has arrived in one transaction once ``batch_rows`` rows are in or
``batch_delay_s`` after the first of them, whichever comes first. A caller that must know its row is on disk
before it moves on passes ``durable=True``: the writer commits as soon as it gets to the request and the call
returns then, so concurrent durable writers share one commit (group commit) instead of paying for one each, and
none of them waits out the batch timer.

Crash safety: WAL journal with ``synchronous=NORMAL``. A commit is in the WAL file before ``durable`` returns, so
a killed process (``kill -9``, a crash) loses at most the batch that had not committed; only a power cut can also
lose the last commits (``synchronous=FULL`` would guard against that at the price of an fsync per commit).

Threading: each store owns one thread (`judgeflow.runs.store_thread.StoreThread`), which owns its one connection;
writes, reads and commits run there in queue order, so a read sees every write enqueued before it (committed or
not). The thread reports back to the event loop that opened the store, and that is the loop the store must be
used from.

One module, longer than most: the schema, the writes with their durability rules and the reads are one contract
with the SQLite file, and they change together (the writer thread's loop is `judgeflow.runs.store_thread`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, TypeVar, get_args

import anyio
import anyio.lowlevel
from anyio.abc import AsyncResource

from judgeflow.calls.cache import CallRecord
from judgeflow.core.canonical import canonical_json
from judgeflow.core.pricing import ModelCost
from judgeflow.inputs.config import ConfigError
from judgeflow.runs.store_thread import FLUSH, Call, Close, StoreThread, Write

__all__ = [
    "META_CONFIG",
    "META_CONFIG_HASH",
    "META_CREATED",
    "META_FINETUNE_JOB",
    "META_VERSION",
    "STORE_FILENAME",
    "ConfigMismatch",
    "ItemKind",
    "RunStore",
    "StoreError",
    "StoreStats",
]

T = TypeVar("T")
ItemKind: TypeAlias = Literal["question", "answer", "judgement"]
_KINDS: Final = frozenset(get_args(ItemKind))

STORE_FILENAME = "store.sqlite"
META_CONFIG, META_CONFIG_HASH, META_VERSION = "config_json", "config_hash", "judgeflow_version"
META_CREATED, META_FINETUNE_JOB = "created", "finetune_job_id"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS calls(
    request_hash TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL, request_json TEXT NOT NULL,
    response_text TEXT NOT NULL, response_model TEXT NOT NULL, finish_reason TEXT, input_tokens INTEGER,
    output_tokens INTEGER, cost_usd REAL, created REAL NOT NULL, logprobs_json TEXT)""",
    """CREATE TABLE IF NOT EXISTS items(
    kind TEXT NOT NULL CHECK (kind IN ('question', 'answer', 'judgement')), id TEXT NOT NULL,
    judge TEXT NOT NULL DEFAULT '', record_json TEXT NOT NULL, PRIMARY KEY (kind, id, judge)) WITHOUT ROWID""",
)
_CALL_COLUMNS = (
    "request_hash, provider, model, request_json, response_text, response_model, finish_reason, input_tokens, "
    "output_tokens, cost_usd, created, logprobs_json"
)
# The first paid answer to a request is the one the run used; a second identical call adds nothing to cost.
_INSERT_CALL = f"INSERT OR IGNORE INTO calls({_CALL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# An item recomputed on resume (a failed judgement retried) replaces the old record.
_UPSERT_ITEM = "INSERT OR REPLACE INTO items(kind, id, judge, record_json) VALUES (?, ?, ?, ?)"
_SET_META = "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)"
_DELETE_META = "DELETE FROM meta WHERE key = ?"
# A batch mode's notes (`judgeflow.protocol.batches.BatchBook`): meta rows under this prefix.
_BATCH_PREFIX = "batch:"


class StoreError(RuntimeError):
    """The store could not write (disk full, database locked too long): what was not committed is not saved."""


class ConfigMismatch(ConfigError):
    """The run folder was started with another configuration: resuming it with this one would mix two runs."""

    def __init__(self, path: Path, keys: list[str], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.keys = keys


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Rows committed, transactions that committed them, and rows enqueued but not committed yet."""

    rows: int
    transactions: int
    pending: int


class RunStore(AsyncResource):
    """The durable record of one run (or of a response cache shared by runs): ``await RunStore.open(folder)``."""

    def __init__(self, path: Path, *, batch_rows: int, batch_delay_s: float, max_pending: int) -> None:
        if batch_rows < 1 or batch_delay_s < 0 or max_pending < 1:
            raise ValueError("batch_rows and max_pending must be >= 1 and batch_delay_s >= 0")
        self.path = path
        self._max_pending = max_pending
        self._thread = StoreThread(path, batch_rows=batch_rows, batch_delay_s=batch_delay_s, report=self._on_report)
        self._queue = self._thread.queue
        # Event-loop side, touched only on the loop: sequence numbers of enqueued, committed and flushed writes.
        self._enqueued = self._committed = self._flush_asked = 0
        self._progress = anyio.Event()
        self._error: BaseException | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        folder: Path,
        *,
        filename: str = STORE_FILENAME,
        batch_rows: int = 500,
        batch_delay_s: float = 0.05,
        max_pending: int = 10_000,
    ) -> RunStore:
        """Create or open ``folder/filename`` (making the folder); close it with `aclose` or ``async with``."""
        store = cls(folder / filename, batch_rows=batch_rows, batch_delay_s=batch_delay_s, max_pending=max_pending)
        store._thread.start()
        try:
            await store._call(_setup)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await store.aclose()
            raise
        return store

    @property
    def stats(self) -> StoreStats:
        return StoreStats(self._thread.rows, self._thread.transactions, self._enqueued - self._committed)

    # ---------------------------------------------------------------------------------------------------- writes

    def record_item_nowait(self, kind: ItemKind, item_id: str, judge: str, record: Mapping[str, Any] | str) -> None:
        """Enqueue a question, answer or judgement (``judge`` is "" for the first two); `anyio.WouldBlock` when
        ``max_pending`` rows are already waiting for the writer. ``record`` is a JSON object, or its JSON text
        (a caller that also writes the record elsewhere encodes it once)."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
        text = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
        self._enqueue(_UPSERT_ITEM, (kind, item_id, judge, text))

    async def record_item(
        self, kind: ItemKind, item_id: str, judge: str, record: Mapping[str, Any] | str, *, durable: bool = False
    ) -> None:
        """Enqueue an item once there is room; with ``durable``, return only after its batch committed."""
        await self._wait_for_room()
        self.record_item_nowait(kind, item_id, judge, record)
        await self._settle(durable)

    def record_call_nowait(self, record: CallRecord) -> None:
        self._enqueue(_INSERT_CALL, tuple(getattr(record, name) for name in CallRecord.__slots__))

    async def record_call(self, record: CallRecord, *, durable: bool = False) -> None:
        """Enqueue a paid call (ignored if its request hash is already stored); ``durable`` as in `record_item`."""
        await self._wait_for_room()
        self.record_call_nowait(record)
        await self._settle(durable)

    async def set_meta(self, key: str, value: str) -> None:
        """Store ``key`` and wait for the commit: meta (a fine-tuning job id) must never be lost to a crash."""
        await self._wait_for_room()
        self._enqueue(_SET_META, (key, value))
        await self.flush()

    async def put_batch_record(self, key: str, record: str) -> None:
        """Keep a batch's record (`judgeflow.protocol.batches.BatchBook`), committed before this returns."""
        await self.set_meta(_BATCH_PREFIX + key, record)

    async def delete_batch_record(self, key: str) -> None:
        await self._wait_for_room()
        self._enqueue(_DELETE_META, (_BATCH_PREFIX + key,))
        await self.flush()

    async def batch_records(self) -> dict[str, str]:
        """Every batch record, by key."""
        sql = "SELECT key, value FROM meta WHERE key >= ? AND key < ? ORDER BY key"
        bounds = (_BATCH_PREFIX, _BATCH_PREFIX[:-1] + chr(ord(_BATCH_PREFIX[-1]) + 1))
        rows: list[tuple[str, str]] = await self._call(_fetchall(sql, bounds))
        return {key[len(_BATCH_PREFIX) :]: value for key, value in rows}

    async def wait_committed(self) -> None:
        """Wait until everything enqueued so far is committed, in the batch it is in (the writer is not hurried)."""
        target = self._enqueued
        while self._committed < target:
            self._check()
            await self._progress.wait()
        await anyio.lowlevel.checkpoint()

    async def flush(self) -> None:
        """Commit everything enqueued so far now, and wait for it.

        Concurrent callers share commits: the writer commits as soon as it gets to the request, with whatever
        has arrived by then (one flush request is queued per new write, however many callers wait for it).
        """
        if self._flush_asked < self._enqueued:
            self._flush_asked = self._enqueued
            self._queue.put(FLUSH)
        await self.wait_committed()

    # ----------------------------------------------------------------------------------------------------- reads

    async def get_call(self, request_hash: str) -> CallRecord | None:
        row = await self._call(
            lambda db: db.execute(
                f"SELECT {_CALL_COLUMNS} FROM calls WHERE request_hash = ?", (request_hash,)
            ).fetchone()
        )
        return None if row is None else CallRecord(*row)

    async def get_meta(self, key: str) -> str | None:
        row = await self._call(lambda db: db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone())
        return None if row is None else str(row[0])

    async def holds_work(self) -> bool:
        """Whether anything was done in this store: an item recorded, a call paid for, or a batch planned (its
        requests may be running on the provider, paid for, with no other trace here yet)."""
        sql = (
            "SELECT EXISTS(SELECT 1 FROM items) OR EXISTS(SELECT 1 FROM calls) "
            f"OR EXISTS(SELECT 1 FROM meta WHERE key LIKE '{_BATCH_PREFIX}%')"
        )
        return bool(await self._call(lambda db: db.execute(sql).fetchone()[0]))

    async def done_items(self, kind: ItemKind, judge: str | None = None, *, include_failed: bool = False) -> set[str]:
        """Ids of the stored items of ``kind`` (of one ``judge``, or of any judge when None).

        A judgement whose status is ``failed`` (the call raised: nothing was paid for, nothing learnt) is not
        done unless ``include_failed``, so a resumed run tries it again; an ``unparsed`` one is done.
        """
        where, params = _item_filter(kind, judge)
        if not include_failed:
            where += " AND coalesce(json_extract(record_json, '$.status'), '') != 'failed'"
        rows = await self._call(lambda db: db.execute(f"SELECT id FROM items WHERE {where}", params).fetchall())
        return {str(row[0]) for row in rows}

    async def iter_items(
        self, kind: ItemKind, judge: str | None = None, *, page: int = 1000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every stored record of ``kind``, ordered by id then judge, read ``page`` rows at a time."""
        where, params = _item_filter(kind, judge)
        after: tuple[str, str] | None = None
        while True:
            cursor_where = where if after is None else f"{where} AND (id, judge) > (?, ?)"
            args = params if after is None else (*params, *after)
            sql = f"SELECT id, judge, record_json FROM items WHERE {cursor_where} ORDER BY id, judge LIMIT {page}"
            rows: list[tuple[str, str, str]] = await self._call(_fetchall(sql, args))
            for row in rows:
                yield json.loads(row[2])
            if len(rows) < page:
                return
            after = (rows[-1][0], rows[-1][1])

    async def total_cost(self) -> float:
        """USD over distinct calls (each request hash counted once; unpriced calls add nothing)."""
        value = await self._call(lambda db: db.execute("SELECT total(cost_usd) FROM calls").fetchone()[0])
        return float(value)

    async def cost_by_model(self) -> dict[str, ModelCost]:
        """Calls, tokens and USD per model the provider says it ran (the `CostLedger`'s key), over distinct calls."""
        sql = (
            "SELECT response_model, count(*), total(input_tokens), total(output_tokens), total(cost_usd), "
            "sum(cost_usd IS NULL) FROM calls GROUP BY response_model ORDER BY response_model"
        )
        rows = await self._call(lambda db: db.execute(sql).fetchall())
        return {str(m): ModelCost(int(n), int(i), int(o), float(c), int(u)) for m, n, i, o, c, u in rows}

    async def check_config(self, config: str | Mapping[str, Any], *, ignore: Collection[str] = ()) -> None:
        """Remember the run's config, or raise `ConfigMismatch` if the folder was started with a different one.

        ``ignore`` names dotted keys allowed to change on resume (``out_dir``, ``budget.max_cost_usd``).
        """
        data = json.loads(config) if isinstance(config, str) else dict(config)
        text = canonical_json(data)
        digest = hashlib.sha256(text.encode()).hexdigest()
        stored = await self.get_meta(META_CONFIG)
        if stored is None:
            await self.set_meta(META_CONFIG, text)
            await self.set_meta(META_CONFIG_HASH, digest)
            return
        if await self.get_meta(META_CONFIG_HASH) == digest:
            return
        old = json.loads(stored)
        keys = [k for k in _differences(old, data) if not any(k == i or k.startswith(f"{i}.") for i in ignore)]
        if keys:
            shown = ", ".join(f"{k} ({_short(_lookup(old, k))} -> {_short(_lookup(data, k))})" for k in keys[:8])
            more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
            raise ConfigMismatch(
                self.path,
                keys,
                f"{self.path.parent} was started with a different configuration: {shown}{more}; resume it with "
                "the same configuration, or use --restart to start over",
            )

    # ------------------------------------------------------------------------------------------------- lifecycle

    async def aclose(self) -> None:
        """Commit what is enqueued and close the connection; later calls raise `anyio.ClosedResourceError`."""
        if self._closed:
            return
        self._closed = True
        close = Close(anyio.Event())
        self._queue.put(close)
        # Cleanup that must finish even when the caller is cancelled, within a bound (a locked database).
        with anyio.move_on_after(60, shield=True):
            await close.done.wait()
            await anyio.to_thread.run_sync(self._thread.join)
        if self._error is not None:
            raise StoreError(f"{self.path}: the last writes were not saved: {self._error}") from self._error

    # --------------------------------------------------------------------------------- event-loop side internals

    def _check(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError(f"{self.path} is closed")
        if self._error is not None:
            raise StoreError(f"{self.path}: writing failed: {self._error}") from self._error

    def _enqueue(self, sql: str, params: tuple[object, ...]) -> None:
        self._check()
        if self._enqueued - self._committed >= self._max_pending:
            raise anyio.WouldBlock
        self._enqueued += 1
        self._queue.put(Write(sql, params, self._enqueued))

    async def _wait_for_room(self) -> None:
        while self._enqueued - self._committed >= self._max_pending:
            self._check()
            await self._progress.wait()

    async def _settle(self, durable: bool) -> None:
        if durable:
            await self.flush()
        else:
            await anyio.lowlevel.checkpoint()

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise anyio.ClosedResourceError(f"{self.path} is closed")
        call = Call(fn, anyio.Event())
        self._queue.put(call)
        value: T = await call.wait()
        return value

    def _on_report(self, answered: list[Call], committed: int, error: BaseException | None) -> None:
        """Runs on the event loop, told by the thread: answer reads, wake everyone waiting for a commit or room."""
        for call in answered:
            call.done.set()
        self._committed = max(self._committed, committed)
        if error is not None and self._error is None:
            self._error = error
        progress, self._progress = self._progress, anyio.Event()
        progress.set()


def _setup(db: sqlite3.Connection) -> None:
    from judgeflow import __version__

    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    # One transaction: a store is either fully set up or not at all.
    db.execute("BEGIN IMMEDIATE")
    for statement in _SCHEMA:
        db.execute(statement)
    # A store made before calls kept their token log probabilities gains the column (empty for old calls).
    if "logprobs_json" not in {row[1] for row in db.execute("PRAGMA table_info(calls)")}:
        db.execute("ALTER TABLE calls ADD COLUMN logprobs_json TEXT")
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    db.executemany(
        "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", [(META_VERSION, __version__), (META_CREATED, now)]
    )
    db.execute("COMMIT")


def _fetchall(sql: str, params: tuple[object, ...]) -> Callable[[sqlite3.Connection], list[Any]]:
    return lambda db: db.execute(sql, params).fetchall()


def _item_filter(kind: ItemKind, judge: str | None) -> tuple[str, tuple[str, ...]]:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return ("kind = ?", (kind,)) if judge is None else ("kind = ? AND judge = ?", (kind, judge))


def _differences(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON objects (a nested table is compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def _lookup(data: object, dotted: str) -> object:
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
