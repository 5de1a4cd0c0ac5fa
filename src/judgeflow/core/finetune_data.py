"""Checks a chat fine-tuning set before any of it is uploaded or paid for: format, token counts, cost.

This follows the OpenAI cookbook notebook "Data preparation and analysis for chat model fine-tuning": the same
format checks (each reported per example, by kind), the same warnings (missing system or user messages,
examples over the context limit, which the provider truncates), the same default-epochs rule and the same count
of billed tokens. Catching a bad file here costs nothing; catching it at the provider costs an upload, a job
and a failed run at the very end of a pipeline.

Token counts are an **estimate**. The cookbook counts with tiktoken, but tiktoken downloads its BPE tables on
first use, which fails offline (and judgeflow must run offline). We use ``ceil(chars / 4)`` per string, the
rule of thumb OpenAI gives for English text, plus the cookbook's framing: 3 tokens per message, 1 per ``name``
and 3 to prime the reply. For English prose it lands within a few tens of percent of tiktoken; code, numbers
and non-Latin scripts tokenise denser, so treat the cost as a guide, not a quote.

Everything here is pure (no I/O, no clock): it takes parsed JSON lines and returns a `DatasetReport`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from judgeflow.core.pricing import DEFAULT_PRICES, FINE_TUNED_PREFIX, TRAINING_PREFIX, Price, cost_usd, price_for
from judgeflow.core.tokens import text_tokens
from judgeflow.protocol.messages import Usage

__all__ = [
    "CONTEXT_LIMITS",
    "DEFAULT_CONTEXT_LIMIT",
    "MIN_EXAMPLES",
    "DatasetReport",
    "FormatError",
    "analyze_jsonl",
    "analyze_training_set",
    "context_limit_for",
    "default_epochs",
    "estimate_training_cost",
]

MIN_EXAMPLES = 10
"""OpenAI refuses a fine-tuning job with fewer training examples than this."""

DEFAULT_CONTEXT_LIMIT = 16_385
"""Tokens per training example for a model not in `CONTEXT_LIMITS` (gpt-3.5-turbo's, the cookbook's)."""

# Longest tokens one training example may have, per base model family (OpenAI fine-tuning guide). Longer
# examples are truncated by the provider. Looked up like prices: exact name, then longest prefix at a "-".
CONTEXT_LIMITS: Mapping[str, int] = MappingProxyType(
    {
        "gpt-3.5-turbo": 16_385,
        "gpt-3.5-turbo-0613": 4_096,
        "babbage-002": 16_384,
        "davinci-002": 16_384,
        "gpt-4-0613": 8_192,
        "gpt-4o": 65_536,
        "gpt-4o-mini": 65_536,
        "gpt-4.1": 65_536,
        "gpt-4.1-mini": 65_536,
        "gpt-4.1-nano": 65_536,
    }
)

_ROLES = frozenset({"system", "user", "assistant"})
_MESSAGE_KEYS = frozenset({"role", "content", "name", "weight"})
_EXAMPLE_KEYS = frozenset({"messages"})
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3
# The cookbook's default-epochs rule: aim for 3 epochs, but see at least 100 and at most 25,000 examples in all.
_TARGET_EPOCHS = 3
_MIN_TARGET_EXAMPLES = 100
_MAX_TARGET_EXAMPLES = 25_000
_MIN_DEFAULT_EPOCHS = 1
_MAX_DEFAULT_EPOCHS = 25


@dataclass(frozen=True, slots=True)
class FormatError:
    """One problem with one example; ``kind`` is the cookbook's error type (``missing_content``, ...)."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class DatasetReport:
    """What `analyze_training_set` found. Token counts are estimates (see the module docstring)."""

    n_examples: int
    errors: Mapping[int, tuple[FormatError, ...]]
    warnings: tuple[str, ...]
    example_tokens: tuple[int, ...]
    too_long: tuple[int, ...]
    context_limit: int
    epochs: int
    epochs_is_default: bool
    base_model: str = ""
    estimated_cost_usd: float | None = None
    n_missing_system: int = 0
    n_missing_user: int = 0
    error_counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every example is well formed (warnings do not count)."""
        return not self.errors

    @property
    def total_tokens(self) -> int:
        return sum(self.example_tokens)

    @property
    def billing_tokens(self) -> int:
        """Tokens of one pass over the data; an example over the limit is charged only up to the limit."""
        return sum(min(self.context_limit, tokens) for tokens in self.example_tokens)

    @property
    def billed_tokens(self) -> int:
        """Trained tokens the provider charges for: one pass times the epochs."""
        return self.billing_tokens * self.epochs

    def problems(self, *, limit: int = 20) -> list[str]:
        """Human-readable lines, one per error (the first ``limit``), then how many more there are."""
        lines = [f"example {index}: {error}" for index, errs in sorted(self.errors.items()) for error in errs]
        if len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
        return lines

    def summary(self) -> str:
        """One line for a status message: counts, tokens, epochs and the estimated cost."""
        epochs = f"{self.epochs} epochs" + (" (default)" if self.epochs_is_default else "")
        cost = "unknown cost" if self.estimated_cost_usd is None else f"estimated ${self.estimated_cost_usd:.2f}"
        return (
            f"{self.n_examples} examples, ~{self.total_tokens:,} tokens, {epochs}: "
            f"~{self.billed_tokens:,} trained tokens, {cost} (token estimate)"
        )


def _message_tokens(message: Mapping[str, object]) -> int:
    tokens = _TOKENS_PER_MESSAGE
    for key, value in message.items():
        if isinstance(value, str):
            tokens += text_tokens(value)
            if key == "name":
                tokens += _TOKENS_PER_NAME
    return tokens


def _lookup(model: str, table: Mapping[str, int]) -> int | None:
    if model in table:
        return table[model]
    best = max((key for key in table if model.startswith(key + "-")), key=len, default=None)
    return None if best is None else table[best]


def _base_of(model: str) -> str:
    """``ft:BASE:org:suffix:id`` -> BASE (continuing to fine-tune a fine-tuned model trains its base)."""
    if model.startswith(FINE_TUNED_PREFIX):
        return model[len(FINE_TUNED_PREFIX) :].split(":", 1)[0]
    return model


def context_limit_for(model: str, table: Mapping[str, int] = CONTEXT_LIMITS) -> int:
    """Longest training example (tokens) ``model`` takes; `DEFAULT_CONTEXT_LIMIT` when unknown."""
    limit = _lookup(_base_of(model), table)
    return DEFAULT_CONTEXT_LIMIT if limit is None else limit


def default_epochs(n_examples: int) -> int:
    """Epochs the provider picks for ``n_epochs="auto"`` (the cookbook's rule): 3, within [1, 25], so that
    epochs times examples is at least 100 and at most 25,000 where possible."""
    if n_examples <= 0:
        return _TARGET_EPOCHS
    if n_examples * _TARGET_EPOCHS < _MIN_TARGET_EXAMPLES:
        return min(_MAX_DEFAULT_EPOCHS, _MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * _TARGET_EPOCHS > _MAX_TARGET_EXAMPLES:
        return max(_MIN_DEFAULT_EPOCHS, _MAX_TARGET_EXAMPLES // n_examples)
    return _TARGET_EPOCHS


def estimate_training_cost(
    trained_tokens: int, base_model: str, *, prices: Mapping[str, Price] = DEFAULT_PRICES
) -> float | None:
    """USD for training ``base_model`` on ``trained_tokens`` (tokens x epochs), from ``training:<base>`` prices.

    None when the table has no training price for the model: unknown is not free.
    """
    price = price_for(TRAINING_PREFIX + _base_of(base_model), prices)
    return None if price is None else cost_usd(Usage(input_tokens=trained_tokens), price)


def _check_message(position: int, message: object) -> list[FormatError]:
    where = f"message {position}"
    if not isinstance(message, dict):
        return [FormatError("data_type", f"{where} is a {type(message).__name__}, not an object")]
    errors: list[FormatError] = []
    missing = [key for key in ("role", "content") if key not in message]
    if missing:
        errors.append(FormatError("message_missing_key", f"{where} has no {' or '.join(missing)}"))
    unknown = sorted(str(key) for key in message if key not in _MESSAGE_KEYS)
    if unknown:
        errors.append(FormatError("message_unrecognized_key", f"{where} has unknown keys {unknown}"))
    role = message.get("role")
    if "role" in message and role not in _ROLES:
        errors.append(FormatError("unrecognized_role", f"{where} has role {role!r} (allowed: {sorted(_ROLES)})"))
    content = message.get("content")
    if "content" in message and (not isinstance(content, str) or not content):
        errors.append(FormatError("missing_content", f"{where} content must be a non-empty string"))
    if "name" in message and not isinstance(message["name"], str):
        errors.append(FormatError("data_type", f"{where} name must be a string"))
    if "weight" in message and (message["weight"] not in (0, 1) or isinstance(message["weight"], bool)):
        errors.append(FormatError("invalid_weight", f"{where} weight must be 0 or 1"))
    return errors


def _check_example(example: object) -> tuple[list[FormatError], list[dict[str, object]]]:
    """(errors, the messages that are objects): the second feeds the token estimate even when invalid."""
    if not isinstance(example, dict):
        return [FormatError("data_type", f"an example must be an object, got {type(example).__name__}")], []
    errors: list[FormatError] = []
    unknown = sorted(str(key) for key in example if key not in _EXAMPLE_KEYS)
    if unknown:
        errors.append(FormatError("unrecognized_key", f"unknown keys {unknown} (only 'messages' is expected)"))
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        errors.append(FormatError("missing_messages_list", "no non-empty 'messages' list"))
        return errors, []
    for position, message in enumerate(messages):
        errors.extend(_check_message(position, message))
    objects = [m for m in messages if isinstance(m, dict)]
    if not any(m.get("role") == "assistant" for m in objects):
        errors.append(FormatError("example_missing_assistant_message", "no assistant message to learn from"))
    return errors, objects


def analyze_training_set(
    examples: Sequence[object],
    *,
    base_model: str = "",
    epochs: int | None = None,
    context_limit: int | None = None,
    prices: Mapping[str, Price] = DEFAULT_PRICES,
) -> DatasetReport:
    """Validate parsed JSONL lines (``{"messages": [...]}``) and estimate tokens and cost of training on them.

    ``epochs=None`` means the provider's default (`default_epochs`); ``context_limit=None`` looks the base
    model up in `CONTEXT_LIMITS`. Never raises on bad data: every problem is in the report.
    """
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    limit = context_limit if context_limit is not None else context_limit_for(base_model)
    errors: dict[int, tuple[FormatError, ...]] = {}
    tokens: list[int] = []
    missing_system = missing_user = 0
    for index, example in enumerate(examples):
        problems, messages = _check_example(example)
        if problems:
            errors[index] = tuple(problems)
        tokens.append(sum(_message_tokens(m) for m in messages) + _REPLY_PRIMING if messages else 0)
        roles = {m.get("role") for m in messages}
        missing_system += "system" not in roles
        missing_user += "user" not in roles
    n = len(tokens)
    too_long = tuple(i for i, t in enumerate(tokens) if t > limit)
    warnings: list[str] = []
    if n < MIN_EXAMPLES:
        warnings.append(f"{n} examples: OpenAI requires at least {MIN_EXAMPLES} to start a fine-tuning job")
    if missing_system:
        warnings.append(f"{missing_system} examples have no system message")
    if missing_user:
        warnings.append(f"{missing_user} examples have no user message")
    if too_long:
        shown = ", ".join(str(i) for i in too_long[:10]) + (", ..." if len(too_long) > 10 else "")
        warnings.append(
            f"{len(too_long)} examples may be over the {limit:,}-token limit and will be truncated: {shown}"
        )
    report = DatasetReport(
        n_examples=n,
        errors=MappingProxyType(errors),
        warnings=tuple(warnings),
        example_tokens=tuple(tokens),
        too_long=too_long,
        context_limit=limit,
        epochs=epochs if epochs is not None else default_epochs(n),
        epochs_is_default=epochs is None,
        base_model=base_model,
        n_missing_system=missing_system,
        n_missing_user=missing_user,
        error_counts=MappingProxyType(dict(Counter(e.kind for errs in errors.values() for e in errs))),
    )
    if not base_model:
        return report
    return replace(report, estimated_cost_usd=estimate_training_cost(report.billed_tokens, base_model, prices=prices))


def analyze_jsonl(
    text: str,
    *,
    base_model: str = "",
    epochs: int | None = None,
    context_limit: int | None = None,
    prices: Mapping[str, Price] = DEFAULT_PRICES,
) -> DatasetReport:
    """`analyze_training_set` over the text of a JSONL file; a line that is not JSON is an ``invalid_json``
    error at its example index (blank lines are skipped and do not count)."""
    parsed: list[object] = []
    bad: dict[int, FormatError] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError as error:
            bad[len(parsed)] = FormatError("invalid_json", f"not valid JSON ({error.msg})")
            parsed.append(None)
    report = analyze_training_set(
        parsed, base_model=base_model, epochs=epochs, context_limit=context_limit, prices=prices
    )
    if not bad:
        return report
    errors = dict(report.errors)
    errors.update({index: (error,) for index, error in bad.items()})
    counts = Counter(e.kind for errs in errors.values() for e in errs)
    return replace(report, errors=MappingProxyType(errors), error_counts=MappingProxyType(dict(counts)))
