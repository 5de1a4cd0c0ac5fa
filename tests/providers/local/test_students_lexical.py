"""What the local students see: canonical tokens, reference alternatives, and the vectorised lexical features.

`features` counts overlaps with sorted integer keys over a whole batch; these tests hold it to the plain set
arithmetic of the definitions in `judgeflow.providers.local.lexical`, written out again here item by item.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.protocol.messages import JudgeInput
from judgeflow.providers.local import lexical
from judgeflow.providers.local.lexical import FEATURE_NAMES, HEDGE_TOKENS, features, features_and_best
from judgeflow.providers.local.matching import _fold, _regex_tokens, match_tokens, split_aliases

# --- canonical tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Seven Wonders", ["7", "wonders"]),
        ("twenty-one guns", ["21", "guns"]),
        ("The Twenty-first century", ["21st", "century"]),
        ("21st", ["21st"]),
        ("the 3rd and the third", ["3rd", "and", "3rd"]),
        ("Zhōngguó, Montréal", ["zhongguo", "montreal"]),
        (
            "The city's 1,000 people paid 3.5 dollars in 09",
            ["city", "1000", "people", "paid", "3.5", "dollars", "in", "9"],
        ),
        ("September 21, 2016", ["september", "21", "2016"]),
        ("don’t “stop” me—now", ["don", "t", "stop", "me", "now"]),
        ("An apple a day", ["apple", "day"]),
        ("", []),
    ],
)
def test_match_tokens_spell_one_value_one_way(text: str, tokens: list[str]) -> None:
    assert match_tokens(text) == tokens


_MIXED = st.text(alphabet="ab eT0123.,x-'’é\u0301Ⅻ½⁶_/\u00a0", max_size=14)


@settings(max_examples=400, deadline=None)
@given(text=_MIXED | st.text(max_size=40))
def test_the_fast_path_gives_the_regular_expressions_tokens(text: str) -> None:
    assert match_tokens(text) == _regex_tokens(_fold(text.lower()))


@pytest.mark.parametrize(
    ("reference", "alternatives"),
    [
        ("Nick Knowles/NICK KNOWLES", ["Nick Knowles", "NICK KNOWLES"]),
        ("Dashiell Robert Parr / Dash", ["Dashiell Robert Parr", "Dash"]),
        ("1938/1933/1912", ["1938", "1933", "1912"]),
        ("9/11", ["9/11"]),
        ("12/25/1990/Christmas Day", ["12/25/1990", "Christmas Day"]),
        ("Paris", ["Paris"]),
        ("a//b/ ", ["a", "b"]),
        ("", [""]),
        ("/", [""]),
    ],
)
def test_split_aliases(reference: str, alternatives: list[str]) -> None:
    assert split_aliases(reference) == alternatives


# --- features: the definitions, item by item -------------------------------------------------------------------


def _grams(tokens: list[str]) -> list[str]:
    padded = f" {' '.join(tokens)} "
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


def _share(part: set[str] | set[tuple[str, str]], whole: set[str] | set[tuple[str, str]]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _numbers(tokens: set[str]) -> set[str]:
    return {t for t in tokens if t[0] in "0123456789"}


def _plain_row(item: JudgeInput) -> list[float]:
    q, a = match_tokens(item.question), match_tokens(item.answer)
    q3, a3_all = set(_grams(q)), _grams(a)
    a3, qs, answer_set = set(a3_all), set(q), set(a)
    known, union = set(qs), set()
    best: dict[str, float] = {}
    best_recall, best_words = -1.0, 0
    for alias in split_aliases(item.reference):
        r = match_tokens(alias)
        known |= set(r)
        r3, rs = set(_grams(r)), set(r)
        union |= r3
        recall, token_recall = _share(r3, a3), _share(rs, answer_set)
        novel, bigrams = rs - qs, set(pairwise(r))
        values = {
            "ref_char3_recall": recall,
            "ref_char3_precision": sum(g in r3 for g in a3_all) / len(a3_all) if a3_all else 0.0,
            "novel_char3_recall": _share(r3 - q3, a3),
            "ref_token_recall": token_recall,
            "novel_token_recall": _share(novel, answer_set) if novel else token_recall,
            "ref_bigram_recall": _share(bigrams, set(pairwise(a))) if bigrams else token_recall,
            "digit_recall": _share(_numbers(rs), answer_set),
        }
        for name, value in values.items():
            best[name] = max(best.get(name, 0.0), value)
        if recall > best_recall:
            best_recall, best_words = recall, len(r)
    a_numbers = _numbers(answer_set)
    best["whole_char3_recall"] = _share(union, a3)
    best["question_char3_recall"] = _share(q3, a3)
    best["digit_extra"] = len(a_numbers - known) / len(a_numbers) if a_numbers else 0.0
    best["log_length_ratio"] = math.log((len(a) + 1) / (best_words + 1))
    best["log_answer_words"] = math.log1p(len(a))
    best["ref_containment"] = max(best["ref_char3_recall"], best["ref_char3_precision"])
    best["hedge_words"] = float(sum(token in HEDGE_TOKENS and token not in known for token in a))
    return [best[name] for name in FEATURE_NAMES]


ITEMS = [
    JudgeInput("Which country?", "Chinese People's Republic/China/PRC/中国", "It is China, of course."),
    JudgeInput("Who presents Perfection?", "Nick Knowles/NICK KNOWLES", "nick knowles"),
    JudgeInput("How many wars?", "four", "There were 4 wars, or perhaps three, in 1947, 1965 and 1971."),
    JudgeInput("When did it open?", "The bridge opened in 1937.", "The Golden Gate Bridge opened in 1937."),
    JudgeInput("When did it open?", "The bridge opened in 1937.", "It opened in 1936."),
    JudgeInput("When did it open?", "The bridge opened in 1937.", ""),
    JudgeInput("", "", ""),
    JudgeInput("q", "", "x"),
    JudgeInput("What?", "a/b", "b b b a"),
    JudgeInput("Seven?", "7/seven/the seventh", "Seven, or 7th — 1,000 Zhōngguó"),
    JudgeInput("Where?", "Cheshire/County of Chester/Cheshire, England", "Shining Tor is in Cheshire, England."),
    JudgeInput("When?", "It probably opened in 1937.", "I think, probably, it opened in 1937 - I am not sure."),
    JudgeInput("Which?", "Cheshire", "Maybe Cheshire, maybe Chester, maybe not."),
]


def test_features_follow_their_definitions() -> None:
    np.testing.assert_allclose(features(ITEMS), [_plain_row(item) for item in ITEMS], rtol=0, atol=1e-12)
    assert features([]).shape == (0, len(FEATURE_NAMES))


_TEXT = st.text(alphabet="ab cd 12 seven the maybe /.,", max_size=30) | st.text(max_size=30)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(_TEXT, _TEXT, _TEXT), min_size=1, max_size=8))
def test_features_follow_their_definitions_on_any_text(rows: list[tuple[str, str, str]]) -> None:
    items = [JudgeInput(question, reference, answer) for question, reference, answer in rows]
    np.testing.assert_allclose(features(items), [_plain_row(item) for item in items], rtol=0, atol=1e-12)


def test_the_best_alternative_counts_in_full() -> None:
    x, best = features_and_best(ITEMS[:2])
    recall = x[:, FEATURE_NAMES.index("ref_char3_recall")]
    assert recall.tolist() == [1.0, 1.0]  # "China" among 4 alternatives; "nick knowles" in either spelling
    assert best.tolist() == [1, 0]
    assert x[0, FEATURE_NAMES.index("whole_char3_recall")] < 0.5  # the list as one text is mostly missing


def test_a_batch_is_judged_as_its_items_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shared questions and references are tokenised once per chunk; chunks must not change any number.
    monkeypatch.setattr(lexical, "_CHUNK", 3)
    many = ITEMS * 3
    together = features(many)
    alone = np.vstack([features([item]) for item in many])
    np.testing.assert_array_equal(together, alone)


def test_containment_credits_a_short_answer_inside_the_reference_and_hedges_are_counted() -> None:
    reference = "The Golden Gate Bridge, with chief engineer Joseph Strauss, opened in May 1937."
    short, hedged = features(
        [
            JudgeInput("In what year did the Golden Gate Bridge open?", reference, "In 1937."),
            JudgeInput(
                "In what year did the Golden Gate Bridge open?", reference, "I think it probably opened in 1937."
            ),
        ]
    )
    column = FEATURE_NAMES.index
    assert short[column("ref_char3_recall")] < 0.2
    assert short[column("ref_containment")] > 0.8  # all but " in 1937"'s "n 1": the reference has "in May 1937"
    assert (short[column("hedge_words")], hedged[column("hedge_words")]) == (0.0, 2.0)
