"""An OpenAI-compatible HTTP server for tests, benchmarks and demos (needs aiohttp).

The real ``openai.AsyncOpenAI`` client talks to it unmodified: the wire formats of chat completions, embeddings,
file upload, models and fine-tuning jobs (with events and cancel) follow the OpenAI API reference, errors come
as ``{"error": {"message", "type", "param", "code"}}``, and 429s carry ``Retry-After`` / ``retry-after-ms`` and
``x-ratelimit-*`` headers. It runs inside the caller's asyncio event loop (anyio's asyncio backend)::

    async with serve_openai(FakeOpenAI(latency_s=0.01, fault_500=0.1)) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-local")
        ...
        assert server.stats.served_500 > 0

or as a process, for demos and benchmarks, until it is killed::

    python -m judgeflow.testing.openai_server --port 8000 --latency 0.2 --rpm 600 --fault-429 0.1

Replies are deterministic functions of the request (no randomness except the seeded fault draws):

* **Judge** - the last user message has the sections ``## Reference Answer`` and ``## Generated Answer``
  (and usually ``## Question``). The reply is a score from 1 to 5 in steps of 0.5, then one sentence of
  reasoning (``FakeOpenAI.judge_format`` picks the layout). The rule depends on the model, so that
  teacher/student agreement experiments mean something:

  - *teacher rule* (fine-tuned ``ft:...`` models and every model not listed in ``crude_judge_models``):
    ``1 + 4 * F1`` of the content words (lower-cased, stop words dropped) of the generated answer against the
    reference answer, rounded to the nearest 0.5. ``ft_judge_noise`` moves that share of the fine-tuned
    model's scores one point towards the middle, so a fine-tuned student agrees well but not perfectly.
  - *crude rule* (base student models, ``crude_judge_models``, e.g. ``gpt-3.5-turbo``, ``gpt-4o-mini``):
    longer answers look better, ``1 + words / 5`` capped at 5, rounded to 0.5, whatever the reference says.

  The reasoning sentence contains no digits, so a score is the only number in a judge reply.
  ``judge_garbage_rate`` replaces that share of judge replies (chosen by a hash of the request, not by
  order) with text that contains no score at all.
* **Question writer** - the prompt mentions a quiz or asks to write/generate questions. The reply is
  ``Question: ...?\\nAnswer: ...`` built from the first sentence(s) of the context (the ``## Context`` /
  ``## Document`` section, else the longest paragraph of the last user message); "3 questions" asks for three
  pairs, separated by blank lines.
* **Answerer** - anything else: the sentence of the context that shares the most words with the question
  (``## Question`` section or a ``Question:`` line), or ``I don't know.`` when none does.

``FakeOpenAI.reply_fn`` replaces all of this with a plain function ``(model, messages) -> content`` (``None``
sends ``"content": null``).

Faults and limits apply to the endpoints in ``fault_endpoints`` (chat completions and embeddings by default),
in this order: ``fail_first_n`` (deterministic), then the ``rpm`` sliding window (per model), then one draw
from ``random.Random(seed)`` against ``fault_429``, ``fault_500``, ``fault_malformed`` (a 200 with a truncated
JSON body) and ``fault_timeout`` (the server sits on the request for ``timeout_s``). ``latency_s`` is slept
before all of it. The config may be changed while the server runs (for example to switch faults off); each
request reads it afresh.

Fine-tuning jobs are a timed state machine read off the server clock (``FakeOpenAI.clock``), with no background
task: ``validating_files`` -> ``queued`` -> ``running`` -> ``succeeded`` (or ``failed`` when the suffix contains
"fail"), each phase lasting ``fine_tune_step_s``. Cancelling a job that has not finished makes it ``cancelled``;
cancelling a finished one is a 400.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import random
import re
import signal
import sys
import time
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypeAlias, get_args

import anyio
from aiohttp import BodyPartReader, web

__all__ = [
    "FakeOpenAI",
    "JudgeFormat",
    "OpenAIServer",
    "ReplyFn",
    "RequestRecord",
    "ServerStats",
    "main",
    "reply_for",
    "serve_openai",
]

JudgeFormat: TypeAlias = Literal["score-first", "score-only", "reasoning-first", "garbage"]
ReplyFn: TypeAlias = Callable[[str, Sequence[tuple[str, str]]], str | None]
"""``(model, [(role, content), ...]) -> reply content``; ``None`` is sent as ``"content": null``."""

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-3.5-turbo",
    "text-embedding-3-small",
    "text-embedding-3-large",
)
DEFAULT_CRUDE_JUDGES: tuple[str, ...] = (
    "gpt-3.5-turbo",
    "gpt-4o-mini",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "babbage-002",
    "davinci-002",
)
ORGANIZATION = "judgeflow-test"
_FILE_PURPOSES = frozenset(
    {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"},
)
_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
_MALFORMED_BODY = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": [{"index": 0, "mess'


@dataclass(slots=True)
class FakeOpenAI:
    """How the fake server behaves. Mutable on purpose: a running server reads it on every request."""

    latency_s: float = 0.0
    """Slept at the start of every request."""
    rpm: int | None = None
    """Requests per ``rpm_window_s`` and model on ``fault_endpoints``; over it -> 429 with Retry-After."""
    rpm_window_s: float = 60.0
    fault_429: float = 0.0
    """Share of requests answered 429 with ``retry-after-ms`` (``retry_after_s``)."""
    fault_500: float = 0.0
    fault_malformed: float = 0.0
    """Share answered 200 with a truncated JSON body."""
    fault_timeout: float = 0.0
    """Share held for ``timeout_s`` (longer than any client timeout) before a 504."""
    fail_first_n: int = 0
    """The first N requests to ``fault_endpoints`` fail with ``fail_first_status``, whatever the rates."""
    fail_first_status: int = 500
    retry_after_s: float = 0.1
    timeout_s: float = 3600.0
    fault_endpoints: frozenset[str] = frozenset({"chat.completions", "embeddings"})
    seed: int = 0
    embedding_dim: int = 64
    fine_tune_step_s: float = 0.2
    judge_format: JudgeFormat = "score-first"
    judge_garbage_rate: float = 0.0
    crude_judge_models: tuple[str, ...] = DEFAULT_CRUDE_JUDGES
    ft_judge_noise: float = 0.0
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    """When set, requests must carry ``Authorization: Bearer <api_key>`` or get a 401."""
    reply_fn: ReplyFn | None = None
    log_limit: int = 100_000
    """How many ``RequestRecord`` the stats keep (the oldest are dropped)."""
    clock: Callable[[], float] = time.time
    """Epoch seconds: timestamps, the RPM window and the fine-tuning state machine."""

    def __post_init__(self) -> None:
        rates = (self.fault_429, self.fault_500, self.fault_malformed, self.fault_timeout)
        if any(not 0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates must be in [0, 1] and add up to at most 1")
        if not 0.0 <= self.judge_garbage_rate <= 1.0 or not 0.0 <= self.ft_judge_noise <= 1.0:
            raise ValueError("judge_garbage_rate and ft_judge_noise must be in [0, 1]")
        if self.rpm is not None and self.rpm < 1:
            raise ValueError("rpm must be a positive integer or None")
        if self.embedding_dim < 1 or self.rpm_window_s <= 0 or self.fine_tune_step_s < 0:
            raise ValueError("embedding_dim and rpm_window_s must be positive, fine_tune_step_s >= 0")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it arrived: server-clock time (epoch seconds), URL path, and the body's model if any."""

    time: float
    path: str
    model: str | None


def _record_log() -> deque[RequestRecord]:
    return deque(maxlen=100_000)


@dataclass(slots=True)
class ServerStats:
    """What the server saw. ``requests`` counts per endpoint name (``"chat.completions"``, ``"embeddings"``,
    ``"files.create"``, ``"fine_tuning.jobs.retrieve"``...), ``responses`` per HTTP status."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[int] = field(default_factory=Counter)
    served_malformed: int = 0
    served_timeout: int = 0
    rate_limited: int = 0
    """429s from the RPM window (also counted in ``served_429``)."""
    in_flight: int = 0
    max_in_flight: int = 0
    log: deque[RequestRecord] = field(default_factory=_record_log)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def served_429(self) -> int:
        return self.responses[429]

    @property
    def served_500(self) -> int:
        return self.responses[500]


# --------------------------------------------------------------------------------------------------------------
# Deterministic replies: pure functions of (model, messages, config).

_WORD = re.compile(r"[a-z0-9]+")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOP = _wordset(
    "a an and are as at be been but by did do does for from had has have he her his how i in is it its "
    "of on or she that the their them they this to was were what when where which who whom why will with "
    "you your"
)
_HEADING = re.compile(r"^#{2,6}[ \t]*(.+?)[ \t]*:?[ \t]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_LIST_MARKER = re.compile(r"^\s*(?:\[\d+\]|\d+[.)]|[-*•])\s*")
_QUESTION_LINE = re.compile(r"^[ \t]*question[ \t]*:[ \t]*(\S.*)$", re.IGNORECASE | re.MULTILINE)
_WRITE_QUESTIONS = re.compile(
    r"\b(?:write|generate|create|draft|produce|ask)\s+(?:[\w-]+\s+){0,3}questions?\b", re.IGNORECASE
)
_QUESTION_COUNT = re.compile(
    r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:[\w-]+\s+){0,2}questions?(?:\(s\))?",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
_SUBJECT_END = _wordset(
    "is was are were has had have became becomes won wrote founded discovered invented built created developed "
    "lies lie runs run contains contain includes include covers cover remains remain began begins led leads "
    "served serves produced produces described describes"
)
_PRONOUNS = _wordset("it its he she they this these those there his her their")
_LOWER_FIRST = frozenset({"the", "a", "an", "this", "these", "its", "their", "his", "her"})
_GARBAGE = (
    "I am not able to grade this answer.",
    "The answer seems fine overall, more or less.",
    "Hard to say; it depends on what the question meant.",
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _unit_hash(*parts: str) -> float:
    """A fraction in [0, 1) fixed by the parts: per-item draws that do not depend on request order."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _round_half(x: float) -> float:
    return min(5.0, max(1.0, math.floor(x * 2.0 + 0.5) / 2.0))


def _short_score(score: float) -> str:
    return str(int(score)) if score == int(score) else f"{score:.1f}"


def _sections(text: str) -> dict[str, str]:
    """``## Name`` headings -> the text under them (names lower-cased)."""
    heads = list(_HEADING.finditer(text))
    out: dict[str, str] = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out[head.group(1).strip().lower()] = text[head.end() : end].strip()
    return out


def _sentences(text: str) -> list[str]:
    out = []
    for piece in _SENTENCE_END.split(text):
        sentence = _LIST_MARKER.sub("", piece).strip()
        if sentence and not sentence.startswith("#"):
            out.append(sentence)
    return out


def _teacher_rule(reference: str, generated: str) -> tuple[float, str]:
    ref, gen = _content_words(reference), _content_words(generated)
    common = len(ref & gen)
    f1 = 0.0 if common == 0 else 2.0 * common / (len(ref) + len(gen))
    score = _round_half(1.0 + 4.0 * f1)
    if score >= 4.5:
        reason = "The answer agrees with the reference answer in substance."
    elif score >= 3.5:
        reason = "The answer is mostly correct but leaves out some details of the reference answer."
    elif score >= 2.5:
        reason = "The answer is partly correct and misses key facts of the reference answer."
    elif score >= 1.5:
        reason = "The answer has little in common with the reference answer."
    else:
        reason = "The answer does not match the reference answer at all."
    return score, reason


def _crude_rule(generated: str) -> tuple[float, str]:
    score = _round_half(1.0 + len(_words(generated)) / 5.0)
    if score >= 4.0:
        return score, "The answer is long and detailed, so it is probably correct."
    if score >= 2.5:
        return score, "The answer is reasonably detailed."
    return score, "The answer is very short and gives little detail."


def _judge_reply(model: str, sections: dict[str, str], config: FakeOpenAI) -> str:
    question = sections.get("question") or sections.get("user query", "")
    reference = sections["reference answer"]
    generated = sections["generated answer"]
    item = (str(config.seed), model, question, reference, generated)
    if model.startswith("ft:"):
        score, reason = _teacher_rule(reference, generated)
        if config.ft_judge_noise and _unit_hash("noise", *item) < config.ft_judge_noise:
            score = score - 1.0 if score > 3.0 else score + 1.0
    elif model.startswith(config.crude_judge_models):
        score, reason = _crude_rule(generated)
    else:
        score, reason = _teacher_rule(reference, generated)
    fmt = config.judge_format
    if fmt == "garbage" or (config.judge_garbage_rate and _unit_hash("garbage", *item) < config.judge_garbage_rate):
        return _GARBAGE[int(_unit_hash("which", *item) * len(_GARBAGE))]
    if fmt == "score-only":
        return _short_score(score)
    if fmt == "reasoning-first":
        return f"Reasoning: {reason}\nScore: {_short_score(score)}"
    return f"{score:.1f}\n{reason}"


def _ends_subject(words: list[str], i: int) -> bool:
    word = words[i].lower()
    if word in _SUBJECT_END:
        return True
    # A past-tense verb ("designed"), unless it is an adjective after an article ("the renowned tower").
    return word.endswith("ed") and len(word) > 4 and words[i - 1].lower() not in _LOWER_FIRST


def _question_for(sentence: str) -> str:
    words = sentence.rstrip(".!?").split()
    cut = next((i for i in range(1, min(len(words), 7)) if _ends_subject(words, i)), 0)
    subject = words[:cut] if cut else words[:4]
    if subject and subject[0].lower() in _LOWER_FIRST | _PRONOUNS:
        subject = [subject[0].lower(), *subject[1:]]
    about = " ".join(subject).strip(",;:") or "this text"
    return f"What does the text say about {about}?"


def _write_questions(user: str, prompt: str) -> str:
    sections = _sections(user)
    context = next((sections[k] for k in ("context", "document", "text", "passage", "source") if sections.get(k)), "")
    if context:
        # The instructions often follow the context in the same section: stop at them.
        paragraphs = re.split(r"\n\s*\n", context)
        cut = next((i for i, p in enumerate(paragraphs) if _WRITE_QUESTIONS.search(p)), len(paragraphs))
        context = "\n\n".join(paragraphs[:cut]) or context
    else:
        paragraphs = [p for p in re.split(r"\n\s*\n", user) if p.strip()]
        context = max(paragraphs, key=len, default="")
    wanted = 1
    if match := _QUESTION_COUNT.search(prompt):
        token = match.group(1).lower()
        wanted = max(1, min(10, int(token) if token.isdigit() else _NUMBER_WORDS[token]))
    sentences = [s for s in _sentences(context) if len(s.split()) >= 4] or _sentences(context)
    # Sentences that open with a pronoun make poor questions ("What does the text say about it?"): last.
    sentences.sort(key=lambda s: s.split()[0].lower() in _PRONOUNS)
    if not sentences:
        return "Question: What is this text about?\nAnswer: It is empty."
    pairs = [f"Question: {_question_for(s)}\nAnswer: {s}" for s in sentences[:wanted]]
    return "\n\n".join(pairs)


def _answer(user: str) -> str:
    sections = _sections(user)
    question = sections.get("question", "")
    context = next(
        (sections[k] for k in ("context", "passages", "documents", "retrieved context", "sources") if k in sections),
        "",
    )
    if not question:
        lines = _QUESTION_LINE.findall(user)
        question = lines[-1] if lines else (user.strip().splitlines() or [""])[-1]
    if not context:
        context = user.replace(question, " ")
    wanted = _content_words(question)
    best, best_overlap = "", 0
    for sentence in _sentences(context):
        if sentence.lower().startswith("question:"):
            continue
        overlap = len(wanted & _content_words(sentence))
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    return best or "I don't know."


def reply_for(model: str, messages: Sequence[tuple[str, str]], config: FakeOpenAI) -> str | None:
    """The content the fake server answers ``messages`` with (see the module docstring for the rules)."""
    if config.reply_fn is not None:
        return config.reply_fn(model, messages)
    user = next((content for role, content in reversed(messages) if role == "user"), "")
    sections = _sections(user)
    if "reference answer" in sections and "generated answer" in sections:
        return _judge_reply(model, sections, config)
    prompt = "\n".join(content for _, content in messages)
    if "quiz" in prompt.lower() or _WRITE_QUESTIONS.search(prompt):
        return _write_questions(user, prompt)
    return _answer(user)


def _estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


@lru_cache(maxsize=1 << 16)
def _token_hash(token: str) -> int:
    return zlib.crc32(token.encode())


def _embed(text: str, dim: int) -> list[float]:
    """A hashed bag of words: texts sharing words point the same way, so dense retrieval behaves sensibly."""
    vec = [0.0] * dim
    tokens = [w for w in _words(text) if w not in _STOP] or _words(text)
    for token in tokens:
        h = _token_hash(token)
        vec[h % dim] += 1.0 if h & 0x80000000 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


# --------------------------------------------------------------------------------------------------------------
# HTTP


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    payload = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return _json(payload, status, headers)


def _duration(seconds: float) -> str:
    """OpenAI's ``x-ratelimit-reset-*`` style: ``250ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1.0:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60.0)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


@dataclass(slots=True)
class _File:
    id: str
    data: bytes
    filename: str
    purpose: str
    created_at: int
    tokens: int
    examples: int

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }


@dataclass(frozen=True, slots=True)
class _Event:
    at: float
    level: str
    message: str
    type: str = "message"
    data: dict[str, object] | None = None


@dataclass(slots=True)
class _Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    suffix: str | None
    n_epochs: int
    seed: int
    created: float
    step_s: float
    total_steps: int
    trained_tokens: int
    fine_tuned_model: str
    fails: bool
    metadata: object
    timeline: list[tuple[str, _Event]]
    cancelled_at: float | None = None

    @property
    def finish_at(self) -> float:
        return self.created + 3.0 * self.step_s

    def status(self, now: float) -> str:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "cancelled"
        elapsed = now - self.created
        if elapsed < self.step_s:
            return "validating_files"
        if elapsed < 2.0 * self.step_s:
            return "queued"
        if elapsed < 3.0 * self.step_s:
            return "running"
        return "failed" if self.fails else "succeeded"

    def events(self, now: float) -> list[tuple[str, _Event]]:
        """Events that have happened by ``now``, oldest first."""
        limit = now if self.cancelled_at is None else min(now, self.cancelled_at)
        seen = [(eid, ev) for eid, ev in self.timeline if ev.at <= limit]
        if self.cancelled_at is not None and now >= self.cancelled_at:
            seen.append((f"ftevent-{self.id[6:18]}cancel", _Event(self.cancelled_at, "info", "Job cancelled")))
        return seen

    def as_json(self, now: float) -> dict[str, object]:
        status = self.status(now)
        hyper = {"n_epochs": self.n_epochs, "batch_size": 1, "learning_rate_multiplier": 1.0}
        finished: float | None = None
        if status == "cancelled":
            finished = self.cancelled_at
        elif status in _TERMINAL:
            finished = self.finish_at
        error = None
        if status == "failed":
            error = {
                "code": "training_failed",
                "message": "Fine-tuning failed: the job suffix asked the test server for a failure.",
                "param": None,
            }
        return {
            "id": self.id,
            "object": "fine_tuning.job",
            "created_at": int(self.created),
            "error": error,
            "fine_tuned_model": self.fine_tuned_model if status == "succeeded" else None,
            "finished_at": None if finished is None else int(finished),
            "hyperparameters": hyper,
            "model": self.model,
            "organization_id": f"org-{ORGANIZATION}",
            "result_files": [],
            "seed": self.seed,
            "status": status,
            "trained_tokens": self.trained_tokens if status == "succeeded" else None,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "estimated_finish": None if status in _TERMINAL else int(self.finish_at),
            "integrations": [],
            "metadata": self.metadata,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
            "user_provided_suffix": self.suffix,
        }


_Handler: TypeAlias = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]


class OpenAIServer:
    """The state behind one fake server: config, stats, files and jobs. Built by `serve_openai`."""

    def __init__(self, config: FakeOpenAI) -> None:
        self.config = config
        self.stats = ServerStats(log=deque(maxlen=config.log_limit))
        self.host = ""
        self.port = 0
        self._rng = random.Random(config.seed)
        self._eligible = 0
        self._served = 0
        self._windows: dict[str, deque[float]] = {}
        self._files: dict[str, _File] = {}
        self._jobs: dict[str, _Job] = {}
        self._ids: Counter[str] = Counter()
        self._closing = asyncio.Event()

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, what ``openai.AsyncOpenAI(base_url=...)`` takes."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        routes: list[tuple[str, str, str, _Handler]] = [
            ("POST", "/v1/chat/completions", "chat.completions", self._chat),
            ("POST", "/v1/embeddings", "embeddings", self._embeddings),
            ("POST", "/v1/files", "files.create", self._files_create),
            ("GET", "/v1/files/{file_id}", "files.retrieve", self._files_retrieve),
            ("GET", "/v1/files/{file_id}/content", "files.content", self._files_content),
            ("DELETE", "/v1/files/{file_id}", "files.delete", self._files_delete),
            ("GET", "/v1/models", "models.list", self._models_list),
            ("GET", "/v1/models/{model}", "models.retrieve", self._models_retrieve),
            ("POST", "/v1/fine_tuning/jobs", "fine_tuning.jobs.create", self._jobs_create),
            ("GET", "/v1/fine_tuning/jobs", "fine_tuning.jobs.list", self._jobs_list),
            ("GET", "/v1/fine_tuning/jobs/{job_id}", "fine_tuning.jobs.retrieve", self._jobs_retrieve),
            ("GET", "/v1/fine_tuning/jobs/{job_id}/events", "fine_tuning.jobs.events", self._jobs_events),
            ("POST", "/v1/fine_tuning/jobs/{job_id}/cancel", "fine_tuning.jobs.cancel", self._jobs_cancel),
        ]
        for method, path, name, handler in routes:
            app.router.add_route(method, path, self._endpoint(name, handler))
        app.router.add_route("*", "/{tail:.*}", self._endpoint("unknown", self._not_found))
        return app

    # -- the per-request frame ---------------------------------------------------------------------------------

    def _endpoint(self, name: str, handler: _Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests[name] += 1
            stats.in_flight += 1
            if stats.in_flight > stats.max_in_flight:
                stats.max_in_flight = stats.in_flight
            try:
                response = await self._serve(name, handler, request)
            finally:
                stats.in_flight -= 1
            self._served += 1
            stats.responses[response.status] += 1
            response.headers["x-request-id"] = f"req_{self._served:010d}"
            return response

        return handle

    async def _serve(self, name: str, handler: _Handler, request: web.Request) -> web.StreamResponse:
        config = self.config
        body: Any = None
        if request.method == "POST" and request.content_type == "application/json" and request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self.stats.log.append(RequestRecord(config.clock(), request.path, None))
                return _error(400, "We could not parse the JSON body of your request.")
        model = body.get("model") if isinstance(body, dict) else None
        self.stats.log.append(RequestRecord(config.clock(), request.path, model if isinstance(model, str) else None))
        if config.api_key is not None and request.headers.get("Authorization") != f"Bearer {config.api_key}":
            given = request.headers.get("Authorization", "").removeprefix("Bearer ")
            masked = f"{given[:3]}*****{given[-4:]}" if len(given) > 8 else "*****"
            return _error(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")
        if config.latency_s > 0:
            await asyncio.sleep(config.latency_s)
        limit_headers: dict[str, str] | None = None
        if name in config.fault_endpoints:
            fault, limit_headers = await self._faults(model if isinstance(model, str) else "")
            if fault is not None:
                return fault
        response = await handler(request, body)
        if limit_headers:
            response.headers.update(limit_headers)
        return response

    async def _faults(self, model: str) -> tuple[web.Response | None, dict[str, str] | None]:
        config = self.config
        self._eligible += 1
        if self._eligible <= config.fail_first_n:
            return self._status_fault(config.fail_first_status), None
        headers: dict[str, str] | None = None
        if config.rpm is not None:
            limited, headers = self._rate_window(model, config.rpm)
            if limited is not None:
                return limited, None
        total = config.fault_429 + config.fault_500 + config.fault_malformed + config.fault_timeout
        if total <= 0:
            return None, headers
        draw = self._rng.random()
        if draw < config.fault_429:
            return self._status_fault(429), None
        draw -= config.fault_429
        if draw < config.fault_500:
            return self._status_fault(500), None
        draw -= config.fault_500
        if draw < config.fault_malformed:
            self.stats.served_malformed += 1
            return web.Response(body=_MALFORMED_BODY, content_type="application/json"), None
        draw -= config.fault_malformed
        if draw < config.fault_timeout:
            self.stats.served_timeout += 1
            # Sleep on the closing event, so that shutting the server down never waits out a timeout fault.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), config.timeout_s)
            return _error(504, "The server timed out.", type_="server_error"), None
        return None, headers

    def _status_fault(self, status: int) -> web.Response:
        if status == 429:
            wait = self.config.retry_after_s
            headers = {
                "retry-after-ms": str(round(wait * 1000)),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": _duration(wait),
            }
            return _error(
                429,
                f"Rate limit reached (injected by the test server). Please try again in {_duration(wait)}.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if status >= 500:
            return _error(
                status,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
            )
        return _error(status, f"Injected failure with status {status}.")

    def _rate_window(self, model: str, rpm: int) -> tuple[web.Response | None, dict[str, str]]:
        now = self.config.clock()
        span = self.config.rpm_window_s
        window = self._windows.setdefault(model, deque())
        while window and window[0] <= now - span:
            window.popleft()
        if len(window) >= rpm:
            wait = max(0.0, window[0] + span - now)
            self.stats.rate_limited += 1
            headers = {
                "retry-after": str(max(1, math.ceil(wait))),
                "x-ratelimit-limit-requests": str(rpm),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": _duration(wait),
            }
            message = (
                f"Rate limit reached for {model or 'this endpoint'} in organization org-{ORGANIZATION} on "
                f"requests per min (RPM): Limit {rpm}, Used {len(window)}, Requested 1. "
                f"Please try again in {_duration(wait)}."
            )
            return _error(429, message, type_="requests", code="rate_limit_exceeded", headers=headers), headers
        window.append(now)
        reset = window[0] + span - now
        return None, {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-remaining-requests": str(rpm - len(window)),
            "x-ratelimit-reset-requests": _duration(reset),
        }

    def _new_id(self, kind: str) -> str:
        self._ids[kind] += 1
        digest = hashlib.blake2b(f"{self.config.seed}:{kind}:{self._ids[kind]}".encode(), digest_size=12)
        return digest.hexdigest()

    # -- endpoints ---------------------------------------------------------------------------------------------

    async def _not_found(self, request: web.Request, body: Any) -> web.StreamResponse:
        return _error(404, f"Invalid URL ({request.method} {request.path})")

    async def _chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "You must provide a model parameter.", param="model")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            return _error(400, "'messages' must be a non-empty array.", param="messages")
        messages: list[tuple[str, str]] = []
        for item in raw_messages:
            if not isinstance(item, dict) or not isinstance(item.get("role"), str):
                return _error(400, "Each message must be an object with a 'role'.", param="messages")
            messages.append((item["role"], _text_of(item.get("content"))))
        if body.get("stream"):
            return _error(400, "Streaming is not supported by the judgeflow test server.", param="stream")
        content = reply_for(model, messages, self.config)
        finish = "stop"
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        if content and isinstance(max_tokens, int) and _estimate_tokens(content) > max_tokens > 0:
            content, finish = content[: max_tokens * 4], "length"
        prompt_tokens = sum(_estimate_tokens(text) + 4 for _, text in messages) + 3
        completion_tokens = _estimate_tokens(content or "")
        self._ids["chat"] += 1
        return _json(
            {
                "id": f"chatcmpl-jf{self._ids['chat']:010d}",
                "object": "chat.completion",
                "created": int(self.config.clock()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "service_tier": "default",
                "system_fingerprint": "fp_judgeflow",
            }
        )

    async def _embeddings(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "You must provide a model parameter.", param="model")
        raw = body.get("input")
        texts: list[str]
        if isinstance(raw, str):
            texts = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
            texts = list(raw)
        elif isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
            texts = [" ".join(f"t{t}" for t in raw)]
        elif isinstance(raw, list) and raw and all(isinstance(t, list) and t for t in raw):
            texts = [" ".join(f"t{t}" for t in item) for item in raw]
        else:
            return _error(400, "'$.input' is invalid. Please check the API reference.", param="input")
        if any(not t for t in texts):
            return _error(400, "'$.input' is invalid: inputs cannot be empty strings.", param="input")
        dim = body.get("dimensions") or self.config.embedding_dim
        if not isinstance(dim, int) or dim < 1:
            return _error(400, "'dimensions' must be a positive integer.", param="dimensions")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return _error(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
        data = []
        for index, text in enumerate(texts):
            vector = _embed(text, dim)
            embedding: object = vector
            if fmt == "base64":
                # Little-endian float32, what the SDK decodes with numpy.frombuffer / array("f").
                embedding = base64.b64encode(array.array("f", vector).tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(_words(t)) for t in texts)
        return _json(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _files_create(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/"):
            return _error(400, "Uploads must be multipart/form-data.", param="file")
        # Read the parts into memory ourselves: request.post() spools files to temporary files nobody closes.
        reader = await request.multipart()
        data: bytes | None = None
        filename = "upload.jsonl"
        purpose = ""
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                data = await part.read()
                filename = part.filename or filename
            elif part.name == "purpose":
                purpose = (await part.text()).strip()
            else:
                await part.release()
        if data is None:
            return _error(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in _FILE_PURPOSES:
            return _error(400, f"'{purpose}' is not a valid purpose.", param="purpose")
        examples = 0
        if purpose == "fine-tune":
            problem, examples = _check_fine_tune_file(data)
            if problem:
                return _error(
                    400,
                    f"Invalid file format for Fine-Tuning API. {problem}",
                    param="file",
                    code="invalid_file_format",
                )
        record = _File(
            id=f"file-{self._new_id('file')[:22]}",
            data=data,
            filename=filename,
            purpose=purpose,
            created_at=int(self.config.clock()),
            tokens=_estimate_tokens(data.decode("utf-8", "replace")),
            examples=examples,
        )
        self._files[record.id] = record
        return _json(record.as_json())

    def _file_or_404(self, request: web.Request) -> _File | web.Response:
        file_id = request.match_info["file_id"]
        record = self._files.get(file_id)
        if record is None:
            return _error(404, f"No such File object: {file_id}", param="id")
        return record

    async def _files_retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._file_or_404(request)
        return found if isinstance(found, web.Response) else _json(found.as_json())

    async def _files_content(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._file_or_404(request)
        if isinstance(found, web.Response):
            return found
        return web.Response(body=found.data, content_type="application/octet-stream")

    async def _files_delete(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._file_or_404(request)
        if isinstance(found, web.Response):
            return found
        del self._files[found.id]
        return _json({"id": found.id, "object": "file", "deleted": True})

    def _model_ids(self) -> list[str]:
        now = self.config.clock()
        tuned = [job.fine_tuned_model for job in self._jobs.values() if job.status(now) == "succeeded"]
        return [*self.config.models, *tuned]

    @staticmethod
    def _model_json(model_id: str) -> dict[str, object]:
        owner = ORGANIZATION if model_id.startswith("ft:") else "system"
        return {"id": model_id, "object": "model", "created": 1_700_000_000, "owned_by": owner}

    async def _models_list(self, request: web.Request, body: Any) -> web.StreamResponse:
        return _json({"object": "list", "data": [self._model_json(m) for m in self._model_ids()]})

    async def _models_retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        model_id = request.match_info["model"]
        if model_id not in self._model_ids():
            return _error(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        return _json(self._model_json(model_id))

    async def _jobs_create(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "You must provide a model parameter.", param="model")
        training_id = body.get("training_file")
        training = self._files.get(training_id) if isinstance(training_id, str) else None
        if training is None or training.purpose != "fine-tune":
            return _error(
                400, f"Invalid training_file: {training_id}", param="training_file", code="invalid_training_file"
            )
        validation_id = body.get("validation_file")
        if validation_id is not None and validation_id not in self._files:
            return _error(400, f"Invalid validation_file: {validation_id}", param="validation_file")
        suffix = body.get("suffix")
        if suffix is not None and (not isinstance(suffix, str) or len(suffix) > 64):
            return _error(400, "'suffix' must be a string of at most 64 characters.", param="suffix")
        hyper = body.get("hyperparameters")
        method = body.get("method")
        if not isinstance(hyper, dict) and isinstance(method, dict):
            supervised = method.get("supervised")
            hyper = supervised.get("hyperparameters") if isinstance(supervised, dict) else None
        n_epochs_raw = hyper.get("n_epochs", "auto") if isinstance(hyper, dict) else "auto"
        if n_epochs_raw == "auto" or n_epochs_raw is None:
            n_epochs = 3
        elif isinstance(n_epochs_raw, int) and 1 <= n_epochs_raw <= 50:
            n_epochs = n_epochs_raw
        else:
            return _error(400, "'n_epochs' must be 'auto' or an integer from 1 to 50.", param="hyperparameters")
        seed = body.get("seed")
        digest = self._new_id("job")
        job_id = f"ftjob-{digest}"
        short = digest[:8]
        created = self.config.clock()
        step_s = self.config.fine_tune_step_s
        total_steps = max(1, min(20, n_epochs * max(1, training.examples)))
        fails = suffix is not None and "fail" in suffix.lower()
        fine_tuned = f"ft:{model}:{ORGANIZATION}:{suffix or ''}:{short}"
        timeline = _job_timeline(created, step_s, total_steps, training.id, fine_tuned, fails, seed=digest)
        job = _Job(
            id=job_id,
            model=model,
            training_file=training.id,
            validation_file=validation_id if isinstance(validation_id, str) else None,
            suffix=suffix,
            n_epochs=n_epochs,
            seed=seed if isinstance(seed, int) else int(digest[:6], 16),
            created=created,
            step_s=step_s,
            total_steps=total_steps,
            trained_tokens=training.tokens * n_epochs,
            fine_tuned_model=fine_tuned,
            fails=fails,
            metadata=body.get("metadata"),
            timeline=[(f"ftevent-{digest[:12]}{i:04d}", event) for i, event in enumerate(timeline)],
        )
        self._jobs[job_id] = job
        return _json(job.as_json(created))

    def _job_or_404(self, request: web.Request) -> _Job | web.Response:
        job_id = request.match_info["job_id"]
        job = self._jobs.get(job_id)
        if job is None:
            return _error(404, f"No fine-tuning job with id {job_id}", param="fine_tuning_job_id")
        return job

    async def _jobs_retrieve(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._job_or_404(request)
        return found if isinstance(found, web.Response) else _json(found.as_json(self.config.clock()))

    async def _jobs_list(self, request: web.Request, body: Any) -> web.StreamResponse:
        now = self.config.clock()
        jobs = [job.as_json(now) for job in reversed(self._jobs.values())]
        return _json(_page(jobs, request))

    async def _jobs_events(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._job_or_404(request)
        if isinstance(found, web.Response):
            return found
        events = [
            {
                "id": event_id,
                "object": "fine_tuning.job.event",
                "created_at": int(event.at),
                "level": event.level,
                "message": event.message,
                "data": event.data or {},
                "type": event.type,
            }
            for event_id, event in reversed(found.events(self.config.clock()))
        ]
        return _json(_page(events, request))

    async def _jobs_cancel(self, request: web.Request, body: Any) -> web.StreamResponse:
        found = self._job_or_404(request)
        if isinstance(found, web.Response):
            return found
        now = self.config.clock()
        status = found.status(now)
        if status in _TERMINAL:
            return _error(400, f"Job {found.id} has already finished with status {status}.", param="job_id")
        found.cancelled_at = now
        return _json(found.as_json(now))


def _page(items: list[dict[str, object]], request: web.Request) -> dict[str, object]:
    """OpenAI cursor pagination, newest first: ``after`` is the id of the last item of the previous page."""
    after = request.query.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    try:
        limit = max(1, min(100, int(request.query.get("limit", "20"))))
    except ValueError:
        limit = 20
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit}


def _check_fine_tune_file(data: bytes) -> tuple[str, int]:
    """``(problem, examples)``: an empty problem means every line is a chat example with a messages list."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "The file is not UTF-8 text.", 0
    examples = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except ValueError:
            return f"Line {number} is not valid JSON.", examples
        messages = example.get("messages") if isinstance(example, dict) else None
        if not isinstance(messages, list) or not messages:
            return f"Line {number} has no 'messages' list.", examples
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                return f"Line {number}: every message needs a 'role'.", examples
        examples += 1
    if examples == 0:
        return "The file has no training examples.", 0
    return "", examples


def _job_timeline(
    created: float, step_s: float, steps: int, file_id: str, model: str, fails: bool, *, seed: str
) -> list[_Event]:
    events = [
        _Event(created, "info", "Created fine-tuning job"),
        _Event(created, "info", f"Validating training file: {file_id}"),
        _Event(created + step_s, "info", "Files validated, moving job to queued state"),
        _Event(created + 2.0 * step_s, "info", "Fine-tuning job started"),
    ]
    base = 1.5 + _unit_hash("loss", seed)
    for step in range(1, steps + 1):
        loss = base * 0.75**step
        events.append(
            _Event(
                created + 2.0 * step_s + step_s * step / (steps + 1),
                "info",
                f"Step {step}/{steps}: training loss={loss:.4f}",
                type="metrics",
                data={"step": step, "total_steps": steps, "train_loss": round(loss, 6)},
            )
        )
    done = created + 3.0 * step_s
    if fails:
        events.append(_Event(done, "error", "Fine-tuning failed: the job suffix asked for a failure."))
    else:
        events.append(_Event(done, "info", f"New fine-tuned model created: {model}"))
        events.append(_Event(done, "info", "The job has successfully completed"))
    return events


@contextlib.asynccontextmanager
async def serve_openai(
    config: FakeOpenAI | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[OpenAIServer]:
    """Serve a fake OpenAI API on ``host:port`` (0 picks a free port) in the running asyncio loop.

    On exit the listening socket closes, requests held by timeout faults are released, and the runner is
    cleaned up in a shielded scope bounded to a few seconds.
    """
    server = OpenAIServer(config if config is not None else FakeOpenAI())
    runner = web.AppRunner(server.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        server.host, server.port = host, int(bound[1])
        yield server
    finally:
        server._closing.set()
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            await runner.cleanup()


# --------------------------------------------------------------------------------------------------------------
# CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m judgeflow.testing.openai_server",
        description="Serve a fake OpenAI-compatible API until killed (for demos, benchmarks and tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on start)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds slept per request")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute and model")
    parser.add_argument("--fault-429", type=float, default=0.0)
    parser.add_argument("--fault-500", type=float, default=0.0)
    parser.add_argument("--fault-malformed", type=float, default=0.0)
    parser.add_argument("--fault-timeout", type=float, default=0.0)
    parser.add_argument("--fail-first", type=int, default=0, help="fail the first N requests with a 500")
    parser.add_argument("--fine-tune-step", type=float, default=0.2, help="seconds per fine-tuning phase")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--judge-format", default="score-first", choices=list(get_args(JudgeFormat)))
    parser.add_argument("--garbage-rate", type=float, default=0.0, help="share of judge replies without a score")
    parser.add_argument("--ft-noise", type=float, default=0.0, help="share of fine-tuned judge scores moved")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


async def _serve_forever(args: argparse.Namespace) -> None:
    config = FakeOpenAI(
        latency_s=args.latency,
        rpm=args.rpm,
        fault_429=args.fault_429,
        fault_500=args.fault_500,
        fault_malformed=args.fault_malformed,
        fault_timeout=args.fault_timeout,
        fail_first_n=args.fail_first,
        fine_tune_step_s=args.fine_tune_step,
        embedding_dim=args.embedding_dim,
        judge_format=args.judge_format,
        judge_garbage_rate=args.garbage_rate,
        ft_judge_noise=args.ft_noise,
        seed=args.seed,
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_openai(config, host=args.host, port=args.port) as server:
            print(server.base_url, flush=True)
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        anyio.run(_serve_forever, args, backend="asyncio")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
