"""Naming a judge on the command line: ``PROVIDER:MODEL``.

``local:teacher`` is the offline rubric teacher, ``local:student-prior`` the untrained local student, and
``local:PATH`` a trained local student saved in a folder (a run folder's ``student/``): the numpy student
(``model.json``) or the MiniLM student (``neural_student.json``, needs the local extra). ``openai:MODEL`` is a
chat model on OpenAI or any OpenAI-compatible server, ``hf:MODEL`` a Hugging Face model id or the URL of a TGI
server or Inference Endpoint (``hf:http://127.0.0.1:8080``). Resolving a name is the only place that knows which
class implements which provider, so the CLI stays a thin layer.

`resolve_judge` resolves local names alone; `resolve_judges` resolves any list and returns the `RunResources`
the provider judges share (one budget, one ledger, gates, clients), which the caller closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from judgeflow.config import ConfigError, RoleConfig
from judgeflow.pricing import DEFAULT_PRICES
from judgeflow.prompts import DEFAULT_JUDGE_PROMPT
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.providers.base import JudgeModel
from judgeflow.providers.factory import ModelMaker, RunResources
from judgeflow.providers.neural._format import has_neural_student

if TYPE_CHECKING:
    from judgeflow.cache import ResponseCache

__all__ = ["JudgeSpecError", "resolve_judge", "resolve_judges"]


class JudgeSpecError(ValueError):
    """A judge name that does not resolve; the message says what would."""


def resolve_judge(spec: str) -> JudgeModel:
    provider, sep, model = spec.partition(":")
    if not sep or not model:
        raise JudgeSpecError(f"judge {spec!r}: expected PROVIDER:MODEL, for example local:teacher")
    if provider == "local":
        from judgeflow.providers.local import LocalStudentJudge, LocalTeacherJudge

        if model == "teacher":
            return LocalTeacherJudge()
        if model in ("student-prior", "student_base"):
            return LocalStudentJudge.prior(name="student_base")
        path = Path(model)
        for folder in (path, path / "student"):
            if has_neural_student(folder):
                return _load_neural_student(spec, folder)
        if path.is_dir() and (path / "model.json").is_file():
            return LocalStudentJudge.load(path)
        if path.is_dir() and (path / "student" / "model.json").is_file():
            return LocalStudentJudge.load(path / "student")
        raise JudgeSpecError(
            f"judge {spec!r}: no local judge {model!r}; use local:teacher, local:student-prior, "
            "or local:PATH to a folder holding a trained student (model.json, or a MiniLM student's "
            "neural_student.json)"
        )
    if provider in ("openai", "hf"):
        raise JudgeSpecError(f"judge {spec!r}: {provider} judges are resolved with resolve_judges")
    raise JudgeSpecError(f"judge {spec!r}: unknown provider {provider!r} (available: local, openai, hf)")


def _load_neural_student(spec: str, folder: Path) -> JudgeModel:
    """A MiniLM student saved by ``judgeflow distill`` or the ``minilm`` trainer (torch is imported only now)."""
    try:
        from judgeflow.providers.neural import MiniLMStudentJudge

        return MiniLMStudentJudge.load(folder)
    except (ImportError, ValueError) as error:
        raise JudgeSpecError(f"judge {spec!r}: {error}") from None


async def resolve_judges(
    specs: Sequence[str],
    *,
    base_url: str | None = None,
    concurrency: int = 16,
    rpm: int | None = None,
    tpm: int | None = None,
    max_cost: float | None = None,
    max_tokens: int | None = None,
    timeout_s: float = 60.0,
    publish: Publish = null_publish,
    cache: ResponseCache | None = None,
) -> tuple[list[tuple[str, JudgeModel]], RunResources]:
    """Each spec as ``(spec, judge)``, in order, and the resources the provider judges share.

    ``base_url`` sends ``openai:`` judges to that server (default: ``OPENAI_BASE_URL``, else api.openai.com)
    and ``hf:`` judges named by Hub id to that TGI server; an ``hf:URL`` judge goes to its own URL. Keys come
    from ``OPENAI_API_KEY`` / ``HF_TOKEN`` only. ``concurrency``, ``rpm`` and ``tpm`` limit each provider model;
    ``max_cost`` (USD) caps what all of them together may spend; ``max_tokens`` caps each reply, which also makes
    the budget's per-call reservations tight (without it each call reserves
    `judgeflow.calling.ASSUMED_OUTPUT_TOKENS` of output). Close the resources when judging is done
    (``async with resources:``); on an error, whatever was opened is closed before it propagates.
    """
    maker = ModelMaker(publish=publish, max_cost_usd=max_cost, prices=DEFAULT_PRICES, cache=cache)
    judges: list[tuple[str, JudgeModel]] = []
    try:
        for spec in specs:
            provider, _, model = spec.partition(":")
            if provider not in ("openai", "hf") or not model:
                judges.append((spec, resolve_judge(spec)))
                continue
            endpoint = provider == "hf" and model.startswith(("http://", "https://"))  # the model is its own URL
            url = None if endpoint else base_url
            try:
                role = RoleConfig(
                    provider=provider,
                    model=model,
                    base_url=url,
                    rpm=rpm,
                    tpm=tpm,
                    concurrency=concurrency,
                    max_tokens=max_tokens,
                    timeout_s=timeout_s,
                )
                judges.append((spec, maker.judge(role, f"judge {spec!r}", DEFAULT_JUDGE_PROMPT)))
            except ConfigError as error:
                message = str(error)
                prefix = f"judge {spec!r}: "
                raise JudgeSpecError(message if message.startswith(prefix) else prefix + message) from None
    except BaseException:
        await maker.resources.aclose()
        raise
    return judges, maker.resources
