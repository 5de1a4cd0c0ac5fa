"""Run configuration: plain frozen dataclasses, loadable from a TOML file with errors that name file and key.

Everything has a default, and the defaults are the embedded offline run (bundled corpus, local models), so
``PipelineConfig()`` is a complete, runnable configuration. Secrets never live here: API keys come from the
environment only, so a config file can be shared and a run folder can record its config verbatim.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeflow.core.scoring import SCORING_MODES
from judgeflow.inputs.corpus import CITIES

__all__ = [
    "BudgetConfig",
    "CallsConfig",
    "ConfigError",
    "DocumentsConfig",
    "EngineConfig",
    "JudgingConfig",
    "PipelineConfig",
    "RoleConfig",
    "RolesConfig",
    "TrainerConfig",
    "Workers",
    "config_from_data",
    "load_config",
]


LOCAL_RETRIEVERS = ("", "bm25", "minilm")
"""Models of a local retriever: "" and "bm25" are BM25, "minilm" is dense retrieval (the local extra)."""
LOCAL_ANSWERERS = ("", "extractive", "smollm2")
"""Models of a local answerer: "" and "extractive" copy sentences, "smollm2" is SmolLM2-135M-Instruct (opt-in)."""


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Workers:
    """Concurrent workers per actor (each actor's workers share its inbox)."""

    question_writer: int = 2
    retriever: int = 2
    answerer: int = 4
    teacher: int = 8
    student: int = 4


@dataclass(frozen=True, slots=True)
class RoleConfig:
    """Which model plays a role: ``provider`` is ``local``, ``openai`` (any OpenAI-compatible server) or ``hf``.

    ``base_url`` points an ``openai`` role at another server (vLLM, Ollama, llama.cpp) or an ``hf`` role at a TGI
    server or Inference Endpoint. Limits apply per (provider, endpoint, model): ``rpm`` and ``tpm`` are rates,
    ``concurrency`` the cap on requests in flight. Keys come from the environment, never from here.

    ``scoring`` (teacher and student) is how an LLM judge is asked for its score: ``reply`` (the recipe's text),
    ``json`` (constrained JSON) or ``logprobs`` (JSON, scored from token probabilities); see
    `judgeflow.core.scoring`. ``output`` (question writer) is ``json`` (constrained JSON where the server has it)
    or ``reply`` (the labelled text format).
    """

    provider: str = "local"
    model: str = ""
    base_url: str | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int = 16
    max_tokens: int | None = None
    temperature: float = 0.0
    timeout_s: float = 60.0
    retry_unparsed: bool = True
    batch: bool = False
    """A judge role (teacher, student) sends its requests through the provider's Batch API (openai only)."""
    batch_poll_s: float = 30.0
    scoring: str = "reply"
    output: str = "json"

    def __post_init__(self) -> None:
        if self.scoring not in SCORING_MODES:
            raise ConfigError(f"scoring must be one of {', '.join(SCORING_MODES)}; got {self.scoring!r}")
        if self.output not in ("json", "reply"):
            raise ConfigError(f"output must be json or reply; got {self.output!r}")
        if self.provider not in ("local", "openai", "hf"):
            raise ConfigError(f"provider must be one of local, openai, hf; got {self.provider!r}")
        if self.batch and self.provider != "openai":
            raise ConfigError(
                f"batch = true needs provider 'openai' (OpenAI or a compatible server), not {self.provider!r}"
            )
        if not self.batch_poll_s > 0:
            raise ConfigError(f"batch_poll_s must be positive, got {self.batch_poll_s}")
        if self.provider != "local" and not self.model:
            raise ConfigError(f"a {self.provider} role needs a model")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")


@dataclass(frozen=True, slots=True)
class RolesConfig:
    """The model of each role. The retriever's ``local`` model is ``bm25`` (the default) or ``minilm`` (dense
    retrieval with MiniLM embeddings, on the CPU; needs the local extra); with a provider, an embeddings model.
    The answerer's ``local`` model is ``extractive`` (the default) or ``smollm2`` (a real generative model on the
    CPU, 1-3 s an answer; needs the smollm extra and weights)."""

    question_writer: RoleConfig = field(default_factory=RoleConfig)
    retriever: RoleConfig = field(default_factory=RoleConfig)
    answerer: RoleConfig = field(default_factory=RoleConfig)
    teacher: RoleConfig = field(default_factory=RoleConfig)
    student: RoleConfig = field(default_factory=RoleConfig)

    def __post_init__(self) -> None:
        retriever = self.retriever
        if retriever.provider == "local" and retriever.model not in LOCAL_RETRIEVERS:
            raise ConfigError(f"roles.retriever: a local retriever is bm25 or minilm; got {retriever.model!r}")
        answerer = self.answerer
        if answerer.provider == "local" and answerer.model not in LOCAL_ANSWERERS:
            raise ConfigError(f"roles.answerer: a local answerer is extractive or smollm2; got {answerer.model!r}")
        for name in ("question_writer", "retriever", "answerer"):
            if getattr(self, name).scoring != "reply":
                raise ConfigError(f"roles.{name}: scoring is for the teacher and student roles")
        for name in ("teacher", "student"):
            role = getattr(self, name)
            if role.provider == "local" and role.scoring != "reply":
                raise ConfigError(
                    f"roles.{name}: scoring = {role.scoring!r} needs an LLM judge (provider openai or hf)"
                )


@dataclass(frozen=True, slots=True)
class DocumentsConfig:
    """Where documents come from: the bundled corpus, Wikipedia titles, or local files (a file or a folder)."""

    source: str = "bundled"
    titles: tuple[str, ...] = ()
    path: Path | None = None
    api_url: str | None = None
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.source not in ("bundled", "wikipedia", "files"):
            raise ConfigError(f"documents.source must be bundled, wikipedia or files; got {self.source!r}")
        if self.source == "wikipedia" and not self.titles:
            raise ConfigError("documents.source = 'wikipedia' needs documents.titles")
        if self.source == "files" and self.path is None:
            raise ConfigError("documents.source = 'files' needs documents.path")


@dataclass(frozen=True, slots=True)
class TrainerConfig:
    """How the student is trained: ``local`` (numpy), ``minilm`` (MiniLM fine-tuned on the CPU; needs the local
    extra) or ``openai`` (the fine-tuning API).

    ``threads`` (torch threads while training), ``precision`` (``float32`` or ``bfloat16`` autocast while
    training) and ``max_tokens`` (word pieces of question, reference and answer the student reads per item: the
    trade-off between reading long answers whole and speed) apply to ``minilm``; unset, the backend's defaults
    hold (one thread, float32: reproducible; 1536 word pieces).
    """

    backend: str = "local"
    epochs: int | None = None
    threads: int | None = None
    precision: str | None = None
    max_tokens: int | None = None
    suffix: str = "judgeflow"
    job_id: str | None = None
    poll_interval_s: float = 10.0
    cancel_timeout_s: float = 30.0
    hub_dataset: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("local", "minilm", "openai"):
            raise ConfigError(f"trainer.backend must be local, minilm or openai; got {self.backend!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"trainer.threads must be >= 1, got {self.threads}")
        if self.precision not in (None, "float32", "bfloat16"):
            raise ConfigError(f"trainer.precision must be float32 or bfloat16, got {self.precision!r}")
        if self.max_tokens is not None and self.max_tokens < 16:
            raise ConfigError(f"trainer.max_tokens must be >= 16, got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    """``max_cost_usd``: no new paid call starts once it could take the run's spending past this."""

    max_cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class CallsConfig:
    """How long the run waits for a server that does not answer (`judgeflow.calls.health`).

    ``grace_s``: while the server has not answered once in this run (a wrong URL, a closed port, a TLS or DNS
    error stop the run this soon). ``outage_limit_s``: once it has (a server that goes away in the middle of a
    run is waited for this long; the calls pause, no item fails).
    """

    grace_s: float = 10.0
    outage_limit_s: float = 600.0

    def __post_init__(self) -> None:
        _check_waits(self.grace_s, self.outage_limit_s)


def _check_waits(grace_s: float, outage_limit_s: float) -> None:
    for name, value in (("grace_s", grace_s), ("outage_limit_s", outage_limit_s)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < float("inf"):
            raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What to run. The defaults are the embedded default: bundled corpus, local stand-in models."""

    seed: int = 0
    train_fraction: float = 0.65
    questions_per_doc: int = 16
    top_k: int = 2
    chunk_words: int = 80
    cities: tuple[str, ...] = CITIES
    channel_capacity: int = 16
    n_resamples: int = 2000
    student_batch_size: int = 256
    workers: Workers = field(default_factory=Workers)
    out_dir: Path | None = None
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    roles: RolesConfig = field(default_factory=RolesConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    prices: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        """True when nothing in this config talks to the network."""
        roles = (
            getattr(self.roles, name) for name in ("question_writer", "retriever", "answerer", "teacher", "student")
        )
        return (
            all(role.provider == "local" for role in roles)
            and self.trainer.backend == "local"
            and self.documents.source != "wikipedia"
        )

    @property
    def is_embedded_default(self) -> bool:
        """True when every model is the default offline stand-in over the bundled corpus (no extra, no files)."""
        roles = self.roles
        return (
            self.is_local
            and self.documents.source == "bundled"
            and roles.retriever.model in ("", "bm25")
            and roles.answerer.model in ("", "extractive")
        )

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"train_fraction must be between 0 and 1 (exclusive), got {self.train_fraction}")
        for name in ("questions_per_doc", "top_k", "chunk_words", "n_resamples", "student_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.channel_capacity < 0:
            raise ConfigError(f"channel_capacity must be >= 0, got {self.channel_capacity}")
        unknown = [city for city in self.cities if city not in CITIES]
        if unknown:
            raise ConfigError(f"cities not in the bundled corpus: {unknown}; available: {list(CITIES)}")

    def summary(self) -> dict[str, Any]:
        """The config as plain JSON-able data, for the report."""
        data = dataclasses.asdict(self)
        data["out_dir"] = str(self.out_dir) if self.out_dir is not None else None
        data["cities"] = list(self.cities)
        data["documents"]["path"] = str(self.documents.path) if self.documents.path is not None else None
        data["documents"]["titles"] = list(self.documents.titles)
        return data


ENGINES = ("local", "ray")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Where ``judgeflow judge`` runs (``[engine]``): ``local`` in this process, or ``ray``: the items cut into
    shards of ``shard_size`` judged by ``workers`` Ray actors on the cluster at ``address`` (None: a local
    cluster started for the run, with ``num_cpus`` CPUs, default all); see `judgeflow.flows.ray`."""

    kind: str = "local"
    address: str | None = None
    workers: int = 2
    shard_size: int = 10_000
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise ConfigError(f"[engine] kind must be one of {', '.join(ENGINES)}; got {self.kind!r}")
        for name in ("workers", "shard_size", "num_cpus"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"[engine] {name} must be >= 1, got {value}")


@dataclass(frozen=True, slots=True)
class JudgingConfig:
    """What ``judgeflow judge`` runs: every item of ``items`` judged by each of ``judges`` into ``out``.

    A judge is named ``PROVIDER:MODEL`` (see `judgeflow.flows.wiring.resolve_judges`); the limits apply to each
    provider model, ``max_cost_usd`` to all of them together. With two or more judges the first is the reference.
    """

    items: Path
    out: Path
    judges: tuple[str, ...] = ("local:teacher",)
    base_url: str | None = None
    concurrency: int = 8
    rpm: int | None = None
    tpm: int | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0
    max_cost_usd: float | None = None
    seed: int = 0
    n_resamples: int = 2000
    batch_size: int = 256
    label_threshold: float = 4.0  # with true/false labels: a score at or above it says "true"
    grace_s: float = 10.0
    outage_limit_s: float = 600.0
    batch: bool = False
    """Send the ``openai:`` judges' requests through the Batch API (half the price, results within 24 hours)."""
    batch_poll_s: float = 30.0
    batch_max_requests: int = 50_000
    scoring: str = "reply"
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Where the judging runs (this process, or a Ray cluster); not part of what a resumed run must match."""

    def __post_init__(self) -> None:
        if not self.judges:
            raise ConfigError("name at least one judge")
        if self.engine.kind == "ray" and self.batch:
            raise ConfigError(
                "--batch cannot be used with --ray: judge through the Batch API in one process, without --ray"
            )
        _check_waits(self.grace_s, self.outage_limit_s)
        if not self.batch_poll_s > 0:
            raise ConfigError(f"batch_poll_s must be positive, got {self.batch_poll_s}")
        if self.scoring not in SCORING_MODES:
            raise ConfigError(f"--scoring must be one of {', '.join(SCORING_MODES)}; got {self.scoring!r}")
        for name in ("concurrency", "n_resamples", "batch_size", "batch_max_requests"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def store_filename(self) -> str:
        """The store beside the output that makes a judge run resumable: ``OUT.store.sqlite``."""
        return f"{self.out.name}.store.sqlite"

    def summary(self) -> dict[str, Any]:
        """What a resumed judge run must share with the first: the items file, the judges and how they score."""
        summary: dict[str, Any] = {"items": str(self.items.resolve()), "judges": list(self.judges)}
        if self.scoring != "reply":  # so that a reply-mode run keeps the summary it always had
            summary["scoring"] = self.scoring
        return summary


_TABLES: dict[str, type[Any]] = {
    "workers": Workers,
    "documents": DocumentsConfig,
    "roles": RolesConfig,
    "trainer": TrainerConfig,
    "budget": BudgetConfig,
    "calls": CallsConfig,
}
_ROLE_TABLES = {"question_writer", "retriever", "answerer", "teacher", "student"}


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(names))})")
        if value is None:
            continue  # a stored config writes unset options as null; they keep their defaults
        if cls is RolesConfig and key in _ROLE_TABLES:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [roles.{key}] must be a table")
            kwargs[key] = _build(RoleConfig, value, f"{where} [roles.{key}]")
        elif key in _TABLES and cls is PipelineConfig:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a table")
            kwargs[key] = _build(_TABLES[key], value, where if key == "roles" else f"{where} [{key}]")
        elif key in ("cities", "titles"):
            kwargs[key] = tuple(value)
        elif key in ("out_dir", "path"):
            kwargs[key] = Path(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def config_from_data(data: dict[str, Any], *, where: str) -> PipelineConfig:
    """A config from plain data (a parsed TOML file, or a run folder's ``config.json``)."""
    config: PipelineConfig = _build(PipelineConfig, data, where)
    return config


def load_config(path: Path) -> PipelineConfig:
    """Read a TOML config; a missing file, bad TOML or an unknown key is a `ConfigError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return config_from_data(data, where=str(path))
