"""The small English grammar the offline question writer stands on: past-tense verbs, clauses, capitals.

A question reads right only if the verb is found and put in its base form ("opened" -> "did ... open"), the
clause that holds the fact is cut out of a longer sentence, and a name keeps its capital where an ordinary word
loses it. Those rules are fiddly and checked word by word against the corpus, so they live here, apart from
the choice of which questions to ask (`questions`). They are deliberately conservative: where a rule cannot
tell, it says so (``None``), and the writer asks an echo question or none rather than a wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from judgeflow.core.text import wordlist, wordset

__all__ = [
    "DETERMINERS",
    "IRREGULAR",
    "LEADING",
    "NOT_VERBS",
    "Casing",
    "base_form",
    "base_predicate",
    "clause_with",
    "clean",
    "drop_fronted_phrase",
    "find_verb",
    "is_past",
]

IRREGULAR: dict[str, str] = dict(
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
DETERMINERS = wordset("the a an its their his her our this that these those")
NOT_VERBS = wordset("hundred red bed shed wed need seed feed speed breed steed")

LEADING = wordset(
    "after before when while although though because since as once until following during in on at by "
    "with under for from throughout despite"
)


def base_form(past: str) -> str | None:
    """The base form of a past-tense verb ("opened" -> "open", "created" -> "create"), or ``None`` when the
    small rules here cannot tell (the caller then asks an echo question instead of guessing)."""
    word = past.lower()
    prefix = ""
    if "-" in word:  # "co-founded" -> "co-found"
        head, _, word = word.rpartition("-")
        prefix = head + "-"
    if word in IRREGULAR:
        return prefix + IRREGULAR[word]
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


def clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,;:])", r"\1", text)
    text = re.sub(r",\s*,", ",", text)
    return text.strip(" ,;:.")


def clause_with(sentence: str, start: int, end: int) -> tuple[str, int, int]:
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


class Casing:
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
        if lower not in DETERMINERS and (
            first in self.proper
            or (len(words) > 1 and words[1][:1].isupper())
            or (lower.endswith(("ish", "ese", "ian", "ans", "ean", "can")) and lower not in self.common)
        ):
            return text
        return first[:1].lower() + first[1:] + text[len(first) :]


def drop_fronted_phrase(clause: str) -> str:
    """Drop a leading adverbial ("During the war, ...", "After Mexico won ...") so the subject comes first.

    A clause that is only a subordinate clause ("After Mexico won its independence from Spain") loses its
    subordinator instead, which leaves a plain statement of the same fact.
    """
    words = clause.split()
    if not words or words[0].lower() not in LEADING:
        return clause
    comma = clause.find(",")
    if comma > 0 and find_verb(clause[comma + 1 :].split()) is not None:
        head = clause[:comma].split()
        if find_verb(head) is None or len(head) <= 6:
            return clause[comma + 1 :].strip()
    if words[0].lower() in ("after", "before", "when", "once", "following", "as", "since", "until"):
        return " ".join(words[1:])
    return clause


def is_past(word: str) -> bool:
    word = word.rpartition("-")[2]
    return word in IRREGULAR or (word.endswith("ed") and word not in NOT_VERBS and len(word) > 3)


def find_verb(words: Sequence[str]) -> tuple[int, str, str | None] | None:
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
            or (lower == "had" and i + 1 < len(words) and is_past(words[i + 1].lower().strip(",")))
        ):
            return i, "aux", None
        if not word.replace("-", "").isalpha() or word[:1].isupper() or not is_past(lower):
            continue
        if prev in DETERMINERS or prev in _PARTICIPLE_CUES or after.startswith("by "):
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
                if is_past(later) and words[j - 1][:1].isupper():
                    return j, "past", base_form(later)
        return i, "past", base_form(lower)
    return None


def base_predicate(words: Sequence[str]) -> str | None:
    """The words after the main verb, with a coordinated past verb ("... and burned ...") put in base form,
    so the "did" question stays grammatical; ``None`` when such a verb has no known base form."""
    out = list(words)
    for j in range(1, len(out)):
        if out[j - 1] == "and" and (
            out[j] in ("was", "were", "had") or (out[j] in DETERMINERS and any(is_past(w) for w in out[j + 1 : j + 5]))
        ):
            return " ".join(out[: j - 1])  # "... close and its business moved ...": a second clause
        if out[j - 1] == "and" and is_past(out[j].lower()) and not out[j][:1].isupper():
            if j + 1 < len(out) and out[j + 1] == "by":
                continue
            base = base_form(out[j].lower())
            if base is None:
                return None
            out[j] = base
    return " ".join(out)
