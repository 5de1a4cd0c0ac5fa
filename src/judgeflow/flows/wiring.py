"""From names to running models: the machinery every entry point builds its models with, and judge specs.

`ModelMaker` turns a role's config (provider, model, server, limits) into a model bound to the run's
`CallContext` (gates, budget, ledger, cache) and ties its clients to the run's `RunResources`, which the caller
closes. It is the one place that maps a provider name to a class; `judgeflow.flows.components` uses it for the
pipeline's roles, and `resolve_judges` for the judges named on the command line as ``PROVIDER:MODEL``:

- ``local:teacher`` is the offline rubric teacher, ``local:student-prior`` the untrained local student, and
  ``local:PATH`` a trained local student saved in a folder (a run folder's ``student/``): the numpy student
  (``model.json``) or the MiniLM student (``neural_student.json``, needs the local extra);
- ``openai:MODEL`` is a chat model on OpenAI or any OpenAI-compatible server, ``hf:MODEL`` a Hugging Face model
  id or the URL of a TGI server or Inference Endpoint (``hf:http://127.0.0.1:8080``).

Keys come from the environment only (``OPENAI_API_KEY``, ``HF_TOKEN``), never from a config file, so a config can
be shared. Every OpenAI role on one base URL shares one HTTP client (one connection pool); limits are set per
(provider, endpoint, model) from the role's ``rpm``, ``tpm`` and ``concurrency``, and two roles on the same model
share one gate with the stricter of their limits.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from anyio.abc import AsyncResource

from judgeflow.calls.batching import BatchedJudge, BatchOptions
from judgeflow.calls.budget import Allowance, Budget
from judgeflow.calls.context import CallContext
from judgeflow.calls.gate import GateRegistry, Limits, PermitFactory
from judgeflow.calls.health import HealthPolicy
from judgeflow.calls.roles import LLMJudge
from judgeflow.core.pricing import DEFAULT_PRICES, CostLedger, Price
from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT, JudgePrompt
from judgeflow.core.scoring import scoring_mode
from judgeflow.inputs.config import ConfigError, RoleConfig
from judgeflow.protocol.batches import BatchClient
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.calls import LimitKey
from judgeflow.protocol.models import ChatModel, Embedder, JudgeModel
from judgeflow.providers.neural._format import has_neural_student
from judgeflow.providers.openai.provider import MissingAPIKeyError, OpenAIChat, OpenAIEmbedder, make_client

if TYPE_CHECKING:
    import openai

    from judgeflow.calls.cache import ResponseCache
    from judgeflow.providers.hf.provider import HFChat, HFEmbedder

__all__ = ["JudgeSpecError", "ModelMaker", "RunResources", "resolve_judge", "resolve_judges"]


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
        """Close every client the run opened, and give back the budget a shared allowance lent (idempotent)."""
        self.context.budget.give_back()
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
        health: HealthPolicy | None = None,
        permits: PermitFactory | None = None,
        allowance: Allowance | None = None,
    ) -> None:
        self.limits: dict[LimitKey, Limits] = {}
        context = CallContext.create(
            publish=publish,
            limits_for=lambda key: self.limits.get(key, Limits()),
            max_cost_usd=max_cost_usd,
            prices=prices,
            cache=cache,
            health=health,
            permits=permits,
            allowance=allowance,
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

    def judge(
        self, role: RoleConfig, what: str, prompt: JudgePrompt, *, model: str | None = None, label: str = "judge"
    ) -> LLMJudge:
        """An LLM judge for ``role``; ``label`` names it in fallback reports (the role, or the judge's spec)."""
        try:
            scoring = scoring_mode(role.scoring)
        except ValueError as error:
            raise ConfigError(f"{what}: {error}") from None
        return LLMJudge(
            self.chat(role, what, model=model),
            context=self.context,
            prompt=prompt,
            max_tokens=role.max_tokens,
            temperature=role.temperature,
            retry_unparsed=role.retry_unparsed,
            scoring=scoring,
            role=label,
        )

    def batched(
        self, llm: LLMJudge, role: RoleConfig, what: str, *, batch: bool, options: BatchOptions
    ) -> BatchedJudge:
        """``llm`` with the Batch API of its server beside it (OpenAI and compatible servers only)."""
        if role.provider != "openai":
            raise ConfigError(f"{what}: batch mode needs an openai provider (OpenAI or a compatible server)")
        model = llm.chat.name

        def client() -> BatchClient:
            from judgeflow.providers.openai.batch import OpenAIBatch

            return OpenAIBatch(model, self.openai_client(role.base_url, what))

        return BatchedJudge(llm, client, batch=batch, options=options)


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
    scoring: str = "reply",
    publish: Publish = null_publish,
    cache: ResponseCache | None = None,
    health: HealthPolicy | None = None,
    batch: bool = False,
    batch_options: BatchOptions | None = None,
    batched: Collection[str] = (),
    permits: PermitFactory | None = None,
    local: Callable[[str], JudgeModel] | None = None,
    allowance: Allowance | None = None,
) -> tuple[list[tuple[str, JudgeModel]], RunResources]:
    """Each spec as ``(spec, judge)``, in order, and the resources the provider judges share.

    ``base_url`` sends ``openai:`` judges to that server (default: ``OPENAI_BASE_URL``, else api.openai.com)
    and ``hf:`` judges named by Hub id to that TGI server; an ``hf:URL`` judge goes to its own URL. Keys come
    from ``OPENAI_API_KEY`` / ``HF_TOKEN`` only. ``concurrency``, ``rpm`` and ``tpm`` limit each provider model;
    ``max_cost`` (USD) caps what all of them together may spend; ``max_tokens`` caps each reply, which also makes
    the budget's per-call reservations tight (without it each call reserves
    `judgeflow.calls.context.ASSUMED_OUTPUT_TOKENS` of output). ``health`` says how long calls wait for a server
    that does not answer before the run stops. ``scoring`` is how every LLM judge is asked (``reply``, ``json``
    or ``logprobs``; local judges score their own way). Close the resources when judging is done
    (``async with resources:``); on an error, whatever was opened is closed before it propagates.

    With ``batch``, every ``openai:`` judge comes as a `BatchedJudge` whose requests go through the Batch API
    (`judgeflow.actors.batch_judge`), cut and polled as ``batch_options`` say; the judges named in ``batched``
    (a resumed run's, which have batches running) come so too, with their new requests sent online unless
    ``batch``.

    ``permits`` makes where each provider model's gate takes its rate and shared in-flight slots (default: this
    process's own buckets; the Ray engine leases them cluster-wide). ``local`` resolves the other specs (default
    `resolve_judge`; a process that judges many runs may keep the models it loaded). ``allowance`` shares
    ``max_cost`` with other processes (`judgeflow.calls.budget.Allowance`; what is left is given back when the
    resources close).
    """
    maker = ModelMaker(
        publish=publish,
        max_cost_usd=max_cost,
        prices=DEFAULT_PRICES,
        cache=cache,
        health=health,
        permits=permits,
        allowance=allowance,
    )
    judges: list[tuple[str, JudgeModel]] = []
    try:
        for spec in specs:
            provider, _, model = spec.partition(":")
            if provider not in ("openai", "hf") or not model:
                judges.append((spec, (local or resolve_judge)(spec)))
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
                    scoring=scoring,
                )
                what = f"judge {spec!r}"
                llm = maker.judge(role, what, DEFAULT_JUDGE_PROMPT, label=spec)
                judge: JudgeModel = llm
                if provider == "openai" and (batch or spec in batched):
                    options = batch_options or BatchOptions()
                    judge = maker.batched(llm, role, what, batch=batch, options=options)
                elif batch:
                    raise ConfigError(f"{what}: batch mode needs an openai: judge (OpenAI or a compatible server)")
                judges.append((spec, judge))
            except ConfigError as error:
                message = str(error)
                prefix = f"judge {spec!r}: "
                raise JudgeSpecError(message if message.startswith(prefix) else prefix + message) from None
    except BaseException:
        await maker.resources.aclose()
        raise
    return judges, maker.resources
