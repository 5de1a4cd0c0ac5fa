"""What a judge concluded about one answer.

A judge reply either yields a score (`Scored`), or it does not (`Unparsed`, which keeps the raw text and the
reason), or the call itself failed (`Failed`). All three are ordinary values: the scorer counts them, the run
folder records them, and nothing downstream has to guess what a `None` or a `NaN` meant. This is the fix for the
recipe's fragile score parsing, where a reply such as "4" with no newline crashed the whole loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["Failed", "Scored", "Unparsed", "Verdict", "verdict_score", "verdict_status"]

VerdictStatus: TypeAlias = Literal["ok", "unparsed", "failed"]


@dataclass(frozen=True, slots=True)
class Scored:
    """A parsed score on the judge's scale, with the reasoning that came with it.

    ``probs`` is the judge's distribution over the scores 1..5 when it was read from token probabilities (it sums
    to 1); ``score`` is then its mean, and `likely_score` its most likely score.
    """

    score: float
    reasoning: str
    raw: str
    probs: tuple[float, ...] | None = None

    @property
    def likely_score(self) -> int | None:
        """The most likely score of ``probs`` (the lower one on a tie), or None without a distribution."""
        probs = self.probs
        if not probs:
            return None
        return 1 + max(range(len(probs)), key=lambda i: (probs[i], -i))


@dataclass(frozen=True, slots=True)
class Unparsed:
    """The judge replied, but no score on the scale could be read from the reply."""

    raw: str
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The judge could not be asked or did not answer (provider error, timeout, missing model)."""

    error: str
    kind: str = "error"


Verdict: TypeAlias = Scored | Unparsed | Failed


def verdict_status(verdict: Verdict) -> VerdictStatus:
    """The one-word status used in output files: ``ok``, ``unparsed`` or ``failed``."""
    if isinstance(verdict, Scored):
        return "ok"
    if isinstance(verdict, Unparsed):
        return "unparsed"
    return "failed"


def verdict_score(verdict: Verdict) -> float | None:
    """The score if there is one; callers must treat ``None`` as "no score", never as zero."""
    return verdict.score if isinstance(verdict, Scored) else None
