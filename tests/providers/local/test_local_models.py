"""The local stand-in models: question writer, extractive answerer, teacher and student."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.parsing import parse_judge_reply
from judgeflow.core.text import split_sentences, strip_markdown
from judgeflow.inputs.corpus import load_corpus
from judgeflow.protocol.messages import Document, JudgeInput, Passage, StudentReady, TrainingExample
from judgeflow.protocol.models import (
    AnswerModel,
    BatchJudgeModel,
    JudgeModel,
    QuestionWriterModel,
    TrainerBackend,
)
from judgeflow.protocol.verdicts import Scored
from judgeflow.providers.local import (
    FEATURE_NAMES,
    HEDGES,
    NO_ANSWER,
    LocalExtractiveAnswerer,
    LocalQuestionWriter,
    LocalStudentJudge,
    LocalTeacherJudge,
    LocalTrainerBackend,
    features,
    fit_student,
)
from judgeflow.providers.local.questions import base_form
from judgeflow.providers.local.student import MODEL_FILE

ARTICLE = Document(
    id="san_francisco",
    title="History of San Francisco",
    text="""# History of San Francisco

## Bridges

The Golden Gate Bridge opened in 1937. In 1906, an earthquake and fire destroyed much of the city.
Harvey Milk became one of the first openly gay elected officials in the United States in 1977.
It rained a lot that year. The 1906 disaster killed an estimated 3,000 people, leaving many homeless.

## Later

The Transamerica Pyramid was completed in 1972 on the site of an old office block.
Salesforce Tower, completed in 2018, became the tallest building in the city.
""",
)


def _score(text: str) -> float:
    verdict = parse_judge_reply(text)
    assert isinstance(verdict, Scored), verdict
    return verdict.score


def _passage(text: str, chunk_id: str = "d#0") -> Passage:
    return Passage(chunk_id=chunk_id, doc_id="d", text=text, score=1.0)


def _plain(*, good_enough: float | None = 0.4) -> LocalExtractiveAnswerer:
    """The reader alone: every answer a (shortened) sentence, never hedged."""
    return LocalExtractiveAnswerer(good_enough=good_enough, sure=0.0, brief=0.0, full=0.0)


# --- question writer -------------------------------------------------------------------------------------------


def test_question_writer_is_deterministic_and_grounded() -> None:
    first = LocalQuestionWriter().write_sync(ARTICLE, max_questions=5)
    again = LocalQuestionWriter().write_sync(ARTICLE, max_questions=5)
    assert first == again
    assert 1 <= len(first) <= 5
    sentences = split_sentences(ARTICLE.text)
    for pair in first:
        assert pair.question.endswith("?")
        assert pair.question[0].isupper()
        assert pair.reference in sentences
        assert pair.source_text == pair.reference


def test_question_writer_makes_readable_wh_questions() -> None:
    questions = {p.reference: p.question for p in LocalQuestionWriter().write_sync(ARTICLE, max_questions=10)}
    assert questions["The Golden Gate Bridge opened in 1937."] == (
        "In the history of San Francisco, in what year did the Golden Gate Bridge open?"
    )
    assert questions["Salesforce Tower, completed in 2018, became the tallest building in the city."] == (
        "In the history of San Francisco, in what year was Salesforce Tower completed?"
    )
    assert "It rained a lot that year." not in questions  # no fact, and a pronoun start


@pytest.mark.parametrize(
    ("past", "base"),
    [
        ("opened", "open"),
        ("created", "create"),
        ("stopped", "stop"),
        ("carried", "carry"),
        ("became", "become"),
        ("co-founded", "co-found"),
        ("arrived", "arrive"),
        ("gathered", "gather"),
        ("agreed", "agree"),
    ],
)
def test_base_form(past: str, base: str) -> None:
    assert base_form(past) == base


def test_base_form_declines_to_guess() -> None:
    assert base_form("edited") is None
    assert base_form("green") is None


@pytest.mark.anyio
async def test_question_writer_on_the_bundled_corpus() -> None:
    writer: QuestionWriterModel = LocalQuestionWriter()
    for doc in load_corpus():
        pairs = await writer.write(doc, max_questions=16)
        assert 8 <= len(pairs) <= 16
        sentences = split_sentences(doc.text)
        assert len({p.question for p in pairs}) == len(pairs)
        for pair in pairs:
            assert pair.question.endswith("?")
            assert "??" not in pair.question
            assert pair.reference in sentences
    assert await writer.write(ARTICLE, max_questions=0) == []


# --- answerer --------------------------------------------------------------------------------------------------


def test_answerer_uses_only_passage_text() -> None:
    passages = [
        _passage("The city hosted a fair in 1915. The Golden Gate Bridge opened in 1937.", "d#0"),
        _passage("The Bay Bridge opened in 1936.", "d#1"),
    ]
    answer = _plain().answer_sync("In what year did the Golden Gate Bridge open?", passages)
    assert answer == "The Golden Gate Bridge opened in 1937."
    assert answer in " ".join(p.text for p in passages)


def test_answerer_says_so_when_nothing_matches() -> None:
    answerer = LocalExtractiveAnswerer()
    assert answerer.answer_sync("Who painted the Mona Lisa?", [_passage("The bridge opened in 1937.")]) == NO_ANSWER
    assert answerer.answer_sync("Who painted the Mona Lisa?", []) == NO_ANSWER


def test_answerer_settles_for_a_near_miss_when_it_looks_good_enough() -> None:
    passages = [_passage("The Bay Bridge opened in 1936. The Golden Gate Bridge opened in 1937.")]
    question = "In what year did the Golden Gate Bridge open?"
    assert _plain().answer_sync(question, passages) == "The Bay Bridge opened in 1936."
    careful = _plain(good_enough=None)
    assert careful.answer_sync(question, passages) == "The Golden Gate Bridge opened in 1937."


def test_answerer_keeps_long_answers_brief_and_resolves_pronouns() -> None:
    long = (
        "The Chrysler Building was completed in 1930 after a race with a rival tower downtown, and the Empire "
        "State Building opened in 1931 as the tallest building in the world."
    )
    answerer = _plain()
    assert answerer.answer_sync("In what year was the Chrysler Building completed?", [_passage(long)]) == (
        "The Chrysler Building was completed in 1930 after a race with a rival tower downtown."
    )
    text = "The Presidio guarded the bay. It was founded in 1776."
    careful = _plain(good_enough=None)
    assert careful.answer_sync("When was the Presidio founded?", [_passage(text)]) == text


def test_answerer_hedges_when_its_sentence_shares_little_with_the_question() -> None:
    passages = [_passage("The Bay Bridge opened in 1936. The Golden Gate Bridge opened in 1937.")]
    question = "In what year did the Golden Gate Bridge open?"
    unsure = LocalExtractiveAnswerer(brief=0.0, full=0.0).answer_sync(question, passages)
    hedge = next(h for h in HEDGES if unsure.startswith(h))
    assert unsure == f"{hedge} the Bay Bridge opened in 1936."  # shares 2 of the question's 4 words
    careful = LocalExtractiveAnswerer(good_enough=None, brief=0.0, full=0.0)
    assert careful.answer_sync(question, passages) == "The Golden Gate Bridge opened in 1937."  # all 4: sure


BRIEF_TEXT = (
    "In 1906, an earthquake and fire destroyed much of the city. The 1906 disaster killed an estimated 3,000 "
    "people, leaving many homeless. Harvey Milk won a seat on the Board of Supervisors in 1977. "
    "Lawlessness led citizens to form vigilance committees in 1851 and again in 1856."
)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("In what year did an earthquake and fire destroy much of the city?", "In 1906."),
        ("The 1906 disaster killed how many people?", "An estimated 3,000 people."),
        ("Who won a seat on the Board of Supervisors in 1977?", "Harvey Milk."),
        # Two years: no single fact to give, so the sentence.
        (
            "In what year did lawlessness lead citizens to form vigilance committees?",
            "Lawlessness led citizens to form vigilance committees in 1851 and again in 1856.",
        ),
    ],
)
def test_a_brief_answer_is_the_fact_asked_for(question: str, answer: str) -> None:
    brief = LocalExtractiveAnswerer(sure=0.0, brief=1.0, full=0.0)
    assert brief.answer_sync(question, [_passage(BRIEF_TEXT)]) == answer


def test_a_full_answer_goes_on_to_the_next_sentence() -> None:
    full = LocalExtractiveAnswerer(sure=0.0, brief=0.0, full=1.0)
    answer = full.answer_sync("Who won a seat on the Board of Supervisors in 1977?", [_passage(BRIEF_TEXT)])
    assert answer == (
        "Harvey Milk won a seat on the Board of Supervisors in 1977. "
        "Lawlessness led citizens to form vigilance committees in 1851 and again in 1856."
    )


def test_the_manner_is_drawn_per_question_in_the_configured_shares() -> None:
    answerer = LocalExtractiveAnswerer()
    questions = [p.question for doc in load_corpus() for p in LocalQuestionWriter().write_sync(doc, max_questions=16)]
    manners = Counter(answerer.manner(q) for q in questions)
    assert [answerer.manner(q) for q in questions] == [LocalExtractiveAnswerer().manner(q) for q in questions]
    assert 0.15 <= manners["brief"] / len(questions) <= 0.35
    assert 0.15 <= manners["full"] / len(questions) <= 0.35
    assert Counter(LocalExtractiveAnswerer(brief=0.0, full=0.0).manner(q) for q in questions) == {
        "sentence": len(questions)
    }
    with pytest.raises(ValueError, match="shares"):
        LocalExtractiveAnswerer(brief=0.7, full=0.5)


@pytest.mark.anyio
async def test_answerer_reply() -> None:
    answerer: AnswerModel = _plain()
    reply = await answerer.answer("When did the bridge open?", [_passage("The bridge opened in 1937.")])
    assert reply.text == "The bridge opened in 1937."
    assert reply.model == "local-extractive"


# --- teacher ---------------------------------------------------------------------------------------------------

QUESTION = "In what year did the Golden Gate Bridge open?"
REFERENCE = "The Golden Gate Bridge, with chief engineer Joseph Strauss, opened in May 1937."


def _teach(answer: str, question: str = QUESTION, reference: str = REFERENCE) -> tuple[float, str]:
    reply = LocalTeacherJudge().judge_sync(JudgeInput(question=question, reference=reference, answer=answer))
    verdict = parse_judge_reply(reply.text)
    assert isinstance(verdict, Scored), reply.text
    return verdict.score, verdict.reasoning


def test_teacher_gives_5_to_the_reference_itself() -> None:
    score, reasoning = _teach(REFERENCE)
    assert score == 5.0
    assert "1937" in reasoning


def test_teacher_gives_1_to_an_unrelated_answer() -> None:
    score, reasoning = _teach("Bananas are rich in potassium and grow in warm climates.")
    assert score == 1.0
    assert "not relevant" in reasoning


def test_teacher_marks_a_contradiction_down() -> None:
    score, reasoning = _teach("The Golden Gate Bridge opened in 1936.")
    assert score == 2.0
    assert "1936" in reasoning
    assert "1937" in reasoning
    assert _teach("In 1936.")[0] == 1.5  # wrong, and about nothing else the question names


def test_teacher_takes_a_missing_date_for_a_missing_answer() -> None:
    score, reasoning = _teach("The Golden Gate Bridge was built with chief engineer Joseph Strauss.")
    assert score == 2.0  # however much of the reference it repeats
    assert "1937" in reasoning


@pytest.mark.parametrize("answer", ["In 1937.", "It opened in 1937.", "The Golden Gate Bridge opened in 1937."])
def test_teacher_gives_5_to_the_fact_asked_for_without_the_rest_of_the_reference(answer: str) -> None:
    score, reasoning = _teach(answer)  # no engineer, no month: the question asks for the year
    assert score == 5.0
    assert "1937" in reasoning


@pytest.mark.parametrize("hedge", ["Probably", "I think", "I am not sure, but"])
def test_teacher_gives_3_to_a_right_answer_that_does_not_commit(hedge: str) -> None:
    score, reasoning = _teach(f"{hedge} the Golden Gate Bridge opened in 1937.")
    assert score == 3.0
    assert hedge.split(",")[0] in reasoning
    wrong, _ = _teach(f"{hedge} the Golden Gate Bridge opened in 1936.")
    assert wrong <= 2.0  # a hedged wrong answer is wrong, not "hedged"


def test_a_hedge_the_reference_makes_is_not_the_answers() -> None:
    reference = "The Golden Gate Bridge opened in 1937, probably the longest suspension bridge of its day."
    assert _teach(reference, reference=reference)[0] == 5.0


def test_teacher_gives_4_to_a_right_answer_that_says_more_than_asked() -> None:
    reference = (
        "The Bay Bridge opened in November 1936 after three years of work, and the Golden Gate Bridge opened in 1937."
    )
    score, reasoning = _teach(reference, reference=reference)  # the whole reference: its other clause too
    assert score == 4.0
    assert "more than the question asks" in reasoning
    assert "Bay" in reasoning
    following = "The Golden Gate Bridge opened in 1937. The Bay Bridge had opened six months before, in 1936."
    assert _teach(following)[0] == 4.0
    assert _teach("The Golden Gate Bridge opened in 1937, in May.")[0] == 5.0  # a word or two more is not "more"
    assert _teach("The Golden Gate Bridge opened in 1937.", reference=reference)[0] == 5.0


def test_teacher_asks_who_for_who_questions() -> None:
    question = "Who designed the bridge?"
    reference = "The bridge was designed by Joseph Strauss in 1930."
    assert _teach("Joseph Strauss designed it.", question, reference)[0] >= 4.0
    assert _teach("The bridge was designed in 1930.", question, reference)[0] <= 3.0


@pytest.mark.anyio
async def test_teacher_is_deterministic_and_replies_in_judge_format() -> None:
    teacher: JudgeModel = LocalTeacherJudge()
    item = JudgeInput(question=QUESTION, reference=REFERENCE, answer="The bridge opened in 1937.")
    first, second = await teacher.judge(item), await teacher.judge(item)
    assert first == second
    assert first.model == "local-teacher"
    head, _, body = first.text.partition("\n")
    assert head == f"{_score(first.text):.1f}"
    assert body


# --- student ---------------------------------------------------------------------------------------------------

ITEMS = [
    JudgeInput(QUESTION, REFERENCE, REFERENCE),
    JudgeInput(QUESTION, REFERENCE, "The Golden Gate Bridge opened in 1937."),
    JudgeInput(QUESTION, REFERENCE, "The Golden Gate Bridge opened in 1936."),
    JudgeInput(QUESTION, REFERENCE, "Bananas are rich in potassium."),
    JudgeInput(QUESTION, REFERENCE, "It opened in May."),
    JudgeInput("Who led the strike?", "Harry Bridges led the 1934 strike.", "Harry Bridges did."),
    JudgeInput("Who led the strike?", "Harry Bridges led the 1934 strike.", "A strike happened in 1934."),
    JudgeInput("How many people died?", "About 3,000 people died in 1906.", "About 3,000 people died."),
    JudgeInput("How many people died?", "About 3,000 people died in 1906.", "Many people died, perhaps 500."),
    JudgeInput("How many people died?", "About 3,000 people died in 1906.", ""),
    JudgeInput("When was Tokyo renamed?", "Edo was renamed Tokyo in 1868.", "Edo became Tokyo in 1868, Meiji era."),
    JudgeInput("When was Tokyo renamed?", "Edo was renamed Tokyo in 1868.", "The Meiji emperor moved in 1869."),
]


def _examples(items: list[JudgeInput], scores: np.ndarray) -> list[TrainingExample]:
    return [
        TrainingExample(
            id=str(i), messages=(), question=it.question, reference=it.reference, answer=it.answer, score=float(s)
        )
        for i, (it, s) in enumerate(zip(items, scores, strict=True))
    ]


def test_features_are_finite_and_shaped() -> None:
    x = features(ITEMS)
    assert x.shape == (len(ITEMS), len(FEATURE_NAMES))
    assert np.all(np.isfinite(x))
    assert features([]).shape == (0, len(FEATURE_NAMES))
    same = features([JudgeInput(QUESTION, REFERENCE, REFERENCE)])[0]
    assert same[FEATURE_NAMES.index("ref_char3_recall")] == 1.0
    assert same[FEATURE_NAMES.index("digit_recall")] == 1.0


def test_fit_student_recovers_a_synthetic_linear_target() -> None:
    x = features(ITEMS)
    true_w = np.linspace(-1.0, 1.0, len(FEATURE_NAMES))
    target = 2.5 + x @ true_w
    student = fit_student(_examples(ITEMS, target), l2=1e-9)
    assert student.predict_raw(ITEMS) == pytest.approx(target, abs=1e-4)
    assert student.n_train == len(ITEMS)


def test_fit_student_is_deterministic_and_rejects_nothing_to_learn_from() -> None:
    examples = _examples(ITEMS, np.array([5, 5, 2, 1, 3, 4.5, 3, 5, 2, 1, 4.5, 2]))
    a, b = fit_student(examples), fit_student(list(reversed(examples)))
    assert a.predict_raw(ITEMS) == pytest.approx(b.predict_raw(ITEMS))
    with pytest.raises(ValueError, match="at least one"):
        fit_student([])
    with pytest.raises(ValueError, match="l2"):
        fit_student(examples, l2=-1.0)


def test_one_example_gives_roughly_the_prior() -> None:
    prior = LocalStudentJudge.prior()
    one = fit_student(_examples(ITEMS[:1], np.array([5.0])))
    diff = one.predict_raw(ITEMS) - prior.predict_raw(ITEMS)
    assert np.allclose(diff, diff[0])  # same weights as the prior, only the intercept moved
    assert abs(diff[0]) < 0.5


def test_prior_is_the_documented_rule() -> None:
    prior = LocalStudentJudge.prior()
    containment = features(ITEMS)[:, FEATURE_NAMES.index("ref_containment")]
    assert prior.predict_raw(ITEMS) == pytest.approx(1 + 4 * containment)
    assert prior.name == "student_base"
    assert _score(prior.judge_batch(ITEMS[:1])[0].text) == 5.0


def test_trained_student_differs_from_the_prior_and_stays_on_the_scale() -> None:
    teacher = LocalTeacherJudge()
    scores = np.array([_score(teacher.judge_sync(it).text) for it in ITEMS])
    trained = fit_student(_examples(ITEMS, scores))
    prior = LocalStudentJudge.prior()
    assert not np.allclose(trained.predict_raw(ITEMS), prior.predict_raw(ITEMS))
    predicted = trained.scores(ITEMS)
    assert np.all((predicted >= 1) & (predicted <= 5))
    assert np.all(predicted * 2 == np.round(predicted * 2))


def test_save_load_round_trip(tmp_path: Path) -> None:
    student = fit_student(_examples(ITEMS, np.array([5, 5, 2, 1, 3, 4.5, 3, 5, 2, 1, 4.5, 2])))
    path = student.save(tmp_path / "student")
    assert path == tmp_path / "student" / MODEL_FILE
    data = json.loads(path.read_text())
    assert data["feature_names"] == list(FEATURE_NAMES)
    assert data["n_train"] == len(ITEMS)
    loaded = LocalStudentJudge.load(tmp_path / "student")
    assert loaded.judge_batch(ITEMS) == student.judge_batch(ITEMS)
    assert loaded.predict_raw(ITEMS).tolist() == student.predict_raw(ITEMS).tolist()
    assert LocalStudentJudge.load(tmp_path / "student", name="other").name == "other"


def test_load_names_the_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.json"):
        LocalStudentJudge.load(tmp_path)
    (tmp_path / MODEL_FILE).write_text("{not json")
    with pytest.raises(ValueError, match=r"model\.json: cannot read"):
        LocalStudentJudge.load(tmp_path)
    data = LocalStudentJudge.prior().to_dict()
    for broken in ({**data, "version": 99}, {**data, "feature_names": ["x"]}, {**data, "weights": [1.0]}, [1, 2]):
        (tmp_path / MODEL_FILE).write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=r"model\.json"):
            LocalStudentJudge.load(tmp_path)


@pytest.mark.anyio
async def test_judge_batch_equals_per_item_judge() -> None:
    student = fit_student(_examples(ITEMS, np.array([5, 5, 2, 1, 3, 4.5, 3, 5, 2, 1, 4.5, 2])), name="s")
    assert isinstance(student, BatchJudgeModel)
    judge: JudgeModel = student
    batch = student.judge_batch(ITEMS)
    assert [await judge.judge(it) for it in ITEMS] == batch
    assert all(r.model == "s" and r.text.split("\n")[1].startswith("Student estimate") for r in batch)
    assert student.judge_batch([]) == []


@pytest.mark.anyio
async def test_trainer_backend_trains_saves_and_loads(tmp_path: Path) -> None:
    backend: TrainerBackend = LocalTrainerBackend()
    examples = _examples(ITEMS, np.array([5, 5, 2, 1, 3, 4.5, 3, 5, 2, 1, 4.5, 2]))
    ready = await backend.train(examples, out_dir=tmp_path)
    assert ready.student == "student_trained"
    assert ready.n_train == len(examples)
    assert Path(ready.model_ref) == tmp_path / "student"
    assert (tmp_path / "student" / MODEL_FILE).is_file()
    assert ready.details["backend"] == "local"
    assert ready.details["features"] == list(FEATURE_NAMES)
    student = backend.load(ready)
    assert await student.judge(ITEMS[0]) == fit_student(examples).judge_batch(ITEMS[:1])[0]
    with pytest.raises(ValueError, match=r"model\.json"):
        backend.load(StudentReady(student="x", model_ref=str(tmp_path / "missing"), n_train=0))


# --- robustness ------------------------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=200) | st.sampled_from(
    ["", " ", "1906", "In 1906, St. Louis grew.", "?", "In what year?", "The the the.", "Mt. 1.5 J. P."]
)


@settings(max_examples=150, deadline=None)
@given(question=_TEXT, reference=_TEXT, answer=_TEXT)
def test_local_judges_always_reply_with_a_score(question: str, reference: str, answer: str) -> None:
    item = JudgeInput(question=question, reference=reference, answer=answer)
    assert 1.0 <= _score(LocalTeacherJudge().judge_sync(item).text) <= 5.0
    assert 1.0 <= _score(LocalStudentJudge.prior().judge_batch([item])[0].text) <= 5.0


@settings(max_examples=100, deadline=None)
@given(text=_TEXT, title=_TEXT, question=_TEXT)
def test_writer_and_answerer_never_fail_on_odd_text(text: str, title: str, question: str) -> None:
    doc = Document(id="odd", title=title, text=text)
    for pair in LocalQuestionWriter().write_sync(doc, max_questions=4):
        assert pair.question.endswith("?")
        assert pair.reference in split_sentences(text)
    answer = LocalExtractiveAnswerer().answer_sync(question, [_passage(text)])
    if answer != NO_ANSWER:  # words of the passage (Markdown removed) and of a hedge, re-capitalised and re-punctuated
        passage_words = set(re.findall(r"\w+", text.lower())) | set(re.findall(r"\w+", strip_markdown(text).lower()))
        hedge_words = set(re.findall(r"\w+", " ".join(HEDGES).lower())) | {"in"}  # "In 1937."
        assert set(re.findall(r"\w+", answer.lower())) <= passage_words | hedge_words
