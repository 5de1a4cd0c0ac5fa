"""The offline student judge: a ridge regression on lexical features, trained on the teacher's scores.

Distillation only means something if the student has to *learn* the teacher's judgement from what it can
see. So the student does not get the teacher's rubric inputs (which facts the question asks for, which
clause of the reference matters); it gets a handful of surface signals a cheap model could compute, and learns
how they map to the teacher's 1-5 scale:

==========================  ==============================================================================
feature                     what it measures
==========================  ==============================================================================
``ref_char3_recall``        share of the reference's character 3-grams found in the answer
``ref_char3_precision``     share of the answer's character 3-grams found in the reference
``novel_char3_recall``      the same recall, counting only reference 3-grams that are not in the question
``question_char3_recall``   share of the question's character 3-grams found in the answer (topicality)
``ref_bigram_recall``       share of the reference's word bigrams found in the answer
``digit_recall``            share of the reference's digit strings found in the answer (0 if it has none)
``digit_extra``             share of the answer's digit strings that the reference does not have
``capital_recall``          share of the reference's capitalised words found in the answer
``log_length_ratio``        log((answer words + 1) / (reference words + 1))
``log_answer_words``        log(1 + answer words)
==========================  ==============================================================================

The model is linear on standardised features, its prediction clipped to [1, 5] and rounded to the nearest
half point (the teacher's scale). Ridge shrinks towards the *prior* (the untrained student) rather than
towards zero, and the intercept too is held near the prior's when there are fewer than five examples: a
student trained on one example is the prior shifted a little, not a wild guess.

The untrained student (:meth:`LocalStudentJudge.prior`) is the fixed rule ``score = 1 + 4 *
ref_char3_recall``: an answer that contains the whole reference gets 5, one that shares none of its
character 3-grams gets 1. It is the "base model" the trained student is compared against.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from judgeflow.parsing import format_judge_reply
from judgeflow.protocol.messages import JudgeInput, Reply, StudentReady, TrainingExample

__all__ = [
    "FEATURE_NAMES",
    "MODEL_FILE",
    "LocalStudentJudge",
    "LocalTrainerBackend",
    "features",
    "fit_student",
]

FEATURE_NAMES: tuple[str, ...] = (
    "ref_char3_recall",
    "ref_char3_precision",
    "novel_char3_recall",
    "question_char3_recall",
    "ref_bigram_recall",
    "digit_recall",
    "digit_extra",
    "capital_recall",
    "log_length_ratio",
    "log_answer_words",
)
_LABELS = {
    "ref_char3_recall": "reference 3-gram recall",
    "ref_char3_precision": "answer 3-gram precision",
    "novel_char3_recall": "recall of reference 3-grams not in the question",
    "question_char3_recall": "question 3-gram recall",
    "ref_bigram_recall": "reference bigram recall",
    "digit_recall": "reference digit recall",
    "digit_extra": "digits not in the reference",
    "capital_recall": "capitalised-word recall",
    "log_length_ratio": "log length ratio",
    "log_answer_words": "log answer length",
}
MODEL_FILE = "model.json"
_FORMAT = "judgeflow-local-student"
_VERSION = 1
_MIN_FREE_INTERCEPT = 5  # below this many examples the intercept is pulled towards the prior's
_WORD_RE = re.compile(r"[^\W_]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_CAPITAL_RE = re.compile(r"\b[A-Z][\w'’-]*")

Array = npt.NDArray[np.float64]


def _char3(text: str) -> set[str]:
    padded = f" {' '.join(text.lower().split())} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _bigrams(words: Sequence[str]) -> set[tuple[str, str]]:
    return set(pairwise(words))


def _share(part: set[str] | set[tuple[str, str]], whole: set[str] | set[tuple[str, str]]) -> float:
    return len(part & whole) / len(part) if part else 0.0


def _row(item: JudgeInput) -> list[float]:
    q3, r3, a3 = _char3(item.question), _char3(item.reference), _char3(item.answer)
    r_words = _WORD_RE.findall(item.reference.lower())
    a_words = _WORD_RE.findall(item.answer.lower())
    r_digits, a_digits = set(_DIGITS_RE.findall(item.reference)), set(_DIGITS_RE.findall(item.answer))
    r_caps, a_caps = set(_CAPITAL_RE.findall(item.reference)), set(_CAPITAL_RE.findall(item.answer))
    return [
        _share(r3, a3),
        _share(a3, r3) if item.answer.strip() else 0.0,
        _share(r3 - q3, a3),
        _share(q3, a3),
        _share(_bigrams(r_words), _bigrams(a_words)),
        _share(r_digits, a_digits),
        len(a_digits - r_digits) / len(a_digits) if a_digits else 0.0,
        _share(r_caps, a_caps),
        math.log((len(a_words) + 1) / (len(r_words) + 1)),
        math.log1p(len(a_words)),
    ]


def features(items: Sequence[JudgeInput]) -> Array:
    """The ``len(items) x len(FEATURE_NAMES)`` feature matrix (set arithmetic per item, then one array)."""
    if not items:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float64)
    return np.array([_row(item) for item in items], dtype=np.float64)


def _prior_weights() -> Array:
    weights = np.zeros(len(FEATURE_NAMES), dtype=np.float64)
    weights[FEATURE_NAMES.index("ref_char3_recall")] = 4.0
    return weights


_PRIOR_BIAS = 1.0


def _round_half(values: Array) -> Array:
    """Clip to [1, 5] and round to the nearest half point, halves up (``np.round`` would round to even)."""
    return np.floor(np.clip(values, 1.0, 5.0) * 2.0 + 0.5) / 2.0


class LocalStudentJudge:
    """A linear judge ``score = bias + sum(weights * (x - means) / scales)``, clipped and rounded.

    Implements both :class:`~judgeflow.providers.base.JudgeModel` and
    :class:`~judgeflow.providers.base.BatchJudgeModel`; the batch path is one matrix product.
    """

    def __init__(
        self,
        *,
        name: str,
        means: Sequence[float] | Array,
        scales: Sequence[float] | Array,
        weights: Sequence[float] | Array,
        bias: float,
        n_train: int = 0,
    ) -> None:
        self.name = name
        self.means = np.asarray(means, dtype=np.float64)
        self.scales = np.asarray(scales, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.n_train = n_train
        d = len(FEATURE_NAMES)
        if not self.means.shape == self.scales.shape == self.weights.shape == (d,):
            raise ValueError(f"means, scales and weights must each have {d} values")
        if not (np.all(np.isfinite(self.means)) and np.all(np.isfinite(self.weights)) and math.isfinite(bias)):
            raise ValueError("student parameters must be finite numbers")
        if not np.all(np.isfinite(self.scales) & (self.scales > 0)):
            raise ValueError("student feature scales must be positive")

    @classmethod
    def prior(cls, name: str = "student_base") -> LocalStudentJudge:
        """The untrained student: ``score = 1 + 4 * ref_char3_recall`` (raw features: means 0, scales 1)."""
        d = len(FEATURE_NAMES)
        return cls(name=name, means=np.zeros(d), scales=np.ones(d), weights=_prior_weights(), bias=_PRIOR_BIAS)

    def predict_raw(self, items: Sequence[JudgeInput]) -> Array:
        """The unclipped linear predictions."""
        z = (features(items) - self.means) / self.scales
        return self.bias + z @ self.weights

    def scores(self, items: Sequence[JudgeInput]) -> Array:
        """The scores on the teacher's scale: clipped to [1, 5], rounded to the nearest 0.5."""
        return _round_half(self.predict_raw(items))

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[Reply]:
        if not items:
            return []
        x = features(items)
        contributions = ((x - self.means) / self.scales) * self.weights
        scores = _round_half(self.bias + contributions.sum(axis=1))
        return [
            Reply(text=format_judge_reply(float(score), self._reasoning(row, contrib)), model=self.name)
            for score, row, contrib in zip(scores, x, contributions, strict=True)
        ]

    async def judge(self, item: JudgeInput) -> Reply:
        return self.judge_batch([item])[0]

    def _reasoning(self, row: Array, contributions: Array) -> str:
        order = sorted(range(len(FEATURE_NAMES)), key=lambda j: (-abs(float(contributions[j])), j))
        parts = [
            f"{_LABELS[FEATURE_NAMES[j]]} {row[j]:.2f} ({contributions[j]:+.2f})"
            for j in order[:2]
            if contributions[j] != 0
        ]
        return "Student estimate from lexical overlap: " + ("; ".join(parts) if parts else "no signal") + "."

    def to_dict(self) -> dict[str, object]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "name": self.name,
            "feature_names": list(FEATURE_NAMES),
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias,
            "n_train": self.n_train,
        }

    def save(self, path: Path) -> Path:
        """Write ``model.json`` into the folder ``path`` (created if needed); returns the file's path."""
        path.mkdir(parents=True, exist_ok=True)
        target = path / MODEL_FILE
        target.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, folder: Path, *, name: str | None = None) -> LocalStudentJudge:
        """Read a student saved by :meth:`save`; a missing or malformed file is a ``ValueError`` naming it."""
        path = folder / MODEL_FILE
        data = read_model_file(path, what="student model", label="local student model", form=_FORMAT, version=_VERSION)
        if data.get("feature_names") != list(FEATURE_NAMES):
            raise ValueError(f"{path}: the model's features do not match this version of judgeflow")
        try:
            return cls(
                name=name if name is not None else str(data["name"]),
                means=_floats(data["means"]),
                scales=_floats(data["scales"]),
                weights=_floats(data["weights"]),
                bias=float(data["bias"]),
                n_train=int(data.get("n_train", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: bad student model ({exc})") from None


def _floats(value: object) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) for v in value):
        raise TypeError("expected a list of numbers")
    return [float(v) for v in value]


def fit_student(
    examples: Sequence[TrainingExample], *, l2: float = 1.0, name: str = "student_trained"
) -> LocalStudentJudge:
    """Closed-form ridge regression of the examples' scores on standardised features, shrunk to the prior.

    Minimises ``|y - b - Z w|^2 + l2 |w - w0|^2 + l2 * max(0, 5 - n) (b - b0)^2`` where ``(w0, b0)`` is the
    prior in standardised coordinates, solved as one augmented least-squares problem (so it is well defined
    even with one example, or with ``l2 = 0``). Deterministic: same examples, same model.
    """
    if not examples:
        raise ValueError("fit_student needs at least one training example")
    if l2 < 0 or not math.isfinite(l2):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2}")
    items = [JudgeInput(question=e.question, reference=e.reference, answer=e.answer) for e in examples]
    x = features(items)
    y = np.array([e.score for e in examples], dtype=np.float64)
    n, d = x.shape
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[~(scales > 1e-9)] = 1.0  # a constant feature carries no information: leave it unscaled
    z = (x - means) / scales
    w0 = _prior_weights() * scales
    b0 = _PRIOR_BIAS + float(_prior_weights() @ means)
    penalty = np.full(d + 1, l2, dtype=np.float64)
    penalty[0] = l2 * max(0, _MIN_FREE_INTERCEPT - n)
    design = np.vstack([np.hstack([np.ones((n, 1)), z]), np.diag(np.sqrt(penalty))])
    target = np.concatenate([y, np.sqrt(penalty) * np.concatenate([[b0], w0])])
    theta, *_ = np.linalg.lstsq(design, target, rcond=None)
    return LocalStudentJudge(name=name, means=means, scales=scales, weights=theta[1:], bias=float(theta[0]), n_train=n)


class LocalTrainerBackend:
    """Trains a :class:`LocalStudentJudge` in a worker thread and saves it under ``out_dir / "student"``."""

    def __init__(self, *, l2: float = 1.0, student: str = "student_trained", name: str = "local") -> None:
        self.name = name
        self.l2 = l2
        self.student = student

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady:
        # Fitting is CPU work (milliseconds here, but it must never stall the event loop as it grows).
        model = await anyio.to_thread.run_sync(partial(fit_student, list(examples), l2=self.l2, name=self.student))
        folder = out_dir / "student"
        await anyio.to_thread.run_sync(model.save, folder)
        return StudentReady(
            student=self.student,
            model_ref=str(folder),
            n_train=len(examples),
            details={
                "backend": self.name,
                "model": "ridge regression on lexical features",
                "features": list(FEATURE_NAMES),
                "l2": self.l2,
                "weights": dict(zip(FEATURE_NAMES, (round(float(w), 4) for w in model.weights), strict=True)),
            },
        )

    def load(self, ready: StudentReady) -> LocalStudentJudge:
        return LocalStudentJudge.load(Path(ready.model_ref), name=ready.student)


def read_model_file(path: Path, *, what: str, label: str, form: str, version: int) -> dict[str, Any]:
    """A saved student's JSON description, checked for its format and version; every problem is a
    ``ValueError`` naming the file (shared by the numpy and the MiniLM student)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no saved {what} here") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != form:
        raise ValueError(f"{path}: not a judgeflow {label}")
    if data.get("version") != version:
        raise ValueError(f"{path}: unsupported model version {data.get('version')!r} (expected {version})")
    return data
