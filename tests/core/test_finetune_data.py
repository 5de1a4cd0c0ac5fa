"""`judgeflow.core.finetune_data`: the cookbook's format checks, the token estimate, default epochs and the cost."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.finetune_data import (
    DEFAULT_CONTEXT_LIMIT,
    MIN_EXAMPLES,
    analyze_jsonl,
    analyze_training_set,
    context_limit_for,
    default_epochs,
    estimate_training_cost,
)
from judgeflow.core.pricing import Price
from judgeflow.core.prompts import training_example, training_example_json
from judgeflow.core.tokens import text_tokens
from judgeflow.protocol.messages import JudgeInput


def chat(system: str = "Grade it.", user: str = "Q?", assistant: str = "4.0\nFine.") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": assistant},
        ]
    }


def good_set(n: int = MIN_EXAMPLES) -> list[dict[str, Any]]:
    return [chat(user=f"question {i}?") for i in range(n)]


# --------------------------------------------------------------------------------------------------------------
# Format checks


def test_judgeflow_training_examples_are_valid() -> None:
    example = training_example("q1", JudgeInput("Who?", "Ada", "Ada Lovelace"), "5.0\nRight.", 5.0)
    report = analyze_training_set([training_example_json(example)] * MIN_EXAMPLES, base_model="gpt-4o-mini")
    assert report.ok
    assert report.errors == {}
    assert report.warnings == ()
    assert report.n_examples == MIN_EXAMPLES


def message_with(**changes: object) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "4.0"}
    message.update(changes)
    return {"messages": [{"role": "user", "content": "Q?"}, {k: v for k, v in message.items() if v is not None}]}


@pytest.mark.parametrize(
    ("example", "kind"),
    [
        pytest.param(["not", "an", "object"], "data_type", id="list-example"),
        pytest.param({}, "missing_messages_list", id="no-messages"),
        pytest.param({"messages": []}, "missing_messages_list", id="empty-messages"),
        pytest.param({"messages": "hello"}, "missing_messages_list", id="messages-not-a-list"),
        pytest.param({"messages": ["hi"], "x": 1}, "data_type", id="message-not-an-object"),
        pytest.param({**chat(), "tools": []}, "unrecognized_key", id="unknown-top-level-key"),
        pytest.param(message_with(content=None), "message_missing_key", id="no-content"),
        pytest.param({"messages": [{"content": "4.0"}]}, "message_missing_key", id="no-role"),
        pytest.param(message_with(tool_calls=[]), "message_unrecognized_key", id="unknown-message-key"),
        pytest.param(message_with(role="tool"), "unrecognized_role", id="tool-role"),
        pytest.param(message_with(content=""), "missing_content", id="empty-content"),
        pytest.param(message_with(content=4.0), "missing_content", id="number-content"),
        pytest.param(message_with(content=[{"type": "text", "text": "4"}]), "missing_content", id="parts-content"),
        pytest.param(message_with(name=3), "data_type", id="name-not-a-string"),
        pytest.param(message_with(weight=0.5), "invalid_weight", id="weight-half"),
        pytest.param(message_with(weight=True), "invalid_weight", id="weight-bool"),
        pytest.param(message_with(role="user"), "example_missing_assistant_message", id="no-assistant"),
    ],
)
def test_each_format_error_is_reported_at_its_index(example: object, kind: str) -> None:
    examples: list[object] = [*good_set(3), example, *good_set(2)]
    report = analyze_training_set(examples)
    assert not report.ok
    assert list(report.errors) == [3]
    assert kind in {error.kind for error in report.errors[3]}
    assert report.error_counts[kind] >= 1
    assert all(line.startswith("example 3: ") for line in report.problems())


def test_name_and_weight_are_allowed() -> None:
    example = message_with(name="teacher", weight=0)
    example["messages"].append({"role": "assistant", "content": "5.0", "weight": 1})
    assert analyze_training_set([example]).ok


def test_problems_lists_every_error_up_to_a_limit() -> None:
    report = analyze_training_set([{"messages": []}] * 30)
    assert len(report.errors) == 30
    lines = report.problems(limit=5)
    assert lines[:5] == [f"example {i}: missing_messages_list: no non-empty 'messages' list" for i in range(5)]
    assert lines[-1] == "... and 25 more"


def test_one_message_can_have_several_problems() -> None:
    report = analyze_training_set([{"messages": [{"role": "robot", "content": "", "extra": 1}]}])
    kinds = sorted(error.kind for error in report.errors[0])
    assert kinds == [
        "example_missing_assistant_message",
        "message_unrecognized_key",
        "missing_content",
        "unrecognized_role",
    ]


# --------------------------------------------------------------------------------------------------------------
# Warnings


def test_fewer_than_ten_examples_is_a_warning_not_an_error() -> None:
    report = analyze_training_set(good_set(MIN_EXAMPLES - 1))
    assert report.ok
    assert any("at least 10" in warning for warning in report.warnings)
    assert not any("at least" in warning for warning in analyze_training_set(good_set()).warnings)


def test_missing_system_and_user_messages_are_counted() -> None:
    no_system = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}]}
    no_user = {"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]}
    report = analyze_training_set([*good_set(), no_system, no_system, no_user])
    assert report.ok
    assert (report.n_missing_system, report.n_missing_user) == (2, 1)
    assert "2 examples have no system message" in report.warnings
    assert "1 examples have no user message" in report.warnings


def test_examples_over_the_context_limit_are_named() -> None:
    examples = [*good_set(), chat(user="x" * 400), chat(assistant="y" * 400)]
    report = analyze_training_set(examples, context_limit=100)
    assert report.ok
    assert report.too_long == (10, 11)
    assert any("2 examples may be over the 100-token limit" in w and "10, 11" in w for w in report.warnings)
    # The provider truncates them, so each is billed only up to the limit.
    assert report.billing_tokens == sum(report.example_tokens[:10]) + 200


# --------------------------------------------------------------------------------------------------------------
# Tokens, epochs, cost


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_text_tokens_is_a_quarter_of_the_characters_rounded_up(text: str, tokens: int) -> None:
    assert text_tokens(text) == tokens


def test_example_tokens_follow_the_cookbook_framing() -> None:
    # Per message: 3 + tokens of every string value (role included); "name" costs 1 more; 3 to prime the reply.
    example = {
        "messages": [
            {"role": "system", "content": "abcd"},  # 3 + 2 + 1
            {"role": "user", "content": "abcdefgh", "name": "ann"},  # 3 + 1 + 2 + (1 + 1)
            {"role": "assistant", "content": "a"},  # 3 + 3 + 1
        ]
    }
    report = analyze_training_set([example])
    assert report.example_tokens == (6 + 8 + 7 + 3,)
    assert report.total_tokens == 24


@pytest.mark.parametrize(
    ("n", "epochs"),
    [(0, 3), (1, 25), (4, 25), (5, 20), (10, 10), (33, 3), (34, 3), (100, 3), (8333, 3), (8334, 2), (30_000, 1)],
)
def test_default_epochs_follow_the_cookbook_rule(n: int, epochs: int) -> None:
    assert default_epochs(n) == epochs


def test_billed_tokens_are_tokens_times_epochs() -> None:
    default = analyze_training_set(good_set(20))
    assert default.epochs == 5
    assert default.epochs_is_default
    assert default.billed_tokens == default.billing_tokens * 5
    chosen = analyze_training_set(good_set(20), epochs=2)
    assert (chosen.epochs, chosen.epochs_is_default) == (2, False)
    assert chosen.billed_tokens == default.billing_tokens * 2
    with pytest.raises(ValueError, match="epochs"):
        analyze_training_set(good_set(), epochs=0)


@pytest.mark.parametrize(
    ("model", "limit"),
    [
        ("gpt-3.5-turbo", 16_385),
        ("gpt-3.5-turbo-0125", 16_385),
        ("gpt-3.5-turbo-0613", 4_096),
        ("gpt-4o-mini", 65_536),
        ("gpt-4o-mini-2024-07-18", 65_536),
        ("gpt-4o-2024-08-06", 65_536),
        ("gpt-4.1-nano-2025-04-14", 65_536),
        ("ft:gpt-4o-mini-2024-07-18:org:judge:abc123", 65_536),
        ("davinci-002", 16_384),
        ("some-open-model", DEFAULT_CONTEXT_LIMIT),
        ("", DEFAULT_CONTEXT_LIMIT),
    ],
)
def test_context_limit_lookup(model: str, limit: int) -> None:
    assert context_limit_for(model) == limit


def test_training_cost_comes_from_training_prices() -> None:
    assert estimate_training_cost(1_000_000, "gpt-4o-mini") == pytest.approx(3.00)
    assert estimate_training_cost(2_000_000, "gpt-4o-mini-2024-07-18") == pytest.approx(6.00)
    assert estimate_training_cost(1_000_000, "gpt-3.5-turbo-0125") == pytest.approx(8.00)
    assert estimate_training_cost(1_000_000, "ft:gpt-4o:org:judge:abc") == pytest.approx(25.00)
    assert estimate_training_cost(1_000_000, "llama-3") is None  # unknown is not free
    custom = {"training:llama-3": Price(1.5, 0.0)}
    assert estimate_training_cost(1_000_000, "llama-3-8b", prices=custom) == pytest.approx(1.5)


def test_report_carries_the_estimated_cost_and_a_summary() -> None:
    report = analyze_training_set(good_set(40), base_model="gpt-4o-mini", epochs=3)
    expected = estimate_training_cost(report.billed_tokens, "gpt-4o-mini")
    assert expected is not None
    assert report.estimated_cost_usd == pytest.approx(expected)
    assert report.summary().startswith(f"40 examples, ~{report.total_tokens:,} tokens, 3 epochs: ")
    assert "estimate" in report.summary()
    assert analyze_training_set(good_set()).estimated_cost_usd is None
    assert "unknown cost" in analyze_training_set(good_set(), base_model="llama-3").summary()
    assert "(default)" in analyze_training_set(good_set()).summary()


# --------------------------------------------------------------------------------------------------------------
# JSONL text


def test_analyze_jsonl_reports_lines_that_are_not_json() -> None:
    lines = [json.dumps(e) for e in good_set(3)]
    text = "\n".join([lines[0], "", "{not json", lines[1], "   ", lines[2]]) + "\n"
    report = analyze_jsonl(text, base_model="gpt-4o-mini")
    assert report.n_examples == 4  # blank lines are not examples
    assert list(report.errors) == [1]
    assert [e.kind for e in report.errors[1]] == ["invalid_json"]
    assert report.error_counts == {"invalid_json": 1}
    assert analyze_jsonl("\n".join(lines)).ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": json_values}
)
example_like = json_values | st.fixed_dictionaries({"messages": st.lists(message_like | json_values, max_size=4)})


@settings(max_examples=200, deadline=None)
@given(st.lists(example_like, max_size=12))
def test_never_raises_and_counts_add_up(examples: list[object]) -> None:
    report = analyze_training_set(examples, base_model="gpt-4o-mini")
    assert report.n_examples == len(examples) == len(report.example_tokens)
    assert all(0 <= index < len(examples) for index in report.errors)
    assert sum(report.error_counts.values()) == sum(len(errs) for errs in report.errors.values())
    assert report.billing_tokens <= report.total_tokens
    assert report.estimated_cost_usd is not None
    assert math.isfinite(report.estimated_cost_usd)
    for index, example in enumerate(examples):
        if not isinstance(example, dict):
            assert index in report.errors
