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
    "Components": "judgeflow.flows.components",
    "ConfigError": "judgeflow.inputs.config",
    "Context": "judgeflow.protocol",
    "Document": "judgeflow.protocol",
    "Event": "judgeflow.protocol",
    "EventBus": "judgeflow.protocol",
    "Failed": "judgeflow.protocol",
    "InputError": "judgeflow.inputs.items",
    "JudgeInput": "judgeflow.protocol",
    "Judgement": "judgeflow.protocol",
    "PipelineConfig": "judgeflow.inputs.config",
    "PipelineRun": "judgeflow.flows.pipeline",
    "Question": "judgeflow.protocol",
    "QuestionWriter": "judgeflow.actors",
    "Retriever": "judgeflow.actors",
    "Router": "judgeflow.actors",
    "RunStopped": "judgeflow.protocol",
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
    "Workers": "judgeflow.inputs.config",
    "judge_file": "judgeflow.flows.judging",
    "load_config": "judgeflow.inputs.config",
    "local_components": "judgeflow.flows.components",
    "open_pipeline": "judgeflow.flows.pipeline",
    "parse_judge_reply": "judgeflow.core.parsing",
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
    "RunStopped",
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
    from judgeflow.core.parsing import parse_judge_reply
    from judgeflow.flows.components import Components, local_components
    from judgeflow.flows.judging import judge_file
    from judgeflow.flows.pipeline import PipelineRun, open_pipeline
    from judgeflow.inputs.config import ConfigError, PipelineConfig, Workers, load_config
    from judgeflow.inputs.errors import InputError
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
        RunStopped,
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
