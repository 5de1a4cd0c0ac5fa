"""Reading the question writer's replies, JSON or labelled, and telling usable pairs from placeholders."""

from __future__ import annotations

import pytest

from judgeflow.core.questions import QUESTIONS_SCHEMA, question_follow_up, questions_output, read_questions
from judgeflow.protocol.messages import QAPair


def test_a_json_list_gives_its_pairs() -> None:
    raw = (
        '{"questions": [{"question": "When did the railway reach Quillport?", "reference": "In 1861."},'
        ' {"question": "What burned down in 1903?", "reference": "The old fish market."}]}'
    )
    read = read_questions(raw, json_reply=True)
    assert read.pairs == (
        QAPair("When did the railway reach Quillport?", "In 1861."),
        QAPair("What burned down in 1903?", "The old fish market."),
    )
    assert read.reason == ""


def test_a_list_cut_off_keeps_its_complete_pairs() -> None:
    raw = (
        '{ "questions": [{"question":"How many people died in the Great Fire of 1657?", "reference":"About '
        '100,000."}, {"question":"What is the a'
    )
    assert read_questions(raw, json_reply=True).pairs == (
        QAPair("How many people died in the Great Fire of 1657?", "About 100,000."),
    )


@pytest.mark.parametrize(
    "raw",
    [
        # What SmolLM2 wrote under a grammar when the prompt showed an example (measured on llama.cpp).
        '{"questions": [{"question": "Question 1", "reference": "<the answer>"}]}',
        '{"questions": [{"question": "What is the context?", "reference": "<the answer>"}]}',
        '{"questions": [{"question": "", "reference": ""}]}',
        '{"questions": []}',
    ],
)
def test_placeholders_and_empty_pairs_are_not_usable(raw: str) -> None:
    read = read_questions(raw, json_reply=True)
    assert read.pairs == ()
    assert read.reason


def test_a_plain_sentence_is_unusable_with_a_reason() -> None:
    # The first server of the issue answered the writer's prompt with a sentence and no labels.
    raw = "The Eiffel Tower was finished in 1889 for the World's Fair."
    for json_reply in (True, False):
        read = read_questions(raw, json_reply=json_reply)
        assert read.pairs == ()
        assert read.reason == "no question/answer pair found"
    assert read_questions("  ", json_reply=False).reason == "empty reply"


def test_either_format_is_read_whatever_was_asked() -> None:
    labelled = "Question: When was the lighthouse built?\nAnswer: In 1788."
    assert read_questions(labelled, json_reply=True).pairs == (QAPair("When was the lighthouse built?", "In 1788."),)
    as_json = '{"question": "When was the lighthouse built?", "answer": "In 1788."}'
    assert read_questions(as_json, json_reply=False).pairs == (QAPair("When was the lighthouse built?", "In 1788."),)


def test_the_output_asks_for_at_most_n_pairs_where_the_server_enforces_it() -> None:
    strict = questions_output(2)
    assert strict.kind == "json_schema"
    assert strict.schema == QUESTIONS_SCHEMA  # strict mode: nothing OpenAI may reject
    grammar = questions_output(2, "json_object")
    assert grammar.schema["properties"]["questions"]["maxItems"] == 2


def test_the_follow_up_says_what_was_wrong() -> None:
    text = question_follow_up("no question/answer pair found", 1, json_reply=True)
    assert "no question/answer pair found" in text
    assert "JSON" in text
