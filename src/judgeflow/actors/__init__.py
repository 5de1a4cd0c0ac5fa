"""The actors: each one stage of the pipeline, usable on its own.

Construct an actor with its dependencies, give it an inbox and an outbox, and start it in your task group
with ``await tg.start(actor.run, inbox, outbox)``. It closes its outbox when done and re-raises cancellation.
"""

from .answerer import Answerer
from .judge import Judge, StudentJudge, TeacherJudge
from .question_writer import QuestionWriter
from .retriever import Retriever
from .router import Router
from .scorer import Scorer
from .trainer import Trainer

__all__ = [
    "Answerer",
    "Judge",
    "QuestionWriter",
    "Retriever",
    "Router",
    "Scorer",
    "StudentJudge",
    "TeacherJudge",
    "Trainer",
]
