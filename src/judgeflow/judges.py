"""Naming a judge on the command line: ``PROVIDER:MODEL``.

``local:teacher`` is the offline rubric teacher, ``local:student-prior`` the untrained local student, and
``local:PATH`` a trained local student saved in a folder (a run folder's ``student/``). Resolving a name is the
only place that knows which class implements which provider, so the CLI stays a thin layer.
"""

from __future__ import annotations

from pathlib import Path

from judgeflow.providers.base import JudgeModel

__all__ = ["JudgeSpecError", "resolve_judge"]


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
        if path.is_dir() and (path / "model.json").is_file():
            return LocalStudentJudge.load(path)
        if path.is_dir() and (path / "student" / "model.json").is_file():
            return LocalStudentJudge.load(path / "student")
        raise JudgeSpecError(
            f"judge {spec!r}: no local judge {model!r}; use local:teacher, local:student-prior, "
            "or local:PATH to a folder holding a trained student's model.json"
        )
    raise JudgeSpecError(f"judge {spec!r}: unknown provider {provider!r} (available: local)")
