"""The one reader of judge replies: recipe text, lenient JSON, and scores from token probabilities."""

from __future__ import annotations

import math

import pytest

from judgeflow.core.scoring import (
    JUDGE_SCHEMA,
    judge_output,
    parse_judge_output,
    score_distribution,
    scoring_mode,
)
from judgeflow.protocol.calls import TokenLogprob
from judgeflow.protocol.verdicts import Scored, Unparsed


def _tokens(*pieces: str | tuple[str, dict[str, float]]) -> tuple[TokenLogprob, ...]:
    """Tokens from plain strings (probability ~1) or ``(token, {alternative: probability})``."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(TokenLogprob(piece, -0.01, ((piece, -0.01),)))
        else:
            token, alternatives = piece
            top = tuple((alt, math.log(p)) for alt, p in alternatives.items())
            out.append(TokenLogprob(token, math.log(alternatives[token]), top))
    return tuple(out)


def test_recipe_text_reads_as_before() -> None:
    verdict = parse_judge_output("4.0\nCorrect but leaves out the year.")
    assert verdict == Scored(4.0, "Correct but leaves out the year.", "4.0\nCorrect but leaves out the year.")


@pytest.mark.parametrize(
    ("raw", "score", "reasoning"),
    [
        ('{"score": 4, "reasoning": "Right."}', 4.0, "Right."),
        ('{ "score": 2, "reasoning" : "Wrong year." }', 2.0, "Wrong year."),
        ('Sure! {"score": "5", "reasoning": "All there."} Hope it helps.', 5.0, "All there."),
        ('{"score": 3, "explanation_text": "Half of it."}', 3.0, "Half of it."),
        ('{"score": 4.5, "reasoning": "x"}', 4.5, "x"),
        # A raw newline inside a string (llama.cpp's grammar lets one through): not strict JSON, still read.
        ('{"score": 4, "reasoning": "The fire of 1657.\n The answer is: 2023 }', 4.0, ""),
        ('{"score": 4, "reasoning": "Line one\nline two"}', 4.0, "Line one\nline two"),
        # Cut off by max_tokens after the score.
        ('{ "score": 1, "', 1.0, ""),
        # The server ignored the format and answered in the recipe's text.
        ("3\nPartly right.", 3.0, "Partly right."),
    ],
)
def test_json_replies_are_read_leniently(raw: str, score: float, reasoning: str) -> None:
    verdict = parse_judge_output(raw, json_reply=True)
    assert isinstance(verdict, Scored)
    assert verdict.score == score
    assert verdict.reasoning == reasoning or not reasoning
    assert verdict.raw == raw
    assert verdict.probs is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty reply"),
        ('{"reasoning": "I cannot grade this."}', "no score in the JSON reply"),
        ('{"score": 0, "reasoning": "x"}', "score 0 is outside 1-5"),
        ('{"score": 7}', "score 7 is outside 1-5"),
        ('{"score": "high", "reasoning": "x"}', 'the JSON score "high" is not a number'),
        ('{"score": true}', "the JSON score true is not a number"),
        ("The Yonge Street subway opened in 1954.", "no score found"),
    ],
)
def test_json_replies_without_a_usable_score_are_unparsed_with_the_reason(raw: str, reason: str) -> None:
    assert parse_judge_output(raw, json_reply=True) == Unparsed(raw, reason)


def test_logprobs_score_is_the_renormalised_weighted_mean_at_the_score_token() -> None:
    # The shape llama.cpp sends at the score of a constrained reply: the model's distribution before the grammar,
    # non-score tokens included, which renormalising over 1..5 removes.
    at_score = {"4": 0.677, "5": 0.114, "3": 0.071, "2": 0.062, "1": 0.036, "6": 0.009, "0": 0.009}
    tokens = _tokens('{"', "score", '":', " ", ("4", at_score), ",", ' "', "reasoning", '":', ' "', "ok", '"}')
    raw = "".join(t.token for t in tokens)
    verdict = parse_judge_output(raw, json_reply=True, logprobs=tokens)
    assert isinstance(verdict, Scored)
    mass = sum(at_score[str(k)] for k in range(1, 6))
    expected = [at_score[str(k)] / mass for k in range(1, 6)]
    assert verdict.probs is not None
    assert verdict.probs == pytest.approx(expected)
    assert sum(verdict.probs) == pytest.approx(1.0)
    assert verdict.score == pytest.approx(sum(k * p for k, p in zip(range(1, 6), expected, strict=True)))
    assert verdict.likely_score == 4
    assert verdict.reasoning == "ok"


def test_a_score_token_with_a_leading_space_counts_with_the_bare_one() -> None:
    # OpenAI-style tokenizers may write " 4" where others write "4": both are the score 4.
    at_score = {" 4": 0.5, "4": 0.2, " 5": 0.2, " 3": 0.1}
    tokens = _tokens('{"', "score", '":', (" 4", at_score), "}")
    probs = score_distribution(tokens, json_reply=True)
    assert probs == pytest.approx([0.0, 0.0, 0.1, 0.7, 0.2])


def test_a_recipe_reply_is_scored_at_its_opening_digit() -> None:
    tokens = _tokens(("4", {"4": 0.6, "5": 0.3, "3": 0.1}), ".", "0", "\n", "Right", ".")
    verdict = parse_judge_output("4.0\nRight.", logprobs=tokens)
    assert isinstance(verdict, Scored)
    assert verdict.probs == pytest.approx([0.0, 0.0, 0.1, 0.6, 0.3])
    assert verdict.score == pytest.approx(4.2)


def test_the_chosen_token_counts_and_tokens_that_miss_the_score_give_no_distribution() -> None:
    # The alternatives at the score leave the chosen token out: it still counts (llama.cpp lists it only when it
    # is among the top ones). Tokens that do not cover the reply's score give no distribution: the JSON's score
    # is kept as it is.
    tokens = _tokens('{"score": ', ("4", {"4": 0.9}), "}")
    tokens = (tokens[0], TokenLogprob("4", -0.1, (("four", -0.1),)), tokens[2])
    verdict = parse_judge_output('{"score": 4}', json_reply=True, logprobs=tokens)
    assert verdict == Scored(4.0, "", '{"score": 4}', probs=(0.0, 0.0, 0.0, 1.0, 0.0))
    unrelated = _tokens("Hello", " there")
    assert parse_judge_output('{"score": 4}', json_reply=True, logprobs=unrelated) == Scored(4.0, "", '{"score": 4}')


def test_an_unparsed_reply_stays_unparsed_whatever_the_logprobs() -> None:
    tokens = _tokens(("4", {"4": 1.0}))
    assert isinstance(parse_judge_output("I will not grade.", logprobs=tokens), Unparsed)


def test_the_schema_asks_for_an_integer_enum_and_is_strict() -> None:
    assert JUDGE_SCHEMA["properties"]["score"] == {"type": "integer", "enum": [1, 2, 3, 4, 5]}
    assert JUDGE_SCHEMA["additionalProperties"] is False
    assert set(JUDGE_SCHEMA["required"]) == set(JUDGE_SCHEMA["properties"])
    output = judge_output("json_object")
    assert output.kind == "json_object"
    assert output.schema == JUDGE_SCHEMA
    # Sent in this order: under llama.cpp's grammar the reply writes its score first (a reasoning cut off by
    # max_tokens then loses nothing).
    assert output.schema_json.index('"score"') < output.schema_json.index('"reasoning"')


def test_scoring_mode_names_the_modes() -> None:
    assert scoring_mode("logprobs") == "logprobs"
    with pytest.raises(ValueError, match="reply, json, logprobs"):
        scoring_mode("probabilities")
