"""An offline question writer: turns fact-bearing sentences into wh-questions with the sentence as reference.

The real pipeline asks an LLM to "write a question this passage answers, and the answer". Offline, the same job
is done with a few transformations that a reader can check by eye, because the questions end up in front of the
user (in the dashboard and the run folder) and must read like questions:

* a sentence that says *when* ("... opened in May 1937") becomes "In what year did ... open?" (or "In what
  year was ... founded?" for a passive, or an echo question "... opened in what year?" when the verb form is
  not one the small rules below can turn into a base form with confidence);
* a sentence that starts with a name followed by a verb becomes "Who ...?" (or "What ...?" for a building,
  park, law or other thing);
* a sentence with a counted quantity ("killed an estimated 3,000 people") becomes an echo question with "how
  many people" (or "what percentage") in place of the figure.

Only the clause that holds the fact is asked about; the reference is the whole source sentence, so a reference
may carry more than the question asks, as references written by people do. A question is prefixed with "In
the history of <City>," when it does not already name the city, so it can be answered (and retrieved) without
knowing which document it came from. Sentences are chosen spread across the document, by a generator seeded
from the document id: the same document always yields the same questions.

The grammar these transformations stand on (finding the verb, its base form, the clause, a name's capital) is
in `grammar`; this module decides what to ask and how the question reads.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

from judgeflow.core.text import split_sentences, wordset
from judgeflow.protocol.messages import Document, QAPair

from .grammar import (
    DETERMINERS,
    IRREGULAR,
    LEADING,
    NOT_VERBS,
    Casing,
    base_form,
    base_predicate,
    clause_with,
    clean,
    drop_fronted_phrase,
    find_verb,
)

__all__ = ["LocalQuestionWriter", "base_form"]

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})(?![0-9s'’\-–])"
_DATE_PHRASE = re.compile(
    rf"\b(?:[Ii]n|[Oo]n)\s+(?:(?:early|late|mid|the\s+spring\s+of|the\s+summer\s+of|the\s+autumn\s+of|"
    rf"the\s+winter\s+of)\s+)?(?:(?:{_MONTHS})\s+(?:[0-9]{{1,2}},?\s+)?)?{_YEAR}"
)
_FRONTED = re.compile(rf"^(?:(?:Also|Later|Then|And|But)\s+)?{_DATE_PHRASE.pattern}\s*,\s*")
_QUANTITY = re.compile(
    r"(?<![\w-])(?:(?:about|roughly|around|approximately|nearly|almost|over|some|at\s+least|more\s+than|less\s+than|"
    r"fewer\s+than|an\s+estimated|a\s+total\s+of)\s+)?"
    r"(?P<num>[0-9][0-9,]*(?:\.[0-9]+)?)\s+(?:(?P<mult>million|billion|thousand|hundred)\s+)?(?P<unit>[a-z][a-z\-]+)"
)
_PRONOUN_STARTS = wordset("it its this these they their them he she his her that those there such both each another")
_NOT_UNITS = wordset("and or of to in on at by for with from as the a an than was were is are had has have years year")
_THING_NOUNS = wordset("""
    park bridge tower street island bay square hall church cathedral basilica museum station railway railroad
    line company act exposition exhibition treaty canal river lake mountain palace castle temple shrine
    university college school hotel market building centre center stadium airport port harbour harbor road
    avenue boulevard expressway subway metro system games olympics fair war rebellion revolution dynasty
    shogunate party government council board commission association society club team charter agreement
    conference festival theatre theater opera library hospital bank exchange corporation league
    """)


@dataclass(frozen=True, slots=True)
class _Draft:
    kind: str
    question: str


def _seed(doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")


def _city(title: str) -> str:
    lowered = title.lower()
    return title[len("history of ") :].strip() if lowered.startswith("history of ") else title.strip()


_APPOSITIVE = re.compile(
    r"^(?P<subject>[^,]+),\s+(?P<participle>(?:(?:first|originally|later|once|formally|officially)\s+)?"
    r"(?:[a-z]+ed|held|built|made|begun|written|known|laid|set|rebuilt|won))\s*$"
)


class LocalQuestionWriter:
    """Drafts up to ``max_questions`` question/reference pairs per document, deterministically."""

    def __init__(self, *, name: str = "local-writer", min_words: int = 7, max_words: int = 48) -> None:
        self.name = name
        self.min_words = min_words
        self.max_words = max_words

    async def write(self, document: Document, *, max_questions: int) -> list[QAPair]:
        return self.write_sync(document, max_questions=max_questions)

    def write_sync(self, document: Document, *, max_questions: int) -> list[QAPair]:
        """The pairs for ``document``, in document order, spread over its length."""
        if max_questions <= 0:
            return []
        sentences = split_sentences(document.text)
        casing = Casing(sentences)
        city = _city(document.title)
        rng = random.Random(_seed(document.id))
        candidates: list[tuple[int, str, _Draft]] = []
        for index, sentence in enumerate(sentences):
            n_words = len(sentence.split())
            first = sentence.split()[0].lower().strip(",\"'") if n_words else ""
            if not self.min_words <= n_words <= self.max_words or first in _PRONOUN_STARTS:
                continue
            drafts = self._drafts(sentence, city=city, casing=casing)
            if drafts:
                weights = [{"year": 5, "who": 3, "count": 2}[d.kind] for d in drafts]
                candidates.append((index, sentence, rng.choices(drafts, weights=weights)[0]))
        chosen = self._spread(candidates, n_sentences=len(sentences), k=max_questions, rng=rng)
        pairs: list[QAPair] = []
        seen: set[str] = set()
        for _, sentence, draft in chosen:
            if draft.question not in seen:
                seen.add(draft.question)
                pairs.append(QAPair(question=draft.question, reference=sentence, source_text=sentence))
        return pairs

    @staticmethod
    def _spread(
        candidates: list[tuple[int, str, _Draft]], *, n_sentences: int, k: int, rng: random.Random
    ) -> list[tuple[int, str, _Draft]]:
        """One candidate from each of ``k`` equal stretches of the document, then any left to fill up."""
        if len(candidates) <= k:
            return candidates
        bins: list[list[int]] = [[] for _ in range(k)]
        for pos, (index, _, _) in enumerate(candidates):
            bins[min(k - 1, index * k // max(1, n_sentences))].append(pos)
        picked = {rng.choice(b) for b in bins if b}
        rest = [pos for pos in range(len(candidates)) if pos not in picked]
        rng.shuffle(rest)
        picked.update(rest[: k - len(picked)])
        return [candidates[pos] for pos in sorted(picked)]

    def _drafts(self, sentence: str, *, city: str, casing: Casing) -> list[_Draft]:
        body = sentence.rstrip(".!?\"'”’ ")
        drafts = [
            draft
            for draft in (
                self._year_question(body, casing),
                self._who_question(body, city),
                self._count_question(body, casing),
            )
            if draft is not None
        ]
        # A question with no name or figure in it ("In what year was the chapel consecrated?") leans on the
        # sentence before it for its meaning: leave it out.
        drafts = [d for d in drafts if re.search(r"[0-9]|\s[A-Z]", d.question)]
        return [_Draft(d.kind, _finish(d.question, city=city)) for d in drafts]

    @staticmethod
    def _year_question(body: str, casing: Casing) -> _Draft | None:
        fronted = _FRONTED.match(body)
        if fronted is not None:
            clause, _, _ = clause_with(body, 0, fronted.end())
            clause = clause[fronted.end() :]
        else:
            match = _DATE_PHRASE.search(body)
            if match is None:
                return None
            clause, start, end = clause_with(body, match.start(), match.end())
            before, after = clause[:start], clause[end:]
            aside = _APPOSITIVE.match(before) if after.startswith(",") else None
            if aside is not None and find_verb(aside.group("subject").split()) is not None:
                return None  # "Britain built a base, completed in 1938, ...": the date is not the verb's
            if aside is not None:
                # "The Exhibition, first held in 1879, later became ...": ask about the aside itself.
                subject = casing.lower_first(drop_fronted_phrase(aside.group("subject")))
                return _Draft("year", f"In what year was {subject} {aside.group('participle')}")
            if after.startswith(","):
                leading = before.split()[:1] and before.split()[0].lower() in LEADING
                if leading and find_verb(before.split()) is None:
                    # "At dawn on April 18, 1906, an earthquake struck": the date closes a fronted phrase.
                    clause = after[1:]
                elif find_verb(before.split()) is None:
                    return None
                else:
                    clause = before
            else:
                # An "and" right after the date starts a second predicate ("was dedicated in 1776 and
                # remains ..."), which the question leaves out.
                cut = re.search(r",(?![0-9])|^ and\b", after)
                clause = before + (after if cut is None else after[: cut.start()])
        clause = drop_fronted_phrase(clean(clause))
        words = clause.split()
        if len(words) < 3 or re.search(_YEAR, clause):
            return None  # a second year in the question would make "in what year" ambiguous
        found = find_verb(words)
        if found is None:
            return _Draft("year", f"{casing.lower_first(clause)} in what year")
        i, kind, base = found
        subject = clean(" ".join(words[:i]))
        rest = clean(" ".join(words[i + 1 :]))
        if not subject or (re.fullmatch(r"(?:the|this|that) [a-z]+", subject.lower()) and "city" not in subject):
            return None  # "the chapel was consecrated": which chapel is only clear from the sentence before
        subject = casing.lower_first(subject) + ("," if words[i - 1].endswith(",") else "")
        if kind == "aux":
            question = f"In what year {words[i].lower()} {subject} {rest}"
        elif base is not None and (predicate := base_predicate(words[i + 1 :])) is not None:
            question = f"In what year did {subject} {base} {predicate}"
        else:
            question = f"{subject} {' '.join(words[i:])} in what year"
        return _Draft("year", clean(question))

    @staticmethod
    def _who_question(body: str, city: str) -> _Draft | None:
        words = body.split()
        n = 0
        while n < len(words) and (words[n][:1].isupper() or (n and words[n] in ("de", "van", "von", "da"))):
            if words[n].endswith(","):
                return None
            n += 1
        if n < 2 or n >= len(words) or words[0].lower() in LEADING | DETERMINERS | {"also"}:
            return None
        name = " ".join(words[:n])
        if city and city.lower() in name.lower():
            return None
        verb = words[n].lower()
        last = words[n - 1].lower()
        thing = last in _THING_NOUNS
        if verb in ("was", "were"):
            if not thing:
                return None  # "X was shot" could be a person or a thing: do not guess
        elif not (verb in IRREGULAR or (verb.endswith("ed") and verb not in NOT_VERBS)):
            return None
        clause, _, _ = clause_with(body, 0, len(name))
        predicate = clean(clause[len(name) :])
        return _Draft("who", f"{'What' if thing else 'Who'} {predicate}")

    @staticmethod
    def _count_question(body: str, casing: Casing) -> _Draft | None:
        for match in _QUANTITY.finditer(body):
            unit = match.group("unit")
            num = match.group("num").rstrip(",.")
            if unit in _NOT_UNITS or (re.fullmatch(_YEAR, num) and match.group("mult") is None):
                continue
            end = match.end()
            if unit == "percent":
                of = re.match(r"\s+of\b", body[end:])
                wh = "what percentage" + (" of" if of else "")
                end += of.end() if of else 0
            else:
                wh = f"how many {unit}"
            clause, start, stop = clause_with(body, match.start(), end)
            if "," in clause[:start] or clause[:start].rstrip().endswith(" and"):
                continue  # a figure inside an aside ("and, at 553 metres, stood ...") makes no clean question
            after = clause[stop:]
            cut = re.search(r",(?![0-9])| and ", after)
            text = clean(clause[:start] + wh + (after if cut is None else after[: cut.start()]))
            if len(text.split()) < 4 or text.lower().startswith(("how", "what")):
                continue
            return _Draft("count", casing.lower_first(text))
        return None


_ASIDE_START = (
    r"(?:the|a|an|its|his|her|their|one|now|later|then|once|formerly|working|known|built|led|on|in|at|with|"
    r"which|who|whose|[a-z]+ed)"
)
_TRAILING_START = r"(?:a|an|though|although|while|helped|making|leaving|which|who|whose|just|shortly|[a-z]+ed)"
_INNER_ASIDE = re.compile(rf"(?:,\s+{_ASIDE_START}\b[^,?]*)+,\s+")
_TRAILING_ASIDE = re.compile(rf",\s+{_TRAILING_START}\b[^?]*$")


def _concise(question: str) -> str:
    """Drop asides ("the Spanish ship San Carlos, commanded by Juan Manuel de Ayala, became ...") the way a
    person writing the question would: they make it long without making it clearer."""
    while (shorter := _INNER_ASIDE.sub(" ", question, count=1)) != question:
        question = shorter
    if "what year" in question.lower() or "how many" in question.lower():
        stripped = _TRAILING_ASIDE.sub("", question)
        if len(stripped.split()) >= 5 and re.search(r"what year|how many|what percentage", stripped):
            question = stripped
    return question


def _finish(question: str, *, city: str) -> str:
    """Make the draft concise; prefix the city when the question does not name it; end with a "?"."""
    question = clean(_concise(clean(question)))
    if city and city.lower() not in question.lower():
        first = question.split(" ", 1)[0]
        if first in ("In", "Who", "What"):
            question = first.lower() + question[len(first) :]
        question = f"In the history of {city}, {question}"
    return question[:1].upper() + question[1:] + "?"
