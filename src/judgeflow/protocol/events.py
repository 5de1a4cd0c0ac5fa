"""What observers (the dashboard, logs, an embedding app) are told about a run.

Events are facts about the work, never the work itself: an observer that misses some (it was slow, its buffer
overflowed) sees a `Missed` count instead and loses nothing that matters, because the data travels through the
bounded channels and the run folder, not through events. Events are cheap frozen dataclasses so that publishing
one per item costs microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from .messages import ScoreUpdate, Usage

__all__ = [
    "ActorFinished",
    "ActorStarted",
    "BatchProgress",
    "BudgetExhausted",
    "CallFinished",
    "CallRetry",
    "ConcurrencyChanged",
    "Event",
    "ItemDone",
    "ItemFailed",
    "Missed",
    "OutputFallback",
    "ReplyRead",
    "RunFinished",
    "RunStarted",
    "ScorePaired",
    "ScoreUpdate",
    "ServerDown",
    "ServerUp",
    "TrainingStatus",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run began: ``kind`` "run" is the distillation pipeline over ``n_documents`` documents; "judge" is
    ``judgeflow judge`` over a file of ``n_items`` items, with ``judges`` (the first is the reference) mapped to
    how many items each will judge in this run (fewer than ``n_items`` when a resumed run already has some).

    ``out_dir`` is the run folder, or for a judge run the output file.
    """

    out_dir: str
    n_documents: int
    kind: Literal["run", "judge"] = "run"
    n_items: int | None = None
    judges: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunFinished:
    out_dir: str
    ok: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class ActorStarted:
    actor: str
    workers: int


@dataclass(frozen=True, slots=True)
class ActorFinished:
    actor: str
    items_in: int
    items_out: int
    failed: int


@dataclass(frozen=True, slots=True)
class ItemDone:
    """An actor finished one item (``item_id``) and passed its result on."""

    actor: str
    item_id: str


@dataclass(frozen=True, slots=True)
class ItemFailed:
    """An actor could not process one item; the error names what went wrong."""

    actor: str
    item_id: str
    error: str


@dataclass(frozen=True, slots=True)
class CallFinished:
    """One model call finished (local models too: they report no usage and no cost)."""

    actor: str
    model: str
    latency_s: float
    usage: Usage | None = None
    cost_usd: float | None = None
    ok: bool = True


@dataclass(frozen=True, slots=True)
class CallRetry:
    """A provider call is being retried; ``reason`` is ``rate_limited`` or ``transient``."""

    provider: str
    endpoint: str
    model: str
    attempt: int
    delay_s: float
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ConcurrencyChanged:
    """Adaptive concurrency moved the in-flight cap of one (provider, endpoint, model) key."""

    provider: str
    endpoint: str
    model: str
    limit: int
    maximum: int


@dataclass(frozen=True, slots=True)
class ServerDown:
    """Calls to ``server`` get no answer: they wait (no item fails for it) while one call at a time probes it.

    Published when the server goes down and after every probe that failed. ``since`` is wall-clock epoch
    seconds (it is shown as a time of day, also when a run log is replayed); ``probes`` counts the failed probes,
    and the next one starts in about ``next_probe_s`` seconds. ``limit_s`` is how long the run waits in all.
    """

    provider: str
    server: str
    since: float
    detail: str
    probes: int = 0
    next_probe_s: float = 0.0
    limit_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ServerUp:
    """``server`` answers again after ``down_s`` seconds away; the calls that waited go on."""

    provider: str
    server: str
    down_s: float


@dataclass(frozen=True, slots=True)
class BudgetExhausted:
    """No new paid call starts: the next one could take spending past ``budget_usd``."""

    spent_usd: float
    budget_usd: float


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """One batch of a judge in batch mode, as last seen on the provider (published at every poll).

    ``part`` is judgeflow's name for the batch (its upload's file name); ``batch_id`` is the provider's id, empty
    until the batch is created. ``status`` is the provider's (``validating``, ``in_progress``, ``finalizing``,
    ``completed``, ``failed``, ``expired``, ``cancelling``, ``cancelled``) or judgeflow's own before that
    (``planned``, ``uploaded``) and after (``collected``); ``message`` says why a batch failed.
    """

    judge: str
    part: str
    batch_id: str
    status: str
    completed: int
    failed: int
    total: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class TrainingStatus:
    """Progress of the Trainer (a local fit, or a fine-tuning job and its events)."""

    student: str
    status: str
    message: str = ""
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class ScorePaired:
    """The scorer paired a student's score with the reference judge's on one item (for the heat map)."""

    judge: str
    reference_judge: str
    item_id: str
    reference_score: float
    score: float


@dataclass(frozen=True, slots=True)
class ReplyRead:
    """A model's reply was read: ``usable`` when it gave what the stage needs (a score, a question), else
    ``reason`` says why not. The dashboard's parse rates are counted from these."""

    actor: str
    model: str
    usable: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OutputFallback:
    """A server refused a feature a role asked for (``json_schema``, ``json_object``, ``logprobs``): from now on
    the run asks that server and model ``instead`` (told once per server, model and feature)."""

    role: str
    model: str
    server: str
    feature: str
    instead: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Missed:
    """This subscriber's buffer overflowed and ``count`` events were dropped for it alone."""

    count: int


Event: TypeAlias = (
    RunStarted
    | RunFinished
    | ActorStarted
    | ActorFinished
    | ItemDone
    | ItemFailed
    | CallFinished
    | CallRetry
    | ConcurrencyChanged
    | BudgetExhausted
    | ServerDown
    | ServerUp
    | BatchProgress
    | TrainingStatus
    | ScoreUpdate
    | ScorePaired
    | ReplyRead
    | OutputFallback
    | Missed
)
