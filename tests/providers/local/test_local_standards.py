"""The offline stand-ins behave like the recipe: the teacher has standards of its own, the untrained student is
a general judge without them, and training on the teacher's verdicts teaches them.

Everything here runs the embedded default's chain (bundled corpus, local writer, BM25 top-2, extractive
answerer, rubric teacher) and its split (seed 0, 65% of questions to train), as `judgeflow run` does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest

from judgeflow.core.metrics import pearson, pearson_difference
from judgeflow.core.parsing import parse_judge_reply
from judgeflow.core.splits import assign_split
from judgeflow.inputs.corpus import load_corpus
from judgeflow.protocol.messages import JudgeInput, TrainingExample
from judgeflow.protocol.verdicts import Scored
from judgeflow.providers.local import (
    FEATURE_NAMES,
    HEDGES,
    BM25Index,
    LocalExtractiveAnswerer,
    LocalQuestionWriter,
    LocalStudentJudge,
    LocalTeacherJudge,
    fit_student,
)

Scores = np.ndarray


@dataclass(frozen=True)
class Chain:
    items: list[JudgeInput]
    teacher: Scores
    train: np.ndarray  # a mask over items

    def scores(self, judge: LocalStudentJudge, mask: np.ndarray) -> Scores:
        items = [item for item, keep in zip(self.items, mask, strict=True) if keep]
        return np.array([_score(reply.text) for reply in judge.judge_batch(items)])


def _score(text: str) -> float:
    verdict = parse_judge_reply(text)
    assert isinstance(verdict, Scored), text
    return verdict.score


@cache
def _chain() -> Chain:
    docs = load_corpus()
    index = BM25Index.from_documents(docs, max_words=80)
    writer, answerer, teacher = LocalQuestionWriter(), LocalExtractiveAnswerer(), LocalTeacherJudge()
    items, train = [], []
    for doc in docs:
        for k, pair in enumerate(writer.write_sync(doc, max_questions=16)):
            answer = answerer.answer_sync(pair.question, index.search_sync(pair.question, 2))
            items.append(JudgeInput(pair.question, pair.reference, answer))
            train.append(assign_split(f"{doc.id}-q{k:03d}", seed=0, train_fraction=0.65) == "train")
    scores = np.array([_score(teacher.judge_sync(item).text) for item in items])
    return Chain(items, scores, np.array(train))


def _trained(chain: Chain) -> LocalStudentJudge:
    examples = [
        TrainingExample(id=str(i), messages=(), question=it.question, reference=it.reference, answer=it.answer, score=s)
        for i, (it, s, keep) in enumerate(zip(chain.items, chain.teacher, chain.train, strict=True))
        if keep
    ]
    return fit_student(examples)


def test_the_answers_hold_the_cases_the_teachers_standards_are_about() -> None:
    chain = _chain()
    answers = [item.answer for item in chain.items]
    hedged = [a for a in answers if a.startswith(HEDGES)]
    brief = [a for a in answers if len(a.split()) <= 3]
    assert len(chain.items) >= 100
    assert len(hedged) >= 0.05 * len(answers)
    assert len(brief) >= 0.1 * len(answers)
    counts = Counter(chain.teacher.tolist())
    assert 0.4 <= counts[5.0] / len(answers) <= 0.85  # a weak answerer: many right, far from all
    assert counts[4.0] >= 8  # right, but more than asked
    assert counts[3.0] >= 3  # right, but hedged
    assert min(chain.teacher) <= 2.0


def test_the_base_student_is_a_general_judge_that_misses_the_teachers_standards() -> None:
    chain = _chain()
    everything = np.ones(len(chain.items), dtype=bool)
    base = chain.scores(LocalStudentJudge.prior(), everything)
    r = pearson(chain.teacher, base)
    assert r is not None
    assert 0.75 <= r < 0.95  # a reasonable judge ...
    hedged_right, more_than_asked = chain.teacher == 3.0, chain.teacher == 4.0
    assert base[hedged_right].mean() >= 4.5  # ... to whom a hedge or an extra sentence costs nothing
    assert base[more_than_asked].mean() >= 4.5
    right_and_brief = (chain.teacher == 5.0) & np.array([len(it.answer.split()) <= 3 for it in chain.items])
    assert right_and_brief.sum() >= 10
    assert base[right_and_brief].mean() >= 4.5  # but it does credit a short right answer


def test_training_on_the_teachers_verdicts_teaches_them() -> None:
    chain = _chain()
    trained = _trained(chain)
    held_out = ~chain.train
    teacher = chain.teacher[held_out]
    base_scores = chain.scores(LocalStudentJudge.prior(), held_out)
    trained_scores = chain.scores(trained, held_out)
    r = pearson(teacher, trained_scores)
    assert r is not None
    assert r >= 0.9
    gain = pearson_difference(teacher, trained_scores, base_scores, n_resamples=2000, seed=0)
    assert gain.ci95 is not None
    assert gain.ci95[0] > 0.0  # what `judgeflow run` reports, from the same items
    # What it learnt, on all the answers: a hedge and an answer beyond the question now cost points.
    everything = np.ones(len(chain.items), dtype=bool)
    after = chain.scores(trained, everything)
    for standard in (3.0, 4.0):
        mask = chain.teacher == standard
        assert abs(after[mask].mean() - standard) < 0.75
    assert trained.weights[FEATURE_NAMES.index("hedge_words")] < 0


@pytest.mark.parametrize("answer", ["Probably the bridge opened in 1937.", "I think the bridge opened in 1937."])
def test_the_student_learns_the_hedge_from_scores_alone(answer: str) -> None:
    # The student sees the teacher's scores, never its rule: a hedged right answer scored like an unhedged one by
    # the prior is scored lower once the student has learnt from the teacher's verdicts.
    chain = _chain()
    trained, prior = _trained(chain), LocalStudentJudge.prior()
    question = "In what year did the bridge open?"
    reference = "The bridge opened in 1937."
    plain, hedged = JudgeInput(question, reference, reference), JudgeInput(question, reference, answer)
    assert prior.scores([hedged])[0] >= prior.scores([plain])[0] - 0.5
    assert trained.scores([hedged])[0] <= trained.scores([plain])[0] - 0.5
