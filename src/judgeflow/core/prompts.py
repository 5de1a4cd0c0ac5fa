"""Prompt templates as plain data, and the pure functions that fill them in.

Every prompt is a frozen dataclass of plain strings, so a user override is just another instance (from a
config file or the command line); the defaults below are ordinary values of the same types. Templates use
`str.format` placeholders. Each prompt checks its template when it is built, so a typo such as ``{questoin}``
fails at start-up with a clear message rather than halfway through a paid run.

The judge prompt follows the CorrectnessEvaluator recipe (a score from 1 to 5 on the first line, reasoning
after it), which is what `judgeflow.core.parsing.parse_judge_reply` reads and `format_judge_reply` writes.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from judgeflow.protocol.messages import ChatMessage, JudgeInput, QAPair, TrainingExample

__all__ = [
    "DEFAULT_ANSWER_PROMPT",
    "DEFAULT_JUDGE_PROMPT",
    "DEFAULT_QUESTION_PROMPT",
    "JSON_QUESTIONS_FORMAT",
    "JSON_SCORE_FORMAT",
    "PROMPT_KEYS",
    "AnswerPrompt",
    "JudgePrompt",
    "Prompts",
    "QuestionPrompt",
    "answer_messages",
    "build_prompts",
    "parse_question_replies",
    "parse_question_reply",
    "training_example",
    "training_example_json",
]


def _check_template(owner: str, template: str, fields: frozenset[str]) -> None:
    """Raise ValueError unless ``template`` formats cleanly and uses exactly ``fields``."""
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:  # an unmatched "{" or "}"
        raise ValueError(f"{owner}.user_template is not a valid template: {error}") from None
    unknown = used - fields
    if unknown:
        raise ValueError(
            f"{owner}.user_template uses unknown placeholders {sorted(unknown)}; allowed: {sorted(fields)} "
            '(write a literal brace as "{{" or "}}")'
        )
    missing = fields - used
    if missing:
        raise ValueError(f"{owner}.user_template is missing placeholders {sorted(missing)}")


# Judge prompt


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    """A reference-based judge prompt: a system rubric and a user message with the three texts.

    ``system`` asks for the recipe's reply (the score alone on the first line, then the reasoning); ``json_system``
    is the system message of the JSON scoring modes. Left empty, it is ``system`` followed by `JSON_SCORE_FORMAT`.
    """

    system: str
    user_template: str  # {question}, {reference}, {answer}
    json_system: str = ""

    def __post_init__(self) -> None:
        _check_template("JudgePrompt", self.user_template, _JUDGE_FIELDS)

    def system_for(self, *, json_reply: bool) -> str:
        if not json_reply:
            return self.system
        return self.json_system or f"{self.system}\n\n{JSON_SCORE_FORMAT}"

    def messages(self, item: JudgeInput, *, json_reply: bool = False) -> tuple[ChatMessage, ...]:
        """The (system, user) messages that ask the judge to grade ``item`` (in JSON with ``json_reply``)."""
        user = self.user_template.format(question=item.question, reference=item.reference, answer=item.answer)
        system = self.system_for(json_reply=json_reply)
        return (ChatMessage(role="system", content=system), ChatMessage(role="user", content=user))


_JUDGE_FIELDS = frozenset({"question", "reference", "answer"})

_RUBRIC = (
    "You grade the answers of a question-answering assistant.\n"
    "\n"
    "You will see a user query, a reference answer that is known to be right, and a generated answer. "
    "Decide how relevant the generated answer is to the query and how correct it is when checked "
    "against the reference answer, then give it one score from 1 to 5:\n"
    "- 1: the generated answer does not address the query.\n"
    "- 2 to 3: the generated answer addresses the query but gets something wrong.\n"
    "- 4 to 5: the generated answer addresses the query and is entirely correct.\n"
)

# No example values to copy: under a grammar a small model copies a placeholder verbatim.
JSON_SCORE_FORMAT = (
    'Reply with one JSON object and nothing else. Its first key is "score", the score as a whole number '
    'from 1 to 5; its second key is "reasoning", one or two sentences saying why you chose it.'
)

DEFAULT_JUDGE_PROMPT = JudgePrompt(
    system=(
        _RUBRIC + "Scores in between, such as 4.5, are fine.\n"
        "\n"
        "Put the score alone on the first line, with no label or other text. "
        "On the following lines, explain briefly why you chose it.\n"
        "\n"
        "For example:\n"
        "4.0\n"
        "The generated answer agrees with the reference on every point it makes but leaves out the year."
    ),
    user_template=("## User Query\n{question}\n\n## Reference Answer\n{reference}\n\n## Generated Answer\n{answer}\n"),
    json_system=_RUBRIC + "\n" + JSON_SCORE_FORMAT,
)


def training_example(
    example_id: str,
    item: JudgeInput,
    teacher_reply: str,
    score: float,
    prompt: JudgePrompt = DEFAULT_JUDGE_PROMPT,
) -> TrainingExample:
    """A teacher judgement as a chat fine-tuning example: system, user, then the teacher's reply verbatim."""
    messages = (*prompt.messages(item), ChatMessage(role="assistant", content=teacher_reply))
    return TrainingExample(
        id=example_id,
        messages=messages,
        question=item.question,
        reference=item.reference,
        answer=item.answer,
        score=score,
    )


def training_example_json(example: TrainingExample) -> dict[str, object]:
    """One line of an OpenAI chat fine-tuning file: ``{"messages": [{"role": ..., "content": ...}, ...]}``."""
    return {"messages": [{"role": m.role, "content": m.content} for m in example.messages]}


# Question writer prompt


@dataclass(frozen=True, slots=True)
class QuestionPrompt:
    """Asks a model to draft quiz questions, each with a reference answer, from one passage of context.

    ``user_template`` asks for the labelled text format; ``json_user_template`` for JSON (the question writer's
    constrained output). Left empty, the JSON one is ``user_template`` followed by `JSON_QUESTIONS_FORMAT`.
    """

    system: str
    user_template: str  # {context}, {num_questions}
    json_user_template: str = ""

    def __post_init__(self) -> None:
        _check_template("QuestionPrompt", self.user_template, _QUESTION_FIELDS)
        if self.json_user_template:
            _check_template("QuestionPrompt (JSON)", self.json_user_template, _QUESTION_FIELDS)

    def messages(self, context: str, *, num_questions: int = 1, json_reply: bool = False) -> tuple[ChatMessage, ...]:
        """The (system, user) messages asking for ``num_questions`` question/answer pairs on ``context``."""
        if num_questions < 1:
            raise ValueError(f"num_questions must be at least 1, got {num_questions}")
        if json_reply and self.json_user_template:
            user = self.json_user_template.format(context=context, num_questions=num_questions)
        else:
            user = self.user_template.format(context=context, num_questions=num_questions)
            if json_reply:
                user = f"{user.rstrip()}\n\n{JSON_QUESTIONS_FORMAT}"
        return (ChatMessage(role="system", content=self.system), ChatMessage(role="user", content=user))


_QUESTION_FIELDS = frozenset({"context", "num_questions"})

JSON_QUESTIONS_FORMAT = (
    'Reply in JSON instead: one object whose key "questions" holds a list with one object per question, each '
    'with the key "question" (the question, ending with a question mark) and the key "reference" (its '
    "correct answer, taken from the context). Write nothing outside the JSON object."
)

DEFAULT_QUESTION_PROMPT = QuestionPrompt(
    system=(
        "You are a teacher writing an exam. Every question you write must test an important fact stated "
        "in the context you are given, and must be answerable from that context alone. Along with each "
        "question, write the correct answer, based only on the context."
    ),
    user_template=(
        "## Context\n{context}\n\n"
        "Write {num_questions} question(s) about the context above, each with its answer. "
        "Use exactly this format for each one, and write nothing else:\n"
        "Question: <the question>\n"
        "Answer: <the answer>\n"
    ),
    json_user_template=(
        "## Context\n{context}\n\n"
        "Write {num_questions} question(s) about the context above, each with its answer. Reply in JSON: one "
        'object whose key "questions" holds a list with one object per question, each with the key '
        '"question" (the question, ending with a question mark) and the key "reference" (its correct '
        "answer, taken from the context). Write nothing outside the JSON object.\n"
    ),
)

# "Question:", "**Q1:**", "- Reference answer: ...", "2. **Answer** - ...": a label, then the field's text.
# Matched against a line whose whitespace runs are single spaces, so no two space quantifiers are adjacent
# (with raw "\s*" the pattern backtracked for seconds on a line of spaces).
_QA_LABEL = re.compile(
    r"[>#*\-• ]*(?:[0-9]+[.)] ?)?(?:\*\*|__)?"
    r"(?P<label>question|q|(?:reference |correct )?answer|a) ?#? ?[0-9]* ?(?:\*\*|__)?"
    r"(?::| [-–—]) ?(?:\*\*|__)?(?P<text>.*)",
    re.IGNORECASE | re.DOTALL,
)


def parse_question_replies(raw: str) -> tuple[QAPair, ...]:
    """Every complete "Question: ... / Answer: ..." pair in a reply, in order; never raises.

    Text outside the labelled fields (greetings, "Here are your questions:") is ignored. A field runs on over
    following lines until a blank line or the next label. A question without an answer is dropped.
    """
    pairs: list[QAPair] = []
    question: list[str] | None = None
    answer: list[str] | None = None
    current: list[str] | None = None

    def flush() -> None:
        if question is not None and answer is not None:
            q = " ".join(question).strip()
            a = "\n".join(answer).strip()
            if q and a:
                pairs.append(QAPair(question=q, reference=a))

    for line in raw.splitlines():
        stripped = " ".join(line.split())
        match = _QA_LABEL.fullmatch(stripped)
        if match is not None:
            text = match.group("text").strip().removesuffix("**").removesuffix("__").strip()
            if match.group("label").lower() in ("question", "q"):
                flush()
                question, answer = [text], None
                current = question
            elif question is not None:
                answer = [text]
                current = answer
            else:
                current = None  # an answer with no question before it
        elif not stripped:
            # A blank line ends a field, unless the field's text has not started yet ("Answer:\n\nParis").
            if current is not None and any(current):
                current = None
        elif current is not None:
            current.append(stripped)
    flush()
    return tuple(pairs)


def parse_question_reply(raw: str) -> QAPair | None:
    """The first complete question/answer pair in a reply, or None; never raises."""
    pairs = parse_question_replies(raw)
    return pairs[0] if pairs else None


# Answerer prompt


@dataclass(frozen=True, slots=True)
class AnswerPrompt:
    """Asks the model under evaluation to answer a question from retrieved passages."""

    system: str
    user_template: str  # {context}, {question}

    def __post_init__(self) -> None:
        _check_template("AnswerPrompt", self.user_template, _ANSWER_FIELDS)


_ANSWER_FIELDS = frozenset({"context", "question"})

DEFAULT_ANSWER_PROMPT = AnswerPrompt(
    system=(
        "You answer questions using the context passages you are given. Rely on the context rather than on "
        "prior knowledge. If the context does not contain the answer, say that you do not know."
    ),
    user_template="## Context\n{context}\n\n## Question\n{question}\n",
)

_NO_CONTEXT = "(no passages were retrieved)"


def answer_messages(
    question: str, passages: Sequence[str], prompt: AnswerPrompt = DEFAULT_ANSWER_PROMPT
) -> tuple[ChatMessage, ...]:
    """The (system, user) messages asking for an answer to ``question`` from ``passages`` (best first)."""
    context = "\n\n".join(f"[{i}] {text.strip()}" for i, text in enumerate(passages, start=1)) or _NO_CONTEXT
    user = prompt.user_template.format(context=context, question=question)
    return (ChatMessage(role="system", content=prompt.system), ChatMessage(role="user", content=user))


PROMPT_KEYS: tuple[str, ...] = (
    "judge_system",
    "judge_json_system",
    "judge_user",
    "question_system",
    "question_user",
    "question_json_user",
    "answer_system",
    "answer_user",
)
_PROMPT_FIELDS = {
    "system": "system",
    "user": "user_template",
    "json_system": "json_system",
    "json_user": "json_user_template",
}
# Overriding the text-format prompt drops the default JSON variant, which would otherwise ignore the override:
# the JSON variant is then derived from the override (unless it is overridden too).
_DERIVED = {
    "judge_system": ("judge_json_system", "json_system"),
    "question_user": ("question_json_user", "json_user_template"),
}


@dataclass(frozen=True, slots=True)
class Prompts:
    judge: JudgePrompt = DEFAULT_JUDGE_PROMPT
    question: QuestionPrompt = DEFAULT_QUESTION_PROMPT
    answer: AnswerPrompt = DEFAULT_ANSWER_PROMPT


def build_prompts(overrides: Mapping[str, str]) -> Prompts:
    """The default prompts with ``overrides`` (``judge_system``, ``answer_user``, ...) applied; a bad one raises
    `ValueError` naming its key (the config check turns it into a config error, before anything is spent)."""
    unknown = sorted(set(overrides) - set(PROMPT_KEYS))
    if unknown:
        raise ValueError(f"prompts: unknown key(s) {unknown} (known: {', '.join(PROMPT_KEYS)})")
    prompts = Prompts()
    for key, text in overrides.items():
        which, part = key.split("_", 1)
        changes = {_PROMPT_FIELDS[part]: text}
        derived = _DERIVED.get(key)
        if derived is not None and derived[0] not in overrides:
            changes[derived[1]] = ""
        current = getattr(prompts, which)
        try:
            updated = dataclasses.replace(current, **changes)
        except ValueError as error:
            raise ValueError(f"prompts.{key}: {error}") from None
        prompts = dataclasses.replace(prompts, **{which: updated})
    return prompts
