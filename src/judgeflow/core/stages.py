"""Per-stage parse rates, and the message that ends a run whose stage produced nothing the next can use.

Each stage that reads a model's replies counts them here: how many replies came, how many were usable (a
question/answer pair, a score), how many were not (with the first one's reason and raw text, to show), and how
many calls failed outright. `StageCount.as_dict` is what ``report.json`` holds under ``stages``; `nothing_usable`
is the one line a run ends with when a stage yielded nothing (it names the stage, the counts and a sample reply).
Pure: counting and wording only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from judgeflow.protocol.verdicts import Failed, Scored, Unparsed, Verdict

__all__ = ["SAMPLE_CHARS", "StageCount", "UnusableReply", "nothing_usable"]

SAMPLE_CHARS = 300
"""How much of a sample reply a message or the report quotes."""


@dataclass(frozen=True, slots=True)
class UnusableReply:
    """A reply a stage could not use: which item it was about, why not, and what it said."""

    item: str
    reason: str
    raw: str

    def as_dict(self) -> dict[str, str]:
        return {"item": self.item, "reason": self.reason, "raw": self.raw}


@dataclass(slots=True)
class StageCount:
    """Replies read by one stage (``replies`` = ``usable`` + ``unusable``) and calls that ``failed``."""

    replies: int = 0
    usable: int = 0
    failed: int = 0
    sample: UnusableReply | None = None

    @property
    def unusable(self) -> int:
        return self.replies - self.usable

    @property
    def parse_rate(self) -> float | None:
        """Usable replies over replies; None when there were none (never 0 for "nothing to measure")."""
        return None if self.replies == 0 else self.usable / self.replies

    def add_reply(self, item: str, *, usable: bool, reason: str = "", raw: str = "") -> None:
        self.replies += 1
        if usable:
            self.usable += 1
        elif self.sample is None:
            self.sample = UnusableReply(item, reason, raw)

    def add_verdict(self, item: str, verdict: Verdict, raw: str) -> None:
        """A judge's verdict: scored is usable, unparsed is not, failed is a failed call (no reply)."""
        if isinstance(verdict, Scored):
            self.add_reply(item, usable=True)
        elif isinstance(verdict, Unparsed):
            self.add_reply(item, usable=False, reason=verdict.reason, raw=raw)
        elif isinstance(verdict, Failed):
            self.failed += 1

    def as_dict(self) -> dict[str, Any]:
        rate = self.parse_rate
        data: dict[str, Any] = {
            "replies": self.replies,
            "usable": self.usable,
            "unusable": self.unusable,
            "failed": self.failed,
            "parse_rate": None if rate is None else round(rate, 4),
        }
        if self.sample is not None:
            data["sample_unusable"] = self.sample.as_dict()
        return data


def nothing_usable(stage: str, what: str, count: StageCount, *, extra: str = "") -> str:
    """``stage`` produced no ``what``: one line with its counts and a sample unusable reply, when there is one."""
    parts = [f"{count.replies} replies, {count.usable} usable, {count.unusable} unusable, {count.failed} failed calls"]
    if extra:
        parts.append(extra)
    message = f"stage {stage} produced no {what} ({'; '.join(parts)})"
    sample = count.sample
    if sample is not None:
        raw = " ".join(sample.raw.split())
        shown = raw if len(raw) <= SAMPLE_CHARS else raw[: SAMPLE_CHARS - 1] + "…"
        message += f"; a sample reply ({sample.item}: {sample.reason}): {shown!r}"
    return message
