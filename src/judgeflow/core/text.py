"""Plain-text plumbing shared by the local stand-in models: tokens, sentences and chunks.

Every local model (BM25, question writer, answerer, teacher, student) has to agree on what a "word" and a
"sentence" are, or a question written from one sentence would not be found again by the index or recognised by
the judge. So the rules live here, once, and are deliberately simple and deterministic:

* tokens are lowercase runs of letters, or numbers that keep their decimal point (``3.5``) and lose their
  thousands separators (``1,000`` -> ``1000``), so a year or a figure is a single, comparable token;
* sentences end at ``.``, ``!`` or ``?`` followed by white space and a capital, a digit or a quote, except after
  a known abbreviation ("St.", "Mt.", "Dr.") or an initial ("J. P. Morgan"); decimals never split because
  their point is not followed by white space;
* chunks pack whole sentences, so retrieval never hands a model half a fact.

Markdown headings are section titles, not sentences: they are dropped from the text the models read, and a
heading starts a new chunk so that one chunk does not straddle two topics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from judgeflow.protocol.messages import Document

__all__ = [
    "STOPWORDS",
    "Chunk",
    "capitalised_words",
    "chunk_document",
    "content_words",
    "numbers",
    "paragraphs",
    "sections",
    "split_clauses",
    "split_sentences",
    "stem",
    "strip_markdown",
    "tokenize",
    "word_count",
    "wordlist",
    "wordset",
    "years",
]


def wordlist(words: str) -> list[str]:
    """The whitespace-separated words of a word-list literal (keeps long vocabularies readable in source)."""
    return words.split()


def wordset(words: str) -> frozenset[str]:
    """:func:`wordlist` as a frozenset, for membership tests."""
    return frozenset(words.split())


STOPWORDS: frozenset[str] = wordset("""
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself yourselves
    one ones many much may might must shall upon via within without whose whether yet
    """)

# Lowercase forms before the final period. A period after one of these is not a sentence end.
_ABBREVIATIONS: frozenset[str] = wordset("""
    st mt ft mr mrs ms dr jr sr gen col capt lt sgt cmdr adm rev prof gov pres sen rep hon no nos vol vols fig
    figs approx ca c cf vs inc co corp ltd bros ave blvd rd jan feb mar apr jun jul aug sep sept oct nov dec
    e.g i.e u.s u.k u.n a.m p.m mme mlle messrs
    """)

_NUMBER = r"\d+(?:[.,]\d+)*"
_TOKEN_RE = re.compile(rf"{_NUMBER}|[^\W\d_]+(?:['’][^\W\d_]+)*")
_THOUSANDS_RE = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s")
_LIST_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_EMPHASIS_RE = re.compile(r"(\*\*|__|\*|`)")
_BOUNDARY_RE = re.compile(r"[.!?]+[\"')\]’”]*(\s+)")
_YEAR_RE = re.compile(r"^(?:1[0-9]{3}|20[0-9]{2})$")
_CLAUSE_RE = re.compile(r"(?:,(?![0-9]{3})|;)\s+(?=(?:and|but|while|which|who|where|whereas)\b)|;\s+")
_CAPITAL_RE = re.compile(r"(?<![\w'’])[A-Z][\w'’-]*")
_INITIAL_RE = re.compile(r"^[A-Z]\.$")
_DOTTED_RE = re.compile(r"^(?:[A-Za-z]\.){2,}$")


def _normalise_number(token: str) -> str:
    if _THOUSANDS_RE.match(token):
        return token.replace(",", "")
    return token.rstrip(".,")


def tokenize(text: str) -> list[str]:
    """Lowercase word and number tokens, possessives dropped ("city's" -> "city")."""
    tokens = []
    for raw in _TOKEN_RE.findall(text.lower()):
        if raw[0].isdigit():
            tokens.append(_normalise_number(raw))
            continue
        if raw.endswith(("'s", "’s")):
            raw = raw[:-2]
        tokens.append(raw.replace("’", "'"))
    return tokens


def stem(token: str) -> str:
    """A deliberately light suffix stripper, so that "opened"/"open" and "bridges"/"bridge" meet.

    It only has to map inflections of one word to one key; the keys need not be real words. Numbers pass
    through untouched.
    """
    if any(ch.isdigit() for ch in token) or len(token) <= 3:
        return token
    word = token
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ied") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ing") and len(word) >= 6:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 5:
        word = word[:-2]
    else:
        return word[:-1] if word.endswith("e") and len(word) > 3 else word
    if len(word) >= 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> list[str]:
    """Stemmed tokens that carry meaning (stopwords removed), in text order, repeats kept."""
    return [stem(t) for t in tokenize(text) if t not in STOPWORDS]


def numbers(text: str) -> set[str]:
    """The number tokens of ``text`` (years included), normalised as :func:`tokenize` does."""
    return {t for t in tokenize(text) if t[0].isdigit()}


def years(text: str) -> set[str]:
    """The four-digit years (1000-2099) mentioned in ``text``."""
    return {t for t in tokenize(text) if _YEAR_RE.match(t)}


def capitalised_words(text: str) -> set[str]:
    """Stemmed lowercase forms of the capitalised words that do not open a sentence: a cheap stand-in for
    "the named entities in this text" (a name that opens a sentence is missed; stopwords never count)."""
    found: set[str] = set()
    for sentence in split_sentences(text) or [text]:
        for match in _CAPITAL_RE.finditer(sentence):
            if match.start() == 0:
                continue
            for token in tokenize(match.group()):
                if token not in STOPWORDS:
                    found.add(stem(token))
    return found


def split_clauses(sentence: str) -> list[str]:
    """Split a sentence into its coordinated clauses (at ", and", ", but", ", which", "; " ...).

    A reference sentence often states two facts; a grader asks which of them the question is about.
    """
    parts = [p.strip(" ,;") for p in _CLAUSE_RE.split(sentence)]
    return [p for p in parts if p]


def word_count(text: str) -> int:
    return len(text.split())


def strip_markdown(text: str) -> str:
    """The prose of a Markdown text: headings dropped, list markers and emphasis removed, paragraphs kept."""
    return "\n\n".join(para for _, paras in sections(text) for para in paras)


def sections(text: str) -> list[tuple[str, list[str]]]:
    """``(heading, paragraphs)`` pairs; text before the first heading has heading ``""``.

    A paragraph is a run of non-blank lines joined with spaces; each list item is a paragraph of its own.
    """
    result: list[tuple[str, list[str]]] = [("", [])]
    lines: list[str] = []

    def flush() -> None:
        if lines:
            para = _EMPHASIS_RE.sub("", " ".join(lines)).strip()
            if para:
                result[-1][1].append(para)
            lines.clear()

    for line in text.splitlines():
        if _HEADING_RE.match(line):
            flush()
            result.append((line.strip().lstrip("#").strip(), []))
        elif not line.strip():
            flush()
        elif _LIST_RE.match(line):
            flush()
            lines.append(_LIST_RE.sub("", line).strip())
        else:
            lines.append(line.strip())
    flush()
    return [(heading, paras) for heading, paras in result if paras]


def paragraphs(text: str) -> list[str]:
    """The paragraphs of ``text`` (headings dropped)."""
    return [para for _, paras in sections(text) for para in paras]


def _is_boundary(before: str, after: str) -> bool:
    """Whether a run of terminal punctuation ending ``before`` ends a sentence, given the text ``after``."""
    if not after:
        return True
    if not (after[0].isupper() or after[0].isdigit() or after[0] in "\"'“‘(["):
        return False
    if not before.endswith("."):
        return True
    word = before.split()[-1].lstrip("\"'“‘([")
    if _INITIAL_RE.match(word) or _DOTTED_RE.match(word):
        return False
    return word[:-1].lower() not in _ABBREVIATIONS


def _split_paragraph(paragraph: str) -> Iterable[str]:
    start = 0
    for match in _BOUNDARY_RE.finditer(paragraph):
        end = match.start(1)
        if _is_boundary(paragraph[start:end], paragraph[match.end() :]):
            sentence = paragraph[start:end].strip()
            if sentence:
                yield sentence
            start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        yield tail


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order; blank lines and headings are hard breaks, single newlines are not."""
    return [s for para in paragraphs(text) for s in _split_paragraph(" ".join(para.split()))]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable run of whole sentences from one document."""

    id: str
    doc_id: str
    text: str


def chunk_document(doc: Document, *, max_words: int = 80) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_words`` words (a longer sentence stands alone).

    A heading always starts a new chunk; within a chunk, sentences of one paragraph are joined with a space
    and paragraphs with a blank line, so ``split_sentences(chunk.text)`` gives back exactly the sentences
    that went in.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    chunks: list[Chunk] = []
    current: list[list[str]] = []  # paragraphs of sentences
    size = 0

    def flush() -> None:
        nonlocal size
        if current:
            text = "\n\n".join(" ".join(sents) for sents in current if sents)
            chunks.append(Chunk(id=f"{doc.id}#{len(chunks)}", doc_id=doc.id, text=text))
            current.clear()
        size = 0

    for _, paras in sections(doc.text):
        flush()
        for para in paras:
            sentences = list(_split_paragraph(" ".join(para.split())))
            if current:
                current.append([])
            for sentence in sentences:
                n = word_count(sentence)
                if size and size + n > max_words:
                    flush()
                    current.append([])
                if not current:
                    current.append([])
                current[-1].append(sentence)
                size += n
    flush()
    return chunks
