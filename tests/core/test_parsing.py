"""The judge-reply parser is total, prefers explicit signals, and leaves numbers in the reasoning alone."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.parsing import SCORE_ONLY_FOLLOW_UP, format_judge_reply, parse_judge_reply
from judgeflow.protocol.verdicts import Scored, Unparsed

# No example database: the suite runs without writing caches into the tree.
PROPERTY = settings(database=None, deadline=None, max_examples=300)

SCORED_CASES: list[tuple[str, float, str]] = [
    # The LlamaIndex failures (issue 17960, PR 22968): score alone with no newline; leading blank lines.
    ("4", 4.0, ""),
    ("4.5", 4.5, ""),
    (" 5 ", 5.0, ""),
    ("\n\n4.0\nThe answer is right.", 4.0, "The answer is right."),
    ("\n4.5\nreasoning", 4.5, "reasoning"),
    # The normal case: score line, then reasoning (the rest of the text, stripped).
    (
        "4.0\nThe generated answer is relevant and correct but omits the year.",
        4.0,
        "The generated answer is relevant and correct but omits the year.",
    ),
    ("3\n\n  Line one.\nLine two.  \n", 3.0, "Line one.\nLine two."),
    ("4\r\nreason\r\nmore", 4.0, "reason\r\nmore"),
    ("4\u2028reason", 4.0, "reason"),
    # Labelled and decorated first lines.
    ("Score: 4", 4.0, ""),
    ("score = 4", 4.0, ""),
    ("**Score:** 4", 4.0, ""),
    ("Score: **4.5**\nGood.", 4.5, "Good."),
    ("Final Score: 2", 2.0, ""),
    ("Score (1-5): 4", 4.0, ""),
    ("## Rating: 3", 3.0, ""),
    ("[[4]]", 4.0, ""),
    ("4.", 4.0, ""),
    # Fractions on our scale.
    ("Rating: 4/5", 4.0, ""),
    ("4/5", 4.0, ""),
    ("4 out of 5", 4.0, ""),
    ("4.5 / 5\nNearly perfect.", 4.5, "Nearly perfect."),
    # Reasoning first, score last.
    ("The answer mentions the 1906 earthquake.\nScore: 3", 3.0, "The answer mentions the 1906 earthquake."),
    (
        "The answer is relevant but wrong about the date.\n2",
        2.0,
        "The answer is relevant but wrong about the date.",
    ),
]

# Where the score is found by a phrase or a fraction, the reasoning is the whole reply (stripped).
SCATTERED_CASES: list[tuple[str, float]] = [
    ("The answer is relevant and mostly right. Therefore the score is 3.", 3.0),
    (
        "It says 1906 instead of 1907. I would give it a score of 2.5, since it lasted 5 years.",
        2.5,
    ),
    ("Score: 4. The answer is fine.", 4.0),
    ("A score of 2 seems harsh.\nOn reflection, the final score is 3", 3.0),
    ("Taught to grade 10 students. Overall I give it 4/5 for accuracy.", 4.0),
    ("It covers 3 of the 4 points; I'd say 4 out of 5.", 4.0),
    ("Rating: 8/10 on their scale.\nOn ours, the score is 4", 4.0),
    ("score from 1 to 5: 4 because it is right", 4.0),
    ("**Score:**\n\n4\nThe answer is right.", 4.0),
    ("Score:\n2.5 - partly right\nIt gets the year wrong.", 2.5),
    ("Rating:\n**3**\nPartly right.", 3.0),
]

UNPARSED_CASES: list[tuple[str, str]] = [
    ("", "empty reply"),
    ("   \n\t \n", "empty reply"),
    ("N/A", "no score found"),
    ("I cannot evaluate this answer.", "no score found"),
    ("The war ended in 1906, after 5 years.", "no score found"),
    ("nan", "no score found"),
    ("Score: NaN", "no score found"),
    ("inf", "no score found"),
    ("Score: infinity", "no score found"),
    ("1e3", "no score found"),
    ("Score: 3-4", "no score found"),
    ("Published 4/5/2020.", "no score found"),
    ("Score: ４", "no score found"),  # fullwidth digit: only ASCII digits count
    ("7", "score 7 is outside 1-5"),
    ("0", "score 0 is outside 1-5"),
    ("-1", "score -1 is outside 1-5"),
    ("Score: -1", "score -1 is outside 1-5"),
    ("7\nThe answer is superb; a score of 4 would undersell it.", "score 7 is outside 1-5"),
    ("5.5", "score 5.5 is outside 1-5"),
    ("6/5", "score 6/5 is outside 1-5"),
    ("The reasoning is long. My score is 9.", "score 9 is outside 1-5"),
    ("8/10", "score 8/10 is not on the 1-5 scale"),
    ("Rating: 8/10\nA fine answer.", "score 8/10 is not on the 1-5 scale"),
    ("7 out of 10", "score 7/10 is not on the 1-5 scale"),
]


@pytest.mark.parametrize(("raw", "score", "reasoning"), SCORED_CASES)
def test_scored_replies(raw: str, score: float, reasoning: str) -> None:
    assert parse_judge_reply(raw) == Scored(score=score, reasoning=reasoning, raw=raw)


@pytest.mark.parametrize(("raw", "score"), SCATTERED_CASES)
def test_scores_found_in_running_text(raw: str, score: float) -> None:
    assert parse_judge_reply(raw) == Scored(score=score, reasoning=raw.strip(), raw=raw)


@pytest.mark.parametrize(("raw", "reason"), UNPARSED_CASES)
def test_unparsed_replies(raw: str, reason: str) -> None:
    assert parse_judge_reply(raw) == Unparsed(raw=raw, reason=reason)


def test_first_line_score_wins_over_numbers_in_reasoning() -> None:
    raw = "2\nThe reference says 1906; the answer, 5 years later. A score of 4 would be too kind. 5/5 wrong."
    result = parse_judge_reply(raw)
    assert isinstance(result, Scored)
    assert result.score == 2.0


def test_custom_scale() -> None:
    assert parse_judge_reply("8/10", low=0, high=10) == Scored(score=8.0, reasoning="", raw="8/10")
    assert parse_judge_reply("8/10\nok", low=0, high=10) == Scored(score=8.0, reasoning="ok", raw="8/10\nok")
    assert parse_judge_reply("4/5", low=0, high=10) == Unparsed(raw="4/5", reason="score 4/5 is not on the 0-10 scale")
    assert parse_judge_reply("0", low=0, high=10) == Scored(score=0.0, reasoning="", raw="0")
    assert parse_judge_reply("11", low=0, high=10) == Unparsed(raw="11", reason="score 11 is outside 0-10")


def test_huge_number_is_out_of_range_with_a_short_reason() -> None:
    raw = "9" * 5000
    result = parse_judge_reply(raw)
    assert isinstance(result, Unparsed)
    assert result.raw is raw
    assert result.reason.startswith("score 999")
    assert result.reason.endswith("is outside 1-5")
    assert len(result.reason) < 100


def test_huge_reply_is_parsed() -> None:
    reasoning = ("The answer is relevant. In 1906 it took 5 years. " * 20_000).strip()
    raw = "4.0\n" + reasoning
    assert parse_judge_reply(raw) == Scored(score=4.0, reasoning=reasoning, raw=raw)
    assert parse_judge_reply(reasoning) == Unparsed(raw=reasoning, reason="no score found")


PATHOLOGICAL = [
    "Score" + " " * 50_000 + "x",
    "Score" + " " * 50_000 + "-" + "\t" * 50_000 + "x",
    "4" + " " * 50_000 + "x",
    "score (" * 20_000,
    "4 out of " * 20_000,
    "1/" * 50_000,
    "9" * 100_000 + "/",
    "**" * 50_000,
]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("raw", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_replies_do_not_backtrack(raw: str) -> None:
    # Adjacent whitespace quantifiers once made the first case take seconds at 20,000 spaces.
    result = parse_judge_reply(raw)
    assert result.raw is raw


def test_control_characters() -> None:
    raw = "\x00\x1b[31m\x07\n4\x0cfine\x00"
    result = parse_judge_reply(raw)
    assert isinstance(result, Unparsed | Scored)
    assert result.raw == raw
    assert parse_judge_reply("\x0b\x0c4\x1c") == Scored(score=4.0, reasoning="", raw="\x0b\x0c4\x1c")


@pytest.mark.parametrize("score", [1.0, 1.5, 2.0, 3.25, 4.0, 4.5, 5.0, 10 / 3])
def test_format_judge_reply_round_trips(score: float) -> None:
    reasoning = "The generated answer is relevant.\nIt omits the year 1906."
    text = format_judge_reply(score, reasoning)
    assert text.splitlines()[0] == repr(score)
    assert parse_judge_reply(text) == Scored(score=score, reasoning=reasoning, raw=text)


def test_format_judge_reply_looks_like_the_recipe() -> None:
    assert format_judge_reply(4, "Omits the year.") == "4.0\nOmits the year."
    assert format_judge_reply(4.5, "  padded \n") == "4.5\npadded"
    assert format_judge_reply(3, "") == "3.0"


def test_score_only_follow_up_asks_for_the_score_alone() -> None:
    assert SCORE_ONLY_FOLLOW_UP.strip()
    assert "1" in SCORE_ONLY_FOLLOW_UP
    assert "5" in SCORE_ONLY_FOLLOW_UP
    assert "{" not in SCORE_ONLY_FOLLOW_UP


# Fragments that make random text look score-like, so the properties reach the Scored branches too.
SCOREISH = st.sampled_from(
    [
        "Score:",
        "score is",
        "**",
        "Rating",
        "4",
        "4.5",
        "1906",
        "-1",
        "0",
        "/5",
        "/10",
        " out of 5",
        "\n",
        "\r\n",
        "\u2028",
        " ",
        ".",
        "nan",
        "inf",
        "1e309",
        "9" * 400,
    ]
)
REPLIES = st.one_of(
    st.text(),
    st.text(min_size=2_000, max_size=20_000),
    st.lists(st.one_of(SCOREISH, st.text(max_size=8)), max_size=40).map("".join),
)


@PROPERTY
@given(REPLIES)
def test_never_raises_and_keeps_raw(raw: str) -> None:
    result = parse_judge_reply(raw)
    assert isinstance(result, Scored | Unparsed)
    assert result.raw is raw
    if isinstance(result, Unparsed):
        assert result.reason


@PROPERTY
@given(
    REPLIES,
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.floats(min_value=0, max_value=20, allow_nan=False),
)
def test_scores_are_finite_and_in_range(raw: str, low: float, width: float) -> None:
    high = low + width
    result = parse_judge_reply(raw, low=low, high=high)
    if isinstance(result, Scored):
        assert math.isfinite(result.score)
        assert low <= result.score <= high


@PROPERTY
@given(
    st.floats(min_value=1.0, max_value=5.0),
    st.text().filter(lambda s: s == s.strip()),
)
def test_format_round_trip_property(score: float, reasoning: str) -> None:
    text = format_judge_reply(score, reasoning)
    assert parse_judge_reply(text) == Scored(score=score, reasoning=reasoning, raw=text)
