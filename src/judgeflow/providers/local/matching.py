"""Text rules for comparing an answer with a reference: one canonical spelling, and the reference's alternatives.

Surface overlap is what the local student judges by, so two spellings of one value must meet: "seven" and "7",
"twenty-first" and "21st", "Zhōngguó" and "Zhongguo", "1,000" and "1000", "the Beatles" and "Beatles"
(:func:`match_tokens`). And a reference is often a list of acceptable answers joined by "/" ("Nick Knowles/NICK
KNOWLES", "Cheshire/County of Chester/..."): an answer that gives any one of them is as right as one that gives
the first, so each alternative is scored on its own (:func:`split_aliases`) and the best one counts.

The rules are deliberately small and general (no dataset's quirks): number words up to the nineties, ordinals,
accents, articles, possessives, and separators inside numbers. `judgeflow.core.text` has the
tokeniser the other local models share; this one is separate because it canonicalises more than they should
(a question writer must keep "the" and "seven" as written).
"""

from __future__ import annotations

import re
import unicodedata

from judgeflow.core.text import wordlist

__all__ = ["match_tokens", "split_aliases"]

_UNITS = wordlist(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
)
_TENS = wordlist("twenty thirty forty fifty sixty seventy eighty ninety")
_ORDINALS = wordlist(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
)
_TENTHS = wordlist("twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth")
_NUMBER_WORDS: dict[str, tuple[int, bool]] = {
    **{w: (i, False) for i, w in enumerate(_UNITS)},
    **{w: (20 + 10 * i, False) for i, w in enumerate(_TENS)},
    **{w: (i, True) for i, w in enumerate(_ORDINALS)},
    **{w: (20 + 10 * i, True) for i, w in enumerate(_TENTHS)},
}
_TEN_VALUES = frozenset(range(20, 100, 10))
_DIGIT_ORDINAL_RE = re.compile(r"([0-9]+)(?:st|nd|rd|th)")
_SEPARATED_RE = re.compile(r"(?<=[0-9]),(?=[0-9]{3}\b)")
# The blocks of combining diacritical marks that NFKD splits off letters ("ó" -> "o" + U+0301).
_COMBINING_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Common non-ASCII punctuation, a separator like any other (mapped to a space, so more texts are plain ASCII).
_SEPARATORS = str.maketrans(dict.fromkeys("\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\u00b0\u00ab\u00bb", " "))
# What the fast path of `match_tokens` cannot tokenise: a letter next to a digit ("21st", "mp3"), a decimal or
# thousands separator, a leading zero. (Each branch starts with a digit, which keeps the search fast.)
_NUMBER_DETAIL_RE = re.compile(r"[0-9](?:(?<=[a-z][0-9])|[a-z]|[.,][0-9])|0(?<![0-9]0)[0-9]")
_ASCII_SEPARATORS = bytes(b if chr(b).isalnum() else 32 for b in range(256))
_MATCH_TOKEN_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:st|nd|rd|th)?|[^\W\d_]+")
# Articles, and the "s" that a possessive leaves behind once the apostrophe has split it off.
_DROPPED = frozenset(("a", "an", "the", "s"))
# A "/" between two short numbers is a fraction or a date (1/2, 9/11, 12/25/1990), not a list of alternatives.
_ALIAS_SLASH_RE = re.compile(r"(?<![0-9])[0-9]{1,2}/[0-9]{1,2}(?:/[0-9]{1,4})?(?![0-9])|(/)")


def _ordinal(value: int) -> str:
    suffix = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{value}{suffix}"


def _canonical_numbers(tokens: list[str]) -> list[str]:
    """Number words as digits ("twenty" "one" -> "21", "first" -> "1st"); digits without leading zeros."""
    out: list[str] = []
    tens = False  # whether the last token written was a multiple of ten in words ("twenty")
    for token in tokens:
        word = _NUMBER_WORDS.get(token)
        if word is not None:
            value, ordinal = word
            if tens and 0 < value < 10:
                value += int(out.pop())
            out.append(_ordinal(value) if ordinal else str(value))
            tens = not ordinal and value in _TEN_VALUES
            continue
        tens = False
        if token[0].isdigit() and token.isascii():
            ordinal_match = _DIGIT_ORDINAL_RE.fullmatch(token)
            if ordinal_match is not None:
                token = _ordinal(int(ordinal_match.group(1)))
            elif token[0] == "0" and token.isdigit():
                token = str(int(token))
        out.append(token)
    return out


def match_tokens(text: str) -> list[str]:
    """The tokens of ``text`` in one canonical spelling, for comparing an answer with a reference.

    Lowercase, accents folded ("é" -> "e"), possessives and the articles a/an/the dropped, anything but letters
    and digits a separator; numbers lose thousands separators and leading zeros, and number words become digits:
    "Seven" -> "7", "twenty-one" -> "21", "Twenty-first" and "21st" -> "21st". Decimals keep their point.
    """
    text = _fold(text.lower())
    if text.isascii() and _NUMBER_DETAIL_RE.search(text) is None:
        # Most texts: the same tokens as `_regex_tokens`, about five times faster (judges run this per answer).
        raw = text.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii").split()
        tokens = [token for token in raw if token not in _DROPPED]
        return tokens if _NUMBER_WORDS.keys().isdisjoint(tokens) else _canonical_numbers(tokens)
    return _regex_tokens(text)


def _fold(text: str) -> str:
    """Accents off, common punctuation to spaces (ASCII text is returned as it is)."""
    if text.isascii():
        return text
    return _COMBINING_RE.sub("", unicodedata.normalize("NFKD", text)).translate(_SEPARATORS).lower()


def _regex_tokens(text: str) -> list[str]:
    """`match_tokens` of a lowercase text whose accents are folded already (any text, not only plain ASCII)."""
    text = _SEPARATED_RE.sub("", text)
    return _canonical_numbers([token for token in _MATCH_TOKEN_RE.findall(text) if token not in _DROPPED])


def split_aliases(reference: str) -> list[str]:
    """The alternatives of a reference written as "A/B/C" (each stripped; empty ones dropped).

    A slash between short numbers (1/2, 9/11, 12/25/1990) does not split. A reference without a slash is its own only
    alternative; an empty one gives ``[""]``, so every reference has at least one.
    """
    if "/" not in reference:
        return [reference.strip()]
    parts: list[str] = []
    start = 0
    for match in _ALIAS_SLASH_RE.finditer(reference):
        if match.group(1) is not None:
            parts.append(reference[start : match.start()])
            start = match.end()
    parts.append(reference[start:])
    kept = [part.strip() for part in parts if part.strip()]
    return kept or [""]
