"""The numpy student's two links: ridge for a graded teacher, logistic for right/wrong labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from judgeflow.core.parsing import parse_judge_reply
from judgeflow.protocol.messages import JudgeInput, TrainingExample
from judgeflow.protocol.verdicts import Scored
from judgeflow.providers.local import FEATURE_NAMES, LocalStudentJudge, features, fit_student
from judgeflow.providers.local.student import MODEL_FILE

CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Dakar", "Hanoi"]


def _labelled(n: int, *, offset: int = 0) -> tuple[list[JudgeInput], np.ndarray]:
    """Questions about a year with right answers (the year, maybe in words of a list) and wrong ones."""
    items, right = [], []
    for i in range(offset, offset + n):
        city, year = CITIES[i % len(CITIES)], 1800 + 13 * i
        reference = f"{year}/in {year}/the year {year}" if i % 3 == 0 else f"{year}"
        good = i % 2 == 0
        answer = (
            f"The port of {city} opened in {year if good else year + 40}." if i % 5 else f"{year if good else 1700}"
        )
        items.append(JudgeInput(f"When did the port of {city} open ({i})?", reference, answer))
        right.append(good)
    return items, np.array(right)


def _examples(items: list[JudgeInput], scores: np.ndarray) -> list[TrainingExample]:
    return [
        TrainingExample(str(i), (), item.question, item.reference, item.answer, float(score))
        for i, (item, score) in enumerate(zip(items, scores, strict=True))
    ]


def _score(text: str) -> float:
    verdict = parse_judge_reply(text)
    assert isinstance(verdict, Scored)
    return verdict.score


def test_right_wrong_labels_get_the_logistic_link_and_graded_scores_ridge() -> None:
    items, right = _labelled(40)
    binary = _examples(items, np.where(right, 5.0, 1.0))
    assert fit_student(binary).link == "logistic"
    assert fit_student(binary, loss="ridge").link == "linear"
    graded = _examples(items, np.where(right, 4.5, 1.5))
    assert fit_student(graded).link == "linear"
    assert fit_student(graded, loss="logistic").link == "logistic"
    assert fit_student(_examples(items[:3], np.array([5.0, 5.0, 5.0]))).link == "linear"  # one class: no labels
    with pytest.raises(ValueError, match="loss"):
        fit_student(binary, loss="hinge")  # type: ignore[arg-type]


def test_the_logistic_student_ranks_held_out_answers_and_replies_to_two_decimals() -> None:
    items, right = _labelled(60)
    student = fit_student(_examples(items, np.where(right, 5.0, 1.0)))
    held_out, truth = _labelled(30, offset=500)
    scores = np.array([_score(reply.text) for reply in student.judge_batch(held_out)])
    assert scores[truth].min() > scores[~truth].max()
    assert np.all((scores >= 1.0) & (scores <= 5.0))
    np.testing.assert_array_equal(scores, student.scores(held_out))
    assert np.any(scores * 2 != np.round(scores * 2))  # not half points: the ranking keeps its resolution
    assert np.all(np.round(scores, 2) == scores)


def test_the_ridge_student_replies_on_the_half_point_scale() -> None:
    items, right = _labelled(40)
    student = fit_student(_examples(items, np.where(right, 4.5, 1.5)))
    scores = np.array([_score(reply.text) for reply in student.judge_batch(items)])
    assert np.all(scores * 2 == np.round(scores * 2))


def test_logistic_fit_stays_finite_on_separable_data_without_a_penalty() -> None:
    items, right = _labelled(30)
    student = fit_student(_examples(items, np.where(right, 5.0, 1.0)), l2=0.0)
    assert np.all(np.isfinite(student.weights))
    assert np.all(np.isfinite(student.predict_raw(items)))


def test_a_strong_penalty_keeps_the_logistic_student_at_its_prior() -> None:
    # The prior in logistic form is 1 + 4 sigmoid(4 r - 2), r the 3-gram containment; with 20 examples the
    # intercept is free, so only the weights are held: the logit is 4 r plus one constant.
    items, right = _labelled(20)
    student = fit_student(_examples(items, np.where(right, 5.0, 1.0)), l2=1e9)
    recall = features(items)[:, FEATURE_NAMES.index("ref_containment")]
    p = (student.predict_raw(items) - 1.0) / 4.0
    shift = np.log(p / (1.0 - p)) - 4.0 * recall
    np.testing.assert_allclose(shift, shift[0], atol=1e-4)


def test_the_link_is_saved_and_checked(tmp_path: Path) -> None:
    items, right = _labelled(40)
    student = fit_student(_examples(items, np.where(right, 5.0, 1.0)), name="s")
    path = student.save(tmp_path)
    loaded = LocalStudentJudge.load(tmp_path)
    assert loaded.link == "logistic"
    assert loaded.judge_batch(items) == student.judge_batch(items)
    data = json.loads(path.read_text(encoding="utf-8"))
    (tmp_path / MODEL_FILE).write_text(json.dumps({**data, "link": "probit"}), encoding="utf-8")
    with pytest.raises(ValueError, match="link"):
        LocalStudentJudge.load(tmp_path)
    bad_link: Any = "probit"
    with pytest.raises(ValueError, match="link"):
        LocalStudentJudge(
            name="x", means=student.means, scales=student.scales, weights=student.weights, bias=0.0, link=bad_link
        )
