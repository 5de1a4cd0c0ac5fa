"""The offline student judge: a linear model on lexical features, trained on the teacher's scores.

Distillation only means something if the student has to *learn* the teacher's judgement from what it can
see. So the student does not get the teacher's rubric inputs (which facts the question asks for, which
clause of the reference matters); it gets a handful of surface signals a cheap model could compute (overlap
with the reference's best alternative, with the question, numbers, lengths: `judgeflow.providers.local.lexical`)
and learns how they map to the teacher's 1-5 scale.

The model is linear on standardised features, with one of two links, chosen by `fit_student` from the scores
it learns from:

- ``linear`` (ridge regression): ``score = b + z . w``, clipped to [1, 5], for a teacher that uses the whole
  scale (the local rubric teacher's 1, 2.5, 4.5 ...), where squared error is the natural fit;
- ``logistic``: ``score = 1 + 4 sigmoid(b + z . w)``, fitted by cross-entropy against the score rescaled to
  [0, 1], for a teacher that only says right (5) or wrong (1): squared error on two values spends the model on
  pushing the sure cases to exactly 1 and 5, where a logistic fit is made for ranking the unsure ones (on
  EVOUNA, bench/evouna.py, it ranked human labels better on the earlier, weaker features, 0.925 AUC against
  0.914; on these the two fits are within 0.001).

Both shrink towards the *prior* (the untrained student) rather than towards zero, and the intercept too is held
near the prior's when there are fewer than five examples: a student trained on one example is the prior
shifted a little, not a wild guess. A ridge student replies on its teacher's half-point scale; a logistic one
to two decimals, since for right/wrong labels the resolution is the ranking of the unsure answers (half points
cost 0.004 AUC on EVOUNA's dev answers).

The untrained student (:meth:`LocalStudentJudge.prior`) is a general judge, the "base model" the trained student
is compared against: the fixed rule ``score = 1 + 4 * ref_containment``, the containment rule of QA evaluation.
An answer that contains the reference (or one of its alternatives), or is contained in it (a short answer that
gives part of it), gets 5; one that shares none of its character 3-grams gets 1. It knows no teacher's
particular standards (the local teacher's: a hedge costs two points, saying more than asked one, a missing date
or name makes the answer wrong): its weight on every other feature, hedging words included, is 0, and training
is what moves them.

One module, longer than most: the fit, the untrained prior, the replies and the saved format are one model
(the features live in `judgeflow.providers.local.lexical`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
import numpy as np
import numpy.typing as npt

from judgeflow.core.parsing import scored_reply
from judgeflow.protocol.messages import JudgeInput, JudgeReply, StudentReady, TrainingExample

from .lexical import FEATURE_LABELS, FEATURE_NAMES, features

__all__ = [
    "FEATURE_NAMES",
    "MODEL_FILE",
    "Link",
    "LocalStudentJudge",
    "LocalTrainerBackend",
    "Loss",
    "features",
    "fit_student",
]

Link = Literal["linear", "logistic"]
Loss = Literal["auto", "ridge", "logistic"]
MODEL_FILE = "model.json"
_FORMAT = "judgeflow-local-student"
_VERSION = 3  # 3: containment and hedging features; 2: canonical tokens, reference alternatives, the link
_LINKS: tuple[Link, ...] = ("linear", "logistic")
_MIN_FREE_INTERCEPT = 5  # below this many examples the intercept is pulled towards the prior's
_PRIOR_FEATURE = FEATURE_NAMES.index("ref_containment")

Array = npt.NDArray[np.float64]


def _prior_weights(slope: float) -> Array:
    weights = np.zeros(len(FEATURE_NAMES), dtype=np.float64)
    weights[_PRIOR_FEATURE] = slope
    return weights


# The prior, ``1 + 4 * ref_containment``, in each link's coordinates (for the logistic link, its tangent at
# the middle of the scale: ``1 + 4 sigmoid(4 r - 2)`` has the same value and slope at r = 0.5).
_PRIOR: dict[Link, tuple[float, float]] = {"linear": (4.0, 1.0), "logistic": (4.0, -2.0)}


def _sigmoid(z: Array) -> Array:
    out: Array = 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warning for large |z|
    return out


class LocalStudentJudge:
    """A linear judge on standardised features: ``score = link(bias + sum(weights * (x - means) / scales))``.

    Implements both :class:`~judgeflow.protocol.models.JudgeModel` and
    :class:`~judgeflow.protocol.models.BatchJudgeModel`; the batch path computes the features of the whole batch
    at once (`judgeflow.providers.local.lexical`) and scores it with one matrix product.
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
        link: Link = "linear",
    ) -> None:
        self.name = name
        self.means = np.asarray(means, dtype=np.float64)
        self.scales = np.asarray(scales, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.n_train = n_train
        if link not in _LINKS:
            raise ValueError(f"link must be linear or logistic, got {link!r}")
        self.link: Link = link
        d = len(FEATURE_NAMES)
        if not self.means.shape == self.scales.shape == self.weights.shape == (d,):
            raise ValueError(f"means, scales and weights must each have {d} values")
        if not (np.all(np.isfinite(self.means)) and np.all(np.isfinite(self.weights)) and math.isfinite(bias)):
            raise ValueError("student parameters must be finite numbers")
        if not np.all(np.isfinite(self.scales) & (self.scales > 0)):
            raise ValueError("student feature scales must be positive")

    @classmethod
    def prior(cls, name: str = "student_base") -> LocalStudentJudge:
        """The untrained student: ``score = 1 + 4 * ref_containment`` (raw features: means 0, scales 1)."""
        d = len(FEATURE_NAMES)
        slope, bias = _PRIOR["linear"]
        return cls(name=name, means=np.zeros(d), scales=np.ones(d), weights=_prior_weights(slope), bias=bias)

    def _scores_of(self, linear: Array) -> Array:
        if self.link == "logistic":
            return 1.0 + 4.0 * _sigmoid(linear)
        return linear

    def _reply_scores(self, linear: Array) -> Array:
        """What the replies say: a ridge student (graded teacher) answers on the teacher's half-point scale, a
        logistic one (right/wrong labels) to two decimals, which keeps its ranking of the unsure answers."""
        scores = np.clip(self._scores_of(linear), 1.0, 5.0)
        if self.link == "logistic":
            return scores.round(2)
        return np.floor(scores * 2.0 + 0.5) / 2.0  # halves up: ``np.round`` would round 2.25 to 2.0

    def predict_raw(self, items: Sequence[JudgeInput]) -> Array:
        """The predictions before clipping: the linear score, or ``1 + 4 sigmoid(...)`` for the logistic link."""
        z = (features(items) - self.means) / self.scales
        return self._scores_of(self.bias + z @ self.weights)

    def scores(self, items: Sequence[JudgeInput]) -> Array:
        """The scores the replies carry: in [1, 5], rounded as `judge_batch` rounds them."""
        z = (features(items) - self.means) / self.scales
        return self._reply_scores(self.bias + z @ self.weights)

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[JudgeReply]:
        if not items:
            return []
        x = features(items)
        contributions = ((x - self.means) / self.scales) * self.weights
        scores = self._reply_scores(self.bias + contributions.sum(axis=1))
        # The two features that moved each score most, found for the whole batch at once. Columns go to Python
        # as flat lists: a small list per reply would be tens of thousands of objects for the garbage collector.
        top = np.argsort(-np.abs(contributions), axis=1, kind="stable")
        rows = np.arange(len(items))
        first, second = top[:, 0], top[:, 1]
        columns = zip(
            scores.tolist(),
            first.tolist(),
            x[rows, first].tolist(),
            contributions[rows, first].tolist(),
            second.tolist(),
            x[rows, second].tolist(),
            contributions[rows, second].tolist(),
            strict=True,
        )
        return [scored_reply(score, _reasoning(j, v, c, k, w, d), self.name) for score, j, v, c, k, w, d in columns]

    async def judge(self, item: JudgeInput) -> JudgeReply:
        return self.judge_batch([item])[0]

    def to_dict(self) -> dict[str, object]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "name": self.name,
            "link": self.link,
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
        link = data.get("link")
        if link not in _LINKS:
            raise ValueError(f"{path}: bad student model (link must be linear or logistic, got {link!r})")
        try:
            return cls(
                name=name if name is not None else str(data["name"]),
                means=_floats(data["means"]),
                scales=_floats(data["scales"]),
                weights=_floats(data["weights"]),
                bias=float(data["bias"]),
                n_train=int(data.get("n_train", 0)),
                link="logistic" if link == "logistic" else "linear",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: bad student model ({exc})") from None


_LABELS = [FEATURE_LABELS[name] for name in FEATURE_NAMES]


def _reasoning(j: int, value: float, change: float, k: int, other: float, other_change: float) -> str:
    """The reply's explanation: the two features that moved the score most (in order), those that moved it."""
    if change == 0:
        return "Student estimate from lexical overlap: no signal."
    text = f"Student estimate from lexical overlap: {_LABELS[j]} {value:.2f} ({change:+.2f})"
    if other_change == 0:
        return text + "."
    return f"{text}; {_LABELS[k]} {other:.2f} ({other_change:+.2f})."


def _floats(value: object) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) for v in value):
        raise TypeError("expected a list of numbers")
    return [float(v) for v in value]


def _link_for(scores: Array, loss: Loss) -> Link:
    """``auto``: the logistic link for right/wrong labels (every score 1 or 5, and both present), else linear."""
    if loss == "auto":
        binary = bool(np.all((scores == 1.0) | (scores == 5.0))) and len(np.unique(scores)) == 2
        return "logistic" if binary else "linear"
    return "logistic" if loss == "logistic" else "linear"


def fit_student(
    examples: Sequence[TrainingExample], *, l2: float = 1.0, name: str = "student_trained", loss: Loss = "auto"
) -> LocalStudentJudge:
    """Fit the student to the examples' scores on standardised features, shrunk to the prior.

    ``loss="ridge"`` (the linear link) minimises ``|y - b - Z w|^2 + l2 |w - w0|^2 + l2 * max(0, 5 - n) (b -
    b0)^2``, solved as one augmented least-squares problem (well defined even with one example, or ``l2 = 0``).
    ``loss="logistic"`` minimises the cross-entropy of ``t = (y - 1) / 4`` and ``sigmoid(b + Z w)`` plus the
    same penalties (halved), by Newton's method. ``"auto"`` takes the logistic loss when the scores are all 1 or
    5, both present (right/wrong labels), and ridge otherwise.
    ``(w0, b0)`` is the prior in the link's standardised coordinates. Deterministic: same examples, same model.
    """
    if not examples:
        raise ValueError("fit_student needs at least one training example")
    if l2 < 0 or not math.isfinite(l2):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2}")
    if loss not in ("auto", "ridge", "logistic"):
        raise ValueError(f"loss must be auto, ridge or logistic, got {loss!r}")
    x = features([JudgeInput(question=e.question, reference=e.reference, answer=e.answer) for e in examples])
    y = np.array([e.score for e in examples], dtype=np.float64)
    link = _link_for(y, loss)
    n, d = x.shape
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[~(scales > 1e-9)] = 1.0  # a constant feature carries no information: leave it unscaled
    design = np.hstack([np.ones((n, 1)), (x - means) / scales])
    slope, bias = _PRIOR[link]
    prior = np.concatenate([[bias + float(_prior_weights(slope) @ means)], _prior_weights(slope) * scales])
    penalty = np.full(d + 1, l2, dtype=np.float64)
    penalty[0] = l2 * max(0, _MIN_FREE_INTERCEPT - n)
    if link == "logistic":
        theta = _fit_logistic(design, np.clip((y - 1.0) / 4.0, 0.0, 1.0), prior, penalty)
    else:
        augmented = np.vstack([design, np.diag(np.sqrt(penalty))])
        target = np.concatenate([y, np.sqrt(penalty) * prior])
        theta, *_ = np.linalg.lstsq(augmented, target, rcond=None)
    return LocalStudentJudge(
        name=name, means=means, scales=scales, weights=theta[1:], bias=float(theta[0]), n_train=n, link=link
    )


def _fit_logistic(design: Array, targets: Array, prior: Array, penalty: Array, *, steps: int = 100) -> Array:
    """Newton's method for ``sum CE(t, sigmoid(D theta)) + |sqrt(penalty) (theta - prior)|^2 / 2``.

    Started at the prior; a step that would raise the objective is halved (Newton alone can overshoot when the
    classes are almost separable and the penalty is small).
    """

    def objective(theta: Array) -> float:
        z = design @ theta
        # log(1 + e^z) - t z, written to stay finite for large |z|
        loss = np.logaddexp(0.0, z) - targets * z
        return float(loss.sum() + 0.5 * (penalty * (theta - prior) ** 2).sum())

    theta = prior.copy()
    current = objective(theta)
    floor = 1e-9 * np.eye(len(theta))  # keeps the Hessian invertible when the penalty is 0
    for _ in range(steps):
        p = _sigmoid(design @ theta)
        gradient = design.T @ (p - targets) + penalty * (theta - prior)
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(penalty) + floor
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-6:
            candidate = theta - scale * step
            value = objective(candidate)
            if value <= current:
                break
            scale /= 2.0
        else:
            break
        theta, improvement, current = candidate, current - value, value
        if float(np.abs(scale * step).max()) < 1e-10 or improvement < 1e-12 * max(1.0, abs(current)):
            break
    return theta


class LocalTrainerBackend:
    """Trains a :class:`LocalStudentJudge` in a worker thread and saves it under ``out_dir / "student"``."""

    def __init__(
        self, *, l2: float = 1.0, student: str = "student_trained", name: str = "local", loss: Loss = "auto"
    ) -> None:
        self.name = name
        self.l2 = l2
        self.student = student
        self.loss: Loss = loss

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady:
        # Fitting is CPU work (milliseconds here, but it must never stall the event loop as it grows).
        fit = partial(fit_student, list(examples), l2=self.l2, name=self.student, loss=self.loss)
        model = await anyio.to_thread.run_sync(fit)
        folder = out_dir / "student"
        await anyio.to_thread.run_sync(model.save, folder)
        return StudentReady(
            student=self.student,
            model_ref=str(folder),
            n_train=len(examples),
            details={
                "backend": self.name,
                "model": f"{'logistic' if model.link == 'logistic' else 'ridge'} regression on lexical features",
                "link": model.link,
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
