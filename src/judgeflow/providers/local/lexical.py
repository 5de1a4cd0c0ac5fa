"""The local student's lexical features, computed for a whole batch at once.

A student has to be cheap enough to judge every answer a pipeline produces, so its features are surface
overlap between the answer and the reference, measured on canonical tokens (`matching.match_tokens`) and
against each of the reference's alternatives ("A/B/C", `matching.split_aliases`); a feature that compares with
the reference takes the best alternative, so a list of twenty acceptable spellings does not dilute a match:

==========================  ==============================================================================
feature                     what it measures (best alternative of the reference where it says "reference")
==========================  ==============================================================================
``ref_char3_recall``        share of the reference's character 3-grams found in the answer
``ref_char3_precision``     share of the answer's character 3-grams (counted with repeats) in the reference
``ref_containment``         the larger of the two above: how far one of answer and reference contains the other
                            (a short answer inside the reference, or the reference inside a long answer)
``novel_char3_recall``      the same recall, counting only reference 3-grams that are not in the question
``whole_char3_recall``      the 3-gram recall of all the alternatives together (of the union of their 3-grams):
                            a teacher that reads "A/B/C" as one text (the local rubric teacher does) is
                            followed by this one
``question_char3_recall``   share of the question's character 3-grams found in the answer (topicality)
``ref_token_recall``        share of the reference's tokens found in the answer
``novel_token_recall``      the same for tokens not in the question (all of them if every one is)
``ref_bigram_recall``       share of the reference's token bigrams found in the answer (a one-token reference:
                            its token recall); 1 when the answer contains the reference as a phrase, or nearly
``digit_recall``            share of the reference's numbers found in the answer (0 if it has none)
``digit_extra``             share of the answer's numbers that are in neither the reference nor the question
``log_length_ratio``        log((answer tokens + 1) / (tokens of the best-matching alternative + 1))
``log_answer_words``        log(1 + answer tokens)
``hedge_words``             answer tokens that express doubt ("probably", "perhaps", "think", "seems", ...)
                            and that neither the question nor the reference uses
==========================  ==============================================================================

Besides overlap, two cues about how an answer is worded: its length, and its words of doubt (``hedge_words``,
from this module's own short list, not the teacher's phrases). The untrained student gives them no weight; a
trained one gives them whatever its teacher's scores say they are worth.

How: every text of a batch is tokenised once (a question or reference shared by several answers, once), and
the overlaps are counted in numpy with integer keys (group, 3-gram or token), chunk by chunk, rather than with
Python sets: a reference with eighty alternatives would cost eighty set intersections per answer, and even a
plain one made the set version slower than the 20,000 judgements a second a batch judge should manage on one
core (bench/evouna.py). `features` is exact: the tests compare it with the plain set arithmetic of the
definitions above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from judgeflow.core.text import wordset
from judgeflow.protocol.messages import JudgeInput

from .matching import match_tokens, split_aliases

__all__ = ["FEATURE_LABELS", "FEATURE_NAMES", "HEDGE_TOKENS", "features", "features_and_best"]

FEATURE_LABELS: dict[str, str] = {
    "ref_char3_recall": "reference 3-gram recall",
    "ref_char3_precision": "answer 3-gram precision",
    "ref_containment": "containment of answer and reference",
    "novel_char3_recall": "recall of reference 3-grams not in the question",
    "whole_char3_recall": "whole-reference 3-gram recall",
    "question_char3_recall": "question 3-gram recall",
    "ref_token_recall": "reference token recall",
    "novel_token_recall": "recall of reference tokens not in the question",
    "ref_bigram_recall": "reference bigram recall",
    "digit_recall": "reference number recall",
    "digit_extra": "numbers not in the reference",
    "log_length_ratio": "log length ratio",
    "log_answer_words": "log answer length",
    "hedge_words": "hedging words",
}
# Words with which an answer declines to commit. ("may" is left out: lowercased, it is also the month.)
HEDGE_TOKENS = wordset(
    "probably possibly perhaps maybe likely unlikely presumably apparently supposedly think believe guess "
    "suppose seems seem seemingly sure unsure uncertain might"
)
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURE_LABELS)

Array = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
_CHUNK = 256  # items per pass: bounds the memory of the key arrays, and keeps the keys within 63 bits


def features(items: Sequence[JudgeInput]) -> Array:
    """The ``len(items) x len(FEATURE_NAMES)`` feature matrix."""
    return features_and_best(items)[0]


def features_and_best(items: Sequence[JudgeInput]) -> tuple[Array, Ints]:
    """`features`, and for each item the index (in ``split_aliases(reference)``) of the alternative its answer
    matches best by 3-gram recall, the first of equals."""
    out = np.zeros((len(items), len(FEATURE_NAMES)), dtype=np.float64)
    best = np.zeros(len(items), dtype=np.int64)
    for start in range(0, len(items), _CHUNK):
        batch = _Batch(items[start : start + _CHUNK])
        out[start : start + _CHUNK] = batch.matrix()
        best[start : start + _CHUNK] = batch.best_alternative
    return out, best


def _spans(starts: Ints, lengths: Ints) -> Ints:
    """The concatenated ranges ``starts[k] .. starts[k] + lengths[k]`` as one index array."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def _distinct(keys: Ints) -> Ints:
    """The sorted distinct values (``np.unique`` without its overhead: numpy 2 hashes before it sorts)."""
    ordered = np.sort(keys)
    if len(ordered) < 2:
        return ordered
    keep = np.ones(len(ordered), dtype=np.bool_)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def _ratio(part: Array, whole: Array) -> Array:
    return np.divide(part, whole, out=np.zeros_like(part), where=whole > 0)


@dataclass(frozen=True, slots=True)
class _Overlap:
    """Counts of one kind of unit (3-grams, tokens, bigrams, numbers) shared by the answers and the references."""

    alias_total: Array  # distinct units of each alternative
    novel_total: Array  # ... that are not in the question
    question_total: Array  # distinct units of each (question, reference) group's question
    reference_total: Array  # distinct units of each group's alternatives together
    pair_hits: Array  # distinct units of the alternative found in the answer, per (item, alternative) pair
    pair_novel_hits: Array
    pair_positions: Array  # answer positions whose unit is in the alternative, per pair
    question_hits: Array  # distinct question units found in the answer, per item
    reference_hits: Array  # distinct units of the alternatives together found in the answer, per item
    answer_positions: Array  # units of each answer, counted with repeats
    answer_found: Array  # distinct units of each answer found in the question or the reference
    answer_distinct: Array | None  # distinct units of each answer (when asked for)


class _Batch:
    """One chunk of items: the texts tokenised once, then each overlap counted with numpy.

    Items with the same question and reference form a group; each group contributes its question and its
    alternatives ("dictionary" texts, once per group), each item its answer. Units are identified by an integer
    code; an entry is a distinct (group, code); each answer's codes are looked up among its group's entries.
    """

    def __init__(self, items: Sequence[JudgeInput]) -> None:
        groups: dict[tuple[str, str], int] = {}
        references: dict[str, list[list[str]]] = {}
        dict_units: list[list[str]] = []  # per group: its question, then its alternatives
        unit_group: list[int] = []
        unit_alias: list[int] = []  # -1 for a question
        alias_start: list[int] = []
        n_alias: list[int] = []
        group_of_item: list[int] = []
        for item in items:
            key = (item.question, item.reference)
            group = groups.get(key)
            if group is None:
                group = groups[key] = len(groups)
                aliases = references.get(item.reference)
                if aliases is None:
                    aliases = references[item.reference] = [match_tokens(a) for a in split_aliases(item.reference)]
                alias_start.append(len(unit_alias) - len(groups) + 1)
                n_alias.append(len(aliases))
                dict_units += [match_tokens(item.question), *aliases]
                unit_group += [group] * (len(aliases) + 1)
                unit_alias += [-1, *range(alias_start[-1], alias_start[-1] + len(aliases))]
            group_of_item.append(group)
        self.n = len(items)
        self.n_groups = len(groups)
        self.n_dict = len(dict_units)
        self.units = dict_units + [match_tokens(item.answer) for item in items]
        self.lengths = np.array([len(tokens) for tokens in self.units], dtype=np.int64)
        self.unit_group = np.array(unit_group, dtype=np.int64)
        self.unit_alias = np.array(unit_alias, dtype=np.int64)
        self.group_of_item = np.array(group_of_item, dtype=np.int64)
        self.alias_start = np.array(alias_start, dtype=np.int64)
        self.n_aliases = int(sum(n_alias))
        per_item = np.array(n_alias, dtype=np.int64)[self.group_of_item]
        self.pair_start = np.concatenate([[0], np.cumsum(per_item)]).astype(np.int64)
        self.pair_item = np.repeat(np.arange(self.n, dtype=np.int64), per_item)
        self.pair_alias = _spans(self.alias_start[self.group_of_item], per_item)
        self.best_alternative = np.zeros(self.n, dtype=np.int64)

    def overlap(self, codes: Ints, unit: Ints, bound: int, *, distinct_answers: bool = False) -> _Overlap:
        """Count shared units: ``codes`` (each below ``bound``) and the index of the text each comes from."""
        if self.n_groups * bound >= 2**62:  # keys would overflow: renumber the codes that occur
            distinct_codes, codes = np.unique(codes, return_inverse=True)
            bound = max(1, len(distinct_codes))
        on_dict = unit < self.n_dict
        d_unit, a_item, a_codes = unit[on_dict], unit[~on_dict] - self.n_dict, codes[~on_dict]
        d_keys = self.unit_group[d_unit] * bound + codes[on_dict]
        a_keys = self.group_of_item[a_item] * bound + a_codes
        # Entries: the distinct (group, code) keys of the questions and references.
        order = np.argsort(d_keys, kind="stable")
        sorted_keys = d_keys[order]
        fresh = np.ones(len(sorted_keys), dtype=np.bool_)
        fresh[1:] = sorted_keys[1:] != sorted_keys[:-1]
        entry_of = np.cumsum(fresh) - 1
        entries = sorted_keys[fresh]
        n_entries = len(entries)
        entry_group = entries // bound
        source = self.unit_alias[d_unit[order]]
        in_question = np.zeros(n_entries, dtype=np.bool_)
        in_question[entry_of[source < 0]] = True
        # Which alternatives hold each entry (each pair once): a CSR table sorted by entry. The sort was stable,
        # so a code repeated within one text sits in one run: dropping repeats of the previous pair suffices.
        held = source >= 0
        once = np.ones(len(source), dtype=np.bool_)
        once[1:] = (entry_of[1:] != entry_of[:-1]) | (source[1:] != source[:-1])
        member_entry, member_alias = entry_of[held & once], source[held & once]
        member_start = np.searchsorted(member_entry, np.arange(n_entries + 1))
        in_reference = member_start[1:] > member_start[:-1]
        novel = (~in_question[member_entry]).astype(np.float64)
        # The answers' codes looked up among the entries of their own group.
        if n_entries:
            position = np.minimum(np.searchsorted(entries, a_keys), n_entries - 1)
            hit = entries[position] == a_keys
        else:
            position, hit = np.zeros(len(a_keys), dtype=np.int64), np.zeros(len(a_keys), dtype=np.bool_)
        hit_item, hit_entry = a_item[hit], position[hit]
        d_item, d_entry = self._distinct_hits(hit_item, hit_entry, entries, bound)
        pair_hits, pair_novel_hits = self._per_pair(d_item, d_entry, member_start, member_alias, split=~in_question)
        answer_distinct = None
        if distinct_answers:
            counted = _distinct(a_item * bound + a_codes) // bound
            answer_distinct = np.bincount(counted, minlength=self.n).astype(np.float64)
        return _Overlap(
            alias_total=np.bincount(member_alias, minlength=self.n_aliases).astype(np.float64),
            novel_total=np.bincount(member_alias, weights=novel, minlength=self.n_aliases).astype(np.float64),
            question_total=np.bincount(entry_group[in_question], minlength=self.n_groups).astype(np.float64),
            reference_total=np.bincount(entry_group[in_reference], minlength=self.n_groups).astype(np.float64),
            pair_hits=pair_hits,
            pair_novel_hits=pair_novel_hits,
            pair_positions=self._per_pair(hit_item, hit_entry, member_start, member_alias)[0],
            question_hits=np.bincount(d_item[in_question[d_entry]], minlength=self.n).astype(np.float64),
            reference_hits=np.bincount(d_item[in_reference[d_entry]], minlength=self.n).astype(np.float64),
            answer_positions=np.bincount(a_item, minlength=self.n).astype(np.float64),
            answer_found=np.bincount(d_item, minlength=self.n).astype(np.float64),
            answer_distinct=answer_distinct,
        )

    def _distinct_hits(self, item: Ints, entry: Ints, entries: Ints, bound: int) -> tuple[Ints, Ints]:
        """The distinct (item, entry) pairs among the hits, sorted. An item's entries are its group's, a short
        run of ``entries``: marking them in an items x (longest run) table is cheaper than sorting the hits."""
        group_start = np.searchsorted(entries, np.arange(self.n_groups + 1) * bound)
        width = max(1, int(np.diff(group_start).max(initial=0)))
        if self.n * width > 1 << 22:  # one huge reference: sort instead of a large table
            distinct = _distinct(item * max(1, len(entries)) + entry)
            return distinct // max(1, len(entries)), distinct % max(1, len(entries))
        offset = group_start[self.group_of_item]
        table = np.zeros(self.n * width, dtype=np.bool_)
        table[item * width + entry - offset[item]] = True
        marked = np.flatnonzero(table)
        items = marked // width
        return items, marked % width + offset[items]

    def _per_pair(
        self, item: Ints, entry: Ints, start: Ints, alias: Ints, *, split: Flags | None = None
    ) -> tuple[Array, Array]:
        """How many of the (item, entry) hits each (item, alternative) pair holds; second, the same count of the
        hits whose entry is in ``split``."""
        lengths = start[entry + 1] - start[entry]
        members = alias[_spans(start[entry], lengths)]
        items = np.repeat(item, lengths)
        pairs = self.pair_start[items] + members - self.alias_start[self.group_of_item[items]]
        counts = np.bincount(pairs, minlength=len(self.pair_item)).astype(np.float64)
        if split is None:
            return counts, counts
        chosen = np.repeat(split[entry], lengths)
        return counts, np.bincount(pairs[chosen], minlength=len(self.pair_item)).astype(np.float64)

    def matrix(self) -> Array:
        if not self.n:
            return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float64)
        vocabulary: dict[str, int] = {}
        ids = np.array(
            [vocabulary.setdefault(t, len(vocabulary)) for tokens in self.units for t in tokens], dtype=np.int64
        )
        v = max(1, len(vocabulary))
        unit = np.repeat(np.arange(len(self.units), dtype=np.int64), self.lengths)
        tokens = self.overlap(ids, unit, v)
        numeric = np.array([t[0] in "0123456789" for t in vocabulary] or [False], dtype=np.bool_)[ids]
        numbers = self.overlap(ids[numeric], unit[numeric], v, distinct_answers=True)
        joined = unit[1:] == unit[:-1]
        bigrams = self.overlap(ids[:-1][joined] * v + ids[1:][joined], unit[:-1][joined], v * v)
        chars = self._char3()

        alias = self.pair_alias
        token_recall = _ratio(tokens.pair_hits, tokens.alias_total[alias])
        novel_tokens = tokens.novel_total[alias]
        char3_recall = _ratio(chars.pair_hits, chars.alias_total[alias])
        bigram_total = bigrams.alias_total[alias]
        by_pair = {
            "ref_char3_recall": char3_recall,
            "ref_char3_precision": _ratio(chars.pair_positions, chars.answer_positions[self.pair_item]),
            "novel_char3_recall": _ratio(chars.pair_novel_hits, chars.novel_total[alias]),
            "ref_token_recall": token_recall,
            "novel_token_recall": np.where(
                novel_tokens > 0, _ratio(tokens.pair_novel_hits, novel_tokens), token_recall
            ),
            "ref_bigram_recall": np.where(bigram_total > 0, _ratio(bigrams.pair_hits, bigram_total), token_recall),
            "digit_recall": _ratio(numbers.pair_hits, numbers.alias_total[alias]),
        }
        best = {name: np.maximum.reduceat(values, self.pair_start[:-1]) for name, values in by_pair.items()}
        # The alternative the answer matches best (the first of equals) is the length it is compared with.
        candidates = np.flatnonzero(char3_recall == best["ref_char3_recall"][self.pair_item])
        _, first = np.unique(self.pair_item[candidates], return_index=True)
        best_pair = candidates[first]
        self.best_alternative = alias[best_pair] - self.alias_start[self.group_of_item]
        alias_words = self.lengths[: self.n_dict][self.unit_alias >= 0].astype(np.float64)
        answer_words = self.lengths[self.n_dict :].astype(np.float64)
        group = self.group_of_item
        assert numbers.answer_distinct is not None
        on_answer = unit >= self.n_dict
        hedging = np.array([t in HEDGE_TOKENS for t in vocabulary] or [False], dtype=np.bool_)[ids] & on_answer
        hedge_item = unit[hedging] - self.n_dict
        # A word of doubt the question or the reference uses too is theirs, repeated, not the answer's own.
        theirs = np.isin(
            self.group_of_item[hedge_item] * v + ids[hedging], self.unit_group[unit[~on_answer]] * v + ids[~on_answer]
        )
        per_item = {
            **best,
            "whole_char3_recall": _ratio(chars.reference_hits, chars.reference_total[group]),
            "question_char3_recall": _ratio(chars.question_hits, chars.question_total[group]),
            "digit_extra": _ratio(numbers.answer_distinct - numbers.answer_found, numbers.answer_distinct),
            "log_length_ratio": np.log((answer_words + 1.0) / (alias_words[alias[best_pair]] + 1.0)),
            "log_answer_words": np.log1p(answer_words),
            "ref_containment": np.maximum(best["ref_char3_recall"], best["ref_char3_precision"]),
            "hedge_words": np.bincount(hedge_item[~theirs], minlength=self.n).astype(np.float64),
        }
        return np.column_stack([per_item[name] for name in FEATURE_NAMES])

    def _char3(self) -> _Overlap:
        """Character 3-grams of each text padded as " token token ", every character renumbered densely so
        that a 3-gram is one integer below ``size ** 3``."""
        text = "\x00".join(f" {' '.join(tokens)} " for tokens in self.units)
        chars = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        present = np.bincount(chars) > 0
        dense = (np.cumsum(present) - 1)[chars]
        size = int(present.sum())
        gap = chars == 0
        valid = ~(gap[:-2] | gap[1:-1] | gap[2:])
        codes = ((dense[:-2] * size + dense[1:-1]) * size + dense[2:])[valid]
        unit = np.cumsum(gap)[:-2][valid]
        return self.overlap(codes, unit, size**3)
