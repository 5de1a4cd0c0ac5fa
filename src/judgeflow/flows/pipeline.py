"""The whole distillation loop as one structured-concurrency scope: ``async with open_pipeline(config) as run``.

The pipeline wires the actors with bounded channels::

    documents -> QuestionWriter -> [questions.jsonl] -> Retriever -> Answerer -> [answers.jsonl]
        answers --all-------> TeacherJudge --> [judgements.jsonl] --train----> Trainer
                                                                    --held-out-> Scorer
        answers --held-out--> base StudentJudge ----+--> [judgements.jsonl] -----> Scorer
        answers --held-out--> trained StudentJudge -+
        Trainer --StudentReady--> trained StudentJudge

Teacher and student judgements travel on separate channels: the trained student cannot finish before the
Trainer, which cannot start before the teacher's judgements end, so a shared channel would be a cycle.

and yields a `PipelineRun` whose ``events`` stream tells observers what happens. Leaving the ``async with``
block cancels whatever is still running (Ctrl-C does the same), so no task outlives the block; call
``await run.wait()`` inside it to let the run finish. A stage that fails fails the whole run, loudly.

The run folder is claimed through `judgeflow.runs.context` (the same rule as ``judgeflow judge``); the models come
from `judgeflow.flows.components`.

One module, longer than most: the actor graph is wired in one function, so that the whole flow of a run (the
diagram above) can be read in one place.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from judgeflow.actors import (
    Answerer,
    QuestionWriter,
    Retriever,
    Router,
    Scorer,
    StudentJudge,
    TeacherJudge,
    Trainer,
)
from judgeflow.actors.batch_judge import BatchIncomplete, BatchJudge
from judgeflow.calls.batching import BatchedJudge
from judgeflow.calls.support import Fallback
from judgeflow.core.prompts import training_example_json
from judgeflow.core.stages import StageCount, UnusableReply
from judgeflow.flows.components import Components, local_components
from judgeflow.inputs.config import ConfigError, PipelineConfig, config_from_data
from judgeflow.protocol.bus import EventBus
from judgeflow.protocol.channels import Channel, ChannelStats, Valve
from judgeflow.protocol.errors import NothingUsable, find_stop
from judgeflow.protocol.events import Event, RunFinished, RunStarted
from judgeflow.protocol.messages import (
    Answer,
    Context,
    Document,
    Judgement,
    Question,
    ScoreUpdate,
    StudentReady,
)
from judgeflow.report.build import build_report
from judgeflow.report.markdown import render_markdown
from judgeflow.report.outcome import PipelineCounts, pipeline_outcome
from judgeflow.report.pages import write_run_html
from judgeflow.runs.context import RunContext, open_run
from judgeflow.runs.folder import JsonlSink, new_run_dir
from judgeflow.runs.logs import EventLogger, close_logging, configure_logging
from judgeflow.runs.records import answer_record, judgement_record, question_record

__all__ = ["PipelineRun", "open_pipeline", "stored_config"]

TEACHER, BASE, TRAINED = "teacher", "student_base", "student_trained"


@dataclass(slots=True)
class PipelineRun:
    """A running pipeline: its folder, its event stream, its channels and, once done, its report."""

    out_dir: Path
    events: MemoryObjectReceiveStream[Event]
    channels: list[ChannelStats]
    bus: EventBus
    report: dict[str, Any] | None = None
    failure: NothingUsable | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"train": 0, "test": 0})
    _done: anyio.Event = field(default_factory=anyio.Event)
    _intake: Valve = field(default_factory=Valve)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def paused(self) -> bool:
        return self._intake.paused

    def pause(self) -> None:
        """Stop taking new questions into retrieval; work already past that point goes on."""
        self._intake.close_valve()

    def resume(self) -> None:
        self._intake.open_valve()

    async def wait(self) -> dict[str, Any]:
        """Wait for the run to finish and return its report; `NothingUsable` (a `RunStopped`) when a stage produced
        nothing usable (the report is written, and ``report`` holds it then too)."""
        await self._done.wait()
        if self.failure is not None:
            raise self.failure
        if self.report is None:
            raise RuntimeError("the pipeline finished without a report")
        return self.report


@asynccontextmanager
async def open_pipeline(
    config: PipelineConfig | None = None,
    *,
    components: Components | None = None,
    event_buffer: int = 4096,
    resume: bool = False,
    restart: bool = False,
    cache_dir: Path | None = None,
    log_events: bool = False,
) -> AsyncIterator[PipelineRun]:
    """Start the pipeline in the background and yield it; leaving the block cancels what is left.

    Every question, answer, judgement and paid call is recorded in the run folder's store. ``resume=True``
    continues the run in ``config.out_dir``: the pipeline replays, every call already paid for is answered from
    the store, and a fine-tuning job is re-attached; a different configuration is refused unless
    ``restart=True`` (start over in the same folder). ``cache_dir`` shares a response cache across runs.
    ``log_events`` writes every event to ``run.log`` (JSON lines, secrets redacted).
    """
    config = config or PipelineConfig()
    if resume and config.out_dir is None:
        raise ConfigError("resume needs the run folder (out_dir) to continue")
    out_dir = config.out_dir if config.out_dir is not None else new_run_dir()
    bus = EventBus()
    run = PipelineRun(out_dir=out_dir, events=bus.subscribe_nowait(buffer=event_buffer), channels=[], bus=bus)
    async with AsyncExitStack() as stack:
        stack.callback(run.events.close)
        stack.callback(bus.close)  # however the run ends, even before it starts, observers see the end
        context = await stack.enter_async_context(
            open_run(
                out_dir,
                config.summary(),
                resume=resume,
                restart=restart,
                ignore=_MAY_CHANGE_ON_RESUME,
                forget=[out_dir / "finetune" / "job.json"],
                cache_dir=cache_dir,
            )
        )
        text = json.dumps(config.summary(), indent=2) + "\n"
        await anyio.to_thread.run_sync((out_dir / CONFIG_FILE).write_text, text)
        if log_events:
            configure_logging(out_dir)
            stack.callback(close_logging)
        if components is None and config.is_embedded_default:
            components = await anyio.to_thread.run_sync(local_components, config)
        fallbacks: list[Fallback] = []
        if components is None and not config.is_embedded_default:
            from judgeflow.flows.components import build_components

            components, resources = await build_components(
                config, publish=bus.publish, cache_dir=out_dir / "cache", cache=context.cache
            )
            await stack.enter_async_context(resources)
            fallbacks = resources.context.support.fallbacks
        assert components is not None
        tg = await stack.enter_async_context(anyio.create_task_group())
        if log_events:
            tg.start_soon(EventLogger().run, bus.subscribe_nowait(buffer=event_buffer))
        await tg.start(_run, run, config, components, context, fallbacks)
        try:
            yield run
        finally:
            tg.cancel_scope.cancel()


def stored_config(folder: Path) -> PipelineConfig:
    """The config a run folder was started with (its ``config.json``), for ``--resume`` without ``--config``."""
    path = folder / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{folder}: no run to resume here (no {CONFIG_FILE})") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read the stored config ({error})") from None
    return config_from_data(data, where=str(path))


CONFIG_FILE = "config.json"
TRAINING_FILE = "train.jsonl"
# What a resumed run may change: where it runs, how fast, and how much more it may spend.
_MAY_CHANGE_ON_RESUME = ("out_dir", "workers", "channel_capacity", "budget", "calls", "trainer.poll_interval_s")


async def _run(
    run: PipelineRun,
    config: PipelineConfig,
    components: Components,
    context: RunContext,
    fallbacks: Sequence[Fallback],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    bus, publish, out_dir = run.bus, run.bus.publish, run.out_dir
    started = time.perf_counter()
    ok = False
    why = "the run did not finish"
    capacity = config.channel_capacity
    judged = {name: StageCount() for name in (TEACHER, BASE, TRAINED)}

    def channel(name: str) -> Channel[Any]:
        made: Channel[Any] = Channel(name, capacity)
        run.channels.append(made.stats)
        return made

    documents: Channel[Document] = channel("documents")
    questions: Channel[Question] = channel("questions")
    to_retriever: Channel[Question] = channel("retriever.inbox")
    contexts: Channel[Context] = channel("answerer.inbox")
    answers: Channel[Answer] = channel("answers")
    to_teacher: Channel[Answer] = channel("teacher.inbox")
    to_base: Channel[Answer] = channel("student_base.inbox")
    to_trained: Channel[Answer] = channel("student_trained.inbox")
    teacher_out: Channel[Judgement] = channel("teacher.outbox")
    students_out: Channel[Judgement] = channel("students.outbox")
    to_trainer: Channel[Judgement] = channel("trainer.inbox")
    to_scorer: Channel[Judgement] = channel("scorer.inbox")
    ready: Channel[StudentReady] = channel("student_trained.ready")
    scores: Channel[ScoreUpdate] = channel("scores")

    scorer = Scorer(
        reference=TEACHER,
        students=(TRAINED, BASE),
        difference=(TRAINED, BASE),
        n_resamples=config.n_resamples,
        seed=config.seed,
        publish=publish,
    )

    def record_question(question: Question) -> None:
        run.counts[question.split] += 1
        question_sink.write(question_record(question))

    def route_answer(answer: Answer) -> tuple[int, ...]:
        return (0,) if answer.question.split == "train" else (0, 1, 2)

    def route_teacher(judgement: Judgement) -> tuple[int, ...]:
        return (0,) if judgement.answer.question.split == "train" else (1,)

    def record_judgement(judgement: Judgement) -> None:
        judged.setdefault(judgement.judge, StageCount()).add_verdict(judgement.id, judgement.verdict, judgement.raw)
        judgement_sink.write(judgement_record(judgement))

    async def persist_question(question: Question) -> None:
        await context.store.record_item("question", question.id, "", question_record(question))

    async def persist_answer(answer: Answer) -> None:
        await context.store.record_item("answer", answer.id, "", answer_record(answer))

    async def persist_judgement(judgement: Judgement) -> None:
        await context.store.record_item("judgement", judgement.id, judgement.judge, judgement_record(judgement))

    with (
        JsonlSink(out_dir / "questions.jsonl") as question_sink,
        JsonlSink(out_dir / "answers.jsonl") as answer_sink,
        JsonlSink(out_dir / "judgements.jsonl") as judgement_sink,
        JsonlSink(out_dir / TRAINING_FILE) as training_sink,
    ):
        trainer = Trainer(
            components.trainer,
            out_dir=out_dir,
            record=lambda example: training_sink.write(training_example_json(example)),
            export=_hub_export(config, out_dir / TRAINING_FILE),
            publish=publish,
        )
        batched: list[BatchJudge] = []
        try:
            publish(RunStarted(str(out_dir), len(components.documents)))
            async with anyio.create_task_group() as tg:
                start = tg.start
                await start(scorer.run, to_scorer.receiver, scores.sender)
                await start(trainer.run, to_trainer.receiver, ready.sender)
                # Teacher and student judgements travel apart: the trained student waits for the Trainer,
                # which waits for the end of the teacher's judgements, so one shared channel would deadlock.
                await start(
                    Router(
                        route_teacher,
                        record=record_judgement,
                        persist=persist_judgement,
                        name="teacher_router",
                        publish=publish,
                    ).run,
                    teacher_out.receiver,
                    [to_trainer.sender, to_scorer.sender.clone()],
                )
                await start(
                    Router(
                        lambda _j: (0,),
                        record=record_judgement,
                        persist=persist_judgement,
                        name="student_router",
                        publish=publish,
                    ).run,
                    students_out.receiver,
                    [to_scorer.sender],
                )
                trained = StudentJudge(
                    loader=components.trainer.load,
                    workers=config.workers.student,
                    batch_size=config.student_batch_size,
                    name=TRAINED,
                    publish=publish,
                )
                await start(_with_ready(trained, to_trained, students_out, ready))
                base: StudentJudge | BatchJudge = StudentJudge(
                    components.base_student,
                    workers=config.workers.student,
                    batch_size=config.student_batch_size,
                    name=BASE,
                    publish=publish,
                )
                teacher: TeacherJudge | BatchJudge = TeacherJudge(
                    components.teacher, workers=config.workers.teacher, publish=publish
                )
                # A judge role with batch = true sends its requests through the Batch API.
                if isinstance(components.base_student, BatchedJudge):
                    base = BatchJudge(
                        components.base_student,
                        context.store,
                        name=BASE,
                        workers=config.workers.student,
                        publish=publish,
                    )
                    batched.append(base)
                if isinstance(components.teacher, BatchedJudge):
                    teacher = BatchJudge(
                        components.teacher, context.store, name=TEACHER, workers=config.workers.teacher, publish=publish
                    )
                    batched.append(teacher)
                await start(base.run, to_base.receiver, students_out.sender.clone())
                await start(teacher.run, to_teacher.receiver, teacher_out.sender)
                students_out.sender.close()
                await start(
                    Router(
                        route_answer,
                        record=lambda a: answer_sink.write(answer_record(a)),
                        persist=persist_answer,
                        name="answer_router",
                        publish=publish,
                    ).run,
                    answers.receiver,
                    [to_teacher.sender, to_base.sender, to_trained.sender],
                )
                answerer = Answerer(components.answerer, workers=config.workers.answerer, publish=publish)
                await start(answerer.run, contexts.receiver, answers.sender)
                retriever = Retriever(
                    components.index, top_k=config.top_k, workers=config.workers.retriever, publish=publish
                )
                await start(retriever.run, to_retriever.receiver, contexts.sender)
                await start(
                    Router(
                        lambda _q: (0,),
                        record=record_question,
                        persist=persist_question,
                        valve=run._intake,
                        name="question_router",
                        publish=publish,
                    ).run,
                    questions.receiver,
                    [to_retriever.sender],
                )
                writer = QuestionWriter(
                    components.writer,
                    questions_per_doc=config.questions_per_doc,
                    seed=config.seed,
                    train_fraction=config.train_fraction,
                    workers=config.workers.question_writer,
                    publish=publish,
                )
                await start(writer.run, documents.receiver, questions.sender)
                tg.start_soon(_drain, scores.receiver)
                task_status.started()
                async with documents.sender:
                    for document in components.documents:
                        await documents.sender.send(document)
            unfinished = sum(judge.unfinished for judge in batched)
            if unfinished:
                reasons = [reason for judge in batched for reason in judge.reasons]
                raise BatchIncomplete(unfinished, reasons, holder=str(out_dir))
            assert scorer.result is not None
            result = scorer.result
            writer_count = getattr(components.writer, "replies", None)
            writer_count = writer_count if isinstance(writer_count, StageCount) else None
            counts = PipelineCounts(
                documents=len(components.documents),
                questions=run.counts["train"] + run.counts["test"],
                held_out=run.counts["test"],
                writer=writer_count,
                judges=judged,
                reference=TEACHER,
                reference_held_out_scored=result.tallies[TEACHER].scored,
                training_examples=len(trainer.examples),
                training_skipped=trainer.skipped,
                training_error=trainer.error,
                paired={judge: estimates.n for judge, estimates in result.agreements.items()},
            )
            failure, missing = pipeline_outcome(counts)
            stages: dict[str, Any] = {}
            if writer_count is not None:
                stages["question_writer"] = {**writer_count.as_dict(), "questions": counts.questions}
            stages.update({name: count.as_dict() for name, count in judged.items()})
            run.report = build_report(
                result=result,
                n_train=run.counts["train"],
                n_test=run.counts["test"],
                run={
                    "out_dir": str(out_dir),
                    "wall_s": round(time.perf_counter() - started, 3),
                    "documents": len(components.documents),
                    "models": _model_names(components),
                    "config": config.summary(),
                },
                training={
                    "examples": len(trainer.examples),
                    "skipped_teacher_verdicts": trainer.skipped,
                    "backend": components.trainer.name,
                    "error": trainer.error,
                },
                costs=await context.costs(),
                stages=stages,
                scoring=_scoring(components, fallbacks),
                failure=None if failure is None else failure.as_dict(),
                missing=missing,
            )
            unusable = getattr(components.writer, "unusable", None)
            await anyio.to_thread.run_sync(_write_report, out_dir, run.report, unusable or [])
            if failure is not None:
                why = failure.message
                run.failure = NothingUsable(
                    f"{failure.message.rstrip('.')}; report.json says what is missing and why", stage=failure.stage
                )
            else:
                ok = True
        except BaseException as error:
            stop = find_stop(error)
            if stop is not None:
                why = stop.message
            raise
        finally:
            publish(RunFinished(str(out_dir), ok, "" if ok else why))
            bus.close()
            run._done.set()


def _with_ready(
    student: StudentJudge,
    inbox: Channel[Answer],
    judgements: Channel[Judgement],
    ready: Channel[StudentReady],
) -> Any:
    async def run(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await student.run(inbox.receiver, judgements.sender.clone(), ready=ready.receiver, task_status=task_status)

    return run


async def _drain(receiver: MemoryObjectReceiveStream[ScoreUpdate]) -> None:
    with receiver:
        async for _ in receiver:
            pass


def _hub_export(config: PipelineConfig, path: Path) -> Callable[[], Awaitable[str]] | None:
    """Upload the training set to the Hugging Face Hub as a dataset when the config names one."""
    repo = config.trainer.hub_dataset
    if repo is None:
        return None

    async def export() -> str:
        from judgeflow.providers.hf.hub_export import export_training_set

        return await export_training_set(path, repo)

    return export


def _model_names(components: Components) -> dict[str, str]:
    return {
        "question_writer": components.writer.name,
        "retriever": components.index.name,
        "answerer": components.answerer.name,
        "teacher": components.teacher.name,
        "trainer": components.trainer.name,
        "student_base": components.base_student.name,
    }


def _scoring(components: Components, fallbacks: Sequence[Fallback]) -> dict[str, Any]:
    """How each LLM judge was asked for its score, and every feature a server refused (and what replaced it)."""
    asked = {  # a batched judge asks as its LLM judge does
        name: getattr(getattr(model, "llm", model), "scoring", None)
        for name, model in ((TEACHER, components.teacher), (BASE, components.base_student))
    }
    return {
        "asked": {name: mode for name, mode in asked.items() if isinstance(mode, str)},
        "fallbacks": [fallback.as_dict() for fallback in fallbacks],
    }


UNUSABLE_FILE = "unusable_replies.jsonl"


def _write_report(out_dir: Path, report: dict[str, Any], unusable: Sequence[UnusableReply]) -> None:
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(render_markdown(report), encoding="utf-8")
    write_run_html(out_dir, report, seed=int(report.get("run", {}).get("config", {}).get("seed", 0)))
    if unusable:
        lines = (json.dumps({"stage": "question_writer", **reply.as_dict()}, ensure_ascii=False) for reply in unusable)
        (out_dir / UNUSABLE_FILE).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
