"""judgeflow: distil an expensive LLM judge into a cheap one, as an async actor pipeline.

The public names below are imported lazily (on first use), so ``import judgeflow`` and ``judgeflow --help``
stay fast: numpy, scipy and the provider SDKs load only when a pipeline or a judge actually needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Answer": "judgeflow.protocol",
    "Answerer": "judgeflow.actors",
    "Channel": "judgeflow.protocol",
    "Components": "judgeflow.components",
    "ConfigError": "judgeflow.config",
    "Context": "judgeflow.protocol",
    "Document": "judgeflow.protocol",
    "Event": "judgeflow.protocol",
    "EventBus": "judgeflow.protocol",
    "Failed": "judgeflow.protocol",
    "InputError": "judgeflow.items",
    "JudgeInput": "judgeflow.protocol",
    "Judgement": "judgeflow.protocol",
    "PipelineConfig": "judgeflow.config",
    "PipelineRun": "judgeflow.pipeline",
    "Question": "judgeflow.protocol",
    "QuestionWriter": "judgeflow.actors",
    "Retriever": "judgeflow.actors",
    "Router": "judgeflow.actors",
    "ScoreUpdate": "judgeflow.protocol",
    "Scored": "judgeflow.protocol",
    "Scorer": "judgeflow.actors",
    "StudentJudge": "judgeflow.actors",
    "StudentReady": "judgeflow.protocol",
    "TeacherJudge": "judgeflow.actors",
    "Trainer": "judgeflow.actors",
    "TrainingExample": "judgeflow.protocol",
    "Unparsed": "judgeflow.protocol",
    "Verdict": "judgeflow.protocol",
    "Workers": "judgeflow.config",
    "judge_file": "judgeflow.judging",
    "load_config": "judgeflow.config",
    "local_components": "judgeflow.components",
    "open_pipeline": "judgeflow.pipeline",
    "parse_judge_reply": "judgeflow.parsing",
}

__all__ = [
    "Answer",
    "Answerer",
    "Channel",
    "Components",
    "ConfigError",
    "Context",
    "Document",
    "Event",
    "EventBus",
    "Failed",
    "InputError",
    "JudgeInput",
    "Judgement",
    "PipelineConfig",
    "PipelineRun",
    "Question",
    "QuestionWriter",
    "Retriever",
    "Router",
    "ScoreUpdate",
    "Scored",
    "Scorer",
    "StudentJudge",
    "StudentReady",
    "TeacherJudge",
    "Trainer",
    "TrainingExample",
    "Unparsed",
    "Verdict",
    "Workers",
    "__version__",
    "judge_file",
    "load_config",
    "local_components",
    "open_pipeline",
    "parse_judge_reply",
]

if TYPE_CHECKING:
    from judgeflow.actors import (
        Answerer,
        QuestionWriter,
        Retriever,
        Router,
        Scorer,
        StudentJudge,
        TeacherJudge,
        Trainer,
    )
    from judgeflow.components import Components, local_components
    from judgeflow.config import ConfigError, PipelineConfig, Workers, load_config
    from judgeflow.items import InputError
    from judgeflow.judging import judge_file
    from judgeflow.parsing import parse_judge_reply
    from judgeflow.pipeline import PipelineRun, open_pipeline
    from judgeflow.protocol import (
        Answer,
        Channel,
        Context,
        Document,
        Event,
        EventBus,
        Failed,
        JudgeInput,
        Judgement,
        Question,
        Scored,
        ScoreUpdate,
        StudentReady,
        TrainingExample,
        Unparsed,
        Verdict,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'judgeflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
