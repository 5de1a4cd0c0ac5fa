"""The batch judge actor: answers in, judgements out, the requests sent through a provider's Batch API.

Same inbox and outbox as `judgeflow.actors.judge.Judge`, so it takes a judge's place anywhere. Each answer's
request (built by the judge's own `LLMJudge.request`, as online) becomes a line of the part being written, under
the ``custom_id`` ``JUDGE|ITEM_ID``; a part is sealed at the Batch API's limits (50,000 requests, 200 MB) or at
the budget's headroom, its worst case reserved, its record committed, and then it is uploaded, created and
polled (publishing `BatchProgress`) while the next one fills. When a batch ends, each reply is read by the same
parser as online (`LLMJudge.reply`), kept in the response cache at the batch price, and sent on as a judgement;
a reply without a readable score gets its score-only follow-up online, as in online mode.

Nothing is lost and nothing is paid twice (see `judgeflow.actors._batch_parts`): a resumed run re-attaches the
batches it has running, and answers an item whose reply is already kept from the cache. A request the batch
answered with a transient error (a 5xx, a 429) goes into a new batch, up to ``max_attempts`` times; a fatal one
(a 4xx) is a `Failed` verdict, as online. A batch that failed validation, expired or was cancelled leaves its
unanswered items unjudged: `unfinished` counts them and `reasons` says why, and a resumed run sends them again
(in new batches, or online when the judge's ``batch`` is off).
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import IO, TypeVar

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from judgeflow.calls.batching import BatchedJudge
from judgeflow.calls.budget import BudgetExceeded, Reservation
from judgeflow.calls.context import Completion, chat_request_key
from judgeflow.protocol.batches import BatchBook, BatchLine, BatchState
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Channel, Receiver, Sender
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.events import ActorFinished, ActorStarted, CallFinished, ItemDone
from judgeflow.protocol.messages import Answer, Judgement, JudgeReply
from judgeflow.protocol.verdicts import Failed

from ._batch_book import (
    TAG_KEY,
    BatchAPIError,
    cancel_batches,
    has_batches,
    judge_parts,
    progress_event,
    retrying,
    running_batches,
)
from ._batch_parts import COLLECTED, Part, PartWriter, part_filename
from ._pool import describe_error
from .judge import Judge, judge_input

__all__ = ["BatchAPIError", "BatchIncomplete", "BatchJudge", "cancel_batches", "has_batches", "running_batches"]

T = TypeVar("T")


class BatchIncomplete(RunStopped):
    """Batches ended with items unjudged (they failed validation, expired or were cancelled): the run stops,
    resumable, and ``--resume`` sends them again. The message says how many, and why."""

    def __init__(self, unfinished: int, reasons: list[str], *, holder: str = "") -> None:
        where = f" of {holder}" if holder else ""
        super().__init__(
            f"{unfinished} items{where} are not judged yet: " + "; ".join(reasons) + ". Nothing is lost: "
            "--resume sends them again (in new batches with --batch, online without it)"
        )
        self.unfinished = unfinished
        self.reasons = reasons


class BatchJudge:
    """Judges every answer of its inbox through ``model``'s Batch API; keeps its notes in ``book``."""

    def __init__(
        self, model: BatchedJudge, book: BatchBook, *, name: str, workers: int = 8, publish: Publish = null_publish
    ) -> None:
        self.model = model
        self.book = book
        self.name = name
        self.workers = workers
        self.publish = publish
        self.options = model.options
        self.unfinished = 0
        """Items left unjudged by a batch that failed, expired or was cancelled (a resumed run sends them again)."""
        self.reasons: list[str] = []
        self._parts: dict[str, Part] = {}
        self._in_flight: dict[str, Part] = {}
        self._answers: dict[str, Answer] = {}
        self._attempts: dict[str, int] = {}
        self._retry: list[Answer] = []
        self._tag: str | None = None
        self._next = 1
        self._inbox_done = anyio.Event()
        self._counts = [0, 0, 0]  # in, out, failed
        self._outbox: Sender[Judgement] | None = None
        self._online: Sender[Answer] | None = None
        self._uploads = anyio.Lock()
        self._collecting = anyio.Lock()
        self._spools: set[IO[bytes]] = set()
        """Part files not uploaded yet, closed however the actor ends (a task cancelled before it ran included)."""
        """Where new requests go when the judge does not batch them (a run resumed without batch mode)."""

    def custom_id(self, item_id: str) -> str:
        return f"{self.name}|{item_id}"

    async def run(
        self,
        inbox: Receiver[Answer],
        outbox: Sender[Judgement],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with inbox:
            async with outbox:
                self.publish(ActorStarted(self.name, 1))
                task_status.started()
                try:
                    await self._run(inbox, outbox)
                finally:
                    for spool in self._spools:
                        spool.close()
                    self.publish(ActorFinished(self.name, *self._counts))

    async def _run(self, inbox: Receiver[Answer], outbox: Sender[Judgement]) -> None:
        self._outbox = outbox
        reservations = await self._load()
        writer = PartWriter(max_requests=self.options.max_requests, max_bytes=self.options.max_bytes)
        async with anyio.create_task_group() as outer:
            if not self.model.batch:
                channel: Channel[Answer] = Channel(f"{self.name}.online", 64)
                judge = Judge(self.model.llm, workers=self.workers, name=self.name, publish=self.publish)
                await outer.start(judge.run, channel.receiver, outbox.clone())
                self._online = channel.sender
            try:
                async with anyio.create_task_group() as tg:
                    for part in list(self._parts.values()):
                        if not part.collected:
                            tg.start_soon(self._drive, part, None, reservations.get(part.key))
                    try:
                        async for answer in inbox:
                            self._counts[0] += 1
                            await self._take(answer, writer, tg)
                        await self._seal(writer, tg)
                    finally:
                        self._inbox_done.set()
                for _ in range(1, self.options.max_attempts):
                    if not self._retry:
                        break
                    again, self._retry = self._retry, []
                    async with anyio.create_task_group() as tg:
                        for answer in again:
                            await self._plan(answer, writer, tg)
                        await self._seal(writer, tg)
            finally:
                if self._online is not None:
                    self._online.close()

    async def _take(self, answer: Answer, writer: PartWriter, tg: anyio.abc.TaskGroup) -> None:
        cid = self.custom_id(answer.id)
        if cid in self._in_flight:
            self._answers[cid] = answer  # a resumed run: its batch is on its way
        elif self._online is not None:
            await self._online.send(answer)
        else:
            await self._plan(answer, writer, tg)

    # -- planning ----------------------------------------------------------------------------------------------

    async def _plan(self, answer: Answer, writer: PartWriter, tg: anyio.abc.TaskGroup) -> None:
        """Answer ``answer`` from the cache, or put its request into the part being written."""
        llm = self.model.llm
        request = llm.request(judge_input(answer))
        cache = self.model.context.cache
        if cache is not None:
            hit = await cache.get(chat_request_key(llm.chat, request))
            if hit is not None:
                await self._finish(answer, Completion(hit, 0.0, 0.0, cached=True))
                return
        cid = self.custom_id(answer.id)
        line = self.model.client.request_line(cid, request)
        estimate = self.model.estimate_usd(request)
        headroom = self.model.context.budget.remaining_usd
        if not writer.fits(line, estimate, headroom):
            await self._seal(writer, tg)
            headroom = self.model.context.budget.remaining_usd
            if headroom is not None and estimate > headroom:
                await self._emit_failed(answer, f"BudgetExceeded: this request's ${estimate:.4f} would pass the budget")
                return
        writer.add(cid, line, estimate)
        self._answers[cid] = answer

    async def _seal(self, writer: PartWriter, tg: anyio.abc.TaskGroup) -> None:
        """Reserve, record and start the part written so far (nothing when it is empty)."""
        if not len(writer):
            return
        ids, data, estimate = writer.take()
        self._spools.add(data)
        try:
            reservation: Reservation | None = self.model.context.budget.reserve(estimate)
        except BudgetExceeded as error:
            data.close()
            for cid in ids:
                await self._emit_failed(self._answers.pop(cid), describe_error(error))
            return
        if self._tag is None:
            self._tag = secrets.token_hex(4)
            await self.book.put_batch_record(TAG_KEY, self._tag)
        number = self._next
        self._next += 1
        key = f"{self.name}#{number:04d}"
        part = Part(key, self.name, number, part_filename(self._tag, self.name, number), ids, estimate)
        self._parts[key] = part
        for cid in ids:
            self._in_flight[cid] = part
        await self._save(part)  # the ids are on disk before anything is uploaded
        tg.start_soon(self._drive, part, data, reservation)

    # -- one part, from upload to collection --------------------------------------------------------------------

    async def _drive(self, part: Part, data: IO[bytes] | None, reservation: Reservation | None) -> None:
        client = self.model.client
        fresh = data is not None  # uploaded by this run: no earlier run can have created its batch
        try:
            if part.status == "planned":
                if data is None:
                    raise BatchAPIError(f"{part.filename}: planned but neither uploaded nor at hand")
                part.file_id = await self._upload(part, data)
                part.status = "uploaded"
                await self._save(part)
            state = await self._attach(part, fresh=fresh)
            while not state.ended:
                await anyio.sleep(self.options.poll_s)
                state = await self._api(functools.partial(client.retrieve, state.id), "retrieve")
                if part.update(state):
                    await self._save(part)
                self._progress(part)
            async with self._collecting:  # one batch's replies in memory at a time (two files of up to 200 MB)
                await self._collect(part, state, reservation)
        finally:
            if data is not None:
                data.close()
                self._spools.discard(data)
            if reservation is not None:
                reservation.release()

    async def _upload(self, part: Part, data: IO[bytes]) -> str:
        """Upload a part's file, one part at a time (the SDK reads a whole file into memory to send it)."""

        async def attempt() -> str:
            data.seek(0)
            return await self.model.client.upload(part.filename, data)

        async with self._uploads:
            return await self._api(attempt, "upload")

    async def _attach(self, part: Part, *, fresh: bool) -> BatchState:
        """The part's batch: created now, found again after a crash (``fresh``: uploaded by this run, so no
        earlier create can exist), or, known already, its current state."""
        client = self.model.client
        file_id = str(part.file_id)
        if part.batch_id is not None:
            batch_id = part.batch_id
            state = await self._api(lambda: client.retrieve(batch_id), "retrieve")
        else:
            metadata = {"judgeflow_part": part.filename}
            found = None if fresh else await self._api(lambda: client.find(metadata), "list batches")
            if found is None:
                found = await self._api(lambda: client.create(file_id, metadata=metadata), "create")
            state = found
        part.update(state)
        await self._save(part)
        self._progress(part)
        return state

    async def _collect(self, part: Part, state: BatchState, reservation: Reservation | None) -> None:
        """Turn an ended batch's replies into judgements; account for every request in it."""
        client = self.model.client
        lines: list[BatchLine] = []
        if state.output_file_id or state.error_file_id:
            lines = await self._api(lambda: client.results(state), "download")
        wanted = set(part.ids)
        by_id = {line.custom_id: line for line in lines if line.custom_id in wanted}
        waiting = [cid for cid in part.ids if cid not in self._answers]
        if waiting and not self._inbox_done.is_set():
            await self._inbox_done.wait()  # a resumed run: the items come through the inbox again
        spent = 0.0
        follow_ups: list[tuple[Answer, Completion]] = []
        reason = _ended_reason(part, state)
        left = 0
        for cid in part.ids:
            answer = self._answers.pop(cid, None)
            self._in_flight.pop(cid, None)
            if answer is None:
                continue  # judged before the crash that this run resumes
            line = by_id.get(cid)
            if line is not None and line.result is not None:
                cost = self.model.cost_usd(line.result.model, line.result.usage)
                spent += cost or 0.0
                completion = await self._keep(answer, line, cost)
                reply = self.model.llm.reply(completion)
                if reply is None:
                    follow_ups.append((answer, completion))
                else:
                    await self._emit(answer, reply)
            elif line is not None and line.error is not None and not line.unfinished:
                await self._failed_request(answer, line.error.kind, line.error.detail)
            elif state.status == "completed":
                await self._failed_request(answer, "transient", "the batch returned no line for this request")
            elif part.resumed:
                await self._again(answer)  # resuming is asking for what that batch did not do
            else:
                left += 1
        await self._follow_up(follow_ups)
        if self.model.context.cache is not None:
            for store in self.model.context.cache.stores:
                await store.flush()
        if reservation is not None:
            reservation.settle(spent)
        if left:
            self.unfinished += left
            self.reasons.append(f"{left} requests of {part.filename} (batch {part.batch_id}) {reason}")
        part.status = COLLECTED
        await self._save(part)
        self._progress(part)

    async def _keep(self, answer: Answer, line: BatchLine, cost: float | None) -> Completion:
        """Record a batch reply as a paid call (ledger, cache) and return it as a completion."""
        assert line.result is not None
        llm = self.model.llm
        self.model.context.ledger.record(line.result.model, line.result.usage, charged_usd=cost)
        cache = self.model.context.cache
        if cache is not None:
            key = chat_request_key(llm.chat, llm.request(judge_input(answer)))
            await cache.put(key, line.result, cost, durable=False)
        self.publish(CallFinished(self.name, line.result.model, 0.0, usage=line.result.usage, cost_usd=cost))
        return Completion(line.result, cost, 0.0)

    async def _follow_up(self, pending: list[tuple[Answer, Completion]]) -> None:
        limiter = anyio.CapacityLimiter(self.workers)

        async def one(answer: Answer, first: Completion) -> None:
            async with limiter:
                try:
                    reply = await self.model.llm.follow_up(judge_input(answer), first)
                except RunStopped:
                    raise  # not this item's fault: the run stops, and the item stays pending
                except Exception as error:
                    await self._emit_failed(answer, describe_error(error))
                    return
                await self._emit(answer, reply)

        async with anyio.create_task_group() as tg:
            for answer, first in pending:
                tg.start_soon(one, answer, first)

    async def _failed_request(self, answer: Answer, kind: str, detail: str) -> None:
        """A request the batch answered with an error: sent again if transient and attempts are left."""
        cid = self.custom_id(answer.id)
        attempts = self._attempts.get(cid, 1)
        if kind != "fatal" and attempts < self.options.max_attempts:
            self._attempts[cid] = attempts + 1
            await self._again(answer)
            return
        await self._emit_failed(answer, f"batch request failed ({kind}): {detail}")

    async def _again(self, answer: Answer) -> None:
        """Send ``answer``'s request again: in the next round of batches, or online when the judge does not batch."""
        if self._online is not None:
            await self._online.send(answer)
        else:
            self._retry.append(answer)

    # -- output ------------------------------------------------------------------------------------------------

    async def _finish(self, answer: Answer, first: Completion) -> None:
        reply = self.model.llm.reply(first)
        if reply is None:
            await self._follow_up([(answer, first)])
        else:
            await self._emit(answer, reply)

    async def _emit(self, answer: Answer, reply: JudgeReply) -> None:
        assert self._outbox is not None
        judgement = Judgement(answer, self.name, reply.model, reply.verdict, reply.text, reply.usage, at=time.time())
        await self._outbox.send(judgement)
        self._counts[1] += 1
        self.publish(ItemDone(self.name, answer.id))

    async def _emit_failed(self, answer: Answer, error: str) -> None:
        assert self._outbox is not None
        failed = Judgement(answer, self.name, self.model.llm.chat.name, Failed(error), raw="", at=time.time())
        await self._outbox.send(failed)
        self._counts[1] += 1
        self._counts[2] += 1
        self.publish(ItemDone(self.name, answer.id))

    # -- the book ----------------------------------------------------------------------------------------------

    async def _load(self) -> dict[str, Reservation]:
        """Read this judge's parts back (a resumed run); find uploads whose record a crash cut short."""
        self._tag = (await self.book.batch_records()).get(TAG_KEY)
        reservations: dict[str, Reservation] = {}
        for part in await judge_parts(self.book, self.name):
            self._next = max(self._next, part.number + 1)
            if part.status == "planned":
                found = await self._api(functools.partial(self.model.client.find_upload, part.filename), "list files")
                if found is None:
                    await self.book.delete_batch_record(part.key)  # never uploaded: its items are planned again
                    continue
                part.file_id, part.status = found, "uploaded"
                await self._save(part)
            self._parts[part.key] = part
            if part.collected:
                continue
            for cid in part.ids:
                self._in_flight[cid] = part
            # Already paid for on the provider: it is collected whatever the budget says.
            with contextlib.suppress(BudgetExceeded):
                reservations[part.key] = self.model.context.budget.reserve(part.estimate_usd)
            self._progress(part)
        return reservations

    async def _save(self, part: Part) -> None:
        await self.book.put_batch_record(part.key, part.to_json())

    def _progress(self, part: Part) -> None:
        self.publish(progress_event(part))

    async def _api(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await retrying(
            call,
            self.model.client,
            attempts=self.options.api_attempts,
            first_delay_s=self.options.poll_s,
            publish=self.publish,
            what=f"batch {what}",
            role=self.name,
        )


def _ended_reason(part: Part, state: BatchState) -> str:
    if state.status == "failed":
        return f"were not run: the batch failed validation ({part.message or 'no reason given'})"
    if state.status == "expired":
        return "were not run: the batch expired before its completion window closed"
    if state.status == "cancelled":
        return "were not run: the batch was cancelled"
    return f"got no reply (batch status {state.status})"
