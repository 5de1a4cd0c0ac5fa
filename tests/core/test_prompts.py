"""Templates fill in cleanly, fine-tuning lines have the OpenAI chat shape, QA replies parse totally."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.parsing import format_judge_reply, parse_judge_reply
from judgeflow.core.prompts import (
    DEFAULT_ANSWER_PROMPT,
    DEFAULT_JUDGE_PROMPT,
    DEFAULT_QUESTION_PROMPT,
    AnswerPrompt,
    JudgePrompt,
    QuestionPrompt,
    answer_messages,
    build_prompts,
    parse_question_replies,
    parse_question_reply,
    training_example,
    training_example_json,
)
from judgeflow.protocol.messages import ChatMessage, JudgeInput, QAPair
from judgeflow.protocol.verdicts import Scored

ITEM = JudgeInput(
    question="When did the San Francisco earthquake happen?",
    reference="It struck on 18 April 1906.",
    answer="It happened in 1906.",
)


def test_judge_messages_are_system_then_user() -> None:
    system, user = DEFAULT_JUDGE_PROMPT.messages(ITEM)
    assert system == ChatMessage(role="system", content=DEFAULT_JUDGE_PROMPT.system)
    assert user.role == "user"


def test_judge_user_message_has_the_three_sections_in_order() -> None:
    _, user = DEFAULT_JUDGE_PROMPT.messages(ITEM)
    text = user.content
    positions = [
        text.index("## User Query"),
        text.index(ITEM.question),
        text.index("## Reference Answer"),
        text.index(ITEM.reference),
        text.index("## Generated Answer"),
        text.index(ITEM.answer),
    ]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    "messages",
    [
        DEFAULT_JUDGE_PROMPT.messages(ITEM),
        DEFAULT_QUESTION_PROMPT.messages("The quake struck in 1906.", num_questions=2),
        answer_messages("When?", ["The quake struck in 1906."]),
    ],
    ids=["judge", "question", "answer"],
)
def test_placeholders_are_all_filled(messages: tuple[ChatMessage, ...]) -> None:
    for message in messages:
        assert "{" not in message.content
        assert "}" not in message.content


def test_values_with_braces_are_not_reformatted() -> None:
    item = JudgeInput(question="What is {answer}?", reference="{0} {", answer="}")
    _, user = DEFAULT_JUDGE_PROMPT.messages(item)
    assert "What is {answer}?" in user.content
    assert "{0} {" in user.content


def test_default_judge_rubric_asks_for_the_parsed_format() -> None:
    system = DEFAULT_JUDGE_PROMPT.system
    assert "1 to 5" in system
    assert "first line" in system
    assert "4.5" in system
    # The example in the rubric is itself a reply the parser reads.
    example = system.split("For example:\n", 1)[1]
    result = parse_judge_reply(example)
    assert isinstance(result, Scored)
    assert result.score == 4.0


def test_training_example_is_system_user_assistant() -> None:
    reply = format_judge_reply(4.0, "Correct, but omits the day.")
    example = training_example("q-001", ITEM, reply, 4.0)
    assert [m.role for m in example.messages] == ["system", "user", "assistant"]
    assert example.messages[:2] == DEFAULT_JUDGE_PROMPT.messages(ITEM)
    assert example.messages[2].content == reply
    assert (example.id, example.question, example.reference, example.answer, example.score) == (
        "q-001",
        ITEM.question,
        ITEM.reference,
        ITEM.answer,
        4.0,
    )


def test_training_example_keeps_the_teacher_reply_verbatim() -> None:
    reply = "\n\n4.0\nCorrect, but omits the day.  "
    example = training_example("q-002", ITEM, reply, 4.0)
    assert example.messages[-1] == ChatMessage(role="assistant", content=reply)


def test_training_example_uses_the_given_prompt() -> None:
    prompt = JudgePrompt(system="Grade it.", user_template="Q={question} R={reference} A={answer}")
    example = training_example("q-003", ITEM, "5.0", 5.0, prompt)
    assert example.messages[0].content == "Grade it."
    assert example.messages[1].content == f"Q={ITEM.question} R={ITEM.reference} A={ITEM.answer}"


def test_training_example_json_is_one_openai_chat_line() -> None:
    reply = "4.0\nCorrect, but omits the day."
    line = training_example_json(training_example("q-004", ITEM, reply, 4.0))
    assert list(line) == ["messages"]
    messages = line["messages"]
    assert isinstance(messages, list)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[2] == {"role": "assistant", "content": reply}
    assert all(set(m) == {"role", "content"} for m in messages)
    encoded = json.dumps(line)
    assert "\n" not in encoded
    assert json.loads(encoded) == line


@pytest.mark.parametrize(
    ("cls", "template", "message"),
    [
        (JudgePrompt, "{questoin} {reference} {answer}", "unknown placeholders"),
        (JudgePrompt, "{question} {reference}", "missing placeholders"),
        (JudgePrompt, "{question} {reference} {answer} {", "not a valid template"),
        (JudgePrompt, "{question} {reference} {answer} {0}", "unknown placeholders"),
        (QuestionPrompt, "{context}", "missing placeholders"),
        (AnswerPrompt, "{context} {question} {passages}", "unknown placeholders"),
    ],
)
def test_bad_templates_fail_at_construction(
    cls: type[JudgePrompt | QuestionPrompt | AnswerPrompt], template: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cls(system="s", user_template=template)


def test_literal_braces_can_be_escaped() -> None:
    prompt = JudgePrompt(system="s", user_template='{{"q": "{question}"}} {reference} {answer}')
    _, user = prompt.messages(JudgeInput(question="x", reference="y", answer="z"))
    assert user.content == '{"q": "x"} y z'


def test_prompt_overrides_apply_and_bad_ones_name_their_key() -> None:
    prompts = build_prompts({"answer_user": "{question}? Use {context}.", "judge_system": "Grade it."})
    assert prompts.answer.user_template == "{question}? Use {context}."
    assert prompts.judge.system == "Grade it."
    assert prompts.question == DEFAULT_QUESTION_PROMPT
    with pytest.raises(ValueError, match="unknown key"):
        build_prompts({"judge_rubric": "x"})
    with pytest.raises(ValueError, match=r"prompts\.judge_user"):
        build_prompts({"judge_user": "{question} {answer}"})


def test_question_prompt() -> None:
    system, user = DEFAULT_QUESTION_PROMPT.messages("The quake struck in 1906.", num_questions=3)
    assert system == ChatMessage(role="system", content=DEFAULT_QUESTION_PROMPT.system)
    assert user.role == "user"
    assert "The quake struck in 1906." in user.content
    assert "3" in user.content
    assert "Question:" in user.content
    assert "Answer:" in user.content
    with pytest.raises(ValueError, match="num_questions"):
        DEFAULT_QUESTION_PROMPT.messages("ctx", num_questions=0)


def test_answer_messages_number_the_passages_in_order() -> None:
    system, user = answer_messages("When did it strike?", ["First passage. ", "Second passage."])
    assert system == ChatMessage(role="system", content=DEFAULT_ANSWER_PROMPT.system)
    assert user.role == "user"
    assert user.content.index("[1] First passage.") < user.content.index("[2] Second passage.")
    assert user.content.index("[2] Second passage.") < user.content.index("When did it strike?")


def test_answer_messages_without_passages_and_with_a_custom_prompt() -> None:
    _, user = answer_messages("Why?", [])
    assert "no passages" in user.content
    prompt = AnswerPrompt(system="Be brief.", user_template="{question}\n---\n{context}")
    system, user = answer_messages("Why?", ["Because."], prompt)
    assert system.content == "Be brief."
    assert user.content == "Why?\n---\n[1] Because."


QA_CASES: list[tuple[str, QAPair | None]] = [
    (
        "Question: When did the quake strike?\nAnswer: On 18 April 1906.",
        QAPair(question="When did the quake strike?", reference="On 18 April 1906."),
    ),
    (
        "Sure! Here is a question for your quiz:\n\n"
        "**Question:** When did the quake strike?\n**Answer:** On 18 April 1906.\n\n"
        "Let me know if you would like more questions.",
        QAPair(question="When did the quake strike?", reference="On 18 April 1906."),
    ),
    (
        "Q1: When did the quake strike?\nA1: In 1906.",
        QAPair(question="When did the quake strike?", reference="In 1906."),
    ),
    (
        "Question:\nWhen did the quake\nstrike?\nAnswer:\n\nIn 1906.\nIt lasted about a minute.",
        QAPair(question="When did the quake strike?", reference="In 1906.\nIt lasted about a minute."),
    ),
    (
        "1. Question - Where was the epicentre?\n   Reference answer - Near San Francisco.",
        QAPair(question="Where was the epicentre?", reference="Near San Francisco."),
    ),
    ("Question: When did the quake strike?", None),
    ("Question: When did the quake strike?\nAnswer:", None),
    ("Answer: In 1906.\nQuestion: When did the quake strike?", None),
    ("When did the quake strike? In 1906.", None),
    ("", None),
    ("   \n\n", None),
]


@pytest.mark.parametrize(("raw", "expected"), QA_CASES)
def test_parse_question_reply(raw: str, expected: QAPair | None) -> None:
    assert parse_question_reply(raw) == expected


def test_parse_question_replies_returns_every_complete_pair() -> None:
    raw = (
        "Question: First?\nAnswer: One.\n\n"
        "Question: Unanswered?\n\n"
        "Question: Third?\nAnswer: Three.\nStill three.\n\nThanks!"
    )
    assert parse_question_replies(raw) == (
        QAPair(question="First?", reference="One."),
        QAPair(question="Third?", reference="Three.\nStill three."),
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "raw",
    [
        "Question" + " " * 50_000 + "x",
        "Question #" + " " * 50_000 + "1" + "\t" * 50_000 + "x",
        "*" * 100_000,
        "Question: a\nAnswer: b\n" * 20_000,
    ],
    ids=range(4),
)
def test_pathological_replies_do_not_backtrack(raw: str) -> None:
    parse_question_replies(raw)


QA_FRAGMENTS = st.sampled_from(["Question:", "Answer:", "Q1:", "A:", "**", "\n", "\n\n", " - "])


@settings(database=None, deadline=None, max_examples=200)
@given(
    st.one_of(
        st.text(),
        st.lists(
            st.one_of(st.sampled_from(["Question:", "Answer:", "Q1:", "A:", "**", "\n", "\n\n", " - "]), st.text()),
            max_size=30,
        ).map("".join),
    )
)
def test_parse_question_reply_never_raises(raw: str) -> None:
    result = parse_question_reply(raw)
    if result is not None:
        assert result.question
        assert result.reference


def test_json_prompts_ask_for_json_without_a_placeholder_to_copy() -> None:
    item = JudgeInput(question="q", reference="r", answer="a")
    system, user = DEFAULT_JUDGE_PROMPT.messages(item, json_reply=True)
    assert "JSON" in system.content
    assert '"score"' in system.content
    assert "4.5" not in system.content  # the JSON score is a whole number
    assert "<" not in system.content
    assert user == DEFAULT_JUDGE_PROMPT.messages(item)[1]
    _, asked = DEFAULT_QUESTION_PROMPT.messages("ctx", num_questions=2, json_reply=True)
    assert '"questions"' in asked.content
    assert "<" not in asked.content


def test_overriding_a_text_prompt_derives_its_json_variant_unless_that_is_overridden_too() -> None:
    judge = build_prompts({"judge_system": "Grade it."}).judge
    assert judge.system_for(json_reply=True).startswith("Grade it.\n\n")
    assert '"score"' in judge.system_for(json_reply=True)
    both = build_prompts({"judge_system": "Grade it.", "judge_json_system": "Grade it in JSON."}).judge
    assert both.system_for(json_reply=True) == "Grade it in JSON."
    question = build_prompts({"question_user": "Ask about {context}, {num_questions} times."}).question
    _, user = question.messages("Paris.", num_questions=1, json_reply=True)
    assert user.content.startswith("Ask about Paris., 1 times.\n\n")
    with pytest.raises(ValueError, match=r"prompts\.question_json_user"):
        build_prompts({"question_json_user": "no placeholders"})
