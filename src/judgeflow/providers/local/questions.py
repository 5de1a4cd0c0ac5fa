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
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from judgeflow.protocol.messages import Document, QAPair

from .text import split_sentences, wordlist, wordset

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
_IRREGULAR: dict[str, str] = dict(
    pair.split(":")
    for pair in wordlist("""
    became:become began:begin brought:bring built:build rebuilt:rebuild came:come drew:draw fell:fall
    found:find gave:give grew:grow held:hold kept:keep led:lead left:leave lost:lose made:make met:meet
    ran:run rose:rise saw:see sent:send sold:sell spent:spend stood:stand struck:strike took:take told:tell
    won:win wrote:write paid:pay chose:choose drove:drive fought:fight broke:break bought:buy taught:teach
    sank:sink swept:sweep hanged:hang laid:lay withdrew:withdraw underwent:undergo overtook:overtake
    froze:freeze flew:fly threw:throw wore:wear shook:shake spoke:speak controlled:control compelled:compel
    expelled:expel patrolled:patrol cancelled:cancel travelled:travel labelled:label modelled:model
    added:add created:create recreated:recreate completed:complete propelled:propel excelled:excel
    """)
)
# A regular "-ed" verb gets its "e" back when the stem ends like one of these ("created" -> "create") ...
_E_ENDINGS = tuple(
    wordlist("""
    at iz ys yz is us ag ng rg dg rv iv ov av ir ur uc rc nc lv bl tl dl ib ut ud id ot ok ap ak ac ic ul um
    am im in on as os az ez rs ns ps ls pl gl kl ar
    """)
)
# ... and keeps it off when it ends like one of these (checked first: the longer, more specific endings).
_NO_E_ENDINGS = tuple(
    wordlist("""
    eat oat oot ook oid air our ain oin ein oon aim ing eer oor ear oar eal eel ail eil oil ool eam oom ush
    ash ish esh ect her ter der ver ber ner ger per ker ler mer ser fer en ch sh rn rm rt st ct nt ll ss ck wn rk
    lp nd ld rd lt pt ft lk mp ow ay ey oy aw ew ax ix ex ox rl mb gn lm rp sk sp wl rb lf rf ght
    """)
)
_PARTICIPLE_CUES = wordset("that which who now later formerly originally so once also being been was were had has have")
_PREPOSITIONS = wordset("in at on from near under with to for inside outside across along")
_DETERMINERS = wordset("the a an its their his her our this that these those")
_NOT_VERBS = wordset("hundred red bed shed wed need seed feed speed breed steed")


def base_form(past: str) -> str | None:
    """The base form of a past-tense verb ("opened" -> "open", "created" -> "create"), or ``None`` when the
    small rules here cannot tell (the caller then asks an echo question instead of guessing)."""
    word = past.lower()
    prefix = ""
    if "-" in word:  # "co-founded" -> "co-found"
        head, _, word = word.rpartition("-")
        prefix = head + "-"
    if word in _IRREGULAR:
        return prefix + _IRREGULAR[word]
    if not word.endswith("ed") or len(word) < 4:
        return None
    if word.endswith("ied") and len(word) > 4:
        return prefix + word[:-3] + "y"
    if word.endswith("eed"):
        return prefix + word[:-1]
    stem = word[:-2]
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
        return prefix + stem[:-1]
    if stem.endswith(_NO_E_ENDINGS):
        return prefix + stem
    if stem.endswith(_E_ENDINGS):
        return prefix + stem + "e"
    return None


@dataclass(frozen=True, slots=True)
class _Draft:
    kind: str
    question: str


def _seed(doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big")


def _city(title: str) -> str:
    lowered = title.lower()
    return title[len("history of ") :].strip() if lowered.startswith("history of ") else title.strip()


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,;:])", r"\1", text)
    text = re.sub(r",\s*,", ",", text)
    return text.strip(" ,;:.")


def _clause_with(sentence: str, start: int, end: int) -> tuple[str, int, int]:
    """The coordinated clause (split at ", and", ", but", "; ", ", which", ", leaving") holding the span."""
    cuts = [0]
    for m in re.finditer(r",\s+(?:and|but|while|which|who|where|leaving|making|killing)\b|;\s+", sentence):
        cuts.append(m.start())
        cuts.append(m.end())
    cuts.append(len(sentence))
    for i in range(0, len(cuts) - 1, 2):
        lo, hi = cuts[i], cuts[i + 1]
        if lo <= start and end <= hi:
            return sentence[lo:hi], start - lo, end - lo
    return sentence, start, end


class _Casing:
    """Knows which words the document capitalises mid-sentence, to decide whether a sentence's first word is a
    name ("Spanish", "Levi Strauss") or an ordinary word that only wears a capital at the start."""

    def __init__(self, sentences: Sequence[str]) -> None:
        self.proper: set[str] = set()
        self.common: set[str] = set()
        for sentence in sentences:
            for word in sentence.split()[1:]:
                word = word.strip(",;:.!?\"'()")
                (self.proper if word[:1].isupper() else self.common).add(word)

    def lower_first(self, text: str) -> str:
        words = text.split(" ", 2)
        first = words[0]
        if not first[:1].isupper():
            return text
        lower = first.lower()
        if lower not in _DETERMINERS and (
            first in self.proper
            or (len(words) > 1 and words[1][:1].isupper())
            or (lower.endswith(("ish", "ese", "ian", "ans", "ean", "can")) and lower not in self.common)
        ):
            return text
        return first[:1].lower() + first[1:] + text[len(first) :]


_APPOSITIVE = re.compile(
    r"^(?P<subject>[^,]+),\s+(?P<participle>(?:(?:first|originally|later|once|formally|officially)\s+)?"
    r"(?:[a-z]+ed|held|built|made|begun|written|known|laid|set|rebuilt|won))\s*$"
)
_LEADING = wordset(
    "after before when while although though because since as once until following during in on at by "
    "with under for from throughout despite"
)


def _drop_fronted_phrase(clause: str) -> str:
    """Drop a leading adverbial ("During the war, ...", "After Mexico won ...") so the subject comes first.

    A clause that is only a subordinate clause ("After Mexico won its independence from Spain") loses its
    subordinator instead, which leaves a plain statement of the same fact.
    """
    words = clause.split()
    if not words or words[0].lower() not in _LEADING:
        return clause
    comma = clause.find(",")
    if comma > 0 and _find_verb(clause[comma + 1 :].split()) is not None:
        head = clause[:comma].split()
        if _find_verb(head) is None or len(head) <= 6:
            return clause[comma + 1 :].strip()
    if words[0].lower() in ("after", "before", "when", "once", "following", "as", "since", "until"):
        return " ".join(words[1:])
    return clause


def _is_past(word: str) -> bool:
    word = word.rpartition("-")[2]
    return word in _IRREGULAR or (word.endswith("ed") and word not in _NOT_VERBS and len(word) > 3)


def _find_verb(words: Sequence[str]) -> tuple[int, str, str | None] | None:
    """``(index, kind, base)`` of the clause's main verb: kind "aux" for was/were, "past" otherwise.

    Participles are skipped: "-ed" after a determiner ("the abandoned ships"), before "by" ("led by"), after
    "that/which/who" (inside a relative clause), after "now/later/formerly" ("now called"), and after a comma
    when a date follows ("Salesforce Tower, completed in 2018, became ...").
    """
    for i in range(1, len(words)):
        word = words[i].strip(",;:")
        lower = word.lower()
        prev = words[i - 1].lower().strip(",")
        after = " ".join(words[i + 1 : i + 4])
        # A was/were inside a relative clause ("a fire that began while land was being cleared") is not it.
        in_relative = any(w in ("that", "which", "who", "while", "when") for w in words[:i])
        if not in_relative and (
            lower in ("was", "were")
            or (lower == "had" and i + 1 < len(words) and _is_past(words[i + 1].lower().strip(",")))
        ):
            return i, "aux", None
        if not word.replace("-", "").isalpha() or word[:1].isupper() or not _is_past(lower):
            continue
        if prev in _DETERMINERS or prev in _PARTICIPLE_CUES or after.startswith("by "):
            continue
        if words[i - 1].endswith(",") and re.match(r"(?:in|on|at)\b.*[0-9]", after):
            continue
        # "Indian troops stationed in Singapore mutinied": a past form right after a short place phrase
        # means the first one was a participle.
        if i + 1 < len(words) and words[i + 1] in _PREPOSITIONS:
            for j in range(i + 2, min(i + 5, len(words))):
                if words[j - 1].endswith(","):
                    break
                later = words[j].strip(",;:").lower()
                if _is_past(later) and words[j - 1][:1].isupper():
                    return j, "past", base_form(later)
        return i, "past", base_form(lower)
    return None


def _base_predicate(words: Sequence[str]) -> str | None:
    """The words after the main verb, with a coordinated past verb ("... and burned ...") put in base form,
    so the "did" question stays grammatical; ``None`` when such a verb has no known base form."""
    out = list(words)
    for j in range(1, len(out)):
        if out[j - 1] == "and" and (
            out[j] in ("was", "were", "had")
            or (out[j] in _DETERMINERS and any(_is_past(w) for w in out[j + 1 : j + 5]))
        ):
            return " ".join(out[: j - 1])  # "... close and its business moved ...": a second clause
        if out[j - 1] == "and" and _is_past(out[j].lower()) and not out[j][:1].isupper():
            if j + 1 < len(out) and out[j + 1] == "by":
                continue
            base = base_form(out[j].lower())
            if base is None:
                return None
            out[j] = base
    return " ".join(out)


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
        casing = _Casing(sentences)
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

    def _drafts(self, sentence: str, *, city: str, casing: _Casing) -> list[_Draft]:
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
    def _year_question(body: str, casing: _Casing) -> _Draft | None:
        fronted = _FRONTED.match(body)
        if fronted is not None:
            clause, _, _ = _clause_with(body, 0, fronted.end())
            clause = clause[fronted.end() :]
        else:
            match = _DATE_PHRASE.search(body)
            if match is None:
                return None
            clause, start, end = _clause_with(body, match.start(), match.end())
            before, after = clause[:start], clause[end:]
            aside = _APPOSITIVE.match(before) if after.startswith(",") else None
            if aside is not None and _find_verb(aside.group("subject").split()) is not None:
                return None  # "Britain built a base, completed in 1938, ...": the date is not the verb's
            if aside is not None:
                # "The Exhibition, first held in 1879, later became ...": ask about the aside itself.
                subject = casing.lower_first(_drop_fronted_phrase(aside.group("subject")))
                return _Draft("year", f"In what year was {subject} {aside.group('participle')}")
            if after.startswith(","):
                leading = before.split()[:1] and before.split()[0].lower() in _LEADING
                if leading and _find_verb(before.split()) is None:
                    # "At dawn on April 18, 1906, an earthquake struck": the date closes a fronted phrase.
                    clause = after[1:]
                elif _find_verb(before.split()) is None:
                    return None
                else:
                    clause = before
            else:
                # An "and" right after the date starts a second predicate ("was dedicated in 1776 and
                # remains ..."), which the question leaves out.
                cut = re.search(r",(?![0-9])|^ and\b", after)
                clause = before + (after if cut is None else after[: cut.start()])
        clause = _drop_fronted_phrase(_clean(clause))
        words = clause.split()
        if len(words) < 3 or re.search(_YEAR, clause):
            return None  # a second year in the question would make "in what year" ambiguous
        found = _find_verb(words)
        if found is None:
            return _Draft("year", f"{casing.lower_first(clause)} in what year")
        i, kind, base = found
        subject = _clean(" ".join(words[:i]))
        rest = _clean(" ".join(words[i + 1 :]))
        if not subject or (re.fullmatch(r"(?:the|this|that) [a-z]+", subject.lower()) and "city" not in subject):
            return None  # "the chapel was consecrated": which chapel is only clear from the sentence before
        subject = casing.lower_first(subject) + ("," if words[i - 1].endswith(",") else "")
        if kind == "aux":
            question = f"In what year {words[i].lower()} {subject} {rest}"
        elif base is not None and (predicate := _base_predicate(words[i + 1 :])) is not None:
            question = f"In what year did {subject} {base} {predicate}"
        else:
            question = f"{subject} {' '.join(words[i:])} in what year"
        return _Draft("year", _clean(question))

    @staticmethod
    def _who_question(body: str, city: str) -> _Draft | None:
        words = body.split()
        n = 0
        while n < len(words) and (words[n][:1].isupper() or (n and words[n] in ("de", "van", "von", "da"))):
            if words[n].endswith(","):
                return None
            n += 1
        if n < 2 or n >= len(words) or words[0].lower() in _LEADING | _DETERMINERS | {"also"}:
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
        elif not (verb in _IRREGULAR or (verb.endswith("ed") and verb not in _NOT_VERBS)):
            return None
        clause, _, _ = _clause_with(body, 0, len(name))
        predicate = _clean(clause[len(name) :])
        return _Draft("who", f"{'What' if thing else 'Who'} {predicate}")

    @staticmethod
    def _count_question(body: str, casing: _Casing) -> _Draft | None:
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
            clause, start, stop = _clause_with(body, match.start(), end)
            if "," in clause[:start] or clause[:start].rstrip().endswith(" and"):
                continue  # a figure inside an aside ("and, at 553 metres, stood ...") makes no clean question
            after = clause[stop:]
            cut = re.search(r",(?![0-9])| and ", after)
            text = _clean(clause[:start] + wh + (after if cut is None else after[: cut.start()]))
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
    question = _clean(_concise(_clean(question)))
    if city and city.lower() not in question.lower():
        first = question.split(" ", 1)[0]
        if first in ("In", "Who", "What"):
            question = first.lower() + question[len(first) :]
        question = f"In the history of {city}, {question}"
    return question[:1].upper() + question[1:] + "?"
