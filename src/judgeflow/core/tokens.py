"""Token counts without a tokenizer: one rule of thumb, used wherever judgeflow must guess a count.

Four characters per token, rounded up, is close for English prose (which runs nearer five, so the count errs
high) and costs nothing: no tokenizer files to download, which offline machines cannot. The budget reserves
against it (`judgeflow.calls.context.request_tokens`) and the fine-tuning checks price a training set with it
(`judgeflow.core.finetune_data`); both say their figures are estimates.
"""

from __future__ import annotations

__all__ = ["text_tokens"]


def text_tokens(text: str) -> int:
    """Tokens in ``text`` by the 4-characters-per-token rule of thumb."""
    return (len(text) + 3) // 4
